"""Requires a plugin that is not installed (its plugin.yaml)."""
