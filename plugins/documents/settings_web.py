"""Admin → Documents (``/admin/documents``): the largest file a document takes and the
category and status a document made by a drop gets (files.settings). Administrators only
(403 otherwise); a post is checked whole (``files.clean``): a refused value is shown beside
its field and nothing is saved."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash
from plugins.documents import files

URL = "/admin/documents"


def _render(request: Request, values: dict, errors: dict):
    site = request.app.state.site
    response = request.app.state.templates.render(
        request, "admin_documents.html", status=422 if errors else 200, values=values,
        errors=errors, categories=site.registry.dropdowns.get("document_category_dom", []),
        statuses=site.registry.dropdowns.get("document_status_dom", []))
    response.headers["Cache-Control"] = "no-store"
    return response


@page()
def settings_page(request: Request, form):
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change the document "
                                            "settings.")))
    site = request.app.state.site
    if form is None:
        current = files.settings(site)
        return _render(request, {"max_upload_mb": f"{current.max_upload_mb:g}",
                                 "default_category": current.default_category,
                                 "default_status": current.default_status}, {})
    values, errors = files.clean(site, form)
    if errors:
        return _render(request, {name: str(form.get(name) or "") for name in values}, errors)
    site.set_setting(files.SETTING, values)
    flash(request, N_("The document settings were saved."), "info")
    return RedirectResponse(URL, 303)


routes = [Route(URL, settings_page, methods=["GET", "POST"])]
