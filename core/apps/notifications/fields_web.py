"""Admin → Notification emails (``/admin/notification-emails``): the fields added to
assignment notification emails, per module (core.apps.notifications.fields). Administrators
only; a refused choice is named beside its module and nothing is saved."""
from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.notifications import fields
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

URL = "/admin/notification-emails"
log = logging.getLogger(__name__)


@page()
def settings_page(request: Request, form):
    site = request.app.state.site
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change this setting.")))
    errors: dict = {}
    values = fields.chosen(site)
    if form is not None:
        values, errors = fields.clean(site, form)
        if not errors:
            site.set_setting(fields.SETTING, values)
            log.info("notification email fields changed by %r", request.state.user.username)
            flash(request, N_("The notification emails were saved."), "info")
            return RedirectResponse(URL, 303)
        values = {m.name: [str(n) for n in form.getlist(f"f_{m.name}")]
                  for m in fields.modules(site)}
    response = request.app.state.templates.render(
        request, "admin_notification_fields.html", status=422 if errors else 200,
        values=values, errors=errors, modules=[(m, fields.offered(m)) for m in fields.modules(site)])
    response.headers["Cache-Control"] = "no-store"
    return response


routes = [Route(URL, settings_page, methods=["GET", "POST"])]
