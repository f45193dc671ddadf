"""The calendar and its holiday sets as a built-in plugin."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import NavEntry


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.calendar import web
    return web.routes


@hookimpl(tryfirst=True)  # first in the top bar, where it has always been
def crbm_navigation(site, user):
    return [NavEntry(N_("Calendar"), "/calendar")]
