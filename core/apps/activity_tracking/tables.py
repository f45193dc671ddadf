"""User activity tracking's tables (``crbm_tables``).

- ``crbm_activity_events``: the raw events the recorder writes, at most one per user,
  minute, kind, module and record (the primary key: a second one in the same minute, from
  this worker's next batch or another worker's, keeps the earlier second). ``at`` is epoch
  seconds, so the reporting task's arithmetic (gaps, durations) is integer subtraction on
  every database; ``day`` is the company-calendar day ``at`` fell on, computed when the
  event was written (SQL has no portable time-zone conversion). ``kind``: ``r`` read (a
  GET answered 2xx/3xx), ``w`` wrote (POST/PUT/PATCH/DELETE answered 2xx/3xx), ``o``
  anything else (a refused form, a 404): activity for the time clock, neither read nor
  written. ``module`` and ``record_id`` are ``""`` below the levels that store them (not
  NULL: NULLs never collide in a unique key, and these must).
- ``crbm_activity_days``: per user per day, made by the reporting task (``timesheet``).
- ``crbm_activity_modules``: per user per module per day, made by the same task.

Indexes: the task reads events by day (``ix_crbm_activity_events_day``: the window's
partition and order come along); the reports read the daily rows by day.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import ID

EVENTS = "crbm_activity_events"
DAYS = "crbm_activity_days"
MODULES = "crbm_activity_modules"
MODULE_LENGTH = 60


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        EVENTS, metadata,
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("kind", sa.String(1), primary_key=True),
        sa.Column("module", sa.String(MODULE_LENGTH), primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        sa.Column("at", sa.BigInteger, nullable=False),  # epoch seconds
        sa.Column("day", sa.Date, nullable=False),  # the company calendar's
        sa.Index("ix_crbm_activity_events_day", "day", "user_id", "at"),
    )
    sa.Table(
        DAYS, metadata,
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("first_at", sa.BigInteger, nullable=False),
        sa.Column("last_at", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Integer, nullable=False),  # the duration (module docstring)
        *_counts(),
        sa.Index("ix_crbm_activity_days_day", "day"),
    )
    sa.Table(
        MODULES, metadata,
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("module", sa.String(MODULE_LENGTH), primary_key=True),
        *_counts(),
        sa.Index("ix_crbm_activity_modules_day", "day"),
    )


def _counts() -> list[sa.Column]:
    return [sa.Column(name, sa.Integer, nullable=False)
            for name in ("actions", "records_read", "records_written")]
