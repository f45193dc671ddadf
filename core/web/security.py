"""Request safety: CSRF tokens, security headers, and reading forms safely.

Every state-changing request must carry the session's CSRF token, either as the form
field ``_csrf`` or the ``X-CSRF-Token`` header. Handlers get their form through
``checked_form``, so a handler cannot forget the check.
"""
from __future__ import annotations

import hmac
import secrets

from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request

from core.kernel.errors import N_, Message

MAX_FORM_FILES = 20
MAX_FORM_FIELDS = 5000  # mass-update forms carry one checkbox per selected row
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"),
}


def csrf_token(request: Request) -> str:
    """The session's token, created on first use."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return token


async def checked_form(request: Request) -> FormData:
    """The request's form, after verifying its CSRF token (403 otherwise)."""
    form = await request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS)
    sent = form.get("_csrf") or request.headers.get("x-csrf-token") or ""
    expected = request.session.get("csrf") or ""
    if not expected or not hmac.compare_digest(str(sent), expected):
        raise HTTPException(403, Message(N_("The form has expired or did not come from this "
                                            "site. Reload the page and try again.")))
    return form


class SecurityHeadersMiddleware:
    """Adds SECURITY_HEADERS to every HTTP response (pure ASGI: streams untouched)."""

    def __init__(self, app, https: bool = False):
        self.app = app
        self.headers = [(k.lower().encode(), v.encode()) for k, v in SECURITY_HEADERS.items()]
        if https:
            self.headers.append((b"strict-transport-security", b"max-age=31536000"))

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                # a page may set its own (the OAuth consent page widens form-action)
                have = {name.lower() for name, _ in headers}
                message["headers"] = headers + [h for h in self.headers if h[0] not in have]
            await send(message)

        await self.app(scope, receive, send_with_headers)
