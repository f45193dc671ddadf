"""Sent email tracking (implementation guide §7.4.1; 1CRM 8.6 "track email opening"): off by
default (Admin → Email settings → tracking). While on, the HTML of each email sent carries
a one-pixel image whose address names the email with a signature; each time a mail client
loads it, ``emails_opens`` gets a row and the email its ``first_opened`` and
``open_count``, shown on the email's page with the list of opens.

Privacy: off unless an administrator turns it on; only the time is kept — no IP address,
no location, no user agent; a plain-text email carries nothing; while tracking is off the
address answers the same image and records nothing, so turning it off stops the counting
of mail already sent too. The signature (HMAC-SHA256 with a key derived from the site's
secret key) keeps anyone from counting opens of an email they guess the id of.
"""
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac

import sqlalchemy as sa
from starlette.responses import Response
from starlette.routing import Route

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime
from core.web.pages import page
from plugins.emails.settings import email_settings

TABLE = "emails_opens"
MODULE = "emails"
# the smallest transparent GIF
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
NO_STORE = {"Cache-Control": "no-store, private", "Content-Type": "image/gif"}


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("email_id", ID, nullable=False, index=True),
             sa.Column("opened_at", UTCDateTime(), nullable=False))


def _signature(site, email_id: str) -> str:
    key = hashlib.sha256(b"crbm: email tracking\0" + str(site.config["secret_key"]).encode())
    mac = hmac.new(key.digest(), str(email_id).encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode()


def pixel_url(site, email_id: str) -> str | None:
    base = str(site.settings.get("base_url") or "").rstrip("/")
    return f"{base}/email/open/{email_id}/{_signature(site, email_id)}.gif" if base else None


def with_pixel(site, email_id: str, html: str) -> str:
    """``html`` with the tracking image at the end (unchanged without a site address)."""
    url = pixel_url(site, email_id)
    if url is None:
        return html
    image = f'<img src="{url}" width="1" height="1" alt="" style="border:0">'
    head, found, tail = html.rpartition("</body>")
    return f"{head}{image}{found}{tail}" if found else html + image


def record_open(site, email_id: str, signature: str) -> bool:
    """Count an open of a sent email if the signature is right and tracking is on."""
    if not email_settings(site).tracking or not hmac.compare_digest(
            signature, _signature(site, email_id)):
        return False
    table = site.records.table(site.registry.module(MODULE))
    opens = site.tables.tables[TABLE]
    now = dt.datetime.now(dt.UTC)
    with site.engine.begin() as conn:
        counted = conn.execute(table.update().where(
            table.c.id == email_id, table.c.status == "sent", table.c.deleted.is_(False))
            .values(open_count=sa.func.coalesce(table.c.open_count, 0) + 1,
                    first_opened=sa.func.coalesce(table.c.first_opened, now))).rowcount
        if counted:
            conn.execute(opens.insert().values(email_id=email_id, opened_at=now))
    return bool(counted)


def opens_of(site, email_id: str, limit: int = 100) -> list[dt.datetime]:
    opens = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(opens.c.opened_at).where(
            opens.c.email_id == str(email_id)).order_by(opens.c.opened_at.desc())
            .limit(limit)).scalars())


@page(public=True)
def open_view(request, form):
    """``GET /email/open/{id}/{signature}.gif``: the image, whatever happens (a mail
    client shows nothing broken, and nobody learns which addresses count)."""
    record_open(request.app.state.site, request.path_params["email_id"],
                request.path_params["signature"])
    return Response(PIXEL, headers=NO_STORE)


def jinja(site, env) -> None:
    """The email page's opens card (``detail_cards``), when the email has been opened."""
    def data(module, record, user):
        if module is not site.registry.modules.get(MODULE) or not record.get("open_count"):
            return None
        return {"opens": opens_of(site, record["id"]), "count": record["open_count"]}

    cards = env.globals.setdefault("detail_cards", [])
    cards[:] = [c for c in cards if c["template"] != "email_opens.html"]
    cards.append({"template": "email_opens.html", "data": data})


routes = [Route("/email/open/{email_id}/{signature}.gif", open_view)]
