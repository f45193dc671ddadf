"""LDAP sign-in (see plugin.py)."""
