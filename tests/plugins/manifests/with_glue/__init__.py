"""Glue: ``glue_accounts`` is registered only while the accounts plugin is active too,
``glue_nowhere`` never (no plugin of that name)."""
