"""Answer 503 to every request once the site was restored under this process
(``core.site_restart``): the page says to restart CRBM; nothing reaches the previous
database. Pure ASGI, the outermost of the application's middleware."""
from __future__ import annotations

import logging

from core.site_restart import RestartWatch

log = logging.getLogger(__name__)
BODY = (b"<!doctype html><meta charset=utf-8><title>Restart CRBM</title>"
        b"<p>This site was restored from a backup after this process started. Restart CRBM "
        b"(every web and job process) to serve the restored site.</p>")


class RestartGuardMiddleware:
    def __init__(self, app, folder):
        self.app, self.watch, self.told = app, RestartWatch(folder), False

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.watch.needed():
            return await self.app(scope, receive, send)
        if not self.told:
            self.told = True
            log.error("the site was restored after this process started: restart CRBM")
        await send({"type": "http.response.start", "status": 503,
                    "headers": [(b"content-type", b"text/html; charset=utf-8"),
                                (b"retry-after", b"30"), (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": BODY})
