"""Emails × email templates: "Insert template" on the mail client's compose page.
Registered by the emails manifest's ``glue`` only while the email_templates plugin is active
(the compose page lists templates only then, ``client._templates``).

``GET /email/template/{id}?module=&record=`` renders the template for the record the email is
about (``plugins/email_templates/render.py``, with the reader's rights) and answers JSON:
``{"subject", "html"}`` (the HTML nh3-clean), or ``{"error"}`` with 400 — a template for
another kind of record, no record, or one the template cannot render — and 404 for a
template the reader may not see.
"""
from __future__ import annotations

import nh3
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.kernel import i18n
from core.kernel.errors import N_, CrbmError, Message, NotFoundError
from core.kernel.hookspecs import hookimpl
from core.web.pages import page
from core.web.templating import translate
from plugins.email_templates import render


@page()
def template_json(request, form):
    """An email template rendered for the record the message is about."""
    site, user = request.app.state.site, request.state.user
    params = request.query_params
    module_name, record_id = params.get("module") or "", params.get("record") or ""
    try:
        template = site.records.get("email_templates", request.path_params["template_id"], user)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such template."))) from None
    wanted = template.get("for_module")
    if wanted and wanted != module_name:
        return JSONResponse({"error": i18n.active().gettext(
            "This template is for another kind of record.")}, status_code=400)
    if not module_name or not record_id:
        return JSONResponse({"error": i18n.active().gettext(
            "This email is about no record to fill the template with.")}, status_code=400)
    try:
        mail = render.render(site, template, module_name, record_id, user=user)
    except CrbmError as exc:
        problem = exc.args[0] if exc.args else str(exc)  # a Message, in the reader's language
        return JSONResponse({"error": translate({"fmt": request.state.fmt}, problem)},
                            status_code=400)
    return JSONResponse({"subject": mail.subject, "html": nh3.clean(mail.html or "")})


@hookimpl
def crbm_web_routes(site):
    return [Route("/email/template/{template_id}", template_json)]
