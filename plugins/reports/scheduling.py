"""Scheduled reports (1CRM's "scheduled reports"): a report mailed as an attachment —
daily, weekly or monthly at a time of day — to a list of addresses.

The schedule is fields of the report (modules/reports.yaml, section "Schedule"):
``schedule_frequency`` (none, daily, weekly, monthly), ``schedule_time`` ("HH:MM"),
``schedule_weekday`` (weekly), ``schedule_day`` (monthly: 1..31; 29-31 mean the month's
last day in shorter months), ``schedule_recipients`` (addresses, comma separated),
``schedule_format`` (xlsx, csv, pdf); and two the system keeps, ``schedule_next_run`` and
``schedule_last_sent``.

- **On save** (``check_schedules``, a ``crbm_before_save``): a schedule is checked whole — a
  bad time, a missing weekday or day, no recipient, or an address that is not one (named,
  by ``core.apps.documents.mail.parse_addresses``) refuses the save; the next run is worked
  out from the schedule in the company calendar's time zone
  (``core.apps.calendar.settings``: "08:00" is 08:00 there, across DST) whenever the
  schedule changes. A save never sets the two system fields itself.
- **The task** ``reports.send`` (every 5 minutes) reads the reports whose next run has come,
  in one query, and enqueues one job per (report, due time), keyed on both: a scan that
  finds the same report again before its job ran replaces the pending job, never adds one.
- **The job** ``reports.send_one`` mails one (report, due): it claims the saved run of that
  pair (runs.py, ``run_key`` unique: INSERT ... ON CONFLICT DO NOTHING, then a
  compare-and-set pending → sending), so a retried or redelivered job, or two racing,
  send once. It reads the report **as its assigned user** — their access decides every
  figure, as when they open it; a report they may no longer view or run (a module taken
  from their role, a field removed in the Studio), or whose owner is gone, is not mailed:
  the owner gets a notification saying why, and the schedule moves on. The mail goes
  through ``core.apps.documents.mail`` with a Message-ID made from (report, due), so if a
  worker dies after the server took the message and before the run was recorded, the one
  copy a retry sends is recognisably the same message. A failed send is retried by the
  queue; after ``MAX_ATTEMPTS`` the run is marked failed, the owner told, and the schedule
  moves on. Whatever the outcome, the run is recorded and ``schedule_next_run`` advances
  (only if it is still this due: a schedule changed meanwhile keeps its new time), in the
  run's transaction.
- A job whose report was deleted, unscheduled or rescheduled since it was queued sends
  nothing.
"""
from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import re
import uuid

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.kernel import i18n
from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.kernel.hooktypes import JobHandler, ScheduledTask
from core.kernel.records import SYSTEM_USER, User, now
from plugins.reports import runs

MODULE = "reports"
TASK, PRUNE_TASK, JOB = "reports.send", "reports.prune_runs", "reports.send_one"
FREQUENCIES = ("none", "daily", "weekly", "monthly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
DEFAULT_TIME = "08:00"
DEFAULT_FORMAT = "xlsx"
SCHEDULE_FIELDS = ("schedule_frequency", "schedule_time", "schedule_weekday", "schedule_day")
SYSTEM_FIELDS = ("schedule_next_run", "schedule_last_sent")
MAX_RECIPIENTS = 50
MAX_ATTEMPTS = 6  # the job's first run and its 5 retries
STALE = dt.timedelta(minutes=15)  # a run "sending" this long: its worker died
_HH_MM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")
log = logging.getLogger(__name__)


# -- the schedule -------------------------------------------------------------------------

def parse_time(text) -> dt.time | None:
    match = _HH_MM.match(str(text or "").strip())
    return dt.time(int(match[1]), int(match[2])) if match else None


def next_run(schedule: dict, after: dt.datetime, zone) -> dt.datetime | None:
    """The first run strictly after ``after`` (aware), in UTC; None when not scheduled.
    ``schedule``: the report's fields (checked: see ``problems``)."""
    frequency = schedule.get("schedule_frequency") or "none"
    at = parse_time(schedule.get("schedule_time") or DEFAULT_TIME)
    if frequency == "none" or at is None:
        return None
    local = after.astimezone(zone)
    day = local.date()
    for _ in range(400):  # a year and some: every schedule has a run in there
        if _runs_on(schedule, frequency, day):
            moment = dt.datetime.combine(day, at, tzinfo=zone).astimezone(dt.UTC)
            if moment > after:
                return moment
        day += dt.timedelta(days=1)
    return None


def _runs_on(schedule: dict, frequency: str, day: dt.date) -> bool:
    if frequency == "daily":
        return True
    if frequency == "weekly":
        return WEEKDAYS[day.weekday()] == schedule.get("schedule_weekday")
    wanted = int(schedule.get("schedule_day") or 1)
    return day.day == min(wanted, calendar.monthrange(day.year, day.month)[1])


def problems(record: dict) -> dict[str, Message]:
    """What is wrong with a record's schedule, by field (nothing when not scheduled)."""
    errors: dict[str, Message] = {}
    frequency = record.get("schedule_frequency") or "none"
    if frequency == "none":
        return errors
    if parse_time(record.get("schedule_time")) is None:
        errors["schedule_time"] = Message(N_("%(value)s is not a time of day (HH:MM, e.g. "
                                             "08:30)"), value=repr(record.get("schedule_time")))
    if frequency == "weekly" and record.get("schedule_weekday") not in WEEKDAYS:
        errors["schedule_weekday"] = Message(N_("choose the day of the week it is sent on"))
    if frequency == "monthly" and not record.get("schedule_day"):
        errors["schedule_day"] = Message(N_("choose the day of the month it is sent on"))
    try:
        found = recipients(record.get("schedule_recipients"))
    except ValueError as exc:
        errors["schedule_recipients"] = exc.args[0]
    else:
        if not found:
            errors["schedule_recipients"] = Message(N_("give at least one email address to "
                                                       "send the report to"))
        elif len(found) > MAX_RECIPIENTS:
            errors["schedule_recipients"] = Message(N_("at most %(n)d addresses"),
                                                    n=MAX_RECIPIENTS)
    return errors


def recipients(text) -> list[str]:
    """The addresses of ``text``; ValueError(Message naming the first bad one)."""
    from core.apps.documents import mail

    try:
        return mail.parse_addresses(str(text or ""), "to")
    except mail.MailError as exc:
        raise ValueError(exc.args[0]) from None


def check_schedules(site, module, batch, user, connection) -> None:
    """``crbm_before_save`` of reports: each schedule checked, its next run worked out."""
    from core.apps.calendar.settings import calendar_settings

    errors: dict[str, Message] = {}
    zone = None
    moment = now()
    for index, change in enumerate(batch):
        record = change.record
        for name in SYSTEM_FIELDS:  # the system's (set_derived); a save leaves them be
            if name in change.changes:
                record[name] = change.changes[name][0]
        record["schedule_frequency"] = record.get("schedule_frequency") or "none"
        record["schedule_format"] = record.get("schedule_format") or DEFAULT_FORMAT
        if record["schedule_frequency"] != "none" and not record.get("schedule_time"):
            record["schedule_time"] = DEFAULT_TIME
        found = problems(record)
        if found:
            prefix = "" if len(batch) == 1 else f"row {index + 1}: "
            errors.update({prefix + k: v for k, v in found.items()})
            continue
        if record.get("schedule_time"):
            time = parse_time(record["schedule_time"])
            if time is not None:
                record["schedule_time"] = f"{time:%H:%M}"  # "8:5" -> "08:05"
        if change.is_new or any(n in change.changes for n in SCHEDULE_FIELDS) \
                or (record["schedule_frequency"] != "none" and not record.get("schedule_next_run")):
            zone = zone or calendar_settings(site).tz
            record["schedule_next_run"] = next_run(record, moment, zone)
    if errors:
        raise ValidationError(errors)


# -- the task: what is due ----------------------------------------------------------------

def _table(site):
    return site.records.table(site.registry.module(MODULE))


def job_key(report_id: str, due: dt.datetime) -> str:
    return f"{JOB}:{report_id}@{_stamp(due)}"


def _stamp(due: dt.datetime) -> str:
    return f"{due.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def scan(site, moment: dt.datetime) -> int:
    """Enqueue a job for every report due at ``moment``; how many."""
    from core import jobs

    table = _table(site)
    with site.engine.connect() as conn:
        due = conn.execute(sa.select(table.c.id, table.c.schedule_next_run).where(
            table.c.deleted.is_(False), table.c.schedule_frequency.in_(FREQUENCIES[1:]),
            table.c.schedule_next_run.is_not(None),
            table.c.schedule_next_run <= moment)).all()
    for report_id, at in due:
        at = _utc(at)
        jobs.enqueue(site, JOB, {"report_id": report_id, "due": at.isoformat()},
                     key=job_key(report_id, at))
    return len(due)


def send_task(site, due) -> str:
    return f"{scan(site, _utc(due))} scheduled reports queued"


# -- the job: one report, one due time ---------------------------------------------------

def _insert_ignoring(conn, table):
    """INSERT that leaves an existing row of the same unique key alone."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return sa.insert(table).prefix_with("IGNORE")


def _claim(site, report_id: str, due: dt.datetime) -> tuple[str | None, str]:
    """Take the (report, due) run: (its id, "") if this call may send it, else (None, why)."""
    table = runs.table(site)
    key = f"scheduled:{report_id}:{_stamp(due)}"
    moment = now()
    with site.engine.begin() as conn:
        conn.execute(_insert_ignoring(conn, table).values(
            id=str(uuid.uuid4()), report_id=report_id, run_key=key, trigger="scheduled",
            due=due, status="pending", attempts=0, ran_at=moment, format=DEFAULT_FORMAT,
            size=0))
        taken = conn.execute(table.update().where(
            table.c.run_key == key,
            sa.or_(table.c.status == "pending",
                   sa.and_(table.c.status == "sending", table.c.taken_at < moment - STALE)))
            .values(status="sending", taken_at=moment)).rowcount
        row = conn.execute(sa.select(table.c.id, table.c.status).where(
            table.c.run_key == key)).one()
    if taken == 1:
        return row.id, ""
    return None, f"already {row.status}"


def _finish(site, run_id: str, report_id: str, due: dt.datetime, values: dict,
            sent: bool) -> None:
    """Record the run's outcome and move the schedule on, in one transaction."""
    from core.apps.calendar.settings import calendar_settings

    table, reports = runs.table(site), _table(site)
    moment = now()
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == run_id).values(ran_at=moment, **values))
        current = conn.execute(sa.select(*(reports.c[n] for n in (
            "schedule_frequency", "schedule_time", "schedule_weekday", "schedule_day",
            "schedule_next_run"))).where(reports.c.id == report_id)).mappings().first()
        if current is None:
            return
        derived = {"schedule_last_sent": moment} if sent else {}
        if current["schedule_next_run"] is not None and _utc(current["schedule_next_run"]) == due:
            derived["schedule_next_run"] = next_run(
                dict(current), max(moment, due), calendar_settings(site).tz)
        if derived:
            site.records.set_derived(MODULE, {report_id: derived}, connection=conn,
                                     reason="scheduled report")


def _owner(site, user_id: str | None):
    """(User, formatter) of the report's assigned user, or (None, site default formatter)."""
    users = site.tables.tables["crbm_users"]
    row = None
    if user_id:
        with site.engine.connect() as conn:
            row = conn.execute(sa.select(users.c.id, users.c.username, users.c.is_admin,
                                         users.c.active, users.c.preferences)
                               .where(users.c.id == user_id)).first()
    try:
        stored = json.loads(row.preferences) if row is not None and row.preferences else None
    except ValueError:
        stored = None
    prefs = i18n.effective_preferences(i18n.Preferences.from_dict(stored), site.locale_dirs)
    fmt = i18n.formatter(prefs, site.locale_dirs)
    if row is None or not row.active:
        return None, fmt
    return User(row.id, row.username, bool(row.is_admin)), fmt


def translated(fmt, message) -> str:
    """A ``Message`` in the formatter's language (its parameters too)."""
    if isinstance(message, Message):
        params = {k: translated(fmt, v) for k, v in message.params.items()}
        return fmt.gettext(message.template) % params if params else \
            fmt.gettext(message.template)
    return str(message)


def make(site, report: dict, definition, user, fmt, fmt_name: str) -> runs.Made:
    """The report as a file of ``fmt_name`` (xlsx, csv, pdf), read as ``user``."""
    from plugins.reports import export, pdf
    from plugins.reports.compiler import compile_report

    title = str(report.get("name") or "Report")
    if fmt_name == "csv":
        content = export.to_csv(site, definition, user, fmt)
    elif fmt_name == "pdf":
        content = pdf.to_pdf(site, definition, user, fmt, title)
    else:
        content = export.to_xlsx(site, definition, user, fmt, title)
    with site.engine.connect() as conn:  # the records the figures cover
        count = conn.execute(compile_report(site, definition, user).totals()).one()._mapping
    return runs.Made(content, int(count["_count"] or 0), fmt_name)


def _message_id(site, report_id: str, due: dt.datetime) -> str:
    smtp = site.settings.get("smtp") if isinstance(site.settings.get("smtp"), dict) else {}
    domain = str(smtp.get("from_address") or "").rpartition("@")[2].strip(" >") or "crbm"
    return f"<report-{report_id}-{_stamp(due)}@{domain}>"


def send_job(site, payload: dict) -> str:
    """Mail one report for one due time, once (the module docstring)."""
    from core.apps.documents import mail
    from plugins.reports.compiler import ReportError, ReportRefused, check

    report_id = str(payload["report_id"])
    due = _utc(dt.datetime.fromisoformat(str(payload["due"])))
    run_id, why = _claim(site, report_id, due)
    if run_id is None:
        return why
    try:
        report = site.records.get(MODULE, report_id, SYSTEM_USER)
    except NotFoundError:
        _finish(site, run_id, report_id, due, {"status": "cancelled",
                                               "message": "the report was deleted"}, False)
        return "the report was deleted"
    if (report.get("schedule_frequency") or "none") == "none" or \
            report.get("schedule_next_run") is None or _utc(report["schedule_next_run"]) != due:
        _finish(site, run_id, report_id, due, {"status": "cancelled",
                                               "message": "the schedule changed"}, False)
        return "the schedule changed"
    owner, fmt = _owner(site, report.get("assigned_user_id"))
    token = i18n.activate(fmt.translations)  # labels (modules, fields) in the owner's language
    try:
        try:
            if owner is None:
                raise _Refused(Message(N_("it has no active assigned user")))
            try:
                site.records.get(MODULE, report_id, owner)
            except NotFoundError:
                raise _Refused(Message(N_("its assigned user may no longer view it"))) from None
            try:
                definition = check(site.registry, report.get("definition"))
            except ReportError as exc:
                raise _Refused(Message(N_("it is broken: %(problems)s"),
                                       problems=str(exc))) from None
            format_name = report.get("schedule_format") or DEFAULT_FORMAT
            made = make(site, report, definition, owner, fmt, format_name)
        except ReportRefused as exc:
            return _refused(site, run_id, report, due, owner, fmt,
                            Message(N_("You may not run reports on %(module)s, which this "
                                       "report reads."), module=exc.module_label))
        except _Refused as exc:
            return _refused(site, run_id, report, due, owner, fmt, exc.message)
        name = runs.filename(report, format_name, due.astimezone(fmt.tz))
        subject = fmt.gettext("Report: %(name)s") % {"name": report["name"]}
        lines = [fmt.gettext("The report “%(name)s” of %(time)s is attached (%(file)s).")
                 % {"name": report["name"], "time": fmt.datetime(due), "file": name}]
        base = str(site.settings.get("base_url") or "").rstrip("/")
        if base:
            lines.append(f"{base}/reports/{report_id}")
        try:
            attachment = mail.Attachment(name, made.content,
                                         runs.MEDIA_TYPES[format_name].split(";")[0])
            mail.send_mail(site, report["schedule_recipients"], subject,
                           "\n\n".join(lines) + "\n", attachments=[attachment],
                           message_id=_message_id(site, report_id, due))
        except Exception as exc:  # noqa: BLE001 - any failure to send: counted, retried
            return _failed(site, run_id, report, due, owner, fmt, exc)
    finally:
        i18n.deactivate(token)
    _finish(site, run_id, report_id, due, {
        "status": "sent", "user_id": owner.id, "format": format_name, "filename": name,
        "content": made.content, "size": len(made.content), "row_count": made.rows,
        "message": None}, True)
    return f"mailed {name} to {len(recipients(report['schedule_recipients']))} recipients"


class _Refused(Exception):
    def __init__(self, message: Message):
        super().__init__(str(message))
        self.message = message


def _notify_owner(site, report: dict, due: dt.datetime, fmt, text: str, kind: str) -> None:
    from core.apps.notifications import notify

    owner_id = report.get("assigned_user_id")
    if owner_id:
        notify(site, [owner_id], text[:1000], module=MODULE, record_id=report["id"],
               key=f"reports:{kind}:{report['id']}:{_stamp(due)}")


def _refused(site, run_id, report, due, owner, fmt, reason: Message) -> str:
    """Not mailed: the owner is told why, the schedule moves on."""
    text = fmt.gettext("The scheduled report “%(name)s” was not sent: %(reason)s") % {
        "name": report["name"], "reason": translated(fmt, reason)}
    _notify_owner(site, report, due, fmt, text, "refused")
    _finish(site, run_id, report["id"], due, {
        "status": "refused", "user_id": owner.id if owner else None,
        "message": str(reason)}, False)
    return f"not sent: {reason}"


def _failed(site, run_id, report, due, owner, fmt, exc: Exception) -> str:
    """The send failed: put the run back for the queue's retry, or give up after
    MAX_ATTEMPTS (the owner told, the schedule moving on)."""
    table = runs.table(site)
    with site.engine.begin() as conn:
        attempts = conn.execute(sa.select(table.c.attempts).where(table.c.id == run_id)
                                ).scalar_one() + 1
        retry = {"status": "pending"} if attempts < MAX_ATTEMPTS else {}
        conn.execute(table.update().where(table.c.id == run_id).values(
            attempts=attempts, message=f"{type(exc).__name__}: {exc}"[:2000], **retry))
    if attempts < MAX_ATTEMPTS:
        raise exc
    text = fmt.gettext("The scheduled report “%(name)s” could not be mailed: %(reason)s") % {
        "name": report["name"], "reason": translated(fmt, exc.args[0] if exc.args else exc)}
    _notify_owner(site, report, due, fmt, text, "failed")
    _finish(site, run_id, report["id"], due, {"status": "failed", "user_id": owner.id,
                                              "message": str(exc)[:2000]}, False)
    return f"failed after {attempts} attempts: {exc}"


# -- hooks' lists -----------------------------------------------------------------------------

def scheduled_tasks() -> list[ScheduledTask]:
    return [ScheduledTask(TASK, N_("Mail the scheduled reports"), send_task, "@every 5m"),
            ScheduledTask(PRUNE_TASK, N_("Remove old saved report runs"), runs.prune_task,
                          "40 3 * * *")]


def job_handlers() -> list[JobHandler]:
    return [JobHandler(JOB, send_job, retries=MAX_ATTEMPTS - 1)]
