"""Activities × dashboards: the user's open tasks and their next seven days. Registered by
the activities manifest's ``glue`` only while the dashboards plugin is active.

- **My open tasks**: the user's tasks in an open status (the module's
  ``features.activity.open``), soonest due first, ten of them;
- **Upcoming activities**: a strip of the next seven days (in the user's time zone) with
  their planned calls and meetings and the tasks due — one statement per module.

Both read through the record service (the user's access), a fixed number of statements.
"""
from __future__ import annotations

import datetime as dt

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.records import Query
from plugins.dashboards.dashlets import (
    Cell,
    DashletType,
    Day,
    Drawn,
    Table,
    choices,
    date_skeleton,
    record_url,
)

TOP = 10
DAYS = 7


def _open_values(site, module_name: str) -> list[str]:
    spec = site.registry.module(module_name).features.get("activity") or {}
    return list((spec.get("open") or {}).get("values") or [])


def my_open_tasks(site, user, options, fmt) -> Drawn:
    rows = site.records.list("tasks", user, Query(
        filters=[("assigned_user_id", "eq", user.id),
                 ("status", "in", _open_values(site, "tasks"))],
        sort="date_due", limit=TOP, fields=["name", "date_due", "priority", "status"]))
    more = (fmt.gettext("All my tasks"), f"/m/tasks?f_assigned_user_id={user.id}")
    if not rows:
        return Drawn(empty=fmt.gettext("You have no open tasks."), more=more)
    today = dt.datetime.now(fmt.tz).date()
    priorities = dict(choices(site, "tasks", "priority"))
    table = Table(
        (fmt.gettext("Task"), fmt.gettext("Due"), fmt.gettext("Priority")),
        tuple((Cell(r["name"] or "—", record_url("tasks", r["id"])),
               Cell(fmt.gettext("Overdue: %(date)s") % {"date": fmt.date(r["date_due"])},
                    tone="danger") if r["date_due"] and r["date_due"] < today
               else Cell(fmt.date(r["date_due"])),
               Cell(str(priorities.get(r["priority"], r["priority"] or ""))))
              for r in rows))
    return Drawn(table=table, more=more)


def upcoming(site, user, options, fmt) -> Drawn:
    """Today and the six days after, in the user's time zone."""
    today = dt.datetime.now(fmt.tz).date()
    start = dt.datetime.combine(today, dt.time(), fmt.tz)
    end = start + dt.timedelta(days=DAYS)
    by_day: dict[dt.date, list[tuple]] = {today + dt.timedelta(days=i): [] for i in range(DAYS)}
    for module in ("calls", "meetings"):
        if module not in site.registry.modules:
            continue
        for r in site.records.list(module, user, Query(
                filters=[("assigned_user_id", "eq", user.id),
                         ("status", "in", _open_values(site, module)),
                         ("date_start", "gte", start.astimezone(dt.UTC)),
                         ("date_start", "lt", end.astimezone(dt.UTC))],
                sort="date_start", limit=50, fields=["name", "date_start"])):
            when = r["date_start"]
            when = (when if when.tzinfo else when.replace(tzinfo=dt.UTC)).astimezone(fmt.tz)
            if when.date() in by_day:
                by_day[when.date()].append((when.time(), Cell(
                    f"{fmt.time(r['date_start'])} {r['name'] or ''}", record_url(module, r["id"]))))
    if "tasks" in site.registry.modules:
        for r in site.records.list("tasks", user, Query(
                filters=[("assigned_user_id", "eq", user.id),
                         ("status", "in", _open_values(site, "tasks")),
                         ("date_due", "gte", today),
                         ("date_due", "lt", today + dt.timedelta(days=DAYS))],
                sort="date_due", limit=50, fields=["name", "date_due"])):
            by_day[r["date_due"]].append((dt.time.max, Cell(
                fmt.gettext("Due: %(task)s") % {"task": r["name"] or ""},
                record_url("tasks", r["id"]))))
    if not any(by_day.values()):
        return Drawn(empty=fmt.gettext("Nothing planned in the next seven days."))
    days = tuple(Day(date_skeleton(fmt.locale, "EEEd", day),
                     tuple(c for _, c in sorted(items, key=lambda x: x[0])), day == today)
                 for day, items in by_day.items())
    return Drawn(days=days, more=(fmt.gettext("Calendar"), "/calendar/agenda"))


@hookimpl
def crbm_dashlets(site):
    return [
        DashletType("activities.my_open_tasks", N_("My open tasks"),
                    N_("Your tasks not yet completed, soonest due first."), my_open_tasks,
                    width=1, default=True, rank=50),
        DashletType("activities.upcoming", N_("Upcoming activities"),
                    N_("Your calls, meetings and tasks due in the next seven days."),
                    upcoming, width=3, default=True, rank=5),
    ]
