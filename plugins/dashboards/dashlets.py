"""What a dashlet is, what it draws, and the helpers the standard dashlets share.

A *dashlet type* (``DashletType``, returned by the hook ``crbm_dashlets``: hookspecs.py) is
a kind of panel a user may put on a dashboard: "my pipeline by stage", "my open tasks", a
saved report. Its ``render(site, user, options, fmt)`` returns a ``Drawn``:

- a ``Table`` (headers, rows of ``Cell``: text, an optional link, numeric or not);
- and/or a chart: an Apache ECharts option built by the site's one chart code
  (``core.web.charts``, drawn by its static/charts.js; ``chart`` here asks it for the
  dashlet's ``panel`` look: bar, horizontal bar, stacked bar, line, pie, donut, funnel),
  every data item carrying ``url``, the list of exactly the records behind that segment.
  ``chart`` returns the table of the same figures with it: the page always draws that
  table under the chart (the accessible alternative, and what prints). ``Segment``,
  ``whole_currency`` and ``date_skeleton`` are core.web.charts', importable from here;
- or ``days`` (a strip of the next days' items), ``links`` (groups of links), ``empty``
  (nothing to show, said so), ``error`` (a report that cannot run, said why);
- ``figures`` (a smart list's KPIs), ``form`` (a ``QuickForm``: a quick-create form) and
  ``title`` (the heading, when the dashlet's option names it: "Smart list: Hot leads").

Reading: ``grouped(site, user, module, filters)`` is the list view's own statement for
``user`` (the record service's ``select``: access predicate, deleted rows, filters) with
its columns left for the caller to replace by aggregates — one ``GROUP BY``, as the
kanban board's totals (core/apps/board) — so a figure never counts a record the reader
could not find in the list. Amounts are summed in the site's default currency
(``money``: another currency converted at the pricing plugin's rate when that plugin is
active, as the forecasts do).

Drill-down: ``list_url`` links to the module's own list when its layout's ``filters``
give exactly the segment's records (``/m/leads?f_status=new``); otherwise ``drill_url``
names the dashboards' drill-down page (``/dashboards/drill/<type>/<key>``), which asks
the type's ``drill(site, user, key)`` for the module and filters and lists those records
through the record service.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote, urlencode

import sqlalchemy as sa

from core.apps.field_types.types import default_currency
from core.kernel.records import Query
from core.web import charts

# the shared chart code's names, where the dashlets have always found them
from core.web.charts import PALETTE, Segment, date_skeleton, whole_currency  # noqa: F401

NONE_KEY = "_none"  # a drill key for "no value"
WIDTHS = (1, 2, 3)  # grid columns a dashlet spans (of 3 on a desktop; a phone has 1)


@dataclass(frozen=True)
class Cell:
    text: str
    url: str | None = None
    num: bool = False  # right-aligned, tabular figures
    swatch: int | None = None  # the chart colour (PALETTE index) of this row's segment
    tone: str | None = None  # "danger": overdue, late


@dataclass(frozen=True)
class Table:
    headers: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[bool, ...] = ()  # per column: a figure (right-aligned header)
    narrow_hidden: tuple[int, ...] = ()  # columns left out on a phone's width


@dataclass(frozen=True)
class Day:
    label: str
    items: tuple[Cell, ...]
    today: bool = False


@dataclass(frozen=True)
class Drawn:
    table: Table | None = None
    chart: dict | None = None
    days: tuple[Day, ...] | None = None
    links: tuple[tuple[str, tuple[Cell, ...]], ...] | None = None
    empty: str | None = None  # said instead of an empty table or chart
    error: str | None = None
    more: tuple[str, str] | None = None  # (label, url): "All my open tasks"
    title: str | None = None  # the heading instead of the type's label ("Smart list: Hot leads")
    figures: tuple[tuple[str, str], ...] | None = None  # (label, text): a smart list's KPIs
    form: QuickForm | None = None  # a quick-create form (standard.py)


@dataclass(frozen=True)
class QuickForm:
    """A record form the page draws with the record forms' own inputs, posted to the
    module's create page (``/m/<module>/new``, its quick layout): the one save path."""

    module: str
    fields: tuple[str, ...]  # the quick layout's inputs, as the create page reads them
    initial: dict = field(default_factory=dict)  # the values a blank create form starts with


@dataclass(frozen=True)
class Drill:
    """The records behind a chart segment: a module and list filters (``Query.filters``)."""

    module: str
    filters: tuple
    title: str


@dataclass(frozen=True)
class DashletType:
    name: str  # "<plugin>.<what>", stored in dashboards
    label: str  # N_
    description: str  # N_
    render: Callable[[Any, Any, dict, Any], Drawn]  # (site, user, options, fmt)
    width: int = 1  # the default width in grid columns (WIDTHS)
    default: bool = False  # in the standard dashboard
    rank: int = 100  # its place in the standard dashboard
    drill: Callable[[Any, Any, str], Drill | None] | None = None  # (site, user, key)
    choices: Callable[[Any, Any], list[tuple[str, str]]] | None = None  # its option's values
    option_label: str | None = None  # N_: what the option is ("Report")


# -- reading -------------------------------------------------------------------------------

def grouped(site, user, module_name: str, filters: Sequence = ()):
    """(SELECT, table): the list's statement for ``user`` and ``filters`` (access predicate,
    deleted rows), unordered, its columns to be replaced by the caller's aggregates."""
    module = site.registry.module(module_name)
    stmt, table = site.records.select(module, user, Query(filters=list(filters), limit=None,
                                                          fields=["id"]), "list")
    return stmt.order_by(None), table


def rows_of(site, stmt) -> list:
    with site.engine.connect() as conn:
        return conn.execute(stmt).all()


def money(site, table: sa.Table, name: str):
    """``name`` (a currency field) in the site's default currency: another currency at the
    pricing plugin's rate (units per default unit) when that plugin is active."""
    amount = sa.func.coalesce(table.c[name], 0)
    currencies = site.registry.modules.get("currencies")
    code = f"{name}_currency"
    if currencies is None or "exchange_rate" not in currencies.fields or code not in table.c:
        return amount
    rates = site.tables.tables[currencies.table]
    rate = sa.select(sa.func.max(rates.c.exchange_rate)).where(
        rates.c.iso_code == table.c[code], rates.c.deleted.is_(False),
        rates.c.exchange_rate > 0).scalar_subquery()
    return sa.case((sa.or_(table.c[code].is_(None), table.c[code] == default_currency(site)),
                    amount), else_=amount / sa.func.coalesce(rate, 1))


def decimal(value) -> Decimal:
    return value if isinstance(value, Decimal) else Decimal(str(value or 0))


def choices(site, module_name: str, field_name: str) -> list[tuple[str, str]]:
    module = site.registry.module(module_name)
    return list(site.registry.choices(module.fields[field_name]))


# -- links ---------------------------------------------------------------------------------

def list_url(site, module_name: str, values: dict[str, Any]) -> str | None:
    """The module's list filtered to exactly ``values`` (field -> value), when its layout's
    filters do it with equality; else None (use ``drill_url``)."""
    module = site.registry.modules.get(module_name)
    if module is None:
        return None
    filterable = {f.name for n in module.layouts.get("filters", []) for f in module.expand(n)}
    params = {}
    for name, value in values.items():
        f = module.fields.get(name)
        if f is None or name not in filterable or value is None or value == "":
            return None
        op, typed = f.type.list_filter(str(value))
        if op != "eq" or str(typed) != str(value):
            return None
        params[f"f_{name}"] = str(value)
    return f"/m/{module_name}?{urlencode(params)}"


def drill_url(type_name: str, key: str | None) -> str:
    key = NONE_KEY if key is None or key == "" else str(key)
    return f"/dashboards/drill/{quote(type_name, safe='')}/{quote(key, safe='')}"


def record_url(module_name: str, record_id: str) -> str:
    return f"/m/{module_name}/{quote(str(record_id), safe='')}"


def key_value(key: str) -> str | None:
    return None if key == NONE_KEY else key


# -- charts --------------------------------------------------------------------------------

def chart(kind: str, segments: Sequence[Segment], series: Sequence[str], fmt, *,
          key_header: str, currency: str | None = None, count_header: str | None = None,
          series_numeric: bool = True, skip_empty: bool = False) -> tuple[dict, Table]:
    """A dashlet's chart: ``core.web.charts.option`` of ``segments`` in the ``panel`` look
    (``kind``: bar, hbar, stacked_bar, line, pie, donut, funnel), and the table of the same
    figures, which the page draws under it (the accessible alternative, and what prints)."""
    option = charts.option(kind, segments, series, fmt, currency=currency, look="panel")
    headers = [key_header, *([count_header] if count_header else []), *series]
    numeric = (False, *([True] if count_header else []), *([series_numeric] * len(series)))
    rows = []
    for i, s in enumerate(segments):
        if skip_empty and not s.count and not any(s.values):
            continue
        # (the table under a pie or funnel is its legend: the same colours, every label whole)
        cells = [Cell(s.label, s.url, swatch=i % len(PALETTE) if kind in charts.ROUND
                      else None)]
        if count_header:
            cells.append(Cell(fmt.number(s.count or 0), s.url, num=True))
        for v in s.values:
            text = whole_currency(fmt, v, currency) if currency else fmt.number(v or 0)
            cells.append(Cell(text, num=True))
        rows.append(tuple(cells))
    # on a phone, two figures per row and no count: the table stays within the screen
    narrow = (1,) if count_header and len(series) > 1 else ()
    return option, Table(tuple(headers), tuple(rows), numeric, narrow)


def plain(drawn: Drawn) -> dict:
    """``drawn`` as plain dicts and lists: what a theme's sandboxed templates may read."""
    from dataclasses import asdict

    return asdict(drawn)


@dataclass
class Registry:
    """The dashlet types of the active plugins, by name, in the standard dashboard's order."""

    types: dict[str, DashletType] = field(default_factory=dict)

    @classmethod
    def of(cls, site) -> Registry:
        found: dict[str, DashletType] = {}
        for answer in site.hook.crbm_dashlets(site=site):
            for t in answer or ():
                found[t.name] = t
        return cls(dict(sorted(found.items(), key=lambda kv: (kv[1].rank, kv[0]))))

    def standard(self) -> list[DashletType]:
        return [t for t in self.types.values() if t.default]
