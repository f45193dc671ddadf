"""Smart lists as a built-in plugin: saved list tabs shared with users, teams or
everyone, the list KPIs and the column chooser (issue 25, guide §7.5.4).

Its tables (``tables.py``) through ``crbm_tables``; its pages (``web.py``) through
``crbm_web_routes``, before the generic ``/m/<module>/<record id>`` pages; the list page
itself (``core/web/views.list_view``) asks ``lists.state`` which smart list, columns and
KPIs apply, and ``lists.kpis`` for the KPI strip. The Admin page lists every smart list.
"""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink


@hookimpl
def crbm_tables(metadata):
    from core.apps.smart_lists import tables
    tables.tables(metadata)


@hookimpl(tryfirst=True)  # before the generic /m/{module}/{record_id} pages
def crbm_web_routes(site):
    from core.apps.smart_lists import web
    return web.routes


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Smart lists"), "/admin/smart-lists",
                      N_("Every user's smart list tabs and whom they are shared with"))]
