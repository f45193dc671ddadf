"""Auto-close (implementation guide §7.1.1 "Cases Auto-Close: Close When No Activity"):
the scheduled task ``cases.auto_close`` closes, as "Closed - Expired", every case that has
been in the chosen status (Pending by default; ``pending_since``, stamped by rules.py) for
the configured number of days. Off while that number is 0.

Set-based and idempotent: one SELECT finds the expired cases (at most ``BATCH`` a run, on
the index of ``pending_since``), one ``update_many`` closes them as the system — so the
save hooks run once for the lot (the assigned users told, the surveys mailed). A second
run for the same time finds none. "Now" is the run's due time, which a test fixes.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from core.kernel.errors import N_
from core.kernel.hooktypes import ScheduledTask
from core.kernel.records import SYSTEM_USER
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


def run(site, due: dt.datetime) -> str | None:
    """Close the expired cases for ``due``; a line for the Scheduler page."""
    ids = expired(site, due)
    if not ids:
        return None
    closed = site.records.update_many(MODULE, ids, {"status": EXPIRED}, SYSTEM_USER)
    return f"{closed} case(s) closed"


def scheduled_tasks() -> list[ScheduledTask]:
    return [ScheduledTask(TASK, N_("Close expired cases"), run, "0 * * * *")]
