"""Loyalty cards for CRBM: an example third-party plugin (see README.md)."""

__version__ = "0.1.0"
