"""The Scheduler's "User Activity Reporting" task and what the two User Time Sheet reports
read (implementation guide §7.1.2).

``report(site, today)`` turns raw events (``crbm_activity_events``) into per user per day
rows (``crbm_activity_days``) and per user per module per day rows
(``crbm_activity_modules``) for the days before ``today`` (company calendar) not reported
yet, then deletes the raw events older than the retention. Set-based: two
``INSERT ... SELECT`` over a window query and one ``DELETE``, whatever the number of events,
in one transaction.

The duration rule (the guide's Timeout and Grace Periods): a user's events of a day in
time order; a gap longer than the timeout ends a session at its last event, so the gap is
not counted; every session is credited with the grace period::

    seconds = SUM(gap if gap <= timeout else 0) + grace * (number of sessions)

where ``gap`` is ``at - LAG(at)`` over the user's day (NULL for the day's first event,
which starts a session) — integer epoch seconds, so the same arithmetic on SQLite (≥ 3.25),
PostgreSQL and MariaDB (≥ 10.2). A session that runs past midnight counts in each day.

Figures: Actions, the events (requests, duplicates within a minute collapsed); Read, the
distinct records read (``records`` level only); Written, the distinct records written, plus
each write that named no record — so below the ``records`` level it is the number of write
actions (the guide: "Login Duration ... enables values for Written").

Which days: those from the last day already reported (again: a worker's last batch may
have reached it after the run) to yesterday. The rows of those days are deleted and made
again in the same transaction, keyed on (user, day[, module]), so running twice changes
nothing the second time. The timeout and grace in force at the run apply.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from core.apps.activity_tracking import tables
from core.apps.activity_tracking.settings import activity_settings
from core.kernel.errors import N_

TASK = "activity.report"
SCHEDULE = "20 0 * * *"  # daily, just after midnight (the guide's default is weekly)
MAX_DAYS = 366  # a report's range


def report(site, today: dt.date) -> dict:
    """Aggregate the days before ``today`` not reported yet; prune; what was done."""
    settings = activity_settings(site)
    t = site.tables.tables
    events, days, modules = t[tables.EVENTS], t[tables.DAYS], t[tables.MODULES]
    timeout, grace = settings.timeout_minutes * 60, settings.grace_minutes * 60
    cutoff = today - dt.timedelta(days=settings.keep_days)
    with site.engine.begin() as conn:
        since = conn.execute(sa.select(sa.func.max(days.c.day))).scalar()
        scope = [events.c.day < today]
        if since is not None:
            scope.append(events.c.day >= since)
        # only days that have events: a day pruned since keeps its rows
        reported = sa.select(events.c.day).where(*scope).distinct()
        for table in (days, modules):
            conn.execute(table.delete().where(table.c.day.in_(reported)))
        conn.execute(days.insert().from_select(
            [c.name for c in days.c], _per_day(events, scope, timeout, grace)))
        # (counted: an INSERT ... SELECT's rowcount is -1 with some drivers)
        day_rows = conn.execute(sa.select(sa.func.count()).select_from(days)
                                .where(days.c.day.in_(reported))).scalar()
        conn.execute(modules.insert().from_select(
            [c.name for c in modules.c], _per_module(events, scope)))
        pruned = conn.execute(events.delete().where(events.c.day < cutoff)).rowcount
    return {"since": since, "rows": day_rows, "pruned": pruned}


def _gaps(events: sa.Table, scope: list):
    gap = events.c.at - sa.func.lag(events.c.at).over(
        partition_by=(events.c.user_id, events.c.day), order_by=events.c.at)
    return sa.select(events.c.user_id, events.c.day, events.c.at, gap.label("gap")) \
        .where(*scope).subquery("gaps")


def _per_day(events: sa.Table, scope: list, timeout: int, grace: int):
    g = _gaps(events, scope)
    kept = sa.func.sum(sa.case((g.c.gap <= timeout, g.c.gap), else_=0))
    sessions = sa.func.sum(sa.case((sa.or_(g.c.gap.is_(None), g.c.gap > timeout), 1),
                                   else_=0))
    times = sa.select(g.c.user_id, g.c.day, sa.func.min(g.c.at).label("first_at"),
                      sa.func.max(g.c.at).label("last_at"),
                      (kept + sessions * grace).label("seconds")) \
        .group_by(g.c.user_id, g.c.day).subquery("times")
    counts = _counts(events, scope, (events.c.user_id, events.c.day)).subquery("counts")
    return sa.select(times.c.user_id, times.c.day, times.c.first_at, times.c.last_at,
                     sa.cast(times.c.seconds, sa.Integer), counts.c.actions,
                     counts.c.records_read, counts.c.records_written) \
        .join_from(times, counts, sa.and_(counts.c.user_id == times.c.user_id,
                                          counts.c.day == times.c.day))


def _per_module(events: sa.Table, scope: list):
    return _counts(events, [*scope, events.c.module != ""],
                   (events.c.user_id, events.c.day, events.c.module))


def _counts(events: sa.Table, scope: list, keys: tuple):
    named = events.c.record_id != ""
    record = events.c.module + ":" + events.c.record_id

    def distinct(kind):
        return sa.func.count(sa.distinct(sa.case(
            (sa.and_(events.c.kind == kind, named), record))))
    unnamed_writes = sa.func.sum(sa.case((sa.and_(events.c.kind == "w", ~named), 1),
                                         else_=0))
    return sa.select(*keys, sa.func.count().label("actions"),
                     distinct("r").label("records_read"),
                     sa.cast(distinct("w") + unnamed_writes, sa.Integer)
                     .label("records_written")) \
        .where(*scope).group_by(*keys)


def run_task(site, due: dt.datetime) -> str:
    from core.apps.calendar.settings import calendar_settings
    done = report(site, calendar_settings(site).today(due))
    return f"{done['rows']} user days reported, {done['pruned']} old events deleted"


def tasks():
    from core.kernel.hooktypes import ScheduledTask
    return [ScheduledTask(TASK, N_("User Activity Reporting"), run_task, SCHEDULE)]


# -- what the reports read -----------------------------------------------------------------

@dataclass(frozen=True)
class Filters:
    start: dt.date
    end: dt.date  # inclusive
    user_id: str | None = None


def reported_through(site) -> dt.date | None:
    """The last day the task reported (the reports are complete up to it)."""
    days = site.tables.tables[tables.DAYS]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.max(days.c.day))).scalar()


def _users(site):
    return site.tables.tables["crbm_users"]


def day_rows(site, filters: Filters) -> list:
    """Per user per day, ordered by user then day (one query)."""
    days, users = site.tables.tables[tables.DAYS], _users(site)
    query = sa.select(days, users.c.username, users.c.display_name) \
        .join_from(days, users, users.c.id == days.c.user_id) \
        .where(days.c.day >= filters.start, days.c.day <= filters.end)
    if filters.user_id:
        query = query.where(days.c.user_id == filters.user_id)
    with site.engine.connect() as conn:
        return list(conn.execute(query.order_by(users.c.username, days.c.day)))


def module_rows(site, filters: Filters) -> list:
    """Per user per module per day, ordered by user, day, module (one query)."""
    modules, users = site.tables.tables[tables.MODULES], _users(site)
    query = sa.select(modules, users.c.username, users.c.display_name) \
        .join_from(modules, users, users.c.id == modules.c.user_id) \
        .where(modules.c.day >= filters.start, modules.c.day <= filters.end)
    if filters.user_id:
        query = query.where(modules.c.user_id == filters.user_id)
    with site.engine.connect() as conn:
        return list(conn.execute(query.order_by(users.c.username, modules.c.day,
                                                modules.c.module)))


def hours_minutes(seconds: int) -> str:
    """A duration as h:mm (minutes rounded down: the figure a time sheet shows)."""
    minutes = max(int(seconds), 0) // 60
    return f"{minutes // 60}:{minutes % 60:02d}"
