"""The documents' pages: their files served with access control, a new revision uploaded, a
file dropped on a record's Documents subpanel.

Contract:

- **Downloads** — ``/m/library_documents/<id>/file/file`` (the latest revision, the link the
  document's page shows) and ``/m/document_revisions/<id>/file/file`` (any revision) — are
  answered only to a user who may see the document **and every record it is related to**
  (a document attached to a confidential opportunity is as confidential as it), decided in
  one statement (``readable``: the document's access predicate and, per module that opts
  in, a linked record the user may not view). Anyone else gets the same 404 as for a
  missing file: no bytes, no hint. These routes come before the generic file route, which
  checks only the record.
- **Uploads** — ``POST /m/library_documents/<id>/revisions`` (file + change note: the next revision)
  and ``POST /m/<module>/<id>/drop-document`` (each file dropped becomes a document with
  the admin's default category and status, revision 1, related to the record) — read the
  request body through ``_limited``: a body over the site's limit (``files.settings``) is
  refused with 413 as soon as its declared length or its bytes pass it, before the form is
  parsed, so a 100 MB upload is neither held in memory nor spooled to disk. Files are
  copied to the store in chunks, checked (``files.check``) before any record is written;
  a refusal stores nothing.
"""
from __future__ import annotations

import json
import secrets

import sqlalchemy as sa
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.web import uploads
from core.web.pages import page
from plugins.documents import files
from plugins.documents.plugin import DOCUMENTS, REVISIONS, _discard, opted_in

MAX_FILES = 10  # per drop
NO_FILE = N_("There is no such file.")


# -- who may read a document's files --------------------------------------------------------

def readable(site, user, document_id: str) -> bool:
    """Whether ``user`` may see the document and every record it is related to."""
    registry = site.registry
    documents = registry.module(DOCUMENTS)
    table = site.records.table(documents)
    doc = str(document_id)
    visible = sa.select(sa.literal(1)).where(
        table.c.id == doc, table.c.deleted.is_(False),
        site.access.predicate(user, documents, "view", table))
    hidden = []
    for module, relationship in opted_in(registry):
        link = site.tables.tables[module.link_table(relationship)]
        parents = site.records.table(module)
        mine = f"{module.name}_id"
        hidden.append(sa.select(sa.literal(1)).select_from(
            link.join(parents, parents.c.id == link.c[mine])).where(
            link.c[f"{DOCUMENTS}_id"] == doc, parents.c.deleted.is_(False),
            sa.not_(site.access.predicate(user, module, "view", parents))))
    stmt = sa.select(sa.exists(visible).label("ok"),
                     *(sa.exists(h).label(f"h{i}") for i, h in enumerate(hidden)))
    with site.engine.connect() as conn:
        row = conn.execute(stmt).one()
    return bool(row[0]) and not any(row[1:])


def _serve(site, user, document_id, key, name):
    if not document_id or not readable(site, user, document_id):
        raise HTTPException(404, Message(NO_FILE))
    path = uploads.stored_file(site.folder / "files", key)
    if path is None:
        raise HTTPException(404, Message(NO_FILE))
    return uploads.file_response(path, name)


def _row(site, module_name: str, record_id: str, columns: tuple[str, ...]):
    table = site.records.table(site.registry.module(module_name))
    with site.engine.connect() as conn:
        return conn.execute(sa.select(*(table.c[c] for c in columns)).where(
            table.c.id == str(record_id), table.c.deleted.is_(False))).first()


@page()
def document_file(request: Request, form):
    """``GET /m/library_documents/<id>/file/file``: the latest revision's file."""
    site, user = request.app.state.site, request.state.user
    if request.path_params["field"] != "file":
        raise HTTPException(404, Message(NO_FILE))
    row = _row(site, DOCUMENTS, request.path_params["record_id"], ("id", "file", "file_name"))
    return _serve(site, user, row and row.id, row and row.file,
                  row and (row.file_name or "file"))


@page()
def revision_file(request: Request, form):
    """``GET /m/document_revisions/<id>/file/file``: one revision's file."""
    site, user = request.app.state.site, request.state.user
    if request.path_params["field"] != "file":
        raise HTTPException(404, Message(NO_FILE))
    row = _row(site, REVISIONS, request.path_params["record_id"], ("document_id", "file", "name"))
    return _serve(site, user, row and row.document_id, row and row.file, row and row.name)


# -- uploads ---------------------------------------------------------------------------------

def _limited(endpoint):
    """Refuse a request body over the site's document limit (plus room for the form's other
    fields), by its declared length or as its chunks arrive, before the form is parsed."""

    async def limited(request: Request):
        current = files.settings(request.app.state.site)
        most = current.max_bytes + 64 * 1024

        def too_large():
            return HTTPException(413, Message(
                N_("The file is larger than %(size)s MB, the largest document this site "
                   "accepts; nothing was saved."), size=f"{current.max_upload_mb:g}"))

        declared = request.headers.get("content-length", "")
        received = 0

        async def receive():
            nonlocal received
            message = await request.receive()
            received += len(message.get("body", b""))
            if received > most:
                raise too_large()
            return message

        try:
            if declared.isdigit() and int(declared) > most:
                raise too_large()
            return await endpoint(Request(request.scope, receive))
        except HTTPException as exc:
            if exc.status_code != 413 or "json" not in request.headers.get("accept", ""):
                raise
            text = await run_in_threadpool(_in_language, request, exc.detail)
            return JSONResponse({"error": text}, status_code=413)

    return limited


def _in_language(request: Request, message) -> str:
    from core.web.pages import load_user
    from core.web.templating import formatter

    user = load_user(request)
    gettext = formatter(user.preferences, request.app.state.site.locale_dirs).gettext \
        if user is not None else (lambda text: text)
    return _said(gettext, message)


def _said(gettext, message) -> str:
    if not isinstance(message, Message):
        return str(message)
    text = gettext(message.template)
    return text % message.params if message.params else text


def store_upload(site, upload) -> str:
    """Copy one upload into the file store in chunks, checked (size, programs): its key.
    ValidationError naming the file otherwise, and nothing kept."""
    name = uploads.safe_name(upload.filename or "")
    current = files.settings(site)
    limit = current.max_bytes
    key = f"{secrets.token_hex(8)}/{name}"
    target = site.folder / "files" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    copied = 0
    try:
        with open(target, "wb") as out:
            while chunk := upload.file.read(1024 * 1024):
                copied += len(chunk)
                if copied > limit:
                    raise files.too_large(name, current)
                out.write(chunk)
        files.check(site, name, target, copied)
    except BaseException:
        _discard(site.folder / "files", key)
        raise
    return key


def _uploads(form) -> list:
    found = [f for f in form.getlist("file") if hasattr(f, "filename") and f.filename]
    if not found:
        raise ValidationError({"file": Message(N_("Choose a file first."))})
    if len(found) > MAX_FILES:
        raise ValidationError({"file": Message(N_("At most %(n)s files at once."), n=MAX_FILES)})
    return found


def _refused(request: Request, exc: ValidationError, back: str):
    said = "; ".join(_said(request.state.fmt.gettext, m) for m in exc.errors.values())
    if "json" in request.headers.get("accept", ""):
        return JSONResponse({"error": said}, status_code=400)
    from core.web.templating import flash

    flash(request, said, "error")
    return RedirectResponse(back, status_code=303)


@page()
def new_revision(request: Request, form):
    """``POST /m/library_documents/<id>/revisions``: a new file for a document one may edit."""
    site, user = request.app.state.site, request.state.user
    document_id = request.path_params["record_id"]
    rights = site.records.permissions(DOCUMENTS, document_id, user, ("view", "edit"))
    if not rights["view"] or not readable(site, user, document_id):
        raise NotFoundError(f"no document with id {document_id}")
    if not rights["edit"]:
        raise HTTPException(403, Message(N_("You may not change this document.")))
    back = f"/m/{DOCUMENTS}/{document_id}"
    key = None
    try:
        [upload] = _uploads(form)[:1]
        key = store_upload(site, upload)
        note = " ".join(str(form.get("change_note") or "").split())[:255] or None
        site.records.update(DOCUMENTS, document_id, {"file": key, "change_note": note}, user)
    except ValidationError as exc:
        if key:
            _discard(site.folder / "files", key)
        return _refused(request, exc, back + "#document-revisions")
    if "json" in request.headers.get("accept", ""):
        return JSONResponse({"document": document_id, "url": back})
    from core.web.templating import flash

    flash(request, N_("The new revision was saved."), "info")
    return RedirectResponse(back + "#document-revisions", status_code=303)


@page()
def drop_documents(request: Request, form):
    """``POST /m/<module>/<id>/drop-document``: each file becomes a document (the admin's
    defaults, revision 1) related to the record. JSON ``{"documents": [ids]}`` or
    ``{"error": "…"}`` (400); a plain form post goes back to the record."""
    site, user = request.app.state.site, request.state.user
    try:
        module = site.registry.module(request.path_params["module"])
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such module."))) from None
    relationship = _relationship(site, module)
    if relationship is None:
        raise HTTPException(404, Message(N_("There is no such module.")))
    record = site.records.get(module.name, request.path_params["record_id"], user)  # 404
    documents = site.registry.module(DOCUMENTS)
    if not site.access.can(user, documents, "edit"):
        raise HTTPException(403, Message(N_("You may not create documents.")))
    back = f"/m/{module.name}/{record['id']}#sub-{relationship}"
    defaults = files.settings(site)
    keys: list[str] = []
    try:
        for upload in _uploads(form):
            keys.append(store_upload(site, upload))
        link = site.tables.tables[module.link_table(relationship)]
        made = []
        with site.engine.begin() as conn:
            for key in keys:
                values = {"name": key.rsplit("/", 1)[-1], "file": key,
                          "status": defaults.default_status}
                if defaults.default_category:
                    values["category"] = defaults.default_category
                made.append(site.records.create(DOCUMENTS, values, user, connection=conn)["id"])
            conn.execute(sa.insert(link), [
                {f"{module.name}_id": str(record["id"]), f"{DOCUMENTS}_id": doc,
                 "created_at": _now(), "created_by": str(user.id)}
                for doc in made])
    except ValidationError as exc:
        for key in keys:
            _discard(site.folder / "files", key)
        return _refused(request, exc, back)
    except BaseException:
        for key in keys:
            _discard(site.folder / "files", key)
        raise
    if "json" in request.headers.get("accept", ""):
        return JSONResponse({"documents": made})
    from core.web.templating import flash

    flash(request, Message(N_("%(n)s documents were added."), n=len(made)), "info")
    return RedirectResponse(back, status_code=303)


def _now():
    from core.kernel.records import now

    return now()


def _relationship(site, module) -> str | None:
    return next((name for m, name in opted_in(site.registry) if m is module), None)


@page()
def no_new_revision(request: Request, form):
    """``/m/document_revisions/new``: revisions come from a document's new file; the form
    is not offered (back to the documents, saying so)."""
    from core.web.templating import flash

    flash(request, N_("Revisions are made by uploading a new file to the document; they "
                      "are not changed."), "info")
    return RedirectResponse(f"/m/{DOCUMENTS}", status_code=303)


routes = [
    Route(f"/m/{REVISIONS}/new", no_new_revision, methods=["GET", "POST"]),
    Route(f"/m/{DOCUMENTS}/{{record_id}}/file/{{field}}", document_file),
    Route("/m/document_revisions/{record_id}/file/{field}", revision_file),
    Route(f"/m/{DOCUMENTS}/{{record_id}}/revisions", _limited(new_revision), methods=["POST"]),
    Route("/m/{module}/{record_id}/drop-document", _limited(drop_documents), methods=["POST"]),
]


# -- the cards on record pages ---------------------------------------------------------------

def revisions_of(site, document_id: str) -> list[dict]:
    table = site.records.table(site.registry.module(REVISIONS))
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(table.c.id, table.c.revision, table.c.name, table.c.file_size,
                      table.c.mime_type, table.c.change_note, table.c.uploaded_by,
                      table.c.created_at)
            .where(table.c.document_id == str(document_id), table.c.deleted.is_(False))
            .order_by(table.c.revision.desc())).mappings()]


def _names(site, rows: list[dict]) -> list[dict]:
    """The uploaders' names on the revisions (one statement)."""
    ids = {r["uploaded_by"] for r in rows if r["uploaded_by"]}
    if not ids:
        return rows
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        names = {str(u.id): u.display_name or u.username for u in conn.execute(
            sa.select(users.c.id, users.c.display_name, users.c.username)
            .where(users.c.id.in_(ids)))}
    return [{**r, "uploader": names.get(str(r["uploaded_by"]), "")} for r in rows]


def jinja(site, env) -> None:
    """The document page's revisions card (every revision, each downloadable; the upload
    form) and, on the page of a record whose module opts in, the drop card (a plain form,
    and the script that makes the Documents subpanel a drop target)."""
    def revisions(module, record, user):
        if module is not site.registry.modules.get(DOCUMENTS):
            return None
        return {"revisions": _names(site, revisions_of(site, record["id"])),
                "limit_mb": f"{files.settings(site).max_upload_mb:g}"}

    def drop(module, record, user):
        relationship = _relationship(site, module)
        if relationship is None or not site.access.can(
                user, site.registry.module(DOCUMENTS), "edit"):
            return None
        current = files.settings(site)
        limit = current.max_bytes
        return {"url": f"/m/{module.name}/{record['id']}/drop-document",
                "panel": f"sub-{relationship}", "limit_bytes": limit,
                "limit_mb": f"{current.max_upload_mb:g}", "config": json.dumps(
                    {"url": f"/m/{module.name}/{record['id']}/drop-document",
                     "panel": f"sub-{relationship}", "limit": limit})}

    cards = env.globals.setdefault("detail_cards", [])
    mine = ("document_revisions_card.html", "document_drop_card.html")
    cards[:] = [c for c in cards if c["template"] not in mine]
    cards.append({"template": mine[0], "data": revisions})
    cards.append({"template": mine[1], "data": drop})
