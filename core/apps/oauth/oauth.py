"""The OAuth2 authorization server (1CRM guide 7.11.1), built on authlib.

Grants: authorization code (PKCE with S256: required for public clients, allowed for
private ones), client credentials (the token acts as the client's configured user) and
refresh tokens (rotating: using one revokes it and its access token, and gives a new
pair). Tokens can be revoked (RFC 7009).

Access tokens are RS256 JWTs in the RFC 9068 profile (``typ: at+jwt``; claims iss, sub =
the user's id, aud, client_id, exp, iat, jti, scope; the header names the key, ``kid``)
signed with the site's RSA key pair (``crbm_api_keys``): ``ensure_keys`` makes the first
pair, ``regenerate_keys`` replaces it, and every token signed by the old key stops working
(clients use their refresh token). Every token has a row in ``crbm_oauth_tokens`` (its
jti, the sha256 of its refresh token, expiries, revocation), so that revoking works
before expiry. Codes are kept as their sha256 in ``crbm_oauth_codes`` and used once.

Checking a bearer token (``check_bearer``, for every API request) costs a signature
check with a public key parsed once per process, then ONE query: the token row (not
revoked), its client (enabled), its key (still current), the user (active; the columns
``core.web.pages`` loads, with the access and metadata epochs) and the API settings.

The web side (``core.apps.oauth.web``) reads the HTTP request and hands an ``HttpRequest``
to the ``AuthorizationServer`` here, in the thread pool; responses come back as
Starlette responses (``handle_response``), as authlib's Flask integration does.
"""
from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import json
import logging
import threading
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from authlib.common.security import generate_token
from authlib.oauth2 import rfc6749
from authlib.oauth2.rfc6749 import (
    InvalidGrantError,
    InvalidRequestError,
    OAuth2Payload,
    OAuth2Request,
    UnauthorizedClientError,
    grants,
)
from authlib.oauth2.rfc7009 import RevocationEndpoint as _RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc9068 import JWTBearerTokenGenerator
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet, RSAKey
from starlette.responses import JSONResponse, RedirectResponse, Response

from core.apps.oauth.oauth_clients import SCOPE, ApiClient, create_client, get_client
from core.kernel.records import now

log = logging.getLogger(__name__)

ALGORITHM = "RS256"
KEY_BITS = 2048
CODE_MINUTES = 10  # an authorization code is good this long (RFC 6749 says at most 10)
REFRESH_DAYS = 30
DEFAULT_ISSUER = "urn:crbm"

# The API settings (crbm_settings) and their defaults; /admin/api edits them.
SETTINGS = {
    "api_enabled": True,
    "api_allow_http": False,  # plain http:// from other machines (loopback always may)
    "api_basic_auth": False,  # user name and password on every request
    "api_session_auth": False,  # the web session cookie (+ X-CSRF-Token when unsafe)
    "api_token_minutes": 60,  # access token lifetime
    "api_rate_limit_user": 600,  # requests per minute per user
    "api_rate_limit_client": 1200,  # requests per minute per API client
}


def api_settings(stored: dict) -> dict:
    """The API settings with defaults filled in (``stored``: site.settings or a part)."""
    out = {}
    for key, default in SETTINGS.items():
        value = stored.get(key)
        if value is None or type(value) is not type(default):
            value = default
        out[key] = value
    return out


def issuer(stored: dict) -> str:
    """The ``iss`` of our tokens: the site's address (the ``base_url`` setting, also
    used in mailed links), else ``urn:crbm``. Changing it retires the tokens issued."""
    base = stored.get("base_url")
    return base.rstrip("/") if isinstance(base, str) and base.strip() else DEFAULT_ISSUER


def audience(stored: dict) -> str:
    """The ``aud`` of our tokens: this site's API."""
    base = issuer(stored)
    return f"{base}/api/v1" if base.startswith(("https://", "http://")) else f"{base}:api"


# -- signing keys -------------------------------------------------------------------------

_parsed: dict[tuple[str, bool], RSAKey] = {}  # (kid, private) -> key; a kid never changes
_keys_lock = threading.Lock()


def _keys_table(site) -> sa.Table:
    return site.tables.tables["crbm_api_keys"]


def _new_key_row() -> dict:
    private = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    return {
        "kid": uuid.uuid4().hex,
        "private_pem": private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()).decode(),
        "public_pem": private.public_key().public_bytes(
            serialization.Encoding.PEM,
            serialization.PublicFormat.SubjectPublicKeyInfo).decode(),
        "created_at": now(),
    }


def ensure_keys(site) -> str:
    """The current key's id; makes the site's first key pair when it has none (at
    install: ``crbm init`` syncs the schema, and the first token needs one anyway)."""
    table = _keys_table(site)
    with site.engine.begin() as conn:
        kid = conn.execute(sa.select(table.c.kid)
                           .order_by(table.c.created_at.desc(), table.c.kid).limit(1)).scalar()
        if kid is None:
            row = _new_key_row()
            conn.execute(table.insert().values(**row))
            kid = row["kid"]
            log.info("made the site's API signing key %s", kid)
    return kid


def regenerate_keys(site) -> str:
    """A new key pair replaces every old one: tokens signed before stop working."""
    table = _keys_table(site)
    row = _new_key_row()
    with site.engine.begin() as conn:
        conn.execute(table.delete())
        conn.execute(table.insert().values(**row))
    log.info("API signing keys regenerated: %s", row["kid"])
    return row["kid"]


def key_list(site) -> list[dict]:
    """kid, created_at and public_pem of the site's keys, newest first (never private)."""
    table = _keys_table(site)
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.kid, table.c.created_at, table.c.public_pem)
                            .order_by(table.c.created_at.desc(), table.c.kid)).mappings().all()
    return [dict(r) for r in rows]


def _parse(kid: str, pem: str, private: bool) -> RSAKey:
    key = RSAKey.import_key(pem, parameters={"kid": kid, "alg": ALGORITHM, "use": "sig"})
    with _keys_lock:
        return _parsed.setdefault((kid, private), key)


def _signing_key(site) -> RSAKey:
    kid = ensure_keys(site)
    key = _parsed.get((kid, True))
    if key is None:
        table = _keys_table(site)
        with site.engine.connect() as conn:
            pem = conn.execute(sa.select(table.c.private_pem)
                               .where(table.c.kid == kid)).scalar_one()
        key = _parse(kid, pem, True)
    return key


def _public_key(site, kid: str) -> RSAKey | None:
    """A key that verifies tokens, parsed once per process. Whether it is still the
    site's is checked by the token query (the key row must exist)."""
    key = _parsed.get((kid, False))
    if key is None:
        table = _keys_table(site)
        with site.engine.connect() as conn:
            pem = conn.execute(sa.select(table.c.public_pem)
                               .where(table.c.kid == kid)).scalar()
        if pem is None:
            return None
        key = _parse(kid, pem, False)
    return key


def jwks(site) -> dict:
    """The public keys as a JSON Web Key Set (/oauth/jwks.json)."""
    return {"keys": [_public_key(site, k["kid"]).as_dict(private=False)
                     for k in key_list(site)]}


# -- tokens ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class OAuthUser:
    """The resource owner as authlib sees it."""
    id: str
    username: str

    def get_user_id(self) -> str:
        return self.id


def active_user(site, user_id: str | None) -> OAuthUser | None:
    if not user_id:
        return None
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.username).where(
            table.c.id == user_id, table.c.active.is_(True))).first()
    return OAuthUser(row.id, row.username) if row else None


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _claims_unverified(access_token: str) -> dict:
    """The payload of a JWT we have just signed ourselves (no need to verify it)."""
    segment = access_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))


def token_minutes(site) -> int:
    return max(1, api_settings(site.settings)["api_token_minutes"])


class TokenGenerator(JWTBearerTokenGenerator):
    """RFC 9068 access tokens signed with the site's current key; opaque refresh tokens."""

    def __init__(self, site, lifetime: int | None = None):
        super().__init__(DEFAULT_ISSUER, alg=ALGORITHM,
                         refresh_token_generator=lambda **kw: generate_token(48),
                         expires_generator=lifetime if lifetime is not None else self._lifetime)
        self.site = site

    @property
    def issuer(self) -> str:
        return issuer(self.site.settings)

    @issuer.setter
    def issuer(self, value) -> None:
        pass  # read from the settings when a token is made

    def _lifetime(self, client, grant_type) -> int:
        return token_minutes(self.site) * 60

    def get_jwks(self) -> KeySet:
        return KeySet([_signing_key(self.site)])  # a key set: the header gets the kid

    def get_audiences(self, client, user, scope) -> str:
        return audience(self.site.settings)

    def get_jti(self, client, grant_type, user, scope) -> str:
        return uuid.uuid4().hex


def store_token(site, token: dict, client_id: str, user_id: str) -> str:
    """Record an issued token (its jti, the hash of its refresh token); its jti."""
    claims = _claims_unverified(token["access_token"])
    stamp = now()
    refresh = token.get("refresh_token")
    table = site.tables.tables["crbm_oauth_tokens"]
    with site.engine.begin() as conn:
        conn.execute(table.insert().values(
            id=claims["jti"], client_id=client_id, user_id=user_id,
            scope=(claims.get("scope") or "")[:200] or None,
            refresh_token_hash=sha256(refresh) if refresh else None,
            issued_at=stamp,
            expires_at=dt.datetime.fromtimestamp(claims["exp"], dt.UTC),
            refresh_expires_at=stamp + dt.timedelta(days=REFRESH_DAYS) if refresh else None))
    return claims["jti"]


def revoke(site, jti: str) -> bool:
    """Revoke a token (its access token and its refresh token); False if it already was."""
    table = site.tables.tables["crbm_oauth_tokens"]
    with site.engine.begin() as conn:
        done = conn.execute(table.update().where(table.c.id == jti, table.c.revoked_at.is_(None))
                            .values(revoked_at=now()))
    return done.rowcount == 1


@dataclass(frozen=True)
class TokenRecord(rfc6749.TokenMixin):
    """A row of crbm_oauth_tokens, as authlib's refresh and revocation see it."""
    id: str
    client_id: str
    user_id: str
    scope: str

    def check_client(self, client) -> bool:
        return client.get_client_id() == self.client_id

    def get_scope(self) -> str:
        return self.scope

    def is_revoked(self) -> bool:
        return False  # only live tokens are looked up


def _token_by(site, *conditions) -> TokenRecord | None:
    table = site.tables.tables["crbm_oauth_tokens"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.client_id, table.c.user_id,
                                     table.c.scope)
                           .where(table.c.revoked_at.is_(None), *conditions)).first()
    return TokenRecord(row.id, row.client_id, row.user_id, row.scope or SCOPE) if row else None


def _live_refresh_token(site, refresh_token: str) -> TokenRecord | None:
    table = site.tables.tables["crbm_oauth_tokens"]
    return _token_by(site, table.c.refresh_token_hash == sha256(refresh_token),
                     table.c.refresh_expires_at > now())


def issue_access_token(site, user_id: str, client_id: str = "test", scope: str = "",
                       *, lifetime: int | None = None) -> dict:
    """Issue an access token for a user directly, as the token endpoint would (tests,
    the CLI). ``lifetime`` in seconds (default: the setting; negative: already
    expired). A client named ``client_id`` is created if there is none (private, no
    grants: it exists for the tokens issued this way)."""
    client = get_client(site, client_id)
    if client is None:
        try:
            create_client(site, {"name": client_id, "publisher": None, "is_public": False,
                                 "enabled": True, "grant_types": [], "user_id": None,
                                 "redirect_uris": []}, client_id=client_id)
        except sa.exc.IntegrityError:  # made meanwhile by another caller
            pass
        client = get_client(site, client_id)
    generator = TokenGenerator(site, lifetime)
    token = generator.generate("direct", client, OAuthUser(user_id, ""), scope or None,
                               include_refresh_token=False)
    store_token(site, token, client.id, user_id)
    return token


# -- checking bearer tokens (every API request) -------------------------------------------

@dataclass(frozen=True)
class BearerCheck:
    """What ``check_bearer`` found: the API settings (always), and the user the token
    stands for with its client (None when the token is refused)."""
    settings: dict
    user: object | None = None  # core.kernel.identity.WebUser
    client_id: str | None = None
    counted: tuple | None = None  # (when, the rate-limit counts read with the token)


_checked_signatures: dict[str, dict] = {}  # token -> its claims, once its signature held
CHECKED_SIGNATURES_MAX = 10_000


def _verified_claims(site, token: str, stored: dict | None, *,
                     check_exp: bool = True) -> dict | None:
    """The claims of a token signed by one of the site's keys (``kid`` added), or None.
    ``stored``: the settings the issuer and audience come from (None: not checked yet).

    A client uses its token for many requests: the signature is checked once per
    process (a token's text never changes its claims); whether its key is still the
    site's, and the rest, is for the token query to say."""
    claims = _checked_signatures.get(token)
    if claims is None:
        claims = _signature_claims(site, token)
        if claims is None:
            return None
        if len(_checked_signatures) >= CHECKED_SIGNATURES_MAX:
            _checked_signatures.clear()
        _checked_signatures[token] = claims
    if stored is not None and (claims.get("iss") != issuer(stored)
                               or claims.get("aud") != audience(stored)):
        return None
    if (not all(isinstance(claims.get(c), str) for c in ("sub", "jti", "client_id"))
            or not isinstance(claims.get("exp"), int)):
        return None
    if check_exp and claims["exp"] <= now().timestamp():
        return None
    return claims


def _signature_claims(site, token: str) -> dict | None:
    kids = []

    def key_for(obj):
        header = obj.headers()
        kids.append(str(header.get("kid") or ""))
        key = _public_key(site, kids[-1])
        if key is None or header.get("alg") != ALGORITHM:
            raise ValueError("unknown key")
        return key

    try:
        claims = jwt.decode(token, key_for, algorithms=[ALGORITHM]).claims
    except (JoseError, ValueError, TypeError):
        return None
    return {**claims, "kid": kids[-1]}


@functools.lru_cache(maxsize=8)
def _bearer_query(users, access_epoch, metadata_epoch, sessions, tokens, clients, keys,
                  settings, counters):
    """Built once per site schema: the query every bearer request runs (no web session:
    its ``sid`` is bound to ""), with the request's rate-limit counts."""
    from core.api import ratelimit
    from core.kernel.identity import user_query  # the session's user query, extended
    values = [sa.select(settings.c.value).where(settings.c.key == key).scalar_subquery()
              .label(f"setting_{key}") for key in FOLDED_SETTINGS]
    return (user_query(users, access_epoch, metadata_epoch, sessions)
            .add_columns(tokens.c.revoked_at, clients.c.enabled.label("client_enabled"),
                         *values, *ratelimit.count_columns(counters))
            .join(tokens, tokens.c.user_id == users.c.id)
            .join(clients, clients.c.id == tokens.c.client_id)
            .where(tokens.c.id == sa.bindparam("jti"),
                   tokens.c.client_id == sa.bindparam("client_id"),
                   sa.exists().where(keys.c.kid == sa.bindparam("kid"))))


FOLDED_SETTINGS = (*SETTINGS, "base_url")  # what the token query reads along


def stored_settings(site) -> dict:
    return api_settings(site.settings)


def check_bearer(app, token: str) -> BearerCheck:
    """The user and client a bearer token stands for (None if it is refused: bad
    signature, expired, revoked, old key, disabled client, inactive user), with the
    API settings read in the same query."""
    from core.api import ratelimit
    from core.kernel.identity import catch_up, web_user
    from core.web import throttle
    site = app.state.site
    claims = _verified_claims(site, token, None) if len(token) < 4096 else None
    if claims is None:
        return BearerCheck(stored_settings(site))
    tables = site.tables.tables
    query = _bearer_query(tables["crbm_users"], tables["crbm_access_epoch"],
                          tables["crbm_metadata_epoch"], tables["crbm_sessions"],
                          tables["crbm_oauth_tokens"],
                          tables["crbm_api_clients"], tables["crbm_api_keys"],
                          tables["crbm_settings"], tables["crbm_rate_counters"])
    at = throttle.clock()
    counts = ratelimit.count_params(claims["sub"], claims["client_id"], at)
    with site.engine.connect() as conn:
        row = conn.execute(query, {"uid": claims["sub"], "jti": claims["jti"], "sid": "",
                                   "kid": claims["kid"], "client_id": claims["client_id"],
                                   **counts}).first()
    if row is None:  # unknown token, client or user, or a key no longer the site's
        return BearerCheck(stored_settings(site))
    stored = {key: json.loads(row._mapping[f"setting_{key}"]) for key in FOLDED_SETTINGS
              if row._mapping[f"setting_{key}"] is not None}
    settings = api_settings(stored)
    if (row.revoked_at is not None or not row.client_enabled or not row.active
            or claims.get("iss") != issuer(stored) or claims.get("aud") != audience(stored)):
        return BearerCheck(settings)
    catch_up(app, site, row)
    return BearerCheck(settings, web_user(app, site, row), claims["client_id"],
                       (at, ratelimit.counts_of(row, counts)))


def verify_access_token(app, token: str):
    """The Principal a bearer token stands for, or None (settings not applied: that is
    ``core.api.auth.authenticate``'s job)."""
    from core.api.auth import Principal
    found = check_bearer(app, token)
    return Principal(found.user, found.client_id, "bearer") if found.user else None


# -- the authorization server ---------------------------------------------------------------

class _Payload(OAuth2Payload):
    def __init__(self, datalist: dict[str, list[str]]):
        self._datalist = datalist
        self._data = {key: values[0] for key, values in datalist.items() if values}

    @property
    def data(self):
        return self._data

    @property
    def datalist(self):
        return self._datalist


class HttpRequest(OAuth2Request):
    """An HTTP request as authlib reads it, made by the web layer from the Starlette
    request once its body was read (``query`` and ``form``: name -> list of values).
    The transport rule (https, unless allowed) was applied by the caller."""

    def __init__(self, method: str, url: str, headers, query: dict[str, list[str]],
                 form: dict[str, list[str]]):
        secure_url = "https://" + url.split("://", 1)[-1]  # authlib insists on https
        super().__init__(method, secure_url, headers=headers)
        self._args = {key: values[0] for key, values in query.items() if values}
        self._form = {key: values[0] for key, values in form.items() if values}
        merged = {key: list(values) for key, values in query.items()}
        for key, values in form.items():
            merged.setdefault(key, []).extend(values)
        self.payload = _Payload(merged)

    @property
    def args(self):
        return self._args

    @property
    def form(self):
        return self._form


class PkceS256(CodeChallenge):
    """PKCE with S256 only: a public client must send a challenge; a private one may."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ("S256",)
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        data = grant.request.payload.data
        if grant.request.client.is_public and not data.get("code_challenge"):
            raise InvalidRequestError("A public client must use PKCE (code_challenge with "
                                      "code_challenge_method=S256).")
        if data.get("code_challenge") and data.get("code_challenge_method") != "S256":
            raise InvalidRequestError("Only code_challenge_method=S256 is supported.")
        super().validate_code_challenge(grant, redirect_uri)


@dataclass(frozen=True)
class AuthorizationCode(rfc6749.AuthorizationCodeMixin):
    client_id: str
    user_id: str
    redirect_uri: str | None
    scope: str
    code_challenge: str | None
    code_challenge_method: str | None

    def get_redirect_uri(self):
        return self.redirect_uri

    def get_scope(self):
        return self.scope


CLIENT_AUTH = ("client_secret_basic", "client_secret_post", "none")


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH

    def save_authorization_code(self, code: str, request):
        site, data = self.server.site, request.payload.data
        table = site.tables.tables["crbm_oauth_codes"]
        with site.engine.begin() as conn:
            conn.execute(table.insert().values(
                code_hash=sha256(code), client_id=request.client.id,
                user_id=request.user.id, redirect_uri=request.payload.redirect_uri,
                scope=request.scope, code_challenge=data.get("code_challenge"),
                code_challenge_method=data.get("code_challenge_method"),
                expires_at=now() + dt.timedelta(minutes=CODE_MINUTES)))

    def query_authorization_code(self, code: str, client):
        """The code, taken: it is deleted as it is read, so it works once even when two
        requests bring it at the same moment (a failed exchange uses it up too)."""
        site = self.server.site
        table = site.tables.tables["crbm_oauth_codes"]
        match = (table.c.code_hash == sha256(code), table.c.client_id == client.id)
        with site.engine.begin() as conn:
            row = conn.execute(sa.select(table).where(*match)).first()
            if row is None or conn.execute(table.delete().where(*match)).rowcount != 1:
                return None
        if row.expires_at <= now():
            return None
        return AuthorizationCode(row.client_id, row.user_id, row.redirect_uri,
                                 row.scope or SCOPE, row.code_challenge,
                                 row.code_challenge_method)

    def delete_authorization_code(self, authorization_code):
        pass  # deleted when it was read

    def authenticate_user(self, authorization_code):
        return active_user(self.server.site, authorization_code.user_id)


class ClientCredentialsGrant(grants.ClientCredentialsGrant):
    """The token acts as the client's configured user (refused when it has none)."""
    TOKEN_ENDPOINT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")

    def create_token_response(self):
        user = active_user(self.server.site, self.client.user_id)
        if user is None:
            raise UnauthorizedClientError("The client has no active user to act as.")
        self.request.user = user
        token = self.generate_token(user=user, scope=self.request.payload.scope,
                                    include_refresh_token=False)
        self.save_token(token)
        return 200, token, self.TOKEN_RESPONSE_HEADER


class RefreshTokenGrant(grants.RefreshTokenGrant):
    """Rotating refresh tokens: each one works once and comes back with a new one."""
    TOKEN_ENDPOINT_AUTH_METHODS = CLIENT_AUTH
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token: str):
        return _live_refresh_token(self.server.site, refresh_token)

    def authenticate_user(self, refresh_token):
        return active_user(self.server.site, refresh_token.user_id)

    def revoke_old_credential(self, refresh_token):
        # The old one may have been used meanwhile by another request: then the token
        # just issued is taken back, and the answer is invalid_grant.
        if not revoke(self.server.site, refresh_token.id):
            revoke(self.server.site, self.request.crbm_jti)
            raise InvalidGrantError("The refresh token was already used.")


class RevocationEndpoint(_RevocationEndpoint):
    """RFC 7009: revoking an access or a refresh token revokes both."""
    CLIENT_AUTH_METHODS = CLIENT_AUTH

    def query_token(self, token_string: str, token_type_hint):
        site = self.server.site
        if token_string.count(".") == 2:  # a JWT of ours, whatever its expiry
            claims = _verified_claims(site, token_string, site.settings, check_exp=False)
            table = site.tables.tables["crbm_oauth_tokens"]
            return _token_by(site, table.c.id == claims["jti"]) if claims else None
        return _live_refresh_token(site, token_string)

    def revoke_token(self, token, request):
        revoke(self.server.site, token.id)


class AuthorizationServer(rfc6749.AuthorizationServer):
    """One per site (the web layer keeps it on ``app.state``)."""

    def __init__(self, site):
        super().__init__(scopes_supported=[SCOPE])
        self.site = site
        self.register_token_generator("default", TokenGenerator(site))
        self.register_grant(AuthorizationCodeGrant, [PkceS256(required=True)])
        self.register_grant(ClientCredentialsGrant)
        self.register_grant(RefreshTokenGrant)
        self.register_endpoint(RevocationEndpoint)

    def query_client(self, client_id):
        return get_client(self.site, client_id, enabled_only=True)

    def save_token(self, token: dict, request):
        request.crbm_jti = store_token(self.site, token, request.client.id, request.user.id)

    def create_oauth2_request(self, request) -> OAuth2Request:
        if not isinstance(request, OAuth2Request):
            raise TypeError("pass a core.apps.oauth.oauth.HttpRequest")
        return request

    def create_json_request(self, request):
        raise NotImplementedError("no JSON endpoints")

    def handle_response(self, status: int, body, headers) -> Response:
        headers = dict(headers or ())
        location = headers.pop("Location", None)
        if location:  # to the client's (registered) redirect URI
            return RedirectResponse(location, status_code=303 if status == 302 else status,
                                    headers=headers)
        if isinstance(body, dict):
            headers.pop("Content-Type", None)
            return JSONResponse(body, status_code=status, headers=headers)
        return Response(body or "", status_code=status, headers=headers)

    def send_signal(self, name, *args, **kwargs):
        pass  # nothing listens


__all__ = ["ApiClient", "AuthorizationServer", "HttpRequest", "api_settings", "check_bearer",
           "ensure_keys", "issue_access_token", "jwks", "regenerate_keys", "revoke",
           "verify_access_token"]
