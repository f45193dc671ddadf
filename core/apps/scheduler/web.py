"""Administration: the Scheduler page (implementation guide §7.1.3; administrators only).

/admin/scheduler lists every scheduled task with its schedule (editable as every N seconds
(1-3600), every N minutes, hourly at a minute past the hour, daily at, weekly on a day at, monthly on a day at, or a cron expression), on/off,
last run, duration, result and next run, a "Run now" button (enqueues a run), and whether
the OS cron's ``crbm scheduler run-due`` has been seen lately. An invalid schedule re-renders
the page (422) with the error at that task's form and saves nothing.
"""
from __future__ import annotations

import re

from starlette.requests import Request
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _checked, _redirect, _render, _site
from core.jobs import scheduler
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

KINDS = [("seconds", N_("Every N seconds")), ("every", N_("Every N minutes")),
         ("hourly", N_("Hourly at minute")),
         ("daily", N_("Daily at")), ("weekly", N_("Weekly on")),
         ("monthly", N_("Monthly on day")), ("cron", N_("Cron expression"))]
WEEKDAYS = [("1", N_("Monday")), ("2", N_("Tuesday")), ("3", N_("Wednesday")),
            ("4", N_("Thursday")), ("5", N_("Friday")), ("6", N_("Saturday")),
            ("0", N_("Sunday"))]
STATUS_LABELS = {"ok": N_("Succeeded"), "failed": N_("Failed"), "running": N_("Running")}
BAD_TIME = N_("\"%(value)s\" is not a time of day: write HH:MM, e.g. 03:30")
MAX_SECONDS = 3600  # "every N seconds" up to an hour: longer is written in minutes
MAX_MINUTES = 1440
BAD_NUMBER = N_("\"%(value)s\" is not a whole number from %(low)d to %(high)d")


def describe(schedule: str) -> dict:
    """The form's fields for ``schedule`` (the kind it is simplest written as)."""
    values = {"kind": "cron", "cron": schedule, "seconds": "30", "minutes": "5",
              "minute": "0", "time": "03:00", "weekday": "1", "monthday": "1"}
    every = re.fullmatch(r"@every (\d+)([sm])", schedule)
    if every and every.group(2) == "s" and 1 <= int(every.group(1)) <= MAX_SECONDS:
        return {**values, "kind": "seconds", "seconds": every.group(1)}
    if every and every.group(2) == "m" and 1 <= int(every.group(1)) <= MAX_MINUTES:
        return {**values, "kind": "every", "minutes": every.group(1)}
    fields = schedule.split()
    if len(fields) == 5 and fields[0].isdigit():
        minute, hour, monthday, month, weekday = fields
        if fields[1:] == ["*", "*", "*", "*"] and int(minute) <= 59:
            return {**values, "kind": "hourly", "minute": str(int(minute))}
        if hour.isdigit() and month == "*":
            at = f"{int(hour):02d}:{int(minute):02d}"
            if monthday == "*" and weekday == "*":
                return {**values, "kind": "daily", "time": at}
            if monthday == "*" and weekday in dict(WEEKDAYS):
                return {**values, "kind": "weekly", "time": at, "weekday": weekday}
            if monthday.isdigit() and weekday == "*":
                return {**values, "kind": "monthly", "time": at, "monthday": monthday}
    return values


def _number(value: str, low: int, high: int) -> int:
    if not value.isdigit() or not low <= int(value) <= high:
        raise scheduler.ScheduleError(Message(BAD_NUMBER, value=value, low=low, high=high))
    return int(value)


def compose(form) -> str:
    """The schedule the form's fields say; ``ScheduleError`` naming the bad field."""
    kind = str(form.get("kind", "cron"))
    text = {name: str(form.get(name, "")).strip()
            for name in ("seconds", "minutes", "minute", "time", "weekday", "monthday", "cron")}
    if kind == "cron":
        return scheduler.check_schedule(text["cron"])
    if kind == "seconds":
        return f"@every {_number(text['seconds'], 1, MAX_SECONDS)}s"
    if kind == "every":
        return f"@every {_number(text['minutes'], 1, MAX_MINUTES)}m"
    if kind == "hourly":
        return f"{_number(text['minute'] or '0', 0, 59)} * * * *"  # blank: on the hour
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text["time"])
    if not match or int(match.group(1)) > 23 or int(match.group(2)) > 59:
        raise scheduler.ScheduleError(Message(BAD_TIME, value=text["time"]))
    at = f"{int(match.group(2))} {int(match.group(1))}"
    if kind == "daily":
        return f"{at} * * *"
    if kind == "weekly":
        return f"{at} * * {_number(text['weekday'], 0, 6)}"
    if kind == "monthly":
        return f"{at} {_number(text['monthday'], 1, 28)} * *"
    raise scheduler.ScheduleError(Message(N_("Choose how often the task runs.")))


def _show(request: Request, errors: dict | None = None, posted: dict | None = None,
          status: int = 200):
    site = _site(request)
    rows = []
    for state in scheduler.states(site):
        values = describe(state.schedule)
        if posted and posted.get("name") == state.name:
            values = {**values, **posted}
        rows.append({"state": state, "form": values})
    seen = scheduler.triggers(site)
    return _render(request, "admin_scheduler.html", status=status, rows=rows,
                   errors=errors or {}, kinds=KINDS, weekdays=WEEKDAYS,
                   status_labels=STATUS_LABELS,
                   external_ok=scheduler.external_trigger_healthy(site),
                   external_at=seen.get("external"), worker_at=seen.get("worker"))


@page()
def task_list(request: Request, form):
    _admin_only(request)
    return _show(request)


@page()
def task_save(request: Request, form):
    _admin_only(request)
    site, name = _site(request), request.path_params["name"]
    if name not in scheduler.tasks(site):
        return _show(request, {name: Message(scheduler.UnknownTask(name).args[0])}, status=404)
    try:
        schedule = compose(form)
    except scheduler.ScheduleError as exc:
        posted = {k: str(form.get(k, "")) for k in ("kind", "minutes", "time", "weekday",
                                                     "monthday", "cron")}
        return _show(request, {name: exc.args[0]}, {"name": name, **posted}, status=422)
    scheduler.configure(site, name, schedule=schedule, enabled=_checked(form, "enabled"))
    flash(request, Message(N_("The schedule of %(task)s was saved."), task=name))
    return _redirect(f"/admin/scheduler#task-{name}")


@page()
def task_run(request: Request, form):
    _admin_only(request)
    site, name = _site(request), request.path_params["name"]
    if name not in scheduler.tasks(site):
        return _show(request, {name: Message(scheduler.UnknownTask(name).args[0])}, status=404)
    scheduler.run_now(site, name)
    flash(request, Message(N_("%(task)s will run within a few seconds."), task=name))
    return _redirect(f"/admin/scheduler#task-{name}")


routes = [
    Route("/admin/scheduler", task_list),
    Route("/admin/scheduler/{name}", task_save, methods=["POST"]),
    Route("/admin/scheduler/{name}/run", task_run, methods=["POST"]),
]
