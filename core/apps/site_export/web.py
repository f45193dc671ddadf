"""Admin → Export all data (``/admin/export``): the page says what the zip holds; its form
posts (CSRF-checked by ``core.web.pages.page``, as every admin form) and gets the zip back
as a download. Administrators only (403 otherwise, before anything is read).

The zip is written by ``export.export_site`` into a temporary file — never into memory —
sent, and removed once sent; a failure to write it (a full disk) is said on the page with a
flash message, and the half-written file is removed.
"""
from __future__ import annotations

import datetime as dt
import logging
import os
import tempfile

from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, RedirectResponse
from starlette.routing import Route

from core.apps.site_export import export
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

URL = "/admin/export"
log = logging.getLogger(__name__)


@page()
def export_page(request: Request, form):
    site, user = request.app.state.site, request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can export all data.")))
    if form is None:
        response = request.app.state.templates.render(request, "admin_site_export.html")
        response.headers["Cache-Control"] = "no-store"
        return response
    handle, path = tempfile.mkstemp(prefix="crbm-site-", suffix=".zip")
    os.close(handle)
    try:
        summary = export.export_site(site, path, user)
    except OSError as exc:
        os.unlink(path)
        log.error("site export by %r failed: %s", user.username, exc)
        flash(request, Message(N_("The export could not be written: %(reason)s"),
                               reason=str(exc)), "error")
        return RedirectResponse(URL, 303)
    except BaseException:
        os.unlink(path)
        raise
    log.info("site exported by %r: %s records, %s files", user.username,
             sum(summary.modules.values()), summary.files)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d-%H%M")
    return FileResponse(path, media_type="application/zip", filename=f"crbm-export-{stamp}.zip",
                        headers={"Cache-Control": "no-store"},
                        background=BackgroundTask(os.unlink, path))


routes = [Route(URL, export_page, methods=["GET", "POST"])]
