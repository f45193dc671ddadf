"""Assembling the Starlette application for a site."""
from __future__ import annotations

import contextlib

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from core import __version__
from core.api import openapi, resources
from core.api.problems import ApiProblem
from core.kernel.errors import NotFoundError
from core.kernel.identity import load_user
from core.web import auth, views
from core.web.recent import RecentItems
from core.web.security import SecurityHeadersMiddleware
from core.web.templating import LayeredStaticFiles, Templates, ThemeFiles, lookup_dirs

SESSION_DAYS = 14


def create_app(site) -> Starlette:
    https = bool(site.config.get("https", False))

    async def health(request: Request):
        return JSONResponse({"status": "ok", "version": __version__})

    async def http_error(request: Request, exc: HTTPException):
        if request.url.path.startswith("/api/"):  # API clients get problem objects, not pages
            return ApiProblem(exc.status_code, str(exc.detail), headers=exc.headers).response()
        return await _error_page(request, exc.status_code, exc.detail)

    async def not_found(request: Request, exc: NotFoundError):
        return await _error_page(request, 404, str(exc))

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await run_in_threadpool(app.state.recent.close)  # this worker's last views

    # the applications' pages and plugins' pages (crbm_web_routes: the applications' first)
    # come before the API's generic /api/v1/{module} and the generic views
    plugin_routes = [route for routes in site.hook.crbm_web_routes(site=site)
                     for route in routes or ()]
    app = Starlette(
        routes=[
            Route("/health", health),
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
            Middleware(SecurityHeadersMiddleware, https=https),
            Middleware(SessionMiddleware, secret_key=site.config["secret_key"],
                       session_cookie="crbm_session", max_age=SESSION_DAYS * 86400,
                       same_site="lax", https_only=https),
        ],
        exception_handlers={HTTPException: http_error, NotFoundError: not_found},
        lifespan=lifespan,
    )
    app.state.site = site
    app.state.templates = Templates(site)
    app.state.recent = RecentItems(site)  # detail pages note views, written in batches
    app.state.check_ip = bool(site.settings.get("validate_ip", False))
    return app


async def _error_page(request: Request, status: int, message: str):
    templates = request.app.state.templates
    if "session" not in request.scope:  # failed before the session existed
        return JSONResponse({"error": message}, status_code=status)
    if not hasattr(request.state, "user"):  # failed before a page() loaded the user
        request.state.user = await run_in_threadpool(load_user, request)  # their theme
    return templates.render(request, "error.html", status=status, status_code=status,
                            message=message)
