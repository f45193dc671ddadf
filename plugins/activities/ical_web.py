"""The web side of plugins/activities/ical.py.

Signed-in pages (``core.web.pages.page``: login, CSRF on posts):

- ``GET /ical/export/<module>/<id>.ics``: one meeting, call or task (the detail page's
  "Export .ics" button); the user must be allowed to view it.
- ``GET /ical/export.ics?start=&end=[&mine=1]``: the user's visible meetings, calls and
  tasks of a range (dates in the user's zone; default: this month and the next two), read
  with the export right.
- ``POST /ical/export/<module>``: the list page's mass action (ticked ``ids`` or ``all``).
  Refused with a flash message on the list when the role's Export right or the site's
  export setting (``core.web.exporting``) says no: it is a list's export. (The range is
  the user's own calendar, as their feed gives it; one record is that record's view.)
- ``GET|POST /ical/import``: the upload page (.ics), all or nothing, refusals with the line.
- ``POST /ical/feed``: ``regenerate`` or ``revoke`` the user's secret feed address, from
  the preferences page (the new address is shown once).

Public, the secret token being the credential (calendar clients cannot sign in):
``GET /ical/feed/<token>.ics``, ``GET|PUT /ical/freebusy/<token>.vfb`` (a 404 for a token
that is not, or no longer, valid; never a hint which).
"""
from __future__ import annotations

import datetime as dt
import zoneinfo

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from core.kernel.errors import N_, Message, NotFoundError
from core.web import exporting
from core.web.actions import selection_query
from core.web.pages import page
from core.web.templating import flash
from plugins.activities import ical

ICS = "text/calendar; charset=utf-8"


def _download(body: bytes, filename: str) -> Response:
    return Response(body, media_type=ICS, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


def _zone(user) -> zoneinfo.ZoneInfo:
    """The signed-in user's time zone (their preferences)."""
    try:
        return zoneinfo.ZoneInfo(user.preferences.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


@page()
def export_one(request: Request, form):
    site, user = request.app.state.site, request.state.user
    module_name, record_id = request.path_params["module"], request.path_params["id"]
    if module_name not in ical.MODULES or module_name not in site.registry.modules:
        raise HTTPException(404)
    try:
        record = site.records.get(module_name, record_id, user)
    except NotFoundError:
        raise HTTPException(404) from None
    return _download(ical.calendar(site, [(module_name, record)]).to_ical(),
                     f"{module_name}-{record_id}.ics")


@page()
def export_range(request: Request, form):
    site, user = request.app.state.site, request.state.user
    tz = _zone(user)
    today = dt.datetime.now(tz).date().replace(day=1)
    try:
        start = ical.parse_when(request.query_params.get("start"), tz,
                                dt.datetime.combine(today, dt.time(), tz))
        end = ical.parse_when(request.query_params.get("end"), tz,
                              start + dt.timedelta(days=92))
    except ValueError:
        return PlainTextResponse(str(Message(N_(
            "start and end must be dates (YYYY-MM-DD) or ISO times"))), 400)
    if end <= start:
        return PlainTextResponse(str(Message(N_("the end must be after the start"))), 400)
    items = ical.records_in_range(site, user, start, end,
                                  assigned_to=user.id if request.query_params.get("mine")
                                  else None)
    return _download(ical.calendar(site, items).to_ical(),
                     f"calendar-{start.date()}-{end.date()}.ics")


@page()
def export_selected(request: Request, form):
    """The list page's "Export .ics" for the ticked rows (or all the list matches)."""
    site, user = request.app.state.site, request.state.user
    module_name = request.path_params["module"]
    if module_name not in ical.MODULES or module_name not in site.registry.modules:
        raise HTTPException(404)
    module = site.registry.module(module_name)
    refusal = exporting.export_refusal(site, user, module)
    if refusal is not None:
        flash(request, refusal, "error")
        return RedirectResponse(f"/m/{module_name}", 303)
    records = site.records.list(module_name, user, selection_query(module, form),
                                action="export")
    if not records:
        flash(request, Message(N_("Nothing was selected: tick some rows, or choose all of "
                                  "them.")), "error")
        return RedirectResponse(f"/m/{module_name}", 303)
    return _download(ical.calendar(site, [(module_name, r) for r in records]).to_ical(),
                     f"{module_name}.ics")


@page()
def import_page(request: Request, form):
    site, user = request.app.state.site, request.state.user
    error, result, status = None, None, 200
    if form is not None and "file" in form:  # (the list's "Import…" button posts no file)
        upload = form.get("file")
        data = upload.file.read(ical.MAX_BYTES + 1) if hasattr(upload, "file") else b""
        if not data:
            error, status = Message(N_("Choose an .ics file to import.")), 422
        else:
            try:
                result = ical.import_ics(site, user, data, _zone(user))
            except ical.ImportProblem as problem:
                error, status = problem.message, 422
                if problem.line is not None:
                    error = Message(N_("Line %(line)s: %(reason)s"), line=problem.line,
                                    reason=problem.message)
    return request.app.state.templates.render(
        request, "ical_import.html", status=status, error=error, result=result,
        labels={name: site.registry.module(name).label for name in ical.MODULES
                if name in site.registry.modules})


@page()
def feed_settings(request: Request, form):
    site, user = request.app.state.site, request.state.user
    if form.get("do") == "revoke":
        ical.revoke_feed(site, user.id)
        flash(request, Message(N_("Your calendar address no longer works.")), "info")
        return RedirectResponse("/preferences", 303)
    token = ical.new_feed_token(site, user.id)
    base = str(request.base_url).rstrip("/")
    return request.app.state.templates.render(
        request, "ical_feed_new.html", feed_url=f"{base}/ical/feed/{token}.ics",
        freebusy_url=f"{base}/ical/freebusy/{token}.vfb",
        search_url=f"{base}/ical/freebusy/{token}.vfb?email=%NAME%@%SERVER%")


async def feed(request: Request):
    site = request.app.state.site
    try:
        body = await run_in_threadpool(ical.feed, site, request.path_params["token"])
    except NotFoundError:
        return PlainTextResponse("Not Found", 404)
    return Response(body, media_type=ICS, headers={"Cache-Control": "private, max-age=300"})


def _freebusy(site, token: str, params) -> bytes:
    requester = ical.user_by_token(site, token)
    row = ical.user_by_email(site, params["email"]) if params.get("email") else requester
    tz = ical.user_zone(row.preferences)
    now = ical.now()
    start = ical.parse_when(params.get("start"), tz, now - dt.timedelta(days=30))
    end = ical.parse_when(params.get("end"), tz, now + dt.timedelta(days=90))
    if end <= start or end - start > dt.timedelta(days=732):
        raise ValueError("the range must run forward and span at most two years")
    return ical.freebusy(site, row, start, end)


async def freebusy(request: Request):
    site, token = request.app.state.site, request.path_params["token"]
    try:
        if request.method == "PUT":
            data = b""
            async for chunk in request.stream():  # never more than the limit in memory
                data += chunk
                if len(data) > ical.MAX_BYTES:
                    return PlainTextResponse("Payload Too Large", 413)
            await run_in_threadpool(ical.publish_freebusy, site, token, data)
            return Response(status_code=204)
        body = await run_in_threadpool(_freebusy, site, token, request.query_params)
    except NotFoundError:
        return PlainTextResponse("Not Found", 404)
    except ical.ImportProblem as problem:
        return PlainTextResponse(str(problem), 400)
    except ValueError as exc:
        return PlainTextResponse(str(exc), 400)
    return Response(body, media_type=ICS, headers={"Cache-Control": "private, max-age=300"})


routes = [
    Route("/ical/export.ics", export_range),
    Route("/ical/export/{module}/{id}.ics", export_one),
    Route("/ical/export/{module}", export_selected, methods=["POST"]),
    Route("/ical/import", import_page, methods=["GET", "POST"]),
    Route("/ical/feed", feed_settings, methods=["POST"]),
    Route("/ical/feed/{token}.ics", feed),
    Route("/ical/freebusy/{token}.vfb", freebusy, methods=["GET", "PUT"]),
]
