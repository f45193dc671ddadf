"""Cases × dashboards: the user's open cases. Registered by the cases manifest's ``glue``
only while the dashboards plugin is active.

**My open cases**: the cases assigned to the user that are not closed (New, Assigned,
Active, Pending), highest priority first, ten of them — one read through the record
service.
"""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.records import Query
from plugins.dashboards.dashlets import Cell, DashletType, Drawn, Table, choices, record_url

MODULE = "cases"
OPEN = ("new", "assigned", "in_progress", "pending")
TOP = 10


def my_open_cases(site, user, options, fmt) -> Drawn:
    statuses = [v for v, _ in choices(site, MODULE, "status") if v in OPEN]
    rows = site.records.list(MODULE, user, Query(
        filters=[("assigned_user_id", "eq", user.id), ("status", "in", statuses)],
        sort="priority,-modified_at", limit=TOP,
        fields=["number", "name", "priority", "status"]))
    more = (fmt.gettext("All my cases"), f"/m/{MODULE}?f_assigned_user_id={user.id}")
    if not rows:
        return Drawn(empty=fmt.gettext("You have no open cases."), more=more)
    priorities = dict(choices(site, MODULE, "priority"))
    status = dict(choices(site, MODULE, "status"))
    table = Table(
        (fmt.gettext("Number"), fmt.gettext("Subject"), fmt.gettext("Priority"),
         fmt.gettext("Status")),
        tuple((Cell(str(r["number"] or ""), record_url(MODULE, r["id"])),
               Cell(r["name"] or "—", record_url(MODULE, r["id"])),
               Cell(str(priorities.get(r["priority"], r["priority"] or ""))),
               Cell(str(status.get(r["status"], r["status"] or "")))) for r in rows))
    return Drawn(table=table, more=more)


@hookimpl
def crbm_dashlets(site):
    return [DashletType("cases.my_open", N_("My open cases"),
                        N_("Your cases not yet closed, highest priority first."),
                        my_open_cases, width=1, default=True, rank=60)]
