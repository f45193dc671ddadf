"""The full-site export (issue 23): every module's records, the users and the stored files
as one zip, for migrating out — Admin → Export all data, and ``crbm export-site``."""
