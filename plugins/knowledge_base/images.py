"""An article's images: uploaded into the article, shown in its body, served only to its
readers.

Contract: ``POST /kb/articles/<id>/images`` (a user who may edit the article) takes PNG,
JPEG, GIF or WebP images only — checked by decoding them (``core.web.uploads.read_upload``:
SVG, which may carry script, and anything else refused, naming the file; the site's upload
size limit) — stores each in the file store, lists it in ``kb_article_images`` and appends
``<img src="/kb/images/<n>">`` to the article's body (a save like any other: it keeps the
previous body as a version). ``GET /kb/images/<n>`` serves the image inline, as its own
raster type with ``nosniff``, to a user who may see the article it belongs to; anyone
else, and a missing image, gets the same 404. The html field's sanitizer keeps the
relative ``src``, so the image shows wherever the body does.
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from markupsafe import escape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.database import ID
from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.fields import FieldError, UTCDateTime
from core.web import uploads
from core.web.pages import page
from plugins.knowledge_base.plugin import ARTICLES

TABLE = "kb_article_images"


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("article_id", ID, nullable=False, index=True),
             sa.Column("file_key", sa.String(200), nullable=False),
             sa.Column("name", sa.String(100), nullable=False),
             sa.Column("content_type", sa.String(100), nullable=False),
             sa.Column("size", sa.Integer, nullable=False),
             sa.Column("created_at", UTCDateTime(), nullable=False),
             sa.Column("created_by", ID))


def listed(site, article_id: str) -> list[dict]:
    table = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(
            table.c.article_id == str(article_id)).order_by(table.c.id)).mappings()]


@page()
def upload_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    article_id = request.path_params["record_id"]
    rights = site.records.permissions(ARTICLES, article_id, user, ("view", "edit"))
    if not rights["view"]:
        raise NotFoundError(f"no article with id {article_id}")
    if not rights["edit"]:
        raise HTTPException(403, Message(N_("You may not change this article.")))
    back = f"/m/{ARTICLES}/{article_id}#article-images"
    sent = [f for f in form.getlist("image") if hasattr(f, "filename") and f.filename]
    from core.web.templating import flash

    if not sent:
        flash(request, N_("Choose an image first."), "error")
        return RedirectResponse(back, status_code=303)
    checked = []
    for upload in sent[:10]:
        name = uploads.safe_name(upload.filename)
        try:
            data = uploads.read_upload(upload, image=True, label=name)
        except FieldError as exc:  # not a raster image (SVG...), or too large
            flash(request, exc.args[0] if exc.args else str(exc), "error")
            return RedirectResponse(back, status_code=303)
        checked.append((name, data, uploads.raster_type(data, decode=False)))
    store = site.folder / "files"
    keys = [uploads.store(store, name, data) for name, data, _ in checked]
    table = site.tables.tables[TABLE]
    try:
        with site.engine.begin() as conn:
            article = site.records.get(ARTICLES, article_id, user, connection=conn)
            tags = []
            for key, (name, data, kind) in zip(keys, checked, strict=True):
                number = conn.execute(sa.insert(table).values(
                    article_id=str(article_id), file_key=key, name=name, content_type=kind,
                    size=len(data), created_at=dt.datetime.now(dt.UTC),
                    created_by=str(user.id))).inserted_primary_key[0]
                tags.append(f'<p><img src="/kb/images/{number}" alt="{escape(name)}"></p>')
            site.records.update(ARTICLES, article_id,
                                {"body": (article.get("body") or "") + "".join(tags)}, user,
                                connection=conn)
    except Exception:
        for key in keys:
            path = uploads.stored_file(store, key)
            if path is not None:
                path.unlink()
        raise
    flash(request, N_("The image was added at the end of the article."), "info")
    return RedirectResponse(back, status_code=303)


@page()
def image_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    table = site.tables.tables[TABLE]
    try:
        number = int(request.path_params["image"])
    except ValueError:
        number = -1
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == number)).first()
    if row is None or not site.records.permissions(ARTICLES, row.article_id, user,
                                                   ("view",))["view"]:
        raise HTTPException(404, Message(N_("There is no such file.")))
    path = uploads.stored_file(site.folder / "files", row.file_key)
    if path is None:
        raise HTTPException(404, Message(N_("There is no such file.")))
    return uploads.file_response(path, row.name)


routes = [Route("/kb/articles/{record_id}/images", upload_view, methods=["POST"]),
          Route("/kb/images/{image}", image_view)]


def jinja(site, env) -> None:
    """The article page's images card: its images and the upload form."""
    def data(module, record, user):
        if module is not site.registry.modules.get(ARTICLES):
            return None
        return {"images": listed(site, record["id"])}

    cards = env.globals.setdefault("detail_cards", [])
    cards[:] = [c for c in cards if c["template"] != "kb_article_images.html"]
    cards.append({"template": "kb_article_images.html", "data": data})
