"""Storage utilization (1CRM guide §7.2.7): see plugin.py."""
