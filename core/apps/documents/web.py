"""Printing a record to PDF and mailing it, from its detail page.

Any module gets these pages for the PDF forms meant for it (a form's ``module:``); the
record is read with the user's rights, and plugins may refuse (``crbm_before_output``),
in which case the user is sent back to the record with the reason.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.apps.documents import forms, mail, printing
from core.kernel.errors import N_, Message, NotFoundError, VetoError
from core.web.pages import page
from core.web.templating import flash
from core.web.views import _fmt, _module, _render


def _back(request: Request, module, message, kind: str = "error"):
    flash(request, message, kind)
    return RedirectResponse(f"/m/{module.name}/{request.path_params['record_id']}", 303)


@page()
def pdf_view(request: Request, form):
    module = _module(request)
    site, user = request.app.state.site, request.state.user
    try:
        filename, content = printing.render_record(
            site, module.name, request.path_params["record_id"], user,
            request.path_params["form"], _fmt(request))
    except VetoError as exc:
        return _back(request, module, exc.args[0])
    except forms.PdfTextError as exc:  # text no font can print: no document with blanks
        return _back(request, module, exc.message)
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


def _default_recipient(site, module, record: dict, user) -> str:
    """Who Email PDF writes to unless the user changes it: the email address of the first
    record named by the module's ``features.email_to`` related fields that has one (a
    document's billing contact, then its account); without that list, of the first related
    record with an email address, in the module's field order."""
    names = module.features.get("email_to") or list(module.fields)
    for name in names:
        f = module.fields.get(name)
        target = site.registry.modules.get(f.spec.get("module", "")) \
            if f is not None and f.type.is_link and record.get(name) else None
        email = next((e for e, ef in (target.fields.items() if target else ())
                      if ef.type.is_email), None)
        if email is None:
            continue
        try:
            other = site.records.get(target.name, record[name], user)
        except NotFoundError:  # not theirs to see
            continue
        if other.get(email):
            return other[email]
    return ""


@page()
def email_view(request: Request, form):
    module = _module(request)
    site, user = request.app.state.site, request.state.user
    record_id, form_name = request.path_params["record_id"], request.path_params["form"]
    record = site.records.get(module.name, record_id, user)
    fmt = _fmt(request)
    title = record.get((module.features.get("sequence") or {}).get("field", "")) or \
        record.get(module.name_field or "id") or ""
    values = {"to": _default_recipient(site, module, record, user), "cc": "",
              "subject": f"{fmt.gettext(module.label_singular)} {title}".strip(),
              "text": ""}
    error = None
    if form is not None:
        values = {key: str(form.get(key, "")).strip() for key in values}
        try:
            sent = printing.email_record(site, module.name, record_id, user, form_name, fmt,
                                         to=values["to"], cc=values["cc"] or (),
                                         subject=values["subject"], text=values["text"])
        except VetoError as exc:
            return _back(request, module, exc.args[0])
        except mail.MailError as exc:
            error = str(exc)
        except forms.PdfTextError as exc:
            error = exc.message
        else:
            return _back(request, module, Message(N_("Sent to %(to)s."),
                                                  to=", ".join(sent.to)), "info")
    return _render(request, "email_record.html", status=422 if error else 200, module=module,
                   record=record, title=title, form_name=form_name, values=values,
                   error=error)


routes = [
    Route("/m/{module}/{record_id}/pdf/{form}", pdf_view),
    Route("/m/{module}/{record_id}/email/{form}", email_view, methods=["GET", "POST"]),
]
