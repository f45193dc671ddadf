"""The CRBM kernel. It knows no business: every module arrives through a plugin or a pack."""

__version__ = "0.1.0"
