"""Admin → Recurring activities (``/admin/recurring-activities``): the administrator's limits
on making occurrences (implementation guide §7.7, section eleven: "the maximum number of
recurrences created per scheduler run" and "the maximum number of days in the future"),
site setting ``recurrence`` read by recurrence.limits. Administrators only; a bad value
re-shows the form naming the field and saves nothing."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse

from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash
from plugins.activities import recurrence

URL = "/admin/recurring-activities"
BOUNDS = {"days_ahead": (1, 3660), "per_run": (1, 100_000)}


@page()
def limits_page(request: Request, form):
    site = request.app.state.site
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change this setting.")))
    errors: dict[str, Message] = {}
    days, per_run = recurrence.limits(site)
    values = {"days_ahead": str(days), "per_run": str(per_run)}
    if form is not None:
        values = {name: str(form.get(name) or "").strip() for name in BOUNDS}
        numbers = {}
        for name, (low, high) in BOUNDS.items():
            try:
                numbers[name] = int(values[name])
            except ValueError:
                numbers[name] = low - 1
            if not low <= numbers[name] <= high:
                errors[name] = Message(N_("%(value)s is not a whole number from %(low)s to "
                                          "%(high)s"), value=repr(values[name]), low=low,
                                       high=high)
        if not errors:
            site.set_setting(recurrence.SETTING, numbers)
            flash(request, N_("The setting was saved."), "info")
            return RedirectResponse(URL, 303)
    response = request.app.state.templates.render(
        request, "admin_recurring_activities.html", status=400 if errors else 200,
        values=values, errors=errors, defaults=(recurrence.DEFAULT_DAYS_AHEAD,
                                                recurrence.DEFAULT_PER_RUN))
    response.headers["Cache-Control"] = "no-store"
    return response
