"""Administration → Maintenance (``/admin/maintenance``), 1CRM's System Support Tools:
Maintenance (guide §7.2.1), reduced to what applies to CRBM.

Administrators only (403 before anything is read). Each tool is a POST form (CSRF checked
by ``page``) named by its ``action``; the page shows what it found or did:

- ``schema_check`` / ``schema_repair``: the database against the module definitions;
  a repair applies the additive changes, never a drop, then checks again.
- ``orphans_find`` / ``orphans_delete``: uploaded files no record refers to; only those
  older than an hour are deleted.
- ``caches``: every worker reloads its registry, access rules, settings and templates.
- ``languages``: each language pack's catalogs against the English messages.

A tool that fails shows why on the page (and in the log), never a server error: these
are what an administrator reaches for when something is already wrong.
"""
from __future__ import annotations

import logging

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _render
from core.apps.maintenance import tools
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

log = logging.getLogger(__name__)

URL = "/admin/maintenance"
ACTIONS = ("schema_check", "schema_repair", "orphans_find", "orphans_delete", "caches",
           "languages")


def _run(action: str, request: Request):
    """(the name of the page's result, the result) of ``action``."""
    site = request.app.state.site
    match action:
        case "schema_check":
            return "schema", tools.check_schema(site)
        case "schema_repair":
            return "schema", tools.repair_schema(site)
        case "orphans_find":
            return "orphans", tools.find_orphans(site)
        case "orphans_delete":
            return "orphans", tools.delete_orphans(site)
        case "caches":
            tools.rebuild_caches(site, request.app.state.templates)
            return "caches", None
        case "languages":
            return "languages", tools.check_languages(site)


def _page(request: Request, status: int = 200, results: dict | None = None, **context):
    return _render(request, "admin_maintenance.html", status=status, results=results or {},
                   min_age=tools.MIN_AGE, shown=tools.SHOWN,
                   problems_shown=tools.PROBLEMS_SHOWN, **context)


@page()
def maintenance_page(request: Request, form):
    user = _admin_only(request)
    if form is None:
        return _page(request)
    action = str(form.get("action") or "")
    if action not in ACTIONS:
        return _page(request, 422, failed=Message(N_("Choose one of the tools.")))
    try:
        name, result = _run(action, request)
    except Exception as exc:  # shown, not a 500: the page is for when things go wrong
        log.exception("maintenance %s by %r failed", action, user.username)
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _page(request, failed=Message(
            N_("The tool stopped: %(reason)s"), reason=reason))
    log.info("maintenance %s run by %r", action, user.username)
    if action == "caches":
        flash(request, Message(N_("The caches were rebuilt: every worker reloads the modules, "
                                  "access rules, settings and templates.")), "info")
        return RedirectResponse(URL, 303)
    if action == "orphans_delete":
        log.info("maintenance: %d orphaned files deleted (%d bytes)", result.deleted,
                 result.freed)
    return _page(request, results={name: result}, action=action)


routes = [Route(URL, maintenance_page, methods=["GET", "POST"])]
