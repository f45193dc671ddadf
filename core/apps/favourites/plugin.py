"""Favourites as a built-in plugin (issue 25): users star records to find them again.

Its table (``tables.py``) through ``crbm_tables``; its pages (``web.py``: the star's
POST and ``/favourites``) through ``crbm_web_routes``; on every record's detail page an
"Add to favourites" or "Remove from favourites" button (``crbm_record_actions``: one
primary-key read per page); a "Favourites" link in the top bar (``crbm_navigation``: no
statement). Its page's template is the web UI's (core/web/templates/favourites.html).
"""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import NavEntry


@hookimpl
def crbm_tables(metadata):
    from core.apps.favourites import tables
    tables.tables(metadata)


@hookimpl(tryfirst=True)  # before the generic pages, like every app's
def crbm_web_routes(site):
    from core.apps.favourites import web
    return web.routes


@hookimpl
def crbm_record_actions(site, module, record, user):
    from core.apps.favourites import favourites, web
    from core.web.actions import Action

    on = favourites.is_favourite(site, user, module.name, record["id"])
    return [Action(N_("Remove from favourites") if on else N_("Add to favourites"),
                   web.toggle_url(module.name, record["id"], not on), post=True)]


@hookimpl  # after the plugins' links, before the notifications bell
def crbm_navigation(site, user):
    return [NavEntry(N_("Favourites"), "/favourites", icon="star")]
