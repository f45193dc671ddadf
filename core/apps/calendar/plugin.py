"""The calendar, its holiday sets and the company calendar setting (settings.py) as a
built-in plugin."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, NavEntry


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.calendar import agenda_web, settings_web, web
    return web.routes + agenda_web.routes + settings_web.routes


@hookimpl(tryfirst=True)  # first in the top bar, where it has always been
def crbm_navigation(site, user):
    return [NavEntry(N_("Calendar"), "/calendar/agenda", icon="calendar")]  # the agenda links the rest


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("Company calendar"), "/admin/calendar",
                      N_("Time zone, first day of the week, fiscal year start, work day"))]
