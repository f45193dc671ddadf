"""Hooks that only make sense with the accounts plugin (registered by the manifest's glue)."""
from core.kernel.hookspecs import hookimpl

CALLS: list[str] = []


@hookimpl
def crbm_after_save(module, batch, user):
    if module.name == "accounts":
        CALLS.extend(change.record["name"] for change in batch)
