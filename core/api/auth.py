"""Who is calling the API: ``authenticate(request) -> Principal`` for every API request.

In order (1CRM guide 7.11.1):
1. the API may be switched off (``api_enabled``): 403 for everyone;
2. plain http:// is refused (403) unless ``api_allow_http`` is on or the caller is on
   this machine (127.0.0.1, ::1). Behind a reverse proxy, the proxy must say https
   (X-Forwarded-Proto, which uvicorn's proxy headers turn into the request's scheme);
3. ``Authorization: Bearer <access token>``, the normal way (``core.apps.oauth.oauth``);
4. ``Authorization: Basic`` user name and password, only when ``api_basic_auth`` is on
   (off by default), checked as a sign-in is: lockout, the per-address throttle on failed
   sign-ins (``core.web.throttle``) and directories apply;
5. the web session cookie, only when ``api_session_auth`` is on (off by default); then a
   state-changing request must carry the session's CSRF token in ``X-CSRF-Token``;
6. otherwise 401 with ``WWW-Authenticate: Bearer``.
Then the rate limits (``core.api.ratelimit``): their headers go into
``Principal.headers``, for the endpoint to add to its response.

A bearer request costs a signature check and one query (token, client, user, the
settings and the rate-limit counts together); the other ways read the settings and the
counts with a query each.
"""
from __future__ import annotations

import base64
import binascii
import hmac
import ipaddress
from dataclasses import dataclass, field
from gettext import NullTranslations

from starlette.requests import Request

from core.api import ratelimit
from core.api.problems import ApiProblem
from core.apps.oauth import oauth
from core.kernel import users
from core.kernel.records import User
from core.web import throttle

SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
BEARER = 'Bearer realm="crbm"'
INVALID_TOKEN = 'Bearer realm="crbm", error="invalid_token"'


@dataclass(frozen=True)
class Principal:
    user: User  # whom the request acts as (access control applies to them)
    client_id: str | None  # the API client, when a token says so
    via: str  # "bearer", "basic" or "session"
    headers: dict = field(default_factory=dict)  # rate-limit headers for the response


def is_loopback(request: Request) -> bool:
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def transport_allowed(request: Request, settings: dict) -> bool:
    """https, or plain http when the setting allows it or the caller is this machine."""
    return (request.url.scheme in ("https", "wss") or settings["api_allow_http"]
            or is_loopback(request))


def _gate(request: Request, settings: dict) -> None:
    if not settings["api_enabled"]:
        raise ApiProblem(403, "The API is disabled on this site.")
    if not transport_allowed(request, settings):
        raise ApiProblem(403, "The API needs https:// on this site (plain http:// is "
                              "not allowed).")


def _unauthorized(detail: str, challenge: str = BEARER) -> ApiProblem:
    return ApiProblem(401, detail, headers={"WWW-Authenticate": challenge})


def authenticate(request: Request) -> Principal:
    """Sync (runs in the thread pool). Raises ApiProblem 401/403/429."""
    app = request.app
    header = request.headers.get("authorization", "")
    scheme, _, credentials = header.partition(" ")
    scheme = scheme.lower()
    if scheme == "bearer":
        found = oauth.check_bearer(app, credentials.strip())
        _gate(request, found.settings)
        if found.user is None:
            raise _unauthorized("The access token is invalid, expired or revoked.",
                                INVALID_TOKEN)
        return _limited(app, found.settings, found.user, found.client_id, "bearer",
                        found.counted)
    settings = oauth.stored_settings(app.state.site)
    _gate(request, settings)
    if scheme == "basic":
        return _limited(app, settings, _basic_user(request, settings, credentials), None,
                        "basic")
    if header:
        raise _unauthorized("Use an OAuth2 access token (Authorization: Bearer ...).")
    user = _session_user(request, settings)
    if user is not None:
        return _limited(app, settings, user, None, "session")
    raise _unauthorized("Sign in with an OAuth2 access token (Authorization: Bearer ...).")


def _limited(app, settings: dict, user, client_id: str | None, via: str,
             counted: tuple | None = None) -> Principal:
    headers = ratelimit.check(app, settings, user.id, client_id, counted)
    return Principal(user, client_id, via, headers)


def _basic_user(request: Request, settings: dict, credentials: str):
    from core.kernel.identity import load_user_by_id
    if not settings["api_basic_auth"]:
        raise _unauthorized("Basic authentication is disabled on this site; use an OAuth2 "
                            "access token.")
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        username, password = decoded.split(":", 1)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _unauthorized("Malformed basic credentials.") from None
    from core.web.auth import address_throttled, count_event, failed_sign_in, too_many_sign_ins
    site = request.app.state.site
    address = throttle.ip_subject(request.client.host if request.client else "")
    rule = throttle.login_rule(site.settings)  # the sign-in page's throttle, shared
    throttled = address_throttled(site, rule, address)
    if throttled:
        raise ApiProblem(429, too_many_sign_ins(NullTranslations(), throttled),
                         headers={"Retry-After": str(throttled)})
    result = users.check_login(site, username, password)
    if failed_sign_in(result):
        count_event(site, rule, address)
    if result.locked_minutes:
        raise ApiProblem(429, "This account is locked after too many failed attempts.",
                         headers={"Retry-After": str(result.locked_minutes * 60)})
    if result.unavailable:
        raise ApiProblem(503, "The directory that checks this password cannot be reached.")
    if result.user is None:
        raise _unauthorized("Wrong user name or password.", 'Basic realm="crbm"')
    if result.must_change_password:
        raise ApiProblem(403, "This account must change its password first (sign in to "
                              "the web application).")
    user = load_user_by_id(request.app, result.user.id)
    if user is None:
        raise _unauthorized("Wrong user name or password.", 'Basic realm="crbm"')
    return user


def _session_user(request: Request, settings: dict):
    """The web session's user when session authentication is on (None: no session)."""
    from core.kernel.identity import load_user
    if "session" not in request.scope or not request.session.get("uid"):
        return None
    if not settings["api_session_auth"]:
        raise _unauthorized("Session authentication is disabled on this site; use an "
                            "OAuth2 access token.")
    user = load_user(request)
    if user is None or user.must_change_password:
        return None
    if request.method not in SAFE_METHODS:
        sent = request.headers.get("x-csrf-token", "")
        expected = request.session.get("csrf") or ""
        if not expected or not hmac.compare_digest(sent, expected):
            raise ApiProblem(403, "A session request that changes data needs the page's "
                                  "CSRF token in X-CSRF-Token.")
    return user
