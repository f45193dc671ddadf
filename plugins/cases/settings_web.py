"""Admin → Case settings (``/admin/cases``): the case queue user, auto-close, the subject
pattern, notifying contacts, surveys and the work order terms (settings.py; implementation
guide §7.1.1 section 2). Administrators only (403 otherwise). A post is checked whole: a
refused value is shown beside its field and nothing is saved."""
from __future__ import annotations

import logging

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel import users
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash
from plugins.cases import settings

URL = "/admin/cases"
log = logging.getLogger(__name__)


def active_users(site) -> list[tuple[str, str]]:
    table = users.users_table(site)
    with site.engine.connect() as conn:
        return [(r.id, r.username) for r in conn.execute(
            sa.select(table.c.id, table.c.username).where(table.c.active.is_(True))
            .order_by(table.c.username))]


def _render(request, values: dict, errors: dict):
    site = request.app.state.site
    module = site.registry.module("cases")
    statuses = [(v, label) for v, label in site.registry.choices(module.fields["status"])
                if v in settings.STATUSES]
    response = request.app.state.templates.render(
        request, "admin_case_settings.html", status=422 if errors else 200, values=values,
        errors=errors, users=active_users(site), statuses=statuses)
    response.headers["Cache-Control"] = "no-store"
    return response


@page()
def settings_page(request, form):
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change the case "
                                            "settings.")))
    site = request.app.state.site
    if form is None:
        return _render(request, settings.case_settings(site).to_json(), {})
    values, errors = settings.clean(form, {i for i, _ in active_users(site)})
    if errors:
        posted = {name: str(form.get(name) or "") for name in values}
        posted.update({name: bool(form.get(name)) for name in ("notify_contacts", "surveys")})
        return _render(request, posted, errors)
    site.set_setting(settings.SETTING, values)
    log.info("case settings changed by %r", user.username)
    flash(request, N_("The case settings were saved."), "info")
    return RedirectResponse(URL, 303)


routes = [Route(URL, settings_page, methods=["GET", "POST"])]
