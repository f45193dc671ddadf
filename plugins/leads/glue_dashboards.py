"""Leads × dashboards: leads by status. Registered by the leads manifest's ``glue`` only
while the dashboards plugin is active.

**Leads by status**: every lead the user may see, counted per status (one GROUP BY under
their access predicate), as a bar chart; a bar opens the leads list filtered by that status
(a filter of the list's layout), leads without a status the drill-down page.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from plugins.dashboards.dashlets import (
    DashletType,
    Drawn,
    Drill,
    Segment,
    chart,
    choices,
    drill_url,
    grouped,
    key_value,
    list_url,
    rows_of,
)

MODULE = "leads"
BY_STATUS = "leads.by_status"


def by_status(site, user, options, fmt) -> Drawn:
    stmt, t = grouped(site, user, MODULE)
    counts = {r.status: r.n for r in rows_of(site, stmt.with_only_columns(
        t.c.status, sa.func.count().label("n")).group_by(t.c.status))}
    if not counts:
        return Drawn(empty=fmt.gettext("There are no leads."))
    segments = []
    for value, label in [*choices(site, MODULE, "status"), (None, fmt.gettext("(none)"))]:
        if value in counts:
            url = list_url(site, MODULE, {"status": value}) or drill_url(BY_STATUS, value)
            segments.append(Segment(str(label), (counts[value],), url, counts[value]))
    option, table = chart("hbar", segments, [fmt.gettext("Leads")], fmt,
                          key_header=fmt.gettext("Status"))
    return Drawn(table=table, chart=option)


def drill_by_status(site, user, key) -> Drill | None:
    from core.kernel.i18n import active

    value = key_value(key)
    labels = dict(choices(site, MODULE, "status"))
    if value is not None and value not in labels:
        return None
    if value is None:
        return Drill(MODULE, (("status", "empty", None),), active().gettext("(none)"))
    return Drill(MODULE, (("status", "eq", value),), labels[value])


@hookimpl
def crbm_dashlets(site):
    return [DashletType(BY_STATUS, N_("Leads by status"),
                        N_("How many leads are at each status."), by_status, width=1,
                        default=True, rank=70, drill=drill_by_status)]
