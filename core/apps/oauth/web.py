"""The OAuth2 endpoints: the consent page, the token and revocation endpoints, the JWKS.

``/oauth/authorize`` is a web page (``page()``: the user signs in first, the Allow/Deny
form carries the CSRF token). An unknown or disabled client, or a redirect URI the
client did not register, gets an error page here: we never redirect to a URI the
client did not register. Other errors (a public client without PKCE, an unknown scope)
go back to the client's registered URI, as RFC 6749 says.

``/oauth/token`` and ``/oauth/revoke`` are for programs, not browsers: no session, no
CSRF token (they authenticate the client instead), form-encoded (or JSON) in, JSON out.
They read the body here, then hand an ``oauth.HttpRequest`` to the site's
``AuthorizationServer`` in the thread pool. The API's transport rule and its on/off
switch (``core.api.auth``) apply to all of them.
"""
from __future__ import annotations

import json
import threading
from urllib.parse import parse_qs, urlsplit

from authlib.oauth2.rfc6749 import OAuth2Error
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.api.auth import transport_allowed
from core.apps.oauth import oauth
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.security import SECURITY_HEADERS

MAX_BODY = 16 * 1024  # a token request is a few hundred bytes
OAUTH_PARAMS = ("response_type", "client_id", "redirect_uri", "scope", "state",
                "code_challenge", "code_challenge_method")
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
API_DISABLED = N_("The API is disabled on this site.")
NEEDS_HTTPS = N_("This site allows API sign-ins over https:// only.")
BAD_REQUEST = N_("This sign-in request cannot be used: %(reason)s")

_server_lock = threading.Lock()


def server_for(app) -> oauth.AuthorizationServer:
    """The site's authorization server, made on first use."""
    server = getattr(app.state, "oauth_server", None)
    if server is None:
        with _server_lock:
            server = getattr(app.state, "oauth_server", None)
            if server is None:
                server = app.state.oauth_server = oauth.AuthorizationServer(app.state.site)
    return server


def _oauth_request(request: Request, query: dict, form: dict) -> oauth.HttpRequest:
    return oauth.HttpRequest(request.method, str(request.url), request.headers, query, form)


def _lists(items) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, value in items:
        out.setdefault(str(key), []).append(str(value))
    return out


# -- the consent page ------------------------------------------------------------------------

def _error_page(request: Request, status: int, message: Message):
    response = request.app.state.templates.render(request, "oauth_error.html", status=status,
                                                  message=message)
    response.headers.update(NO_STORE)
    return response


@page()
def authorize(request: Request, form):
    site = request.app.state.site
    settings = oauth.stored_settings(site)
    if not settings["api_enabled"]:
        return _error_page(request, 403, Message(API_DISABLED))
    if not transport_allowed(request, settings):
        return _error_page(request, 403, Message(NEEDS_HTTPS))
    if form is None:
        query, posted = _lists(request.query_params.multi_items()), {}
    else:  # the Allow/Deny form: the request's parameters came back as hidden fields
        query = {}
        posted = _lists((k, v) for k, v in form.multi_items() if k in OAUTH_PARAMS)
    server = server_for(request.app)
    oauth_request = _oauth_request(request, query, posted)
    user = request.state.user
    end_user = oauth.OAuthUser(user.id, user.username)
    try:
        grant = server.get_consent_grant(oauth_request, end_user=end_user)
    except OAuth2Error as error:
        if error.redirect_uri:  # validated against the client: tell the client
            return server.handle_error_response(oauth_request, error)
        return _error_page(request, 400, Message(BAD_REQUEST,
                                                 reason=error.description or error.error))
    if form is None:
        params = [(k, v) for k in OAUTH_PARAMS for v in query.get(k, [])[:1]]
        response = request.app.state.templates.render(
            request, "oauth_authorize.html", client=grant.client, params=params,
            redirect_host=urlsplit(grant.redirect_uri).netloc)
        response.headers.update(NO_STORE)
        # Allow/Deny redirects to the client: browsers check that against form-action
        origin = "{0.scheme}://{0.netloc}".format(urlsplit(grant.redirect_uri))
        response.headers["Content-Security-Policy"] = SECURITY_HEADERS[
            "Content-Security-Policy"].replace("form-action 'self'",
                                               f"form-action 'self' {origin}")
        return response
    allowed = str(form.get("decision", "")) == "allow"
    return server.create_authorization_response(oauth_request, end_user if allowed else None,
                                                grant)


# -- token and revocation endpoints (programs, JSON) ----------------------------------------

def _oauth_error(status: int, error: str, description: str) -> JSONResponse:
    return JSONResponse({"error": error, "error_description": description},
                        status_code=status, headers=NO_STORE)


async def _read_body(request: Request) -> dict[str, list[str]] | JSONResponse:
    """The request's parameters (form-encoded or a JSON object of strings)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            return _oauth_error(413, "invalid_request", "The request is too large.")
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if kind == "application/x-www-form-urlencoded":
            return parse_qs(body.decode(), keep_blank_values=True, max_num_fields=50)
        if kind == "application/json":
            data = json.loads(body)
            if isinstance(data, dict) and all(isinstance(v, str) for v in data.values()):
                return {str(k): [v] for k, v in data.items()}
    except (ValueError, UnicodeDecodeError):
        pass
    return _oauth_error(400, "invalid_request", "Send the parameters form-encoded "
                        "(application/x-www-form-urlencoded) or as a JSON object of strings.")


def _program_endpoint(answer):
    """A token-style endpoint: gate, read the body, then ``answer(server, request)``
    in the thread pool."""
    async def endpoint(request: Request):
        site = request.app.state.site
        settings = await run_in_threadpool(oauth.stored_settings, site)
        if not settings["api_enabled"]:
            return _oauth_error(403, "access_denied", API_DISABLED)
        if not transport_allowed(request, settings):
            return _oauth_error(403, "invalid_request", NEEDS_HTTPS)
        params = await _read_body(request)
        if isinstance(params, JSONResponse):
            return params
        oauth_request = _oauth_request(request, {}, params)
        return await run_in_threadpool(answer, server_for(request.app), oauth_request)

    return endpoint


token = _program_endpoint(lambda server, req: server.create_token_response(req))
revoke = _program_endpoint(lambda server, req: server.create_endpoint_response("revocation",
                                                                               req))


async def jwks(request: Request):
    keys = await run_in_threadpool(oauth.jwks, request.app.state.site)
    return JSONResponse(keys, headers={"Cache-Control": "max-age=300"})


routes = [
    Route("/oauth/authorize", authorize, methods=["GET", "POST"]),
    Route("/oauth/token", token, methods=["POST"]),
    Route("/oauth/revoke", revoke, methods=["POST"]),
    Route("/oauth/jwks.json", jwks),
]
