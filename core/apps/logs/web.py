"""Administration → System log (``/admin/system-log``) and Diagnostics
(``/admin/diagnostics``): 1CRM's View System Log and Diagnostic Tool (implementation guide
§7.2.5, §7.2.4). Administrators only (403 before anything is read).

- **System log**: the newest lines of the site's log file (``system_log``), searched by
  text, a minimum level, a request id (each line's id is a link to all of its request's
  lines) and "since the last mark point"; *Set a mark point* writes one (CSRF-checked).
- **Diagnostics**: what the bundle holds, and its download (``diagnostics.bundle``),
  made on request from reads only.
"""
from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _render
from core.apps.logs import diagnostics, setup, system_log
from core.kernel.errors import N_
from core.web.pages import page
from core.web.request_ids import VALID
from core.web.templating import flash

log = logging.getLogger(__name__)
LOG_URL, DIAGNOSTICS_URL = "/admin/system-log", "/admin/diagnostics"


@page()
def system_log_page(request: Request, form):
    user = _admin_only(request)
    path = setup.log_file(request.app.state.site)
    if form is not None:  # the one action: a mark point
        if path is None:
            flash(request, N_("This site writes no log file (site.yaml: logging.file)."),
                  "error")
        else:
            system_log.mark(path, user.username, " ".join(str(form.get("note") or "")
                                                          .split())[:200])
            flash(request, N_("A mark point was written to the log."), "info")
        return RedirectResponse(LOG_URL + "?since_mark=1", 303)
    query = request.query_params
    request_id = query.get("request_id", "").strip()
    filters = {"search": query.get("search", "").strip()[:200],
               "level": query.get("level", "") if query.get("level") in system_log.LEVELS
               else "",
               "request_id": request_id if VALID.match(request_id) else "",
               "since_mark": query.get("since_mark") == "1"}
    found, matched = system_log.entries(path, **filters)
    return _render(request, "admin_system_log.html", entries=found, matched=matched,
                   filters=filters, levels=system_log.LEVELS, path=path,
                   shown=system_log.SHOWN)


@page()
def diagnostics_page(request: Request, form):
    _admin_only(request)
    return _render(request, "admin_diagnostics.html",
                   members=diagnostics.MEMBERS, log_lines=diagnostics.LOG_LINES)


@page()
def diagnostics_download(request: Request, form):
    user = _admin_only(request)
    name, data = diagnostics.bundle(request.app.state.site)
    log.info("diagnostic bundle downloaded by %r", user.username)
    return Response(data, media_type="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"})


routes = [Route(LOG_URL, system_log_page, methods=["GET", "POST"]),
          Route(DIAGNOSTICS_URL, diagnostics_page, methods=["GET"]),
          Route(DIAGNOSTICS_URL + "/bundle", diagnostics_download, methods=["GET"])]
