"""Packs: installing, upgrading and removing personality, theme and code packs."""
