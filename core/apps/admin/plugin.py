"""The administration pages (users, teams, roles, access settings) as a built-in plugin."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.admin import web
    return web.routes


@hookimpl(tryfirst=True)  # the roles exist before any other plugin's after-sync work
def crbm_schema_synced(site):
    """The built-in roles (the Default Role every user has until an administrator says
    otherwise): made after each schema sync, as a new site needs them."""
    from core.apps.admin import access_admin
    access_admin.ensure_builtins(site)
