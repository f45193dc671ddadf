"""Reminders of calls and meetings: in the app and/or by email, N minutes before the start
(fields ``reminder_minutes``, ``reminder_popup``, ``reminder_email``; 1CRM's "Sending email
re: upcoming calls and meetings" scheduler job).

The contract: each reminder goes out **exactly once**, however many workers, scheduler
triggers or redelivered jobs there are.

- The scheduled task ``activities.reminders`` (every minute) reads the planned calls and
  meetings whose reminder time has come (their start within the next week in SQL, the
  subtraction in Python: portable) and **claims** each reminder by inserting its row in
  ``crbm_activity_reminders`` under a unique ``key``, ``<module>:<id>:<start>:<minutes>``,
  with INSERT ... ON CONFLICT DO NOTHING: of two scans racing, only one inserts a row, and
  only the rows this scan inserted (its ``claim`` token) are acted on. Moving the meeting
  or changing the minutes makes a new key: the new time is reminded.
- The in-app reminder is a notification to the assigned user (core.apps.notifications:
  the bell, the Notifications page and its API), keyed ``reminder:<key>``, written in the
  claim's transaction, in the user's language and time zone.
- The email is a job per reminder (``activities.reminder_mail``, queued after the commit).
  The job takes the row with a compare-and-set UPDATE (``status`` pending -> sending); a
  second delivery of the job finds it taken and sends nothing. A failed send puts it back
  to pending and the queue retries; a worker that died while sending leaves it "sending",
  taken again after ``STALE``. Text in the recipient's language (their preferences).
- A reminder whose start is more than ``GRACE`` in the past is not sent (a site that was
  off all night does not remind of yesterday's calls).
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import uuid

import sqlalchemy as sa

from core.kernel import i18n
from core.kernel.database import ID
from core.kernel.fields import UTCDateTime
from core.kernel.hooktypes import JobHandler

TABLE = "crbm_activity_reminders"
TASK = "activities.reminders"
JOB = "activities.reminder_mail"
MODULES = ("calls", "meetings")
MAX_MINUTES = 10080  # a week: the field's maximum, and how far ahead the scan reads
GRACE = dt.timedelta(minutes=30)
STALE = dt.timedelta(minutes=10)
log = logging.getLogger(__name__)


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        TABLE, metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("start", UTCDateTime(), nullable=False),
        sa.Column("remind_at", UTCDateTime(), nullable=False),
        sa.Column("claim", sa.String(32), nullable=False),  # the scan that inserted it
        # email: pending -> sending -> sent; "none" when no email is wanted
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("taken_at", UTCDateTime()),
        sa.Column("sent_at", UTCDateTime()),
        sa.Index("ix_crbm_activity_reminders_claim", "claim"),
    )


def _insert(conn, table):
    from core.apps.notifications.api import _insert as insert_ignoring
    return insert_ignoring(conn.dialect.name, table)


def _key(module: str, record_id: str, start: dt.datetime, minutes: int) -> str:
    return f"{module}:{record_id}:{start.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}:{minutes}"


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def due(site, now: dt.datetime, conn) -> list[dict]:
    """The reminders whose time has come at ``now``: one dict per activity."""
    out = []
    for name in MODULES:
        if name not in site.registry.modules:
            continue
        table = site.records.table(site.registry.module(name))
        rows = conn.execute(sa.select(
            table.c.id, table.c.name, table.c.date_start, table.c.reminder_minutes,
            table.c.reminder_popup, table.c.reminder_email, table.c.assigned_user_id,
        ).where(table.c.deleted.is_(False), table.c.status == "planned",
                table.c.reminder_minutes.is_not(None), table.c.assigned_user_id.is_not(None),
                sa.or_(table.c.reminder_popup.is_(True), table.c.reminder_email.is_(True)),
                table.c.date_start >= now - GRACE,
                table.c.date_start <= now + dt.timedelta(minutes=MAX_MINUTES))).all()
        for row in rows:
            start = _utc(row.date_start)
            remind_at = start - dt.timedelta(minutes=row.reminder_minutes)
            if remind_at <= now:
                out.append({"module": name, "record_id": row.id, "name": row.name,
                            "start": start, "remind_at": remind_at,
                            "minutes": row.reminder_minutes, "user_id": row.assigned_user_id,
                            "popup": bool(row.reminder_popup),
                            "email": bool(row.reminder_email)})
    return out


def _people(site, conn, ids) -> dict[str, dict]:
    users = site.tables.tables["crbm_users"]
    found = conn.execute(sa.select(users.c.id, users.c.email, users.c.active,
                                   users.c.preferences).where(users.c.id.in_(sorted(ids))))
    return {row.id: dict(row._mapping) for row in found}


def formatter(site, person: dict | None):
    """The person's formatter: their language, time zone and formats."""
    try:
        stored = json.loads(person["preferences"]) if person and person["preferences"] else None
    except ValueError:
        stored = None
    prefs = i18n.effective_preferences(i18n.Preferences.from_dict(stored), site.locale_dirs)
    return i18n.formatter(prefs, site.locale_dirs)


def _message(site, fmt, module_name: str, name: str, start: dt.datetime) -> str:
    module = site.registry.modules.get(module_name)
    label = fmt.gettext(module.label_singular) if module is not None else module_name
    return fmt.gettext("Reminder: %(module)s “%(name)s” starts at %(time)s.") % {
        "module": label, "name": name, "time": fmt.datetime(start)}


def scan(site, now: dt.datetime) -> int:
    """Claim the reminders due at ``now``, notify in the app, queue the emails. Returns how
    many reminders this call claimed (a concurrent call claims the others)."""
    from core import jobs
    from core.apps.notifications.api import notify

    table = site.tables.tables[TABLE]
    token = uuid.uuid4().hex
    with site.engine.begin() as conn:
        found = due(site, now, conn)
        if not found:
            return 0
        keyed = {_key(r["module"], r["record_id"], r["start"], r["minutes"]): r for r in found}
        known = set()
        keys = sorted(keyed)
        for at in range(0, len(keys), 500):
            known |= set(conn.execute(sa.select(table.c.key).where(
                table.c.key.in_(keys[at:at + 500]))).scalars())
        rows = [{"key": key, "module": r["module"], "record_id": r["record_id"],
                 "user_id": r["user_id"], "start": r["start"], "remind_at": r["remind_at"],
                 "claim": token, "status": "pending" if r["email"] else "none"}
                for key, r in keyed.items() if key not in known]
        if not rows:
            return 0
        conn.execute(_insert(conn, table), rows)
        mine = conn.execute(sa.select(table.c.id, table.c.key, table.c.status)
                            .where(table.c.claim == token)).all()
        people = _people(site, conn, {keyed[m.key]["user_id"] for m in mine})
        for claimed in mine:
            reminder = keyed[claimed.key]
            person = people.get(reminder["user_id"])
            if reminder["popup"] and person is not None and person["active"]:
                fmt = formatter(site, person)
                notify(site, [person["id"]], _message(site, fmt, reminder["module"],
                                                      reminder["name"], reminder["start"]),
                       module=reminder["module"], record_id=reminder["record_id"],
                       key=f"reminder:{claimed.key}"[:200], connection=conn)
            if claimed.status == "pending":
                jobs.after_commit(site, conn, JOB, {"id": claimed.id})
    return len(mine)


def run_task(site, due_at) -> str:
    return f"claimed {scan(site, _utc(due_at))} reminders"


def send_job(site, payload: dict) -> str:
    """Mail one reminder, once: take it (compare-and-set), send, mark it sent."""
    from core.apps.documents import mail  # documents load on first use
    from core.kernel.records import now as clock

    table = site.tables.tables[TABLE]
    reminder_id, moment = int(payload["id"]), clock()
    with site.engine.begin() as conn:
        taken = conn.execute(table.update().where(
            table.c.id == reminder_id,
            sa.or_(table.c.status == "pending",
                   sa.and_(table.c.status == "sending", table.c.taken_at < moment - STALE)))
            .values(status="sending", taken_at=moment)).rowcount
    if taken != 1:
        return "already taken"
    try:
        with site.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == reminder_id)).one()
            person = _people(site, conn, [row.user_id]).get(row.user_id)
            module = site.registry.modules.get(row.module)
            record = None
            if module is not None:
                records = site.records.table(module)
                record = conn.execute(sa.select(records.c.name, records.c.location
                                                if "location" in records.c else sa.null())
                                      .where(records.c.id == row.record_id)).first()
        if person is None or not person["active"] or not person["email"] or record is None:
            return _finish(site, reminder_id, "none", "no mail: no such user, address or record")
        if not mail.is_configured(site.settings):
            return _finish(site, reminder_id, "none", "no mail: outgoing mail is not set up")
        fmt = formatter(site, person)
        subject = _message(site, fmt, row.module, record[0], _utc(row.start))
        lines = [subject]
        if record[1]:
            lines.append(fmt.gettext("Location: %(location)s") % {"location": record[1]})
        base = str(site.settings.get("base_url") or "").rstrip("/")
        if base:
            lines.append(f"{base}/m/{row.module}/{row.record_id}")
        mail.send_mail(site, person["email"], subject, "\n".join(lines) + "\n")
    except Exception:
        with site.engine.begin() as conn:  # let the retry take it
            conn.execute(table.update().where(table.c.id == reminder_id)
                         .values(status="pending"))
        raise
    return _finish(site, reminder_id, "sent", "mailed")


def _finish(site, reminder_id: int, status: str, result: str) -> str:
    from core.kernel.records import now as clock

    table = site.tables.tables[TABLE]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == reminder_id)
                     .values(status=status, sent_at=clock() if status == "sent" else None))
    return result


def job_handlers() -> list[JobHandler]:
    return [JobHandler(JOB, send_job, retries=5)]

