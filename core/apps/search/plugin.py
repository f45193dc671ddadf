"""Quick search's keys as a built-in plugin: after every schema sync, the records that
have no key yet get theirs (core.apps.search.keys)."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_schema_synced(site):
    from core.apps.search import keys
    keys.backfill(site)
