"""Duplicates as a built-in plugin: the key table (``crbm_tables``), its upkeep in every
save's transaction (``crbm_after_save``) and after every schema sync (the records no save
has keyed), the "Find duplicates" list action and the merge pages (``crbm_list_actions``,
``crbm_web_routes``), and the REST action ``merge`` (``crbm_api_actions``) — all only for
modules that flag a field ``merge_duplicates``."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import ListAction


@hookimpl
def crbm_tables(metadata):
    from core.apps.duplicates import keys
    keys.tables(metadata)


@hookimpl
def crbm_after_save(site, module, batch, user, connection):
    from core.apps.duplicates import keys
    keys.on_save(site, module, batch, connection)


@hookimpl
def crbm_schema_synced(site):
    from core.apps.duplicates import keys
    keys.backfill(site)


@hookimpl
def crbm_list_actions(site, module, user):
    from core.apps.duplicates import keys
    if keys.plan_of(module) is None or not site.access.can(user, module, "view"):
        return None
    return [ListAction(N_("Find duplicates"), f"/m/{module.name}/duplicates")]


@hookimpl(tryfirst=True)  # before the generic /m/{module}/{id} routes
def crbm_web_routes(site):
    from core.apps.duplicates import web
    return web.routes


@hookimpl
def crbm_api_actions(site):
    from core.apps.duplicates import api
    return api.actions(site)
