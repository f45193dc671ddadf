"""Admin → Company calendar (``/admin/calendar``): the company's time zone, first day of the
week, fiscal year start and work day (core.apps.calendar.settings). Administrators only; a
refused value is shown beside its field and nothing is saved."""
from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.calendar import settings as company
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

URL = "/admin/calendar"
log = logging.getLogger(__name__)


@page()
def settings_page(request: Request, form):
    site = request.app.state.site
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change this setting.")))
    errors: dict = {}
    values = company.calendar_settings(site).to_json()
    if form is not None:
        values, errors = company.clean(form)
        if not errors:
            site.set_setting(company.SETTING, values)
            log.info("company calendar changed by %r", request.state.user.username)
            flash(request, N_("The company calendar was saved."), "info")
            return RedirectResponse(URL, 303)
        values = {name: str(form.get(name) or "") for name in values}
    response = request.app.state.templates.render(
        request, "admin_calendar.html", status=422 if errors else 200, values=values,
        errors=errors, zones=company.zone_names(),
        weekdays=list(enumerate(company.WEEKDAYS)),
        months=list(enumerate(company.MONTHS, start=1)))
    response.headers["Cache-Control"] = "no-store"
    return response


routes = [Route(URL, settings_page, methods=["GET", "POST"])]
