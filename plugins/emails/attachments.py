"""An email's **attachments**: any number of files per email, received (fetched messages'
parts) or sent (composed ones), inline images included.

Contract:

- **Stored** in the site's file store (``core.web.uploads.store``: a random directory per
  file, the last part of the name — ``../../etc/passwd`` becomes ``<key>/passwd``), listed in
  ``emails_attachments`` (email, key, name, size, content type, Content-ID of an inline
  image, whether it is inline).
- **Checked before anything is stored**: each file's size against the site's limit
  (``emails: {max_attachment_mb: N}`` in the site's config, ``DEFAULT_MAX_MB`` otherwise):
  ``check`` raises ValidationError naming the file; ``add`` stores within the caller's
  transaction and returns the keys, which the caller removes (``discard``) if that
  transaction fails, so no file outlives a failed write.
- **Served** only to a user who may see the email (read through the record service with the
  reader: 404 otherwise, no bytes), as ``core.web.uploads`` serves every file: a raster
  image inline, anything else an opaque download, never run by the browser.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.routing import Route

from core.kernel.database import ID
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.fields import UTCDateTime
from core.web import uploads
from core.web.pages import page

TABLE = "emails_attachments"
EMAILS = "emails"
DEFAULT_MAX_MB = 25


@dataclass(frozen=True)
class File:
    name: str
    data: bytes
    content_type: str = "application/octet-stream"
    content_id: str | None = None  # an inline image's Content-ID (without <>)
    inline: bool = False


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("email_id", ID, nullable=False, index=True),
             sa.Column("file_key", sa.String(200), nullable=False),
             sa.Column("name", sa.String(100), nullable=False),
             sa.Column("size", sa.Integer, nullable=False),
             sa.Column("content_type", sa.String(100), nullable=False),
             sa.Column("content_id", sa.String(255)),
             sa.Column("inline", sa.Boolean, nullable=False, default=False),
             sa.Column("created_at", UTCDateTime(), nullable=False))


def max_bytes(site) -> int:
    options = site.config.get("emails") or {}
    return int(float(options.get("max_attachment_mb", DEFAULT_MAX_MB)) * 2**20)


def check(site, files: list[File]) -> None:
    """ValidationError naming the first file over the site's limit, before anything is
    stored."""
    limit = max_bytes(site)
    for f in files:
        if len(f.data) > limit:
            raise ValidationError({"attachments": Message(
                N_("%(file)s is larger than %(size)s MB, the largest file this site accepts; "
                   "nothing was saved."), file=uploads.safe_name(f.name),
                size=f"{limit / 2**20:g}")})


def _store(site) -> Path:
    return site.folder / "files"


def add(site, conn, email_id: str, files: list[File]) -> list[str]:
    """Store ``files`` (checked first) and list them under the email, in ``conn``'s
    transaction; the keys stored, for ``discard`` if that transaction fails."""
    if not files:
        return []
    check(site, files)
    keys = [uploads.store(_store(site), f.name or "file", f.data) for f in files]
    now = dt.datetime.now(dt.UTC)
    conn.execute(sa.insert(site.tables.tables[TABLE]), [
        {"email_id": str(email_id), "file_key": key, "name": uploads.safe_name(f.name or ""),
         "size": len(f.data), "content_type": (f.content_type or "")[:100] or uploads.SAFE_TYPE,
         "content_id": (f.content_id or None) and f.content_id[:255], "inline": f.inline,
         "created_at": now} for key, f in zip(keys, files, strict=True)])
    return keys


def discard(site, keys: list[str]) -> None:
    """Remove stored files no row points at any more (a failed transaction's)."""
    for key in keys:
        path = uploads.stored_file(_store(site), key)
        if path is not None:
            path.unlink()
            if not any(path.parent.iterdir()):
                path.parent.rmdir()


def listed(site, email_ids: list[str]) -> dict[str, list[dict]]:
    """email id -> its attachments (id, name, size, content type, content id, inline), in
    one statement."""
    if not email_ids:
        return {}
    table = site.tables.tables[TABLE]
    out: dict[str, list[dict]] = {}
    with site.engine.connect() as conn:
        for row in conn.execute(sa.select(table).where(table.c.email_id.in_(
                [str(i) for i in email_ids])).order_by(table.c.id)).mappings():
            out.setdefault(row["email_id"], []).append(dict(row))
    return out


def read(site, row: dict) -> bytes:
    """A listed attachment's bytes (to send it on: a forward, the outbound queue)."""
    path = uploads.stored_file(_store(site), row["file_key"])
    if path is None:
        raise FileNotFoundError(row["file_key"])
    return path.read_bytes()


@page()
def file_view(request, form):
    """``GET /email/{email_id}/attachments/{attachment}``: the file, to a reader who may
    see the email."""
    site, user = request.app.state.site, request.state.user
    email = site.records.get(EMAILS, request.path_params["email_id"], user)
    table = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(
            table.c.id == int(request.path_params["attachment"]),
            table.c.email_id == email["id"])).first()
    path = uploads.stored_file(_store(site), row.file_key if row else None)
    if path is None:
        raise HTTPException(404, Message(N_("There is no such file.")))
    return uploads.file_response(path, row.name)


def jinja(site, env) -> None:
    """The email page's attachments card (``detail_cards``), when it has some."""
    def data(module, record, user):
        if module is not site.registry.modules.get(EMAILS):
            return None
        files = listed(site, [record["id"]]).get(record["id"])
        return {"files": files} if files else None

    cards = env.globals.setdefault("detail_cards", [])
    cards[:] = [c for c in cards if c["template"] != "email_attachments.html"]
    cards.append({"template": "email_attachments.html", "data": data})


routes = [Route("/email/{email_id}/attachments/{attachment:int}", file_view)]
