"""Dashboards (user guide "Home page and dashboards"; issue 25): the home page is the
signed-in user's dashboard.

Provides:

- **dashboards per user** (store.py): several, as tabs, each an ordered list of dashlets
  with their widths, kept in the plugin's table ``dashboards_tabs`` (``crbm_tables``);
  add a dashlet (a chooser of the kinds on offer), remove, resize, rename a tab, add or
  delete one, rearrange by dragging (SortableJS: mouse and touch) or with the Move
  buttons (keyboard, and a tap on a phone); at most the administrator's number of
  dashlets per dashboard (setting ``dashboards``, Admin → Dashboards); an administrator
  publishes one of their dashboards as the default of a role — a user with none of their
  own starts from their role's, else from the standard one;
- **the home page** ``/`` (web.py): the user's dashboard, every dashlet of the tab drawn
  in the one request, each with a small fixed number of statements; charts built and
  drawn by the web UI's one chart code (core/web/charts.py and static/charts.js, Apache
  ECharts: SVG, aria),
  numbers in the reader's locale, a click on a segment opening its records, and the
  table of the same figures under every chart. Removing the plugin gives the core's home
  page back (its ``Route("/")`` comes before the core's);
- the drill-down page ``/dashboards/drill/<dashlet>/<key>``: the records behind a segment
  when the module's list cannot filter to exactly them (dashlets.py);
- **the hook** ``crbm_dashlets`` (hookspecs.py) through which plugins offer dashlets —
  opportunities, activities, cases, leads and reports do it in a glue module registered
  only while dashboards is active — and this plugin's own: Recently viewed and Modules
  (here), a smart list and a quick-create form (standard.py).
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink
from core.kernel.records import Query
from plugins.dashboards import standard
from plugins.dashboards.dashlets import Cell, DashletType, Drawn, Table, record_url

__version__ = "0.1.0"

RECENT_ITEMS = 10


@hookimpl
def crbm_tables(metadata):
    from plugins.dashboards import store

    store.tables(metadata)


@hookimpl
def crbm_web_routes(site):
    from plugins.dashboards import web

    return web.routes()


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Dashboards"), "/admin/dashboards",
                      N_("Dashlets per dashboard, default dashboards per role"))]


def recent(site, user, options, fmt) -> Drawn:
    """The records the user opened last (the core's recent items: the page writes this
    worker's pending views first), names read through the record service — one statement
    per module among them, a deleted or no longer visible record left out."""
    table = site.tables.tables["crbm_recent_items"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.module, table.c.record_id)
                            .where(table.c.user_id == user.id)
                            .order_by(table.c.viewed_at.desc()).limit(RECENT_ITEMS)).all()
    by_module: dict[str, list[str]] = {}
    for row in rows:
        by_module.setdefault(row.module, []).append(row.record_id)
    names = {}
    for name, ids in by_module.items():
        module = site.registry.modules.get(name)
        if module is None:
            continue
        fields = [module.name_field] if module.name_field else []
        for record in site.records.list(name, user, Query(filters=[("id", "in", ids)],
                                                          fields=fields, limit=None)):
            names[(name, record["id"])] = record.get(module.name_field) or record["id"]
    out = []
    for row in rows:
        if (row.module, row.record_id) in names:
            module = site.registry.modules[row.module]
            out.append((Cell(str(names[(row.module, row.record_id)]),
                             record_url(row.module, row.record_id)),
                        Cell(str(module.label_singular))))
    if not out:
        return Drawn(empty=fmt.gettext("Records you open will be listed here."))
    return Drawn(table=Table((fmt.gettext("Name"), fmt.gettext("Type")), tuple(out)))


def modules(site, user, options, fmt) -> Drawn:
    """The modules the user may open, in their tab groups (the top bar's, as a list)."""
    groups: dict[str, list[Cell]] = {}
    for module in sorted(site.registry.modules.values(),
                         key=lambda m: m.definition.get("tab_order", 1_000_000)):
        if not module.definition.get("hidden") and \
                site.access.mode(user, module) != "disabled":
            groups.setdefault(module.tab_group, []).append(Cell(str(module.label),
                                                               f"/m/{module.name}"))
    return Drawn(links=tuple((str(g), tuple(cells)) for g, cells in groups.items()))


@hookimpl
def crbm_dashlets(site):
    return [
        DashletType("dashboards.recent", N_("Recently viewed"),
                    N_("The records you opened last."), recent, width=1, default=True,
                    rank=900),
        DashletType("dashboards.modules", N_("Modules"),
                    N_("Every module you may open, by group."), modules, width=2,
                    default=True, rank=950),
        DashletType("dashboards.smart_list", N_("Smart list"),
                    N_("The first records of one of your smart lists, with its KPIs."),
                    standard.smart_list, width=2, rank=960,
                    choices=standard.smart_list_choices, option_label=N_("Smart list")),
        DashletType("dashboards.quick_create", N_("Quick create"),
                    N_("A short form to create a record."), standard.quick_create, width=1,
                    rank=970, choices=standard.quick_create_choices, option_label=N_("Module")),
    ]

