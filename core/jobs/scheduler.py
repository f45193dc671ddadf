"""The scheduler: plugins' ``ScheduledTask``s (``crbm_scheduled_tasks``), run through the job
queue exactly once per due time however many workers and OS-cron triggers call ``run_due``.

Each task has a row in ``crbm_scheduler_tasks`` holding its next due time. ``run_due(site)``
claims a due time with one compare-and-set UPDATE (``WHERE name = ? AND next_due = ?``): of
several claimers only the one whose UPDATE changed a row enqueues the run, as the job keyed
``"<name>@<due>"``; the run itself is recorded once per (task, due) in
``crbm_scheduler_runs``, so a redelivered job that finished already changes nothing. Dues
missed by less than ``CATCH_UP`` run one by one; older ones collapse into the latest (a site
that was off for a week does not send a week of reminders at once). A crash between the claim
and the enqueue loses that one run (the next due runs).

Schedules: a five-field cron expression in the site's time zone (croniter) or "@every Ns|m|h".
``now()`` is the wall clock, sped up for tests only by CRBM_TEST_CLOCK_SPEED (with
CRBM_TEST_CLOCK_ANCHOR, a Unix time every process shares) so a simulated day passes in seconds.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core import jobs
from core.kernel.errors import N_, CrbmError, Message
from core.kernel.hooktypes import JobHandler, ScheduledTask

log = logging.getLogger(__name__)

RUN_JOB = "scheduler.run"
CATCH_UP = dt.timedelta(hours=6)
HISTORY = 20  # runs kept per task
EXTERNAL_HEALTHY = dt.timedelta(minutes=15)  # an OS cron every 5 minutes, with slack
_EVERY = re.compile(r"^@every\s+(\d+)\s*([smh])$")
_UNIT = {"s": 1, "m": 60, "h": 3600}


class ScheduleError(CrbmError):
    """An invalid schedule; the message says what is wrong with it."""


def now() -> dt.datetime:
    speed = float(os.environ.get("CRBM_TEST_CLOCK_SPEED", "1"))
    wall = time.time()
    if speed != 1:
        anchor = float(os.environ["CRBM_TEST_CLOCK_ANCHOR"])
        wall = anchor + (wall - anchor) * speed
    return dt.datetime.fromtimestamp(wall, dt.UTC)


# -- schedules ---------------------------------------------------------------------------------

def check_schedule(schedule: str) -> str:
    """The schedule, normalised; ``ScheduleError`` saying what is wrong otherwise."""
    from croniter import croniter

    text = " ".join(str(schedule or "").split())
    if text.startswith("@every"):
        match = _EVERY.match(text)
        if not match or int(match.group(1)) < 1:
            raise ScheduleError(Message(N_("\"%(schedule)s\" is not a valid interval: write "
                                           "\"@every\" and a whole number of seconds, minutes "
                                           "or hours, e.g. \"@every 5m\""), schedule=text))
        return text
    if len(text.split()) != 5 or not croniter.is_valid(text):
        raise ScheduleError(Message(N_("\"%(schedule)s\" is not a valid cron expression: five "
                                       "fields (minute hour day-of-month month day-of-week), "
                                       "e.g. \"0 3 * * *\""), schedule=text))
    return text


def next_after(schedule: str, after: dt.datetime, zone: str = "UTC") -> dt.datetime:
    """The first due time of ``schedule`` strictly after ``after`` (aware, UTC)."""
    from croniter import croniter

    match = _EVERY.match(schedule)
    if match:
        return after + dt.timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
    local = after.astimezone(ZoneInfo(zone))
    return croniter(schedule, local).get_next(dt.datetime).astimezone(dt.UTC)


def latest_at_or_before(schedule: str, due: dt.datetime, moment: dt.datetime,
                        zone: str = "UTC") -> dt.datetime:
    """The last due time of ``schedule`` at or before ``moment``, from ``due`` (≤ moment)."""
    from croniter import croniter

    match = _EVERY.match(schedule)
    if match:
        step = dt.timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2)])
        return due + step * ((moment - due) // step)
    local = (moment + dt.timedelta(microseconds=1)).astimezone(ZoneInfo(zone))
    return croniter(schedule, local).get_prev(dt.datetime).astimezone(dt.UTC)


def _zone(site) -> str:
    zone = site.settings.get("timezone") or "UTC"
    try:
        ZoneInfo(zone)
    except (ValueError, KeyError):  # an unknown name (ZoneInfoNotFoundError is a KeyError)
        return "UTC"
    return zone


# -- tasks and their rows ----------------------------------------------------------------------

@dataclass(frozen=True)
class TaskState:
    """A task as the Scheduler page and ``crbm scheduler list`` show it."""
    task: ScheduledTask | None  # None: its plugin is gone
    name: str
    schedule: str
    enabled: bool
    next_due: dt.datetime | None
    last_start: dt.datetime | None
    last_duration: float | None
    last_status: str | None
    last_result: str | None  # a Message when the task returned one (shown translated)


def tasks(site) -> dict[str, ScheduledTask]:
    """Every plugin's ``crbm_scheduled_tasks``, by name."""
    return {t.name: t for found in site.hook.crbm_scheduled_tasks(site=site) for t in found or ()}


def _rows(site) -> sa.Table:
    return site.tables.tables["crbm_scheduler_tasks"]


def _ensure_rows(site, known: dict[str, ScheduledTask], moment: dt.datetime) -> None:
    """A row for each task not yet seen, its first due time after ``moment``."""
    table = _rows(site)
    with site.engine.connect() as conn:
        present = set(conn.execute(sa.select(table.c.name)).scalars())
    for name, task in known.items():
        if name in present:
            continue
        try:
            first = next_after(check_schedule(task.schedule), moment, _zone(site))
        except ScheduleError:
            log.error("scheduled task %s: invalid default schedule %r", name, task.schedule)
            first = None
        try:
            with site.engine.begin() as conn:
                conn.execute(table.insert().values(name=name, next_due=first))
        except sa.exc.IntegrityError:
            pass  # another worker made it first


def states(site) -> list[TaskState]:
    known = tasks(site)
    _ensure_rows(site, known, now())
    with site.engine.connect() as conn:
        rows = {r.name: r for r in conn.execute(sa.select(_rows(site)))}
    found = []
    for name in sorted(set(known) | set(rows)):
        task, row = known.get(name), rows.get(name)
        schedule = (row.schedule if row is not None and row.schedule else
                    task.schedule if task else "")
        enabled = (row.enabled if row is not None and row.enabled is not None else
                   bool(task and task.enabled))
        found.append(TaskState(task, name, schedule, bool(enabled and task),
                               row.next_due if row is not None else None,
                               *(getattr(row, c) if row is not None else None for c in
                                 ("last_start", "last_duration", "last_status")),
                               _result_of(row)))
    return found


def _result_of(row) -> str | None:
    if row is None or not row.last_message:
        return row.last_result if row is not None else None
    stored = json.loads(row.last_message)
    return Message(stored["template"], **stored["params"])


def _message_json(result) -> str | None:
    """A ``Message`` result kept translatable (its params must be JSON: else English only)."""
    if not isinstance(result, Message):
        return None
    try:
        return json.dumps({"template": result.template, "params": result.params})
    except TypeError:
        return None


def configure(site, name: str, *, schedule: str | None = None,
              enabled: bool | None = None) -> None:
    """An administrator's schedule and on/off for task ``name`` (checked: nothing saved when
    the schedule is invalid); the next due time follows the new schedule."""
    known = tasks(site)
    if name not in known:
        raise UnknownTask(name)
    values: dict = {}
    if schedule is not None:
        schedule = check_schedule(schedule)
        values["schedule"] = None if schedule == known[name].schedule else schedule
        values["next_due"] = next_after(schedule, now(), _zone(site))
    if enabled is not None:
        values["enabled"] = None if enabled == known[name].enabled else enabled
    _ensure_rows(site, known, now())
    with site.engine.begin() as conn:
        conn.execute(_rows(site).update().where(_rows(site).c.name == name).values(**values))


class UnknownTask(CrbmError):
    def __init__(self, name: str):
        super().__init__(Message(N_("no scheduled task named \"%(name)s\" (see `crbm scheduler "
                                    "list`)"), name=name))


# -- running -----------------------------------------------------------------------------------

def record_trigger(site, source: str, moment: dt.datetime | None = None) -> None:
    """Remember that ``source`` ("external": the OS cron; "worker") called run_due."""
    table = site.tables.tables["crbm_scheduler_triggers"]
    moment = moment or dt.datetime.now(dt.UTC)
    with site.engine.begin() as conn:
        if conn.execute(table.update().where(table.c.source == source)
                        .values(last_at=moment)).rowcount == 0:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert().values(source=source, last_at=moment))
            except sa.exc.IntegrityError:
                pass


def triggers(site) -> dict[str, dt.datetime]:
    table = site.tables.tables["crbm_scheduler_triggers"]
    with site.engine.connect() as conn:
        return {source: at for source, at in conn.execute(
            sa.select(table.c.source, table.c.last_at))}


def external_trigger_healthy(site, moment: dt.datetime | None = None) -> bool:
    """"External triggering appears to be working": the OS cron ran ``crbm scheduler
    run-due`` within the last 15 minutes."""
    last = triggers(site).get("external")
    moment = moment or dt.datetime.now(dt.UTC)
    return last is not None and moment - last <= EXTERNAL_HEALTHY


def run_due(site, moment: dt.datetime | None = None) -> list[str]:
    """Enqueue the run of every enabled task whose due time has come (``moment``, default
    ``now()``); the keys of the runs this call claimed."""
    moment = moment or now()
    known = tasks(site)
    _ensure_rows(site, known, moment)
    table, zone = _rows(site), _zone(site)
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(table.c.next_due <= moment)).all()
    claimed = []
    for row in rows:
        task = known.get(row.name)
        enabled = row.enabled if row.enabled is not None else bool(task and task.enabled)
        if task is None or not enabled:
            continue
        try:
            schedule = check_schedule(row.schedule or task.schedule)
        except ScheduleError:
            continue
        expected = row.next_due
        while expected is not None and expected <= moment:
            due = expected
            if moment - due > CATCH_UP:
                due = latest_at_or_before(schedule, due, moment, zone)
            following = next_after(schedule, due, zone)
            with site.engine.begin() as conn:
                won = conn.execute(table.update().where(
                    table.c.name == row.name, table.c.next_due == expected)
                    .values(next_due=following)).rowcount == 1
            if not won:
                break  # another worker claimed it (and goes on from there)
            key = f"{row.name}@{due.isoformat()}"
            jobs.enqueue(site, RUN_JOB, {"task": row.name, "due": due.isoformat()}, key=key)
            claimed.append(key)
            expected = following
    return claimed


def run_now(site, name: str) -> str:
    """Enqueue a run of ``name`` now (the page's "Run now"); the job's id."""
    if name not in tasks(site):
        raise UnknownTask(name)
    due = dt.datetime.now(dt.UTC)
    return jobs.enqueue(site, RUN_JOB, {"task": name, "due": due.isoformat()},
                        key=f"{name}@{due.isoformat()}")


def run_task(site, name: str, due: dt.datetime) -> str | None:
    """Run ``name`` for ``due`` here and now, recorded on its row and in its history (once per
    due: a run already recorded "ok" is not run again). Raises what the task raised."""
    known = tasks(site)
    task = known.get(name)
    if task is None:
        raise UnknownTask(name)
    _ensure_rows(site, known, now())
    runs, table = site.tables.tables["crbm_scheduler_runs"], _rows(site)
    started = dt.datetime.now(dt.UTC)
    with site.engine.begin() as conn:
        previous = conn.execute(sa.select(runs.c.status).where(
            runs.c.task == name, runs.c.due == due)).scalar()
        if previous == "ok":
            return None
        if previous is None:
            conn.execute(runs.insert().values(task=name, due=due, started=started,
                                              status="running"))
        conn.execute(table.update().where(table.c.name == name).values(
            last_start=started, last_status="running", last_result=None, last_duration=None,
            last_message=None))
    clock = time.monotonic()
    status, result = "ok", None
    try:
        result = task.run(site, due)
    except Exception as exc:
        status, result = "failed", f"{type(exc).__name__}: {exc}"
        raise
    finally:
        outcome = {"status": status, "duration": round(time.monotonic() - clock, 3),
                   "result": (str(result)[:500] if result is not None else None)}
        with site.engine.begin() as conn:
            conn.execute(runs.update().where(runs.c.task == name, runs.c.due == due)
                         .values(started=started, **outcome))
            conn.execute(table.update().where(table.c.name == name).values(
                last_start=started, last_status=outcome["status"],
                last_duration=outcome["duration"], last_result=outcome["result"],
                last_message=_message_json(result)))
            _prune_history(conn, runs, name)
    return result


def _prune_history(conn, runs: sa.Table, name: str) -> None:
    kept = conn.execute(sa.select(runs.c.due).where(runs.c.task == name)
                        .order_by(runs.c.due.desc()).offset(HISTORY).limit(1)).scalar()
    if kept is not None:
        conn.execute(runs.delete().where(runs.c.task == name, runs.c.due <= kept))


def history(site, name: str) -> list[dict]:
    runs = site.tables.tables["crbm_scheduler_runs"]
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(runs).where(runs.c.task == name)
                                              .order_by(runs.c.due.desc())).mappings()]


def _run_job(site, payload: dict) -> None:
    run_task(site, payload["task"], dt.datetime.fromisoformat(payload["due"]))


def _prune_jobs(site, due) -> Message:
    """Finished jobs' rows of ``crbm_jobs`` older than a week."""
    table = jobs._table(site)
    with site.engine.begin() as conn:
        gone = conn.execute(table.delete().where(
            table.c.status.in_(("done", "cancelled", "failed")),
            table.c.updated_at < due - dt.timedelta(days=7))).rowcount
    return Message(N_("%(count)d finished jobs removed"), count=gone)


JOB_HANDLERS = [JobHandler(RUN_JOB, _run_job, retries=3)]
TASKS = [ScheduledTask("jobs.prune", N_("Prune the log of finished background jobs"),
                       _prune_jobs, "30 4 * * *")]
