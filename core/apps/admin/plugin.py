"""The administration pages (users, teams, roles, access settings) as a built-in plugin."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.admin import web
    return web.routes
