"""Saved runs of a report: the file a run made, kept so it can be downloaded again — every
scheduled run (scheduling.py) and any run a user saves by hand ("Save a run now").

The table ``reports_runs`` (``crbm_tables``): one row per run — the report, who it ran as,
``trigger`` (``manual`` or ``scheduled``), the format, the file's bytes and size, the rows
it held, when it ran. A scheduled run also has ``due`` and a unique ``run_key``
(``scheduled:<report id>:<due>``): the claim that makes the mailing job idempotent — a
retried or redelivered job for the same report and due time finds the row and sends nothing
again (scheduling.py states the states: pending → sending → sent, or refused / failed). A
manual run has no key (NULLs never collide in a unique index, on any of the databases).

Who sees them: a report's runs are listed and downloaded by whoever may view the report
(the pages read the report with the record service first, schedule_web.py); the file is
what the run's user was allowed to see when it ran, as a mailed copy is.

Kept ``runs_kept_days`` days (the site setting ``reports``: ``{"runs_kept_days": 30}``;
``crbm settings set reports.runs_kept_days 90``); the daily task ``reports.prune_runs``
deletes older ones with one DELETE. A run still being mailed is never pruned.

Files are kept in the database (LONGBLOB on MariaDB: a report's workbook easily passes
BLOB's 64 KB), so a backup holds them and no file store is needed; a report's export is
bounded by the rows the site holds, and old runs go after ``runs_kept_days``.
"""
from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import mysql

from core.kernel.database import ID
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.fields import UTCDateTime
from core.kernel.records import now

TABLE = "reports_runs"
SETTING = "reports"
DEFAULT_KEPT_DAYS = 30
MAX_KEPT_DAYS = 3650
FORMATS = ("xlsx", "csv", "pdf")
MEDIA_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
FILE = sa.LargeBinary().with_variant(mysql.LONGBLOB(), "mysql", "mariadb")
LISTED = 200  # runs a report's page lists, newest first


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        TABLE, metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("report_id", ID, nullable=False),
        sa.Column("run_key", sa.String(120), unique=True),  # scheduled: the (report, due) claim
        sa.Column("trigger", sa.String(20), nullable=False),  # manual | scheduled
        sa.Column("due", UTCDateTime()),
        # scheduled: pending -> sending -> sent | refused | failed; manual: sent
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, default=0),
        sa.Column("taken_at", UTCDateTime()),
        sa.Column("ran_at", UTCDateTime(), nullable=False),
        sa.Column("user_id", ID),  # whose access made the figures
        sa.Column("format", sa.String(10), nullable=False),
        sa.Column("filename", sa.String(200)),
        sa.Column("content", FILE),
        sa.Column("size", sa.Integer, nullable=False, default=0),
        sa.Column("row_count", sa.Integer),
        sa.Column("message", sa.Text),  # why a scheduled run was refused or failed
        sa.Index("ix_reports_runs_report", "report_id", "ran_at"),
        sa.Index("ix_reports_runs_ran_at", "ran_at"),
    )


def table(site) -> sa.Table:
    return site.tables.tables[TABLE]


def kept_days(site) -> int:
    """Days a saved run is kept (the setting ``reports.runs_kept_days``; never raises: an
    unusable value reads as the default)."""
    stored = site.settings.get(SETTING)
    days = stored.get("runs_kept_days") if isinstance(stored, dict) else None
    ok = isinstance(days, int) and not isinstance(days, bool) and 1 <= days <= MAX_KEPT_DAYS
    return days if ok else DEFAULT_KEPT_DAYS


def filename(report: dict, fmt: str, moment: dt.datetime) -> str:
    """"Pipeline by stage 2026-03-02.xlsx": the report's name, safe in a header and on any
    file system."""
    name = "".join(c if c.isalnum() or c in " -_.()" else "_" for c in
                   str(report.get("name") or "report"))[:120].strip() or "report"
    return f"{name} {moment:%Y-%m-%d}.{fmt}"


@dataclass(frozen=True)
class Made:
    """A report made into a file."""

    content: bytes
    rows: int
    format: str


def save_manual(site, report: dict, user, made: Made) -> str:
    """Keep a run ``user`` made by hand; its id."""
    run_id = str(uuid.uuid4())
    moment = now()
    with site.engine.begin() as conn:
        conn.execute(table(site).insert().values(
            id=run_id, report_id=report["id"], run_key=None, trigger="manual", due=None,
            status="sent", attempts=0, ran_at=moment, user_id=user.id, format=made.format,
            filename=filename(report, made.format, moment), content=made.content,
            size=len(made.content), row_count=made.rows))
    return run_id


def listed(site, report_id: str, limit: int = LISTED) -> list[dict]:
    """A report's runs, newest first, without their files."""
    t = table(site)
    users = site.tables.tables["crbm_users"]
    columns = [c for c in t.c if c.name != "content"]
    with site.engine.connect() as conn:
        rows = conn.execute(
            sa.select(*columns, sa.func.coalesce(users.c.display_name, users.c.username)
                      .label("user_name"))
            .select_from(t.outerjoin(users, users.c.id == t.c.user_id))
            .where(t.c.report_id == report_id)
            .order_by(t.c.ran_at.desc(), t.c.id).limit(limit)).mappings().all()
    return [dict(r) for r in rows]


def get(site, report_id: str, run_id: str) -> dict | None:
    """One run of the report, with its file; None if the report has no such run."""
    t = table(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == run_id, t.c.report_id == report_id)
                           ).mappings().first()
    return dict(row) if row else None


def prune(site, moment: dt.datetime, days: int | None = None) -> int:
    """Delete the runs that ran more than ``days`` (default: the setting) before
    ``moment``, in one statement; how many. A run still being mailed stays."""
    days = kept_days(site) if days is None else days
    if not isinstance(days, int) or days < 1:
        raise ValidationError({"runs_kept_days": Message(N_("must be a whole number of days, "
                                                            "at least 1"))})
    t = table(site)
    with site.engine.begin() as conn:
        return conn.execute(t.delete().where(
            t.c.ran_at < moment - dt.timedelta(days=days),
            t.c.status.not_in(("pending", "sending")))).rowcount


def prune_task(site, due) -> str:
    days = kept_days(site)
    removed = prune(site, due, days)
    return f"{removed} saved runs older than {days} days removed"
