"""The Studio as a built-in plugin: ``site.studio`` and its pages."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import SiteService


def _studio(site):
    from core.apps.studio.studio import Studio
    return Studio(site)


@hookimpl
def crbm_site_services(site):
    return [SiteService("studio", _studio)]


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.studio import web, web_layout, web_lists
    return [*web.routes, *web_layout.routes, *web_lists.routes]
