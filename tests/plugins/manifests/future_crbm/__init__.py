"""Supports only a CRBM version far from this one."""
