"""A note's **attachments**: any number of files per note, and a file dropped on a record's
History panel becoming a note about that record with the file attached (user guide: "drag
and drop a file onto the History subpanel to create a note").

Contract:

- **Stored** in the site's file store (``core.web.uploads.store``: a random directory per
  file, the last part of the user's name for it — ``../../etc/passwd`` is stored as
  ``<key>/passwd`` inside the store), listed in ``activities_note_attachments`` (note,
  key, name, size, content type, who, when).
- **Checked before anything is stored**: each file's size against the site's limit
  (``activities: {max_attachment_mb: N}`` in the site's config, ``DEFAULT_MAX_MB``
  otherwise) and its content, sniffed from its first bytes — never the browser's type or
  the name: programs (Windows, Linux, macOS executables) are refused; the type recorded is
  the sniffed one. A refused file names itself and the reason; no note, no file is kept.
- **Served** only to a user who may see the note (the note read through the record
  service with the reader: 404 otherwise, no bytes), as ``core.web.uploads`` serves every
  file: a raster image inline, anything else an opaque download, never run by the browser.
- Who may attach: a user who may edit the note (adding files to it), or who may see the
  record and create notes (a drop).
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from core.kernel.database import ID
from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.kernel.fields import UTCDateTime
from core.web import uploads
from core.web.pages import page

TABLE = "activities_note_attachments"
NOTES = "notes"
DEFAULT_MAX_MB = 10
MAX_FILES = 10  # per drop or upload

# first bytes -> (content type, refused?) ; a program is refused, the rest recorded
_SIGNATURES = [
    (b"MZ", "application/x-msdownload", True),
    (b"\x7fELF", "application/x-executable", True),
    (b"\xcf\xfa\xed\xfe", "application/x-mach-binary", True),
    (b"\xfe\xed\xfa\xcf", "application/x-mach-binary", True),
    (b"\xca\xfe\xba\xbe", "application/x-mach-binary", True),
    (b"%PDF-", "application/pdf", False),
    (b"PK\x03\x04", "application/zip", False),
    (b"\xd0\xcf\x11\xe0", "application/x-ole-storage", False),  # old Office files
    (b"\x1f\x8b", "application/gzip", False),
]


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("note_id", ID, nullable=False, index=True),
             sa.Column("file_key", sa.String(200), nullable=False),
             sa.Column("name", sa.String(100), nullable=False),
             sa.Column("size", sa.Integer, nullable=False),
             sa.Column("content_type", sa.String(100), nullable=False),
             sa.Column("created_at", UTCDateTime(), nullable=False),
             sa.Column("created_by", ID))


def max_bytes(site) -> int:
    options = site.config.get("activities") or {}
    return int(float(options.get("max_attachment_mb", DEFAULT_MAX_MB)) * 2**20)


def sniff(data: bytes) -> tuple[str, bool]:
    """(content type, refused) from the content alone."""
    for magic, kind, refused in _SIGNATURES:
        if data.startswith(magic):
            return kind, refused
    if data.startswith(b"#!"):
        return "text/x-script", True
    image = uploads.raster_type(data, decode=False)
    if image:
        return image, False
    try:
        data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return uploads.SAFE_TYPE, False
    return "text/plain", False


def read_files(site, uploads_in) -> list[tuple[str, bytes, str]]:
    """(safe name, bytes, sniffed type) of each upload, all checked before any is kept:
    ValidationError naming the file and the reason otherwise."""
    limit, out = max_bytes(site), []
    for upload in uploads_in:
        name = uploads.safe_name(upload.filename or "")
        data = upload.file.read(limit + 1)
        if len(data) > limit:
            raise ValidationError({"file": Message(
                N_("%(file)s is larger than %(size)s MB, the largest file this site accepts; "
                   "nothing was saved."), file=name, size=f"{limit / 2**20:g}")})
        if not data:
            raise ValidationError({"file": Message(N_("%(file)s is empty; nothing was saved."),
                                                   file=name)})
        kind, refused = sniff(data)
        if refused:
            raise ValidationError({"file": Message(
                N_("%(file)s is a program; programs are not accepted as attachments. "
                   "Nothing was saved."), file=name)})
        out.append((name, data, kind))
    return out


def attach(site, note_id, files, user, values=None) -> str:
    """Store checked files and list them under the note — or, given ``values`` instead of
    a note, under a new note made of them, in the same transaction; the stored files go
    again if anything fails. The note's id."""
    store = site.folder / "files"
    keys = [uploads.store(store, name, data) for name, data, _ in files]
    table = site.tables.tables[TABLE]
    now = dt.datetime.now(dt.UTC)
    try:
        with site.engine.begin() as conn:
            if values is not None:
                note_id = site.records.create(NOTES, values, user, connection=conn)["id"]
            conn.execute(sa.insert(table), [
                {"note_id": str(note_id), "file_key": key, "name": name, "size": len(data),
                 "content_type": kind, "created_at": now, "created_by": str(user.id)}
                for key, (name, data, kind) in zip(keys, files, strict=True)])
    except Exception:
        for key in keys:
            _remove(store, key)
        raise
    return str(note_id)


def _remove(store: Path, key: str) -> None:
    path = (store / key).resolve()
    if store.resolve() in path.parents and path.is_file():
        path.unlink()
        path.parent.rmdir()


def listed(site, note_id: str) -> list[dict]:
    table = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(
            sa.select(table).where(table.c.note_id == str(note_id)).order_by(table.c.id))
            .mappings()]


def _error(request, exc: ValidationError, status: int = 400):
    said = "; ".join(_said(request, m) for m in exc.errors.values())
    return JSONResponse({"error": said}, status_code=status)


def _said(request, message) -> str:
    """A message in the user's language."""
    if not isinstance(message, Message):
        return str(message)
    text = request.state.fmt.gettext(message.template)
    return text % message.params if message.params else text


def _files(form) -> list:
    found = [f for f in form.getlist("file") if hasattr(f, "filename")]
    if not found:
        raise ValidationError({"file": Message(N_("Choose a file first."))})
    if len(found) > MAX_FILES:
        raise ValidationError({"file": Message(N_("At most %(n)s files at once."), n=MAX_FILES)})
    return found


@page()
def drop_view(request, form):
    """``POST /m/<module>/<id>/drop-note``: the files dropped on the record's History panel
    become one note about the record (named after the first file), with them attached.
    JSON: ``{"note": id}`` or ``{"error": "…"}`` (400)."""
    site, user = request.app.state.site, request.state.user
    try:
        module = site.registry.module(request.path_params["module"])
        notes = site.registry.module(NOTES)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such module."))) from None
    if not _notes_may_be_about(notes, module.name):
        raise HTTPException(404, Message(N_("There is no such module.")))
    record = site.records.get(module.name, request.path_params["record_id"], user)
    if not site.access.can(user, notes, "edit"):
        raise HTTPException(403, Message(N_("You may not create notes.")))
    try:
        files = read_files(site, _files(form))
        note_id = attach(site, None, files, user, values={
            "name": files[0][0], "parent_id": record["id"], "parent_type": module.name})
    except ValidationError as exc:
        return _error(request, exc)
    return JSONResponse({"note": note_id, "url": f"/m/{NOTES}/{note_id}"})


@page()
def add_view(request, form):
    """``POST /m/notes/<id>/attachments``: add files to a note one may edit (the form on
    the note's page; back to the page, or JSON for a script)."""
    site, user = request.app.state.site, request.state.user
    note_id = request.path_params["record_id"]
    rights = site.records.permissions(NOTES, note_id, user, ("view", "edit"))
    if not rights["view"]:
        raise NotFoundError(f"no note with id {note_id}")
    if not rights["edit"]:
        raise HTTPException(403, Message(N_("You may not change this note.")))
    try:
        attach(site, note_id, read_files(site, _files(form)), user)
    except ValidationError as exc:
        if "json" in request.headers.get("accept", ""):
            return _error(request, exc)
        from core.web.templating import flash
        flash(request, exc.errors["file"], "error")
    return RedirectResponse(f"/m/{NOTES}/{note_id}#attachments", status_code=303)


@page()
def file_view(request, form):
    """``GET /m/notes/<id>/attachments/<n>``: one attachment, to a reader of the note."""
    site, user = request.app.state.site, request.state.user
    note_id = request.path_params["record_id"]
    if not site.records.permissions(NOTES, note_id, user, ("view",))["view"]:
        raise NotFoundError(f"no note with id {note_id}")  # 404: no bytes, not even a hint
    table = site.tables.tables[TABLE]
    try:
        number = int(request.path_params["attachment"])
    except ValueError:
        number = -1
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == number,
                                                  table.c.note_id == note_id)).first()
    path = uploads.stored_file(site.folder / "files", row.file_key if row else None)
    if path is None:
        raise HTTPException(404, Message(N_("There is no such file.")))
    return uploads.file_response(path, row.name)


routes = [
    Route("/m/{module}/{record_id}/drop-note", drop_view, methods=["POST"]),
    Route("/m/notes/{record_id}/attachments", add_view, methods=["POST"]),
    Route("/m/notes/{record_id}/attachments/{attachment}", file_view),
]


def _notes_may_be_about(notes, module_name: str) -> bool:
    return module_name in (notes.fields["parent_id"].spec.get("modules") or ())


def jinja(site, env) -> None:
    """The note page's attachments card (``detail_cards``: a template and its data, None
    off notes' pages — one statement there) and the History panel's drop target
    (``history_drop``: the URL a dropped file is posted to, for modules notes may be
    about)."""
    def data(module, record, user):
        if module is not site.registry.modules.get(NOTES):
            return None
        return {"files": listed(site, record["id"]), "limit_mb": f"{max_bytes(site) / 2**20:g}"}

    def drop(module, record, user) -> str | None:
        notes = site.registry.modules.get(NOTES)
        if notes is None or not _notes_may_be_about(notes, module.name) or \
                not site.access.can(user, notes, "edit"):
            return None
        return f"/m/{module.name}/{record['id']}/drop-note"

    cards = env.globals.setdefault("detail_cards", [])
    cards[:] = [c for c in cards if c["template"] != "note_attachments.html"]
    cards.append({"template": "note_attachments.html", "data": data})
    env.globals["history_drop"] = drop
