"""The calendar's agenda pages (the EventCalendar component, vendored in
core/web/static/vendor/event-calendar, driven by static/agenda.js):

- ``GET /calendar/agenda``: the reader's day, week, month and list views; with
  ``?view=company`` the company view — users side by side (all active users, the ones
  chosen with ``users=<id>,<id>``, a team's members with ``team=<id>``, or the people of
  a department — the users' Department on their admin page — with ``department=<name>``); with
  ``?view=resources`` the resource view — the records of the ``resources`` module the
  reader may list (meeting rooms, projectors) side by side, an event in a resource's
  column when an attendance row books it (events.py), the same busy rule. The year view
  is the year's holidays page (/calendar/holidays); the task list is /calendar/tasks.
- ``GET /calendar/events.json?start=&end=[&users=][&team=][&resources=1][&of=resources]``:
  the events (the events of the shown users, invited ones included; ``of=resources``: of
  the resources named by ``users``, only those the reader may list)
  (core.apps.calendar.events: one statement per kind, busy blocks for what the reader
  may not see) and the reader's holidays as background events.
- ``POST /calendar/events/move`` (``module``, ``id``, ``start``, ``end``, ``all_day``,
  ``version``; CSRF as every form): a drag or a resize, saved through RecordService.
  ``{"ok": true}`` or ``{"ok": false, "error"}`` with 4xx: agenda.js puts the event back
  and shows the message.
- ``GET /calendar/tasks``: the reader's open tasks (kinds dated by a due date) by due date.

The company's calendar settings give the first day of the week and the work day the time
grid opens on; creating by click-drag opens the kind's quick create prefilled.
"""
from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.apps.calendar import events, holidays
from core.apps.calendar.settings import calendar_settings
from core.kernel.errors import N_, ConflictError, Message, NotFoundError, ValidationError, VetoError
from core.kernel.records import Query
from core.web.pages import page
from core.web.views import _fmt, _render, _said

MAX_DAYS = 62  # a month view and its edges; more is not a calendar's question
MAX_USERS = 200
RESOURCES = "resources"  # the module whose records are the resource view's columns
BAD_RANGE = Message(N_("Ask for a range of at most %(days)s days, start before end."),
                    days=MAX_DAYS)


def _users(site) -> list[dict]:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.username, table.c.display_name,
                                      table.c.department)
                            .where(table.c.active.is_(True))
                            .order_by(sa.func.lower(sa.func.coalesce(
                                table.c.display_name, table.c.username)))).all()
    return [{"id": r.id, "title": r.display_name or r.username,
             "department": (r.department or "").strip()} for r in rows]


def _departments(users: list[dict]) -> list[str]:
    return sorted({u["department"] for u in users if u["department"]}, key=str.lower)


def _teams(site) -> list[dict]:
    teams, members = site.tables.tables["crbm_teams"], site.tables.tables["crbm_team_members"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(teams.c.id, teams.c.name).order_by(teams.c.name)).all()
        links = conn.execute(sa.select(members.c.team_id, members.c.user_id)).all()
    out = {r.id: {"id": r.id, "name": r.name, "members": set()} for r in rows}
    for link in links:
        if link.team_id in out:
            out[link.team_id]["members"].add(link.user_id)
    return list(out.values())


def _shown(request: Request, params) -> tuple[list[dict], str, list[str], str]:
    """(users side by side, team id, chosen ids, department) of a company view's
    parameters; the people are those of the team, of the department and chosen, each
    given narrowing the others."""
    site = request.app.state.site
    everyone = _users(site)
    chosen = [u for u in str(params.get("users", "")).split(",") if u.strip()]
    chosen += [str(u) for u in params.getlist("u")] if hasattr(params, "getlist") else []
    team = str(params.get("team", ""))
    department = str(params.get("department", "")).strip()
    shown = everyone
    if team:
        found = next((t for t in _teams(site) if t["id"] == team), None)
        if found is None:
            raise HTTPException(404, Message(N_("There is no such team.")))
        shown = [u for u in shown if u["id"] in found["members"]]
    if department:
        shown = [u for u in shown if u["department"].lower() == department.lower()]
    if chosen:
        shown = [u for u in shown if u["id"] in set(chosen)]
    return shown[:MAX_USERS], team, chosen, department


def _bookable(site, user, chosen=None) -> list[dict]:
    """The resource view's columns: the resources the reader may list (in SQL), by name;
    ``chosen``: only those ids."""
    if RESOURCES not in site.registry.modules:
        return []
    filters = [("id", "in", list(chosen))] if chosen is not None else []
    rows = site.records.list(RESOURCES, user, Query(filters=filters, sort="name",
                                                    limit=MAX_USERS, fields=["id", "name"]))
    return [{"id": r["id"], "title": r["name"] or ""} for r in rows]


TEXTS = {  # what agenda.js says, in the reader's language
    "today": N_("Today"), "day": N_("Day"), "week": N_("Week"), "month": N_("Month"),
    "list": N_("Agenda"), "busy": events.BUSY, "saving": N_("Saving…"), "moved": N_("Moved."),
    "noEvents": N_("Nothing planned."), "allDay": N_("All day"),
    "failed": N_("Not saved: the server did not answer."),
    "otherUser": N_("An event keeps its person here: open it to change who it is for."),
    "otherResource": N_("A booking keeps its resource here: open the meeting to change "
                        "what it books."),
}


def _texts(fmt) -> dict:
    return {key: fmt.gettext(text) for key, text in TEXTS.items()}


@page()
def agenda_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    fmt = _fmt(request)
    cal = calendar_settings(site)
    view = request.query_params.get("view")
    booking = view == RESOURCES and RESOURCES in site.registry.modules
    company = view == "company"
    resources, team, chosen, department = _shown(request, request.query_params) if company \
        else ([], "", [], "")
    if booking:
        resources = _bookable(site, user)
    creatable = sorted((k for k in events.kinds(site.registry) if not k.dated and (
        site.records.access is None or site.records.access.can(user, k.module, "edit"))),
        key=lambda k: k.end is None)  # a range chosen is most often a meeting
    try:  # ?date=YYYY-MM-DD: the day to open on (links, tests); else today
        opening = dt.date.fromisoformat(str(request.query_params.get("date", ""))).isoformat()
    except ValueError:
        opening = None
    config = {
        "date": opening,
        "events": "/calendar/events.json", "move": "/calendar/events/move",
        # the reader's own first day (preferences), else the company's; counted from Sunday
        "firstDay": (int(user.preferences.week_start or cal.week_start) + 1) % 7,
        "slotMinTime": f"{cal.work_day_start:%H:%M}", "slotMaxTime": f"{cal.work_day_end:%H:%M}",
        "locale": fmt.prefs.language.replace("_", "-"), "texts": _texts(fmt),
        "company": company or booking, "resources": resources,
        "of": RESOURCES if booking else "",
        "users": ",".join(r["id"] for r in resources),
        "create": [{"module": k.module.name, "label": str(k.module.label_singular),
                    "start": k.when, "end": k.end, "duration": k.duration,
                    "all_day": k.all_day} for k in creatable],
        "today": dt.datetime.now(fmt.tz).date().isoformat(),
        # the component takes a fixed offset: the reader's now (events.py says why)
        "offset": int(dt.datetime.now(fmt.tz).utcoffset().total_seconds() // 60),
    }
    everyone = _users(site) if company else []
    return _render(request, "calendar_agenda.html", config=json.dumps(config),
                   company=company, booking=booking, bookable=bool(resources),
                   all_users=everyone, departments=_departments(everyone),
                   department=department, nobody=company and not resources,
                   teams=_teams(site) if company else [], team=team, chosen=set(chosen),
                   has_resources="resources" in site.registry.modules,
                   holiday_set=holidays.for_user(site, user.preferences),
                   year=dt.datetime.now(fmt.tz).year, creatable=creatable)


def _day(text: str) -> dt.date:
    return dt.date.fromisoformat(str(text)[:10])


@page()
def events_json(request: Request, form):
    site, user = request.app.state.site, request.state.user
    fmt = _fmt(request)
    params = request.query_params
    try:
        first, last = _day(params.get("start", "")), _day(params.get("end", ""))
    except ValueError:
        first = last = None
    if first is None or not first < last or (last - first).days > MAX_DAYS:
        return JSONResponse({"error": _said(request, BAD_RANGE)}, 400)
    company = bool(params.get("users") or params.get("team") or params.get("resources"))
    of = "users"
    if params.get("of") == RESOURCES and RESOURCES in site.registry.modules:
        of, company = RESOURCES, True
        asked = [i for i in str(params.get("users", "")).split(",") if i.strip()]
        ids = [r["id"] for r in _bookable(site, user, asked[:MAX_USERS])]
    else:
        ids = [u["id"] for u in _shown(request, params)[0]] if company else [user.id]
    start = dt.datetime.combine(first, dt.time(), fmt.tz).astimezone(dt.UTC)
    end = dt.datetime.combine(last, dt.time(), fmt.tz).astimezone(dt.UTC)
    found = events.read(site, user, ids, start, end, fmt.tz, fmt.gettext,
                        resources=company, of=of)
    chosen = holidays.for_user(site, user.preferences)
    if chosen is not None:
        for year in range(first.year, last.year + 1):
            for day, name in chosen.days(year, fmt.prefs.language):
                if first <= day < last:
                    found.append({"id": f"holiday-{day.isoformat()}", "title": name,
                                  "start": day.isoformat(),
                                  "end": (day + dt.timedelta(days=1)).isoformat(),
                                  "allDay": True, "display": "background",
                                  "classNames": ["crbm-holiday"],
                                  **({"resourceIds": ids} if company else {})})
                    found.append({"id": f"holiday-label-{day.isoformat()}", "title": name,
                                  "start": day.isoformat(), "allDay": True,
                                  "end": (day + dt.timedelta(days=1)).isoformat(),
                                  "editable": False, "startEditable": False,
                                  "durationEditable": False, "classNames": ["crbm-holiday-label"],
                                  **({"resourceIds": ids} if company else {}),
                                  "extendedProps": {"holiday": True}})
    return JSONResponse(found, headers={"Cache-Control": "private, no-cache"})


def _refusal(request: Request, kind, record_id: str, exc: Exception) -> tuple[int, str]:
    site, user = request.app.state.site, request.state.user
    module = kind.module
    what = module.label_singular
    if isinstance(exc, NotFoundError):
        seen = site.records.permissions(module.name, record_id, user, ("view",))["view"] \
            if record_id else False
        if seen:
            return 403, _said(request, Message(N_("You may not change this %(what)s."),
                                               what=what))
        return 404, _said(request, Message(N_("There is no such %(what)s, or you may not "
                                               "see it."), what=what))
    if isinstance(exc, ConflictError):
        return 409, _said(request, Message(N_("Someone else changed this %(what)s since the "
                                               "calendar was shown. Reload and try again."),
                                           what=what))
    if isinstance(exc, ValidationError):
        problems = []
        for key, message in exc.errors.items():
            f = module.fields.get(key)
            problems.append(f"{f.label if f is not None else key}: {_said(request, message)}")
        return 422, _said(request, Message(N_("Not moved: %(reason)s"),
                                           reason="; ".join(problems)))
    return 422, _said(request, Message(N_("Not moved: %(reason)s"), reason=_said(request, exc)))


@page()
def move_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    kind = events.kind_of(site.registry, str(form.get("module", "")))
    if kind is None:
        return JSONResponse({"ok": False, "error": _said(request, Message(
            N_("%(value)s is not shown in the calendar."), value=repr(form.get("module"))))},
            422)
    record_id = str(form.get("id", ""))
    try:
        record = events.move(site, user, _fmt(request), kind, record_id,
                             str(form.get("start", "")), str(form.get("end", "")) or None,
                             str(form.get("all_day", "")) in ("1", "true"),
                             str(form.get("version", "")))
    except (NotFoundError, ConflictError, ValidationError, VetoError) as exc:
        status, message = _refusal(request, kind, record_id, exc)
        return JSONResponse({"ok": False, "error": message}, status)
    return JSONResponse({"ok": True, "version": record.get("version")})


@page()
def tasks_view(request: Request, form):
    """The reader's open tasks by due date: every kind dated by a day (a due date)."""
    site, user = request.app.state.site, request.state.user
    fmt = _fmt(request)
    today = dt.datetime.now(fmt.tz).date()
    groups = []
    for kind in events.kinds(site.registry):
        if not kind.dated:
            continue
        filters = [("assigned_user_id", "eq", user.id)]
        if kind.open_field:
            filters.append((kind.open_field, "in", list(kind.open_values)))
        rows = site.records.list(kind.module.name, user, Query(
            filters=filters, sort=f"{kind.when},name", limit=500, labels=True))
        groups.append((kind, rows))
    return _render(request, "calendar_tasks.html", groups=groups, today=today,
                   registry=site.registry)


routes = [
    Route("/calendar/agenda", agenda_view),
    Route("/calendar/events.json", events_json),
    Route("/calendar/events/move", move_view, methods=["POST"]),
    Route("/calendar/tasks", tasks_view),
]
