"""The Studio as a built-in plugin: ``site.studio`` and its pages."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, SiteService


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


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("Studio"), "/admin/studio",
                      N_("Modules, fields, layouts, dropdowns and tabs, shaped in the "
                         "browser."))]
