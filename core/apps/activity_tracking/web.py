"""Administration → User activity (``/admin/activity``) and the two User Time Sheet reports
(implementation guide §7.1.2). Administrators only (403 before anything is read).

- The settings: the level, the timeout and grace periods, how long raw events are kept
  (``settings.clean``: a refused form comes back with the problems at their fields, 422,
  nothing saved); *Report now* runs the reporting task for the days before today in the
  request (set-based: cheap).
- ``/admin/activity/days``: per user per day — first and last activity (in the company
  calendar's time zone, the one the day is counted in), duration h:mm, actions, records
  read and written — with each user's totals. ``/admin/activity/modules``: per user per
  module per day. Both filtered by a date range (default: the last 7 days before today,
  366 at most) and a user; ``?format=csv`` downloads the same rows through
  ``core.web.csv_export`` (no cell a spreadsheet would run as a formula). Dates, times and
  numbers follow the reader's locale, in the page and in the file.
"""
from __future__ import annotations

import datetime as dt
import io
import logging

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.apps.activity_tracking import settings as activity
from core.apps.activity_tracking import timesheet
from core.apps.admin.web import _admin_only, _render
from core.apps.calendar.settings import calendar_settings
from core.kernel.errors import N_, Message
from core.web import csv_export
from core.web.pages import page
from core.web.templating import flash

log = logging.getLogger(__name__)
URL = "/admin/activity"
DAYS_URL, MODULES_URL = URL + "/days", URL + "/modules"
DEFAULT_DAYS = 7


def _settings_page(request: Request, values: dict, status: int = 200,
                   errors: dict | None = None):
    site = request.app.state.site
    return _render(request, "admin_activity.html", status=status, values=values,
                   errors=errors or {}, levels=activity.LEVEL_LABELS,
                   reported=timesheet.reported_through(site), limits=activity.LIMITS)


@page()
def settings_page(request: Request, form):
    user = _admin_only(request)
    site = request.app.state.site
    if form is None:
        stored = activity.activity_settings(site)
        return _settings_page(request, {k: str(v) for k, v in stored.to_json().items()})
    if form.get("action") == "report":
        done = timesheet.report(site, calendar_settings(site).today())
        log.info("user activity reported by %r", user.username)
        flash(request, Message(N_("User activity was reported: %(rows)s user days."),
                               rows=done["rows"]), "info")
        return RedirectResponse(URL, 303)
    values, settings, errors = activity.clean(form)
    if settings is None:
        return _settings_page(request, values, status=422, errors=errors)
    activity.save(site, settings)
    log.info("user activity settings changed by %r: %s", user.username, settings.to_json())
    flash(request, N_("The user activity settings were saved."), "info")
    return RedirectResponse(URL, 303)


def _filters(request: Request, today: dt.date) -> tuple[dict, timesheet.Filters | None, dict]:
    """(the query's values, the filters they make or None, problems by field)."""
    query = request.query_params
    values = {"start": query.get("start", "").strip(), "end": query.get("end", "").strip(),
              "user": query.get("user", "").strip()}
    errors: dict = {}
    dates = {}
    defaults = {"start": today - dt.timedelta(days=DEFAULT_DAYS),
                "end": today - dt.timedelta(days=1)}
    for name in ("start", "end"):
        if not values[name]:
            dates[name] = defaults[name]
            values[name] = dates[name].isoformat()
            continue
        try:
            dates[name] = dt.date.fromisoformat(values[name])
        except ValueError:
            errors[name] = Message(N_("%(value)s is not a date written YYYY-MM-DD"),
                                   value=repr(values[name][:40]))
    if not errors:
        if dates["end"] < dates["start"]:
            errors["end"] = Message(N_("must not be before the start date"))
        elif (dates["end"] - dates["start"]).days >= timesheet.MAX_DAYS:
            errors["end"] = Message(N_("the range is longer than %(days)s days"),
                                    days=timesheet.MAX_DAYS)
    if errors:
        return values, None, errors
    return values, timesheet.Filters(dates["start"], dates["end"], values["user"] or None), {}


def _users(site) -> list:
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(users.c.id, users.c.username,
                                           users.c.display_name)
                                 .order_by(users.c.username)))


def _name(row) -> str:
    return row.display_name or row.username


class _Report:
    """What a report page and its CSV need: the columns and the formatted rows."""

    def __init__(self, request: Request, by_module: bool):
        self.site = request.app.state.site
        self.fmt = request.state.fmt
        self.by_module = by_module
        self.zone = calendar_settings(self.site).tz

    def time(self, at: int) -> str:
        return self.fmt.time(dt.datetime.fromtimestamp(at, self.zone).time())

    def module_label(self, name: str) -> str:
        module = self.site.registry.modules.get(name)
        return str(module.label) if module is not None else name

    def columns(self) -> list[str]:
        if self.by_module:
            return [N_("User"), N_("Date"), N_("Module"), N_("Actions"), N_("Read"),
                    N_("Written")]
        return [N_("User"), N_("Date"), N_("First activity"), N_("Last activity"),
                N_("Duration"), N_("Actions"), N_("Read"), N_("Written")]

    def groups(self, filters: timesheet.Filters) -> list[dict]:
        """[{"user", "rows": [[cells]], "total": [cells]}], a group per user."""
        rows = (timesheet.module_rows if self.by_module else timesheet.day_rows)(
            self.site, filters)
        groups: list[dict] = []
        for row in rows:
            if not groups or groups[-1]["user_id"] != row.user_id:
                groups.append({"user_id": row.user_id, "user": _name(row), "rows": [],
                               "sums": [0, 0, 0, 0], "days": set()})
            group = groups[-1]
            counts = [row.actions, row.records_read, row.records_written]
            if self.by_module:
                cells = [self.module_label(row.module), *map(self.number, counts)]
            else:
                cells = [self.time(row.first_at), self.time(row.last_at),
                         timesheet.hours_minutes(row.seconds), *map(self.number, counts)]
                group["sums"][3] += row.seconds
            for i, value in enumerate(counts):
                group["sums"][i] += value
            group["days"].add(row.day)
            group["rows"].append([group["user"], self.fmt.date(row.day), *cells])
        for group in groups:
            actions, read, written, seconds = group["sums"]
            counts = [self.number(actions), self.number(read), self.number(written)]
            days = self.fmt.number(len(group["days"]))
            group["total"] = [days, "", *counts] if self.by_module else \
                [days, "", "", timesheet.hours_minutes(seconds), *counts]
        return groups

    def number(self, value: int):
        return csv_export.Number(self.fmt.number(value))

    def csv(self, groups: list[dict], filename: str) -> Response:
        buffer = io.StringIO()
        writer = csv_export.writer(buffer)
        writer.writerow([str(self.fmt.gettext(c)) for c in self.columns()])
        for group in groups:
            writer.writerows(group["rows"])
        return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store"})


def _report_page(request: Request, by_module: bool):
    _admin_only(request)
    site = request.app.state.site
    calendar = calendar_settings(site)
    values, filters, errors = _filters(request, calendar.today())
    report = _Report(request, by_module)
    groups = report.groups(filters) if filters is not None else []
    if filters is not None and request.query_params.get("format") == "csv":
        name = "user-time-sheet-modules" if by_module else "user-time-sheet"
        return report.csv(groups, f"{name}-{filters.start}-{filters.end}.csv")
    return _render(request, "admin_activity_report.html", status=422 if errors else 200,
                   by_module=by_module, columns=report.columns(), groups=groups,
                   values=values, errors=errors, users=_users(site),
                   url=MODULES_URL if by_module else DAYS_URL, zone=calendar.time_zone,
                   reported=timesheet.reported_through(site),
                   level=activity.activity_settings(site).level)


@page()
def days_report(request: Request, form):
    return _report_page(request, by_module=False)


@page()
def modules_report(request: Request, form):
    return _report_page(request, by_module=True)


routes = [Route(URL, settings_page, methods=["GET", "POST"]),
          Route(DAYS_URL, days_report, methods=["GET"]),
          Route(MODULES_URL, modules_report, methods=["GET"])]
