"""The web side of plugins/contacts/vcard.py (signed-in pages, ``core.web.pages.page``).

- ``GET /vcard/contacts/<id>.vcf?version=3.0|4.0``: one contact (the detail page's button),
  if the user may view it.
- ``POST /vcard/contacts?version=…``: the contacts list's mass actions "Export vCard 3.0"
  and "Export vCard 4.0" (ticked ``ids`` or ``all``, read with the export right), refused
  with a flash message on the list when the role's Export right or the site's export
  setting says no (``core.web.exporting``).
- ``GET|POST /vcard/import``: the upload page (.vcf), all or nothing, refusals with the line.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.kernel.errors import N_, Message, NotFoundError
from core.web import exporting
from core.web.actions import selection_query
from core.web.pages import page
from core.web.templating import flash
from plugins.contacts import vcard

VCF = "text/vcard; charset=utf-8"


def _version(request) -> str:
    version = request.query_params.get("version", "3.0")
    if version not in vcard.VERSIONS:
        raise HTTPException(400, "version: 3.0 or 4.0")
    return version


def _download(body: bytes, filename: str) -> Response:
    return Response(body, media_type=VCF, headers={
        "Content-Disposition": f'attachment; filename="{filename}"'})


@page()
def export_one(request: Request, form):
    site, user = request.app.state.site, request.state.user
    try:
        contact = site.records.get("contacts", request.path_params["id"], user)
    except NotFoundError:
        raise HTTPException(404) from None
    return _download(vcard.export(site, user, [contact], _version(request)),
                     f"{(contact.get('last_name') or 'contact').replace(chr(34), '')}.vcf")


@page()
def export_selected(request: Request, form):
    site, user = request.app.state.site, request.state.user
    version = _version(request)
    module = site.registry.module("contacts")
    refusal = exporting.export_refusal(site, user, module)
    if refusal is not None:
        flash(request, refusal, "error")
        return RedirectResponse("/m/contacts", 303)
    contacts = site.records.list("contacts", user, selection_query(module, form),
                                 action="export")
    if not contacts:
        flash(request, Message(N_("Nothing was selected: tick some rows, or choose all of "
                                  "them.")), "error")
        return RedirectResponse("/m/contacts", 303)
    return _download(vcard.export(site, user, contacts, version), "contacts.vcf")


@page()
def import_page(request: Request, form):
    site, user = request.app.state.site, request.state.user
    error, result, status = None, None, 200
    if form is not None and "file" in form:  # (the list's "Import…" button posts no file)
        upload = form.get("file")
        data = upload.file.read(vcard.MAX_BYTES + 1) if hasattr(upload, "file") else b""
        if not data:
            error, status = Message(N_("Choose a .vcf file to import.")), 422
        else:
            try:
                result = vcard.import_vcf(site, user, data)
            except vcard.VcardProblem as problem:
                status = 422
                error = problem.message if problem.line is None else Message(
                    N_("Line %(line)s: %(reason)s"), line=problem.line, reason=problem.message)
    return request.app.state.templates.render(request, "vcard_import.html", status=status,
                                              error=error, result=result)


routes = [
    Route("/vcard/contacts/{id}.vcf", export_one),
    Route("/vcard/contacts", export_selected, methods=["POST"]),
    Route("/vcard/import", import_page, methods=["GET", "POST"]),
]
