"""API clients (1CRM guide 7.11.2): the applications allowed to ask for API tokens.

A client has a name, a publisher, a kind (public: a mobile or browser app that cannot
keep a secret, so it proves itself with PKCE; private: a server that holds a secret),
an enabled flag, its grant types, the user client credentials act as, and its redirect
URLs. Its secret is generated here, shown once and stored as an argon2 hash only
(``core.kernel.users.HASHER``): checking it is slow by design, which only the token endpoint does.

``ApiClient`` is also authlib's client model (``ClientMixin``), so the authorization
server in ``core.apps.oauth.oauth`` asks it which grants, redirect URLs and secrets are allowed.
Everything that writes a client goes through ``check_values`` first: bad input gives
field -> message (English, marked for translation) and nothing is written.
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import sqlalchemy as sa
from argon2.exceptions import InvalidHashError, VerificationError
from authlib.oauth2.rfc6749 import ClientMixin

from core.kernel import users
from core.kernel.errors import N_, CrbmError, Message
from core.kernel.records import now

GRANT_TYPES = ("authorization_code", "client_credentials", "refresh_token")
SCOPE = "api"  # the one scope: the API, as the user (access control decides the rest)
MAX_REDIRECT_URIS = 20
NETLOC_RE = re.compile(r"([A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?")

REQUIRED = N_("is required")
TOO_LONG = N_("must be at most %(max)d characters")
NO_GRANT = N_("Choose at least one grant type.")
UNKNOWN_GRANT = N_("Unknown grant type %(name)s.")
PUBLIC_CREDENTIALS = N_("A public client keeps no secret, so it cannot use client "
                        "credentials.")
NEEDS_USER = N_("Client credentials act as a user: choose one.")
NO_SUCH_USER = N_("Choose an active user.")
NEEDS_REDIRECT = N_("The authorization code grant needs at least one redirect URL.")
BAD_REDIRECT = N_("%(url)s is not an absolute https:// URL (http:// only for localhost), "
                  "or it has a #fragment.")
TOO_MANY_REDIRECTS = N_("At most %(max)d redirect URLs.")


class ClientError(CrbmError):
    """A client cannot be changed that way (the message says why)."""


@dataclass(frozen=True)
class ApiClient(ClientMixin):
    id: str  # the OAuth client_id
    name: str
    publisher: str
    is_public: bool
    enabled: bool
    grant_types: tuple[str, ...]
    user_id: str | None
    redirect_uris: tuple[str, ...]
    secret_hash: str | None
    secret_set_at: dt.datetime | None
    created_at: dt.datetime | None

    @classmethod
    def from_row(cls, row) -> ApiClient:
        return cls(row.id, row.name, row.publisher or "", bool(row.is_public),
                   bool(row.enabled), tuple((row.grant_types or "").split()), row.user_id,
                   tuple((row.redirect_uris or "").split()), row.secret_hash,
                   row.secret_set_at, row.created_at)

    # -- authlib's ClientMixin ---------------------------------------------------------
    def get_client_id(self) -> str:
        return self.id

    def get_default_redirect_uri(self) -> str | None:
        # only an unambiguous one; with several, the request must name its own
        return self.redirect_uris[0] if len(self.redirect_uris) == 1 else None

    def get_allowed_scope(self, scope: str | None) -> str:
        return scope or SCOPE  # the server refuses any other scope (scopes_supported)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.redirect_uris  # exact match, never a prefix

    def check_client_secret(self, client_secret: str) -> bool:
        if not self.secret_hash or self.is_public:
            return False
        try:
            return users.HASHER.verify(self.secret_hash, client_secret)
        except (VerificationError, InvalidHashError):
            return False

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if self.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code" and "authorization_code" in self.grant_types

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type in self.grant_types


def _table(site) -> sa.Table:
    return site.tables.tables["crbm_api_clients"]


def get_client(site, client_id: str, *, enabled_only: bool = False) -> ApiClient | None:
    if not client_id or len(client_id) > 64:
        return None
    table = _table(site)
    query = sa.select(table).where(table.c.id == client_id)
    if enabled_only:
        query = query.where(table.c.enabled.is_(True))
    with site.engine.connect() as conn:
        row = conn.execute(query).first()
    return ApiClient.from_row(row) if row else None


def list_clients(site) -> list[tuple[ApiClient, str | None]]:
    """Every client with the user name client credentials act as, by name."""
    table, people = _table(site), site.tables.tables["crbm_users"]
    query = (sa.select(table, people.c.username.label("username"))
             .select_from(table.outerjoin(people, people.c.id == table.c.user_id))
             .order_by(sa.func.lower(table.c.name), table.c.id))
    with site.engine.connect() as conn:
        return [(ApiClient.from_row(row), row.username) for row in conn.execute(query)]


def active_users(site) -> list[tuple[str, str]]:
    """(id, "Display name (user name)") of active users, for the client's user picker."""
    people = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(people.c.id, people.c.username, people.c.display_name)
                            .where(people.c.active.is_(True))
                            .order_by(sa.func.lower(people.c.username))).all()
    return [(r.id, f"{r.display_name or r.username} ({r.username})") for r in rows]


# -- checking what an administrator typed ---------------------------------------------------

def redirect_uri_ok(url: str) -> bool:
    """An absolute https URL without a fragment; plain http only to this machine
    (a developer's app, RFC 8252 loopback redirects)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return False
    if (not host or parts.fragment or any(c.isspace() or ord(c) < 32 for c in url)
            or not NETLOC_RE.fullmatch(parts.netloc)):  # no user@, nothing odd in the host
        return False
    if parts.scheme == "https":
        return True
    if parts.scheme != "http":
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_values(site, form: dict) -> tuple[dict, dict]:
    """(clean values, field -> Message). ``form``: name, publisher, is_public, enabled,
    grant_types (list), user_id, redirect_uris (text, one per line)."""
    errors: dict[str, Message] = {}
    values = {"name": " ".join(str(form.get("name") or "").split()),
              "publisher": " ".join(str(form.get("publisher") or "").split()),
              "is_public": bool(form.get("is_public")),
              "enabled": bool(form.get("enabled")),
              "user_id": str(form.get("user_id") or "").strip() or None}
    for key in ("name", "publisher"):
        if len(values[key]) > 120:
            errors[key] = Message(TOO_LONG, max=120)
    if not values["name"]:
        errors["name"] = Message(REQUIRED)
    grants = [str(g) for g in form.get("grant_types") or ()]
    unknown = [g for g in grants if g not in GRANT_TYPES]
    grants = [g for g in GRANT_TYPES if g in grants]  # the canonical order, no repeats
    if unknown:
        errors["grant_types"] = Message(UNKNOWN_GRANT, name=repr(unknown[0][:40]))
    elif not grants:
        errors["grant_types"] = Message(NO_GRANT)
    elif values["is_public"] and "client_credentials" in grants:
        errors["grant_types"] = Message(PUBLIC_CREDENTIALS)
    values["grant_types"] = grants
    if "client_credentials" in grants and not values["user_id"]:
        errors["user_id"] = Message(NEEDS_USER)
    elif values["user_id"] and values["user_id"] not in dict(active_users(site)):
        errors["user_id"] = Message(NO_SUCH_USER)
    lines = [line.strip() for line in str(form.get("redirect_uris") or "").splitlines()]
    uris = list(dict.fromkeys(line for line in lines if line))
    bad = [u for u in uris if len(u) > 2000 or not redirect_uri_ok(u)]
    if bad:
        errors["redirect_uris"] = Message(BAD_REDIRECT, url=bad[0][:200])
    elif len(uris) > MAX_REDIRECT_URIS:
        errors["redirect_uris"] = Message(TOO_MANY_REDIRECTS, max=MAX_REDIRECT_URIS)
    elif "authorization_code" in grants and not uris:
        errors["redirect_uris"] = Message(NEEDS_REDIRECT)
    values["redirect_uris"] = uris
    return values, errors


def _row_values(values: dict) -> dict:
    return {"name": values["name"], "publisher": values["publisher"] or None,
            "is_public": values["is_public"], "enabled": values["enabled"],
            "grant_types": " ".join(values["grant_types"]), "user_id": values["user_id"],
            "redirect_uris": "\n".join(values["redirect_uris"]) or None}


def create_client(site, values: dict, *, created_by: str | None = None,
                  client_id: str | None = None) -> ApiClient:
    """A new client from ``check_values``' clean values (no secret yet)."""
    # hex: an id that starts with "-" would read as an option on a command line
    client_id = client_id or secrets.token_hex(12)
    with site.engine.begin() as conn:
        conn.execute(_table(site).insert().values(id=client_id, created_at=now(),
                                                  created_by=created_by, **_row_values(values)))
    return get_client(site, client_id)


def update_client(site, client_id: str, values: dict) -> ApiClient:
    """Change a client. A client made public loses its secret (it has no use for one)."""
    row = _row_values(values)
    if values["is_public"]:
        row.update(secret_hash=None, secret_set_at=None)
    with site.engine.begin() as conn:
        done = conn.execute(_table(site).update().where(_table(site).c.id == client_id)
                            .values(**row))
    if done.rowcount != 1:
        raise ClientError(f"no API client {client_id!r}")
    return get_client(site, client_id)


def set_secret(site, client_id: str) -> str:
    """A new secret for a private client; the old one stops working at once. The secret
    is returned to be shown once: only its argon2 hash is stored."""
    client = get_client(site, client_id)
    if client is None:
        raise ClientError(f"no API client {client_id!r}")
    if client.is_public:
        raise ClientError(N_("A public client has no secret; it proves itself with PKCE."))
    secret = secrets.token_urlsafe(32)
    table = _table(site)
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == client_id)
                     .values(secret_hash=users.HASHER.hash(secret), secret_set_at=now()))
    return secret
