"""Assembling the Starlette application for a site."""
from __future__ import annotations

import contextlib
import logging

import anyio
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Match, Mount, Route, Router, get_route_path

from core import __version__
from core.api import openapi, resources
from core.api.problems import ApiProblem
from core.apps.activity_tracking.recorder import ActivityMiddleware, ActivityRecorder
from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.identity import load_user
from core.web import auth, views
from core.web.recent import RecentItems
from core.web.request_ids import RequestIdMiddleware
from core.web.security import SecurityHeadersMiddleware
from core.web.site_guard import RestartGuardMiddleware
from core.web.templating import LayeredStaticFiles, Templates, ThemeFiles, lookup_dirs

SESSION_DAYS = 14
WEB_THREADS = 20  # the server databases' pools hold 30 (core.kernel.database.engine_for)
log = logging.getLogger("crbm.web")


def create_app(site) -> Starlette:
    https = bool(site.config.get("https", False))

    async def health(request: Request):  # liveness: the process answers
        return JSONResponse({"status": "ok", "version": __version__})

    async def ready(request: Request):
        """Readiness, for a load balancer: 503 while the database does not answer, so traffic
        goes to the other workers. (A stopping worker stops accepting connections at once:
        uvicorn's graceful shutdown finishes the requests in flight, then the lifespan.)"""
        try:
            await run_in_threadpool(_ping, site)
        except Exception as exc:  # noqa: BLE001 - any driver error: not ready, and why
            log.warning("not ready: the database does not answer: %s", exc)
            return JSONResponse({"status": "unavailable", "reason": "database"},
                                status_code=503)
        return JSONResponse({"status": "ready", "version": __version__})

    async def server_error(request: Request, exc: Exception):
        """An unexpected error: logged with its traceback and the request's id, and the
        user shown that id to quote, never the traceback."""
        request_id = getattr(request.state, "request_id", None)
        log.error("unhandled error on %s %s", request.method, request.url.path,
                  exc_info=exc, extra={"request_id": request_id})
        message = Message(N_("An unexpected error happened; it was logged with the "
                             "reference %(id)s."), id=request_id or "-")
        # (sent from outside the request-id middleware, which the error went through)
        headers = {"X-Request-ID": request_id} if request_id else {}
        if request.url.path.startswith("/api/"):
            return ApiProblem(500, str(message), headers=headers).response()
        with contextlib.suppress(Exception):  # the error page itself may be what broke
            response = await _error_page(request, 500, message)
            response.headers.update(headers)
            return response
        return JSONResponse({"error": "internal error", "request_id": request_id},
                            status_code=500, headers=headers)

    async def http_error(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/"):  # API clients get problem objects, not pages
            return ApiProblem(exc.status_code, str(exc.detail), headers=exc.headers).response()
        return await _error_page(request, exc.status_code, exc.detail)

    async def not_found(request: Request, exc: NotFoundError):
        return await _error_page(request, 404, str(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        # requests wait in the thread pool's queue (first come, first served), not for a
        # database connection: at most WEB_THREADS run at once, each with a connection
        anyio.to_thread.current_default_thread_limiter().total_tokens = WEB_THREADS
        yield
        log.info("stopping: the requests in flight are done")
        await run_in_threadpool(app.state.recent.close)  # this worker's last views
        await run_in_threadpool(activity.close)  # and last user activity

    # the applications' pages and plugins' pages (crbm_web_routes: the applications' first)
    # come before the API's generic /api/v1/{module} and the generic views
    # user activity, noted in memory by a middleware, written in batches by a thread
    activity = ActivityRecorder(site)
    plugin_routes = [route for routes in site.hook.crbm_web_routes(site=site)
                     for route in routes or ()]
    app = Starlette(
        routes=[
            Route("/health", health),
            Route("/ready", ready),
            Mount("/static", LayeredStaticFiles(lookup_dirs(site, "static")), name="static"),
            # theme packs come and go while the site runs: looked up on each request
            Mount("/theme/{name}", ThemeFiles(site), name="theme"),
            *plugin_routes,
            # fixed paths (the OpenAPI document, the docs page) before /api/v1/{module}
            *openapi.routes, *resources.routes,
            *auth.routes,
            *views.routes,
        ],
        middleware=[
            Middleware(RestartGuardMiddleware, folder=site.folder),
            Middleware(RequestIdMiddleware),
            Middleware(SecurityHeadersMiddleware, https=https),
            Middleware(SessionMiddleware, secret_key=site.config["secret_key"],
                       session_cookie="crbm_session", max_age=SESSION_DAYS * 86400,
                       same_site="lax", https_only=https),
            Middleware(ActivityMiddleware, recorder=activity),  # inside: sees the session
        ],
        exception_handlers={HTTPException: http_error, NotFoundError: not_found,
                            Exception: server_error},
        lifespan=lifespan,
    )
    app.router = SegmentRouter(app.router.routes, lifespan=lifespan)
    app.state.site = site
    app.state.templates = Templates(site)
    app.state.recent = RecentItems(site)  # detail pages note views, written in batches
    app.state.activity = activity
    app.state.check_ip = bool(site.settings.get("validate_ip", False))
    return app


def _ping(site) -> None:
    with site.engine.connect() as conn:
        conn.execute(sa.text("SELECT 1"))


class SegmentRouter(Router):
    """Starlette's router, trying for a request only the routes that can match its path's
    first segment (in their order) rather than all of them: a site has some 140 routes, the
    generic views last, and a regex test each cost a list page more than its routing needs.
    Whatever finds no full match there (405, redirects, 404) goes through Starlette's own
    loop over every route, so the outcome is always the one that loop gives."""

    def _candidates(self, path: str) -> list:
        if getattr(self, "_indexed", None) != (id(self.routes), len(self.routes)):
            # a literal first segment ("/m/{module}" -> "m") can only match paths under it;
            # any other route (parameters there, a Host, Mount("")) may match anything
            self._by_segment = by_segment = {}
            wildcard = []
            for route in self.routes:
                head = getattr(route, "path", "").split("/", 2)
                key = head[1] if len(head) > 1 and head[0] == "" and head[1] \
                    and "{" not in head[1] else None
                if key is None:
                    wildcard.append(route)
                    for routes in by_segment.values():
                        routes.append(route)
                else:
                    by_segment.setdefault(key, list(wildcard)).append(route)
            self._wildcard, self._indexed = wildcard, (id(self.routes), len(self.routes))
        return self._by_segment.get(path.split("/", 2)[1] if path[:1] == "/" else "",
                                    self._wildcard)

    async def app(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            for route in self._candidates(get_route_path(scope)):
                match, child_scope = route.matches(scope)
                if match is Match.FULL:
                    scope.setdefault("router", self)
                    scope["route"] = route
                    scope.update(child_scope)
                    await route.handle(scope, receive, send)
                    return
        await super().app(scope, receive, send)


async def _error_page(request: Request, status: int, message: str):
    templates = request.app.state.templates
    if "session" not in request.scope:  # failed before the session existed
        return JSONResponse({"error": message}, status_code=status)
    if not hasattr(request.state, "user"):  # failed before a page() loaded the user
        request.state.user = await run_in_threadpool(load_user, request)  # their theme
    return templates.render(request, "error.html", status=status, status_code=status,
                            message=message)
