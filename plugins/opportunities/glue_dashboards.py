"""Opportunities × dashboards: the pipeline's dashlets. Registered by the opportunities
manifest's ``glue`` only while the dashboards plugin is active.

- **My pipeline by stage**: the user's open opportunities per stage, face value and
  weighted by probability (one GROUP BY); a stage's bars open the list filtered by stage
  and assignee (both among the list's filters);
- **Pipeline by month of close date**: the open opportunities the user may see, closing
  in this month and the eleven after it (one GROUP BY over a CASE of month ranges, the same
  on every database);
- **Pipeline by lead source**: the same open opportunities per lead source (a donut);
- **Top open opportunities**: the ten largest open ones the user may see.

"Open" is every stage but Closed Won and Closed Lost. Amounts are in the site's default
currency (dashlets.money). The month and source segments open the dashboards' drill-down
page: the list cannot filter a range of close dates or a lead source.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from babel import dates
from dateutil.relativedelta import relativedelta

from core.apps.calendar.settings import calendar_settings
from core.apps.field_types.types import default_currency
from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.records import Query
from plugins.dashboards.dashlets import (
    Cell,
    DashletType,
    Drawn,
    Drill,
    Segment,
    Table,
    chart,
    choices,
    date_skeleton,
    decimal,
    drill_url,
    grouped,
    key_value,
    list_url,
    money,
    record_url,
    rows_of,
    whole_currency,
)

MODULE = "opportunities"
CLOSED = ("closed_won", "closed_lost")
MONTHS = 12
TOP = 10
BY_STAGE, BY_MONTH, BY_SOURCE, TOP_OPEN = (
    "opportunities.pipeline_by_stage", "opportunities.pipeline_by_month",
    "opportunities.pipeline_by_source", "opportunities.top_open")


def open_stages(site) -> list[str]:
    return [v for v, _ in choices(site, MODULE, "sales_stage") if v not in CLOSED]


def _open(site) -> tuple:
    return ("sales_stage", "in", open_stages(site))


# -- my pipeline by stage ----------------------------------------------------------------------

def by_stage(site, user, options, fmt) -> Drawn:
    stmt, t = grouped(site, user, MODULE, [("assigned_user_id", "eq", user.id), _open(site)])
    amount = money(site, t, "amount")
    weighted = amount * sa.func.coalesce(t.c.probability, 0) / 100
    rows = {r.sales_stage: r for r in rows_of(site, stmt.with_only_columns(
        t.c.sales_stage, sa.func.count().label("n"), sa.func.sum(amount).label("face"),
        sa.func.sum(weighted).label("weighted")).group_by(t.c.sales_stage))}
    if not rows:
        return Drawn(empty=fmt.gettext("You have no open opportunities."))
    segments = []
    for value, label in choices(site, MODULE, "sales_stage"):
        r = rows.get(value)
        if r is None:
            continue
        url = list_url(site, MODULE, {"sales_stage": value, "assigned_user_id": user.id}) \
            or drill_url(BY_STAGE, value)
        segments.append(Segment(label, (decimal(r.face), decimal(r.weighted)), url, r.n))
    option, table = chart("hbar", segments, [fmt.gettext("Amount"), fmt.gettext("Weighted")],
                          fmt, key_header=fmt.gettext("Stage"), currency=default_currency(site),
                          count_header=fmt.gettext("Deals"))
    return Drawn(table=table, chart=option)


def drill_by_stage(site, user, key) -> Drill | None:
    stages = dict(choices(site, MODULE, "sales_stage"))
    if key not in stages or key in CLOSED:
        return None
    return Drill(MODULE, (("assigned_user_id", "eq", user.id), ("sales_stage", "eq", key)),
                 stages[key])


# -- pipeline by month of close date ----------------------------------------------------------

def _months(site) -> list[dt.date]:
    today = calendar_settings(site).today()
    first = today.replace(day=1)
    return [first + relativedelta(months=i) for i in range(MONTHS + 1)]


def by_month(site, user, options, fmt) -> Drawn:
    starts = _months(site)
    stmt, t = grouped(site, user, MODULE, [_open(site), ("date_closed", "gte", starts[0]),
                                           ("date_closed", "lt", starts[-1])])
    bucket = sa.case(*((t.c.date_closed < starts[i + 1], i) for i in range(MONTHS)))
    amount = money(site, t, "amount")
    rows = {int(r.bucket): r for r in rows_of(site, stmt.with_only_columns(
        bucket.label("bucket"), sa.func.count().label("n"), sa.func.sum(amount).label("face"))
        .group_by(bucket))}
    if not rows:
        return Drawn(empty=fmt.gettext("No open opportunities close in the next twelve months."))
    segments = []
    for i in range(MONTHS):
        r = rows.get(i)
        label = date_skeleton(fmt.locale, "yMMM", starts[i])
        segments.append(Segment(label, (decimal(r.face) if r else 0,),
                                drill_url(BY_MONTH, starts[i].strftime("%Y-%m")),
                                r.n if r else 0))
    option, table = chart("bar", segments, [fmt.gettext("Amount")], fmt,
                          key_header=fmt.gettext("Month"), currency=default_currency(site),
                          count_header=fmt.gettext("Deals"), skip_empty=True)
    return Drawn(table=table, chart=option)


def drill_by_month(site, user, key) -> Drill | None:
    try:
        first = dt.datetime.strptime(key, "%Y-%m").date()
    except ValueError:
        return None
    after = first + relativedelta(months=1)
    from core.kernel.i18n import active, language

    title = active().gettext("Open opportunities closing in %(month)s") % {
        "month": dates.format_skeleton("yMMMM", first, locale=language())}
    return Drill(MODULE, (_open(site), ("date_closed", "gte", first),
                          ("date_closed", "lt", after)), title)


# -- pipeline by lead source -------------------------------------------------------------------

def by_source(site, user, options, fmt) -> Drawn:
    stmt, t = grouped(site, user, MODULE, [_open(site)])
    amount = money(site, t, "amount")
    rows = {r.lead_source: r for r in rows_of(site, stmt.with_only_columns(
        t.c.lead_source, sa.func.count().label("n"), sa.func.sum(amount).label("face"))
        .group_by(t.c.lead_source))}
    if not rows:
        return Drawn(empty=fmt.gettext("There are no open opportunities."))
    labels = dict(choices(site, MODULE, "lead_source"))
    order = list(labels)
    segments = []
    for value in sorted(rows, key=lambda v: (v is None, order.index(v) if v in labels else 0,
                                             str(v))):
        r = rows[value]
        label = labels.get(value, value) if value is not None else fmt.gettext("(none)")
        segments.append(Segment(str(label), (decimal(r.face),), drill_url(BY_SOURCE, value),
                                r.n))
    option, table = chart("donut", segments, [fmt.gettext("Amount")], fmt,
                          key_header=fmt.gettext("Lead source"),
                          currency=default_currency(site), count_header=fmt.gettext("Deals"))
    return Drawn(table=table, chart=option)


def drill_by_source(site, user, key) -> Drill | None:
    from core.kernel.i18n import active

    value = key_value(key)
    labels = dict(choices(site, MODULE, "lead_source"))
    if value is not None and value not in labels:
        return None
    source = ("lead_source", "empty", None) if value is None else ("lead_source", "eq", value)
    name = labels.get(value) if value is not None else active().gettext("(none)")
    return Drill(MODULE, (_open(site), source),
                 active().gettext("Open opportunities from: %(source)s") % {"source": name})


# -- top open opportunities ------------------------------------------------------------------

def top_open(site, user, options, fmt) -> Drawn:
    rows = site.records.list(MODULE, user, Query(
        filters=[_open(site)], sort="-amount", limit=TOP, labels=True,
        fields=["name", "account_id", "sales_stage", "amount", "amount_currency",
                "date_closed"]))
    if not rows:
        return Drawn(empty=fmt.gettext("There are no open opportunities."))
    stages = dict(choices(site, MODULE, "sales_stage"))
    table = Table(
        (fmt.gettext("Opportunity"), fmt.gettext("Account"), fmt.gettext("Stage"),
         fmt.gettext("Amount"), fmt.gettext("Close date")),
        tuple((Cell(r["name"] or "—", record_url(MODULE, r["id"])),
               Cell(r.get("account_id__label") or "",
                    record_url("accounts", r["account_id"]) if r.get("account_id") else None),
               Cell(str(stages.get(r["sales_stage"], r["sales_stage"] or ""))),
               Cell(whole_currency(fmt, r["amount"], r.get("amount_currency")
                                   or default_currency(site)), num=True),
               Cell(fmt.date(r["date_closed"]), num=True)) for r in rows),
        (False, False, False, True, True), narrow_hidden=(1, 4))
    return Drawn(table=table, more=(fmt.gettext("All opportunities"), f"/m/{MODULE}"))


@hookimpl
def crbm_dashlets(site):
    if MODULE not in site.registry.modules:
        return []
    return [
        DashletType(BY_STAGE, N_("My pipeline by stage"),
                    N_("Your open opportunities per sales stage: amount and amount weighted "
                       "by probability."), by_stage, width=2, default=True, rank=10,
                    drill=drill_by_stage),
        DashletType(BY_MONTH, N_("Pipeline by month"),
                    N_("Open opportunities by month of expected close date, the next twelve "
                       "months."), by_month, width=1, default=True, rank=20,
                    drill=drill_by_month),
        DashletType(BY_SOURCE, N_("Pipeline by lead source"),
                    N_("Open opportunities' amount per lead source."), by_source, width=1,
                    default=True, rank=30, drill=drill_by_source),
        DashletType(TOP_OPEN, N_("Top open opportunities"),
                    N_("The ten largest open opportunities."), top_open, width=2,
                    default=True, rank=40),
    ]
