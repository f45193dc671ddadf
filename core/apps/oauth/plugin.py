"""The OAuth2 server and API clients as a built-in plugin: its endpoints and admin pages,
and the key pair that signs access tokens, made once the schema exists."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.oauth import admin_web, web
    return [*web.routes, *admin_web.routes]


@hookimpl
def crbm_schema_synced(site):
    from core.apps.oauth import oauth
    oauth.ensure_keys(site)
