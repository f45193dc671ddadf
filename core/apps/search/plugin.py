"""Search as a built-in plugin.

- Quick search's keys: after every schema sync, the records that have no key yet get
  theirs (core.apps.search.keys).
- Full-text search (core.apps.search.fulltext): the module feature ``full_text``, its
  index kept in step in every save's and delete's transaction, created and backfilled
  after every schema sync; the global search box in the header (the Jinja global
  ``global_search``), ``/search`` and ``/search.json`` (core.apps.search.web).
"""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_schema_synced(site):
    from core.apps.search import fulltext, keys
    keys.backfill(site)
    fulltext.backfill(site)


@hookimpl
def crbm_tables(metadata):
    from core.apps.search import fulltext
    fulltext.tables(metadata)


@hookimpl
def crbm_startup(site):
    from core.apps.search import fulltext
    fulltext.prime(site)


@hookimpl
def crbm_module_features(site):
    from core.apps.search.fulltext import FullTextFeature
    return [FullTextFeature()]


@hookimpl(specname="crbm_after_save")
def _fulltext_after_save(site, module, batch, connection):
    from core.apps.search import fulltext
    fulltext.on_save(site, module, batch, connection)


@hookimpl(specname="crbm_after_delete")
def _fulltext_after_delete(site, module, records, connection):
    from core.apps.search import fulltext
    fulltext.remove(site, connection, module, [r["id"] for r in records])


@hookimpl
def crbm_jinja_environment(site, env):
    from core.apps.search import fulltext

    def global_search() -> bool:
        """Whether the header shows the search box: some module opts in."""
        return bool(fulltext.modules(site))

    env.globals["global_search"] = global_search


@hookimpl(tryfirst=True)
def crbm_web_routes(site):
    from core.apps.search import web
    return web.routes
