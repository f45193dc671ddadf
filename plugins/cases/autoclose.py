"""Auto-close (implementation guide §7.1.1 "Cases Auto-Close: Close When No Activity"):
the scheduled task ``cases.auto_close`` closes, as "Closed - Expired", every case that has
been in the chosen status (Pending by default; ``pending_since``, stamped by rules.py) for
the configured number of days. Off while that number is 0. With "warn after (days)" set, the
same run first mails the contact of each case that has waited that long a warning that it
will close (mailing.py's job, kind "warning", keyed by case and the day it became pending:
once per wait, however often the task runs).

Set-based and idempotent: one SELECT finds the expired cases (at most ``BATCH`` a run, on
the index of ``pending_since``), one ``update_many`` closes them as the system — so the
save hooks run once for the lot (the assigned users told, the surveys mailed). A second
run for the same time finds none. "Now" is the run's due time, which a test fixes.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from core import jobs
from core.kernel.errors import N_
from core.kernel.hooktypes import ScheduledTask
from core.kernel.records import SYSTEM_USER
from plugins.cases import mailing
from plugins.cases.settings import EXPIRED, case_settings

TASK = "cases.auto_close"
MODULE = "cases"
BATCH = 1000


def expired(site, due: dt.datetime) -> list[str]:
    settings = case_settings(site)
    if settings.auto_close_days <= 0 or MODULE not in site.registry.modules:
        return []
    table = site.records.table(site.registry.module(MODULE))
    limit = due - dt.timedelta(days=settings.auto_close_days)
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.id).where(
            table.c.deleted.is_(False), table.c.status == settings.auto_close_status,
            table.c.pending_since <= limit).order_by(table.c.pending_since, table.c.id)
            .limit(BATCH)).scalars())


def to_warn(site, due: dt.datetime) -> list[dict]:
    """The warning mails due for ``due`` and not sent yet: mailing.py's items."""
    settings = case_settings(site)
    warn, close = settings.auto_close_warn_days, settings.auto_close_days
    if not (0 < warn < close) or MODULE not in site.registry.modules:
        return []
    table = site.records.table(site.registry.module(MODULE))
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.pending_since).where(
            table.c.deleted.is_(False), table.c.status == settings.auto_close_status,
            table.c.contact_id.is_not(None),
            table.c.pending_since <= due - dt.timedelta(days=warn),
            table.c.pending_since > due - dt.timedelta(days=close))
            .order_by(table.c.pending_since, table.c.id).limit(BATCH)).all()
    items = [{"kind": "warning", "case": case_id, "days": close - warn,
              "key": f"warning:{case_id}:{since:%Y%m%d%H%M%S}"} for case_id, since in rows]
    done = mailing.sent(site, [i["key"] for i in items]) if items else set()
    return [i for i in items if i["key"] not in done]


def run(site, due: dt.datetime) -> str | None:
    """Warn, then close the expired cases for ``due``; a line for the Scheduler page."""
    lines = []
    warnings = to_warn(site, due)
    if warnings:
        # keyed: a run before the job ran replaces it (its items are among this run's)
        jobs.enqueue(site, mailing.JOB, {"items": warnings}, key=f"{TASK}:warnings")
        lines.append(f"{len(warnings)} warning(s) queued")
    ids = expired(site, due)
    if ids:
        closed = site.records.update_many(MODULE, ids, {"status": EXPIRED}, SYSTEM_USER)
        lines.append(f"{closed} case(s) closed")
    return ", ".join(lines) or None


def scheduled_tasks() -> list[ScheduledTask]:
    return [ScheduledTask(TASK, N_("Close expired cases"), run, "0 * * * *")]
