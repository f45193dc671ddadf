"""Request ids and the access log: one structured line per request.

Every HTTP request gets an id: the ``X-Request-ID`` a reverse proxy sent (nginx's
``$request_id``; kept only if it is 1–64 letters, digits, ``.``, ``_`` or ``-``, so a client
cannot forge log lines through it), a new random one otherwise. It is the
``core.log_context.correlation_id`` while the request runs (every line logged meanwhile
carries it), it is returned in the response's ``X-Request-ID`` header, and it ends the
request's access-log line (logger ``crbm.access``: method, path, status, milliseconds,
user). An error page shows it, so a user can quote it to the administrator.

Pure ASGI, like ``SecurityHeadersMiddleware``: responses stream through untouched.
"""
from __future__ import annotations

import logging
import re
import time
import uuid

from core.log_context import correlation_id

access_log = logging.getLogger("crbm.access")
VALID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class RequestIdMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        sent = dict(scope["headers"]).get(b"x-request-id", b"").decode("latin-1")
        request_id = sent if VALID.match(sent) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        token = correlation_id.set(request_id)
        started, status = time.perf_counter(), [500]

        async def send_with_id(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                message["headers"] = [*message.get("headers", ()),
                                      (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                session = scope.get("session") or {}
                access_log.info("%s %s %s", scope["method"], scope["path"], status[0], extra={
                    "http": {"method": scope["method"], "path": scope["path"],
                             "status": status[0],
                             "ms": round((time.perf_counter() - started) * 1000, 1)},
                    "user_id": session.get("uid")})
            correlation_id.reset(token)
