"""The kernel: metadata registry, field types, formulas, database, record service, access
control, sequences, the i18n runtime, users and identity, hooks and plugin loading, and the
site that boots them. It imports nothing from ``core.web``, ``core.api``, ``core.apps`` or
``plugins`` (checked by import-linter: setup.cfg ``[importlinter]``)."""
