"""The OAuth2 server and API clients as a built-in plugin: its endpoints and admin pages,
and the key pair that signs access tokens, made once the schema exists."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.oauth import admin_web, web
    return [*web.routes, *admin_web.routes]


@hookimpl
def crbm_schema_synced(site):
    from core.apps.oauth import oauth
    oauth.ensure_keys(site)


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("API and OAuth settings"), "/admin/api",
                      N_("Turn the REST API on or off, allowed sign-ins, signing keys.")),
            AdminLink(N_("API clients"), "/admin/api/clients",
                      N_("Applications allowed to use the API, their grants and secrets."))]


@hookimpl
def crbm_tables(metadata):
    from core.apps.oauth import tables
    tables.tables(metadata)
