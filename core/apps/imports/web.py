"""The import wizard and Manage Imported Data.

- ``GET /import``: the importable modules in the order an import should follow (a
  module after those its records point to, as the guide's Users → Accounts → Contacts
  → ... → Notes), each marked done once an import of it finished, the next one offered.
- ``GET|POST /import/<module>/start``: step 1, the file (CSV or XLSX), who wrote it
  (any file, SugarCRM CE 6.5, SuiteCRM 7) and how it writes dates and numbers. A request
  announcing more than the size limit is turned away before its body is read.
- ``GET|POST /import/session/<id>/map``: step 2, the mapping screen: each column's
  header, two sample values and the field it fills (proposed automatically, or from a
  saved mapping), the duplicate and update-mode options, and a name to save the mapping
  under. Posting it queues the import.
- ``GET /import/session/<id>``: the progress bar (``/status.json``, polled by
  ``/static/imports.js``), then the summary with every skipped row and its reason,
  ``/skipped.csv`` (the original rows plus an Error column), and the next module.
- ``GET /imports``, ``GET /imports/<id>``: import sessions, and a session's records;
  ``POST /imports/<id>/accept`` and ``/reject`` (whole session or ticked records).
"""
from __future__ import annotations

import io
import tempfile
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from core.apps.imports import files, manage, run
from core.apps.imports import mapping as mappings
from core.kernel.errors import N_, CrbmError, Message, NotFoundError
from core.kernel.records import Query
from core.web import csv_export, views
from core.web.pages import page
from core.web.templating import flash

LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "es_ES", "it_IT", "nl_NL", "fi_FI", "sv_SE",
           "pt_BR", "ja_JP")
SHOWN_SKIPS = 200
LIST_CHOICES = 100


def _site(request: Request):
    return request.app.state.site


def import_order(site, user) -> list:
    """The modules the user may import, each after the modules its related fields point
    to (stable in the registry's order; a cycle is broken where it is met)."""
    modules = [m for m in site.registry.modules.values()
               if m.features.get("importable") and site.access.can(user, m, "import")]
    names = {m.name for m in modules}
    needs = {m.name: {t for f in m.fields.values() if f.type.name == "related"
                      for t in f.spec.get("modules") or [f.spec["module"]]
                      if t in names and t != m.name} for m in modules}
    ordered: list = []
    left = list(modules)
    while left:
        ready = next((m for m in left if not needs[m.name] - {o.name for o in ordered}), left[0])
        ordered.append(ready)
        left.remove(ready)
    return ordered


@page()
def modules_page(request: Request, form):
    site, user = _site(request), request.state.user
    order = import_order(site, user)
    done = {s["module"] for s in manage.sessions(site, user)
            if s["status"] in ("done", "accepted")}
    following = next((m for m in order if m.name not in done), None)
    return request.app.state.templates.render(
        request, "import_modules.html", modules=order, done=done, following=following)


def _importable(request: Request):
    module = views._module(request)
    try:
        run.check_start(_site(request), request.state.user, module.name)
    except run.ImportRefused as exc:
        raise HTTPException(403, exc.args[0]) from None
    return module


def too_big(endpoint):
    """Turn away an upload whose announced size is over the limit, unread."""
    async def checked(request: Request):
        length = request.headers.get("content-length", "")
        if request.method == "POST" and length.isdigit() and \
                int(length) > run.max_bytes(_site(request)) + 64 * 1024:
            module = request.path_params["module"]
            return RedirectResponse(f"/import/{module}/start?too_big={int(length) // 2**20}",
                                    303, headers={"Connection": "close"})
        return await endpoint(request)
    return checked


@page()
def upload_page(request: Request, form):
    module = _importable(request)
    site, user = _site(request), request.state.user
    error, status = None, 200
    if request.query_params.get("too_big"):
        error, status = Message(N_("The file is %(size)s MB; files up to %(limit)s MB can "
                                   "be imported."), size=request.query_params["too_big"],
                                limit=run.max_bytes(site) // 2**20), 413
    upload = form.get("file") if form is not None else None
    if form is not None and hasattr(upload, "file"):  # the list's "Import" posts no file
        suffix = Path(upload.filename or "").suffix.lower()[:10]
        with tempfile.NamedTemporaryFile(dir=site.folder, suffix=suffix, delete=False) as out:
            copied = _copy(upload.file, out, run.max_bytes(site))
        try:
            if not copied:
                raise files.FileProblem(Message(N_("The file is %(size)s MB; files up to "
                                                   "%(limit)s MB can be imported."),
                                                size=">", limit=run.max_bytes(site) // 2**20))
            session_id = run.draft(site, user, module.name, Path(out.name),
                                   upload.filename or "upload")
        except CrbmError as exc:
            Path(out.name).unlink(missing_ok=True)
            error, status = exc.args[0], 422
        else:
            options = {k: str(form.get(k, "")) for k in ("source", "locale")}
            return RedirectResponse(f"/import/session/{session_id}/map?"
                                    f"source={options['source']}&locale={options['locale']}",
                                    303)
    elif form is not None and "source" in form:
        error, status = Message(N_("Choose a file to import.")), 422
    return request.app.state.templates.render(
        request, "import_upload.html", status=status, module=module, error=error,
        sources={k: v for k, v in mappings.sources().items() if k != "vcard"},
        locales=locale_names(request.state.fmt), limit=run.max_bytes(site) // 2**20,
        saved=mappings.saved(site, module.name))


def _copy(source, out, limit: int) -> bool:
    """Copy an upload in chunks; False (and stop) once it passes ``limit`` bytes."""
    size = 0
    while chunk := source.read(1024 * 1024):
        size += len(chunk)
        if size > limit:
            return False
        out.write(chunk)
    return True


def _session(request: Request, *, own: bool = False) -> dict:
    site, user = _site(request), request.state.user
    try:
        found = manage.session(site, user, request.path_params["id"])
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such import."))) from None
    if own and found["user_id"] != user.id:
        raise HTTPException(404, Message(N_("There is no such import.")))
    return found


@page()
def map_page(request: Request, form):
    session = _session(request, own=True)
    site, user = _site(request), request.state.user
    if session["status"] != "draft":
        return RedirectResponse(f"/import/session/{session['id']}", 303)
    module = site.registry.module(session["module"])
    header = session["header"]
    params = form if form is not None else request.query_params
    table = files.open_table(run.kept_file(site, session["id"]), max_bytes=run.max_bytes(site))
    source = str(params.get("source") or mappings.CUSTOM)
    source = source if source in mappings.sources() else mappings.CUSTOM
    if table.kind == "vcard":
        source = "vcard"  # cards: their property names, whatever was chosen
    chosen = str(params.get("mapping") or "")
    found = mappings.find_saved(site, module.name, chosen) if chosen else None
    defaults = dict(found["options"]) if found else {}
    if found:
        columns = mappings.apply_saved(found, header)
    else:
        columns = mappings.automatic(site, module, header, source)
    error = None
    if form is not None and form.get("step") == "import":
        columns = [str(form.get(f"column_{i}") or "") or None for i in range(len(header))]
        options = run.Options(
            source=source, locale=_choice(form.get("locale"), LOCALES, "en_US"),
            timezone=request.state.fmt.prefs.timezone,
            duplicates=_choice(form.get("duplicates"), run.DUPLICATE_CHOICES, "import"),
            match_on=str(form.get("match_on") or "") or None,
            add_to=str(form.get("add_to") or "") or None)
        name = str(form.get("save_as") or "").strip()[:100]
        try:
            run.begin(site, user, session["id"], columns, options)
        except CrbmError as exc:
            error = exc.args[0]
        else:
            if name:
                mappings.save(site, module.name, name, header, columns,
                              {"locale": options.locale, "duplicates": options.duplicates,
                               "match_on": options.match_on, "source": source}, user.id)
            return RedirectResponse(f"/import/session/{session['id']}", 303)
    samples = table.samples(2)
    rows = [{"index": i, "header": h, "field": columns[i] if i < len(columns) else None,
             "samples": [s[i] if i < len(s) else "" for s in samples]}
            for i, h in enumerate(header)]
    from core.apps.duplicates.keys import plan_of
    fields = sorted(mappings.importable_fields(module), key=lambda f: str(f.label).casefold())
    return request.app.state.templates.render(
        request, "import_map.html", status=422 if error else 200, session=session,
        module=module, rows=rows, fields=fields, error=error, source=source,
        saved=mappings.saved(site, module.name), chosen=chosen,
        locales=locale_names(request.state.fmt),
        locale=_choice(params.get("locale") or defaults.get("locale"), LOCALES, "en_US"),
        duplicates=defaults.get("duplicates", "import"), match_on=defaults.get("match_on"),
        has_duplicate_rules=plan_of(module) is not None,
        match_fields=[f for f in fields if f.name == "id" or f.spec.get("indexed")
                      or f.spec.get("unique") or f.name == module.name_field],
        mixed=table.mixed_lines, lists=_lists(site, user, module))


def _lists(site, user, module) -> list[tuple[str, list[dict]]]:
    """(label, records) of each many-to-many relationship the imported records may be
    added to (a contact's target lists): the first LIST_CHOICES records, by name."""
    out = []
    for name, other_name in run.lists_of(module).items():
        other = site.registry.modules.get(other_name)
        if other is None or not other.name_field or not site.access.can(user, other, "view"):
            continue
        records = site.records.list(other.name, user, Query(
            fields=["id", other.name_field], sort=other.name_field, limit=LIST_CHOICES))
        if records:
            label = module.relationships[name].get("label") or other.label
            out.append((name, label, [{"id": r["id"], "name": r[other.name_field]}
                                      for r in records]))
    return out


def locale_names(fmt) -> list[tuple[str, str]]:
    """(code, name in the reader's language): "de_DE" -> "Deutsch (Deutschland)"/"German
    (Germany)", the way people recognize how their spreadsheet writes dates."""
    from babel import Locale
    return [(code, Locale.parse(code).get_display_name(fmt.locale)) for code in LOCALES]


def _choice(value, allowed, default: str) -> str:
    return str(value) if value in allowed else default


@page()
def session_page(request: Request, form):
    session = _session(request)
    site, user = _site(request), request.state.user
    module = site.registry.modules.get(session["module"])
    order = import_order(site, user)
    following = None
    if module is not None and module in order:
        later = order[order.index(module) + 1:]
        following = later[0] if later else None
    skipped = manage.skipped(site, user, session["id"])[:SHOWN_SKIPS]
    fmt = request.state.fmt
    for row in skipped:
        row["text"] = run.reason_text(row["reason"], fmt.gettext)
    return request.app.state.templates.render(
        request, "import_session.html", session=session, module=module, skipped=skipped,
        shown=SHOWN_SKIPS, following=following)


@page()
def status_json(request: Request, form):
    session = _session(request)
    return JSONResponse({k: session[k] for k in ("status", "total", "processed", "created",
                                                 "updated", "skipped")})


@page()
def skipped_csv(request: Request, form):
    session = _session(request)
    site, user = _site(request), request.state.user
    rows = manage.skipped(site, user, session["id"])
    fmt = request.state.fmt
    buffer = io.StringIO()
    writer = csv_export.writer(buffer)
    writer.writerow([fmt.gettext("Line"), *session["header"], fmt.gettext("Error")])
    for row in rows:
        writer.writerow([row["line_no"], *row["cells"],
                         run.reason_text(row["reason"], fmt.gettext)])
    name = f"{Path(session['file_name']).stem}-skipped.csv"
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@page()
def sessions_page(request: Request, form):
    site, user = _site(request), request.state.user
    return request.app.state.templates.render(
        request, "imports.html", sessions=manage.sessions(site, user),
        modules=site.registry.modules)


@page()
def decide(request: Request, form):
    session = _session(request)
    site, user = _site(request), request.state.user
    ids = [str(i) for i in form.getlist("ids")] or None
    action = request.path_params["action"]
    if action not in ("accept", "reject"):
        raise HTTPException(404, Message(N_("There is no such import.")))
    try:
        if action == "accept":
            count = manage.accept(site, user, session["id"], ids)
            flash(request, Message(N_("%(count)s records accepted."), count=count))
        else:
            count = manage.reject(site, user, session["id"], ids)
            flash(request, Message(N_("%(count)s records deleted or restored."), count=count))
    except CrbmError as exc:
        flash(request, Message(N_("Nothing was changed: %(reason)s"), reason=str(exc)), "error")
    return RedirectResponse(f"/imports/{session['id']}", 303)


@page()
def manage_page(request: Request, form):
    session = _session(request)
    site, user = _site(request), request.state.user
    return request.app.state.templates.render(
        request, "imports_session.html", session=session,
        records=manage.records(site, user, session["id"]), modules=site.registry.modules)


routes = [
    Route("/import", modules_page),
    Route("/import/{module}/start", too_big(upload_page), methods=["GET", "POST"]),
    Route("/import/session/{id}/map", map_page, methods=["GET", "POST"]),
    Route("/import/session/{id}/status.json", status_json),
    Route("/import/session/{id}/skipped.csv", skipped_csv),
    Route("/import/session/{id}", session_page),
    Route("/imports", sessions_page),
    Route("/imports/{id}", manage_page),
    Route("/imports/{id}/{action:str}", decide, methods=["POST"]),
]
