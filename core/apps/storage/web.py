"""Administration → Storage utilization (``/admin/storage``), 1CRM's screen of the same name
(guide §7.2.7).

Administrators only (403 before anything is read). The page shows the figures the
Scheduler's "Update disk space usage" task stored last (``scheduled.figures_of``) and when
they were measured — total, used (and its share of the total), available, then each
category with its share of the used storage as a bar (a ``<meter>``: the site's CSP allows
no inline style) — sizes in MB or GB with the reader's number format. *Measure now* runs
the measurement in the request (a walk of the site's folders and one query per file column)
and stores it, notice included (``scheduled.update``).

The low-storage notice's settings: on/off, by percent used or by GB free, and the
threshold — a number, 0 to 100 for a percentage, more than 0 for GB. A refused form comes
back with the errors at their fields (422), nothing saved.
"""
from __future__ import annotations

import datetime as dt
import logging
import math

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _checked, _render
from core.apps.storage import scheduled
from core.kernel.errors import N_
from core.web.pages import page
from core.web.templating import flash

log = logging.getLogger(__name__)

URL = scheduled.URL
LABELS = {"database": N_("Database"), "attachments": N_("Attachments"),
          "images": N_("Images"), "uploads": N_("Other uploads"), "imports": N_("Imports"),
          "backups": N_("Backups"), "reports": N_("Report runs")}
NOTIFY_BY = {"percent_used": N_("Percentage of the storage used"),
             "gb_free": N_("GB of storage free")}


def _read(form) -> tuple[dict, scheduled.StorageSettings | None, dict]:
    """(the form's values, the settings they make or None, errors {field: message})."""
    values = {"notify": _checked(form, "notify"),
              "notify_by": str(form.get("notify_by") or ""),
              "threshold": str(form.get("threshold") or "").strip()}
    errors: dict = {}
    if values["notify_by"] not in NOTIFY_BY:
        errors["notify_by"] = N_("Choose one of the options.")
    try:
        threshold = float(values["threshold"].replace(",", "."))
        if not math.isfinite(threshold):
            raise ValueError
    except ValueError:
        errors["threshold"] = N_("A number, such as 90 or 2.5.")
    else:
        if values["notify_by"] == "percent_used" and not 0 <= threshold <= 100:
            errors["threshold"] = N_("A percentage, from 0 to 100.")
        elif values["notify_by"] == "gb_free" and threshold <= 0:
            errors["threshold"] = N_("A number of GB greater than 0.")
    if errors:
        return values, None, errors
    return values, scheduled.StorageSettings(values["notify"], values["notify_by"],
                                             threshold), errors


def _page(request: Request, values: dict, status: int = 200, errors: dict | None = None):
    figures = scheduled.figures_of(request.app.state.site)
    rows = []
    if figures is not None:
        for name, label in LABELS.items():
            size = getattr(figures, name)
            if size is not None:  # report runs: only once there is a folder for them
                rows.append((name, label, size, 100 * size / figures.used if figures.used
                             else 0.0))
    return _render(request, "admin_storage.html", status=status, figures=figures, rows=rows,
                   values=values, errors=errors or {}, notify_by=NOTIFY_BY)


@page()
def storage_page(request: Request, form):
    user = _admin_only(request)
    site = request.app.state.site
    if form is None:
        stored = scheduled.settings_of(site)
        return _page(request, {"notify": stored.notify, "notify_by": stored.notify_by,
                               "threshold": f"{stored.threshold:g}"})
    if form.get("action") == "measure":
        scheduled.update(site, dt.datetime.now(dt.UTC))
        log.info("storage measured by %r", user.username)
        flash(request, N_("The storage was measured."), "info")
        return RedirectResponse(URL, 303)
    values, settings, errors = _read(form)
    if settings is None:
        return _page(request, values, status=422, errors=errors)
    scheduled.save_settings(site, settings)
    log.info("storage notice settings changed by %r", user.username)
    flash(request, N_("The storage notification settings were saved."), "info")
    return RedirectResponse(URL, 303)


routes = [Route(URL, storage_page, methods=["GET", "POST"])]
