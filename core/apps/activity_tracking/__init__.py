"""User activity tracking and the User Time Sheet reports (1CRM guide §7.1.2): see plugin.py."""
