"""Admin → Deleted records (``/admin/deleted-records``): how many days a deleted record is
kept before the scheduler task ``admin.prune_deleted`` removes it (prune.py). Administrators
only; a bad value re-shows the form with the problem and saves nothing."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from core.apps.admin import prune
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash


@page()
def retention_page(request: Request, form):
    site = request.app.state.site
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change this setting.")))
    errors: dict[str, Message] = {}
    value = str(prune.retention_days(site))
    if form is not None:
        value = str(form.get("retention_days") or "").strip()
        try:
            days = int(value)
        except ValueError:
            days = -1
        if 0 <= days <= prune.MAX_RETENTION:
            site.set_setting(prune.SETTING, {"retention_days": days})
            flash(request, N_("The setting was saved."), "info")
            return RedirectResponse(prune.URL, 303)
        errors["retention_days"] = Message(
            N_("%(value)s is not a number of days from 0 to %(max)s"), value=repr(value),
            max=prune.MAX_RETENTION)
    response = request.app.state.templates.render(
        request, "admin_deleted_records.html", status=400 if errors else 200,
        value=value, errors=errors, default=prune.DEFAULT_RETENTION)
    response.headers["Cache-Control"] = "no-store"
    return response
