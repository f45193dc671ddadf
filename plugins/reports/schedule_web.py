"""The pages of saved runs and the PDF export (signed-in pages, ``core.web.pages.page``).

- ``GET /reports/<id>/runs``: the report's saved runs, newest first (when, manual or
  scheduled, as whom, format, records, size, and a scheduled run's outcome), each with its
  download; and the "Save a run now" form.
- ``POST /reports/<id>/runs`` (CSRF): run the report now, as the signed-in user (their
  access decides the figures), in the chosen format, and keep the file. Making a file of a
  report is an export: refused, with a flash message, where ``export_refusal`` says so for
  the report's module, as the CSV/XLSX exports are.
- ``GET /reports/<id>/runs/<run id>``: a saved run's file.
- ``GET /reports/<id>/export.pdf``: the report as a PDF (pdf.py), run as the signed-in
  user; refused like the other exports.

Every page reads the report with the record service as the signed-in user first: someone
who may not view the report gets the 404 an unknown report gets, for the list and the files
alike. A saved run is the file as it was made — the figures its runner was allowed to see,
as a mailed copy is; whoever may view the report may read its saved runs (the runs page
says whose access made each).
"""
from __future__ import annotations

from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.records import now
from core.web import exporting
from core.web.pages import page
from core.web.templating import flash
from plugins.reports import runs

MODULE = "reports"
FORMAT_LABELS = (("xlsx", N_("Excel (.xlsx)")), ("csv", N_("CSV")), ("pdf", N_("PDF")))


def _report(request: Request) -> dict:
    site, user = request.app.state.site, request.state.user
    try:
        return site.records.get(MODULE, request.path_params["id"], user)
    except NotFoundError:
        raise HTTPException(404) from None


def _definition(request: Request, report: dict):
    """The report's checked definition, or a redirect to its page with the reason."""
    from plugins.reports.compiler import ReportError, check

    try:
        return check(request.app.state.site.registry, report.get("definition")), None
    except ReportError as exc:
        flash(request, Message(N_("This report cannot run: %(problems)s"), problems=str(exc)),
              "error")
        return None, RedirectResponse(f"/reports/{report['id']}", 303)


def _refused(request: Request, definition, back: str):
    """A redirect with the reason when the user may not export the report's module."""
    site, user = request.app.state.site, request.state.user
    refusal = exporting.export_refusal(site, user, definition.module)
    if refusal is None:
        return None
    flash(request, refusal, "error")
    return RedirectResponse(back, 303)


def download(content: bytes, name: str, media_type: str) -> Response:
    """A file download; a name beyond ASCII travels as RFC 5987's ``filename*``."""
    plain = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f"attachment; filename=\"{plain}\"; "
                               f"filename*=UTF-8''{quote(name)}",
        "Cache-Control": "no-store"})


@page()
def runs_page(request: Request, form):
    site = request.app.state.site
    report = _report(request)
    back = f"/reports/{report['id']}/runs"
    if form is not None:
        return _save_now(request, report, form, back)
    response = request.app.state.templates.render(
        request, "runs_list.html", report=report, runs=runs.listed(site, report["id"]),
        formats=FORMAT_LABELS, kept_days=runs.kept_days(site),
        chosen=report.get("schedule_format") or "xlsx")
    response.headers["Cache-Control"] = "no-store"
    return response


def _save_now(request: Request, report: dict, form, back: str):
    from plugins.reports import scheduling
    from plugins.reports.compiler import ReportRefused

    site, user = request.app.state.site, request.state.user
    chosen = str(form.get("format") or "xlsx")
    if chosen not in runs.FORMATS:
        flash(request, Message(N_("%(value)s is not a format: choose %(list)s"),
                               value=repr(chosen), list=", ".join(runs.FORMATS)), "error")
        return RedirectResponse(back, 303)
    definition, refused = _definition(request, report)
    if refused is not None:
        return refused
    refused = _refused(request, definition, back)
    if refused is not None:
        return refused
    try:
        made = scheduling.make(site, report, definition, user, request.state.fmt, chosen)
    except ReportRefused as exc:
        flash(request, Message(N_("You may not run reports on %(module)s, which this report "
                                  "reads."), module=exc.module_label), "error")
        return RedirectResponse(back, 303)
    runs.save_manual(site, report, user, made)
    flash(request, Message(N_("The run was saved (%(records)s records)."),
                           records=request.state.fmt.number(made.rows)), "info")
    return RedirectResponse(back, 303)


@page()
def run_file(request: Request, form):
    site = request.app.state.site
    report = _report(request)
    found = runs.get(site, report["id"], request.path_params["run_id"])
    if found is None or not found["content"]:
        raise HTTPException(404)
    return download(bytes(found["content"]), found["filename"] or f"report.{found['format']}",
                    runs.MEDIA_TYPES.get(found["format"], "application/octet-stream"))


@page()
def export_pdf(request: Request, form):
    from plugins.reports import pdf
    from plugins.reports.compiler import ReportRefused

    site, user = request.app.state.site, request.state.user
    report = _report(request)
    back = f"/reports/{report['id']}"
    definition, refused = _definition(request, report)
    if refused is not None:
        return refused
    refused = _refused(request, definition, back)
    if refused is not None:
        return refused
    fmt = request.state.fmt
    try:
        content = pdf.to_pdf(site, definition, user, fmt, str(report.get("name") or "Report"))
    except ReportRefused as exc:
        flash(request, Message(N_("You may not run reports on %(module)s, which this report "
                                  "reads."), module=exc.module_label), "error")
        return RedirectResponse(back, 303)
    return download(content, runs.filename(report, "pdf", now().astimezone(fmt.tz)),
                    runs.MEDIA_TYPES["pdf"])


def routes() -> list[Route]:
    return [Route("/reports/{id}/runs", runs_page, methods=["GET", "POST"]),
            Route("/reports/{id}/runs/{run_id}", run_file),
            Route("/reports/{id}/export.pdf", export_pdf)]
