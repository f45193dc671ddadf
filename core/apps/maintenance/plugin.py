"""Maintenance as a built-in plugin: the Administration → Maintenance page
(``crbm_web_routes``, ``crbm_admin_links``), where an administrator checks and repairs the
database schema, cleans orphaned uploads, rebuilds the caches and checks the language
packs. Plugins name the columns that hold file keys besides file and image fields through
``crbm_file_references`` (core.apps.maintenance.tools)."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_web_routes(site):
    from core.apps.maintenance import web
    return web.routes


@hookimpl
def crbm_admin_links(site):
    from core.kernel.errors import N_
    from core.kernel.hooktypes import AdminLink
    return [AdminLink(N_("Maintenance"), "/admin/maintenance",
                      N_("Check and repair the database schema, clean orphaned uploads, "
                         "rebuild the caches, check the language files."))]
