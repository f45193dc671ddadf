"""Assembling the Starlette application for a site."""
from __future__ import annotations

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount, Route

from core import __version__, api
from core.api.problems import ApiProblem
from core.apps.admin import web as admin
from core.apps.calendar import web as calendar
from core.apps.documents import admin_mail
from core.apps.documents import web as documents
from core.apps.oauth import admin_web as admin_api
from core.apps.oauth import web as oauth
from core.apps.studio import web as studio
from core.apps.studio import web_layout as studio_layout
from core.apps.studio import web_lists as studio_lists
from core.apps.webhooks import web as admin_webhooks
from core.kernel.errors import NotFoundError
from core.web import auth, views
from core.web.pages import load_user
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

    # plugin pages (crbm_web_routes) come after the kernel's own, before the generic views
    plugin_routes = [route for routes in site.hook.crbm_web_routes(site=site)
                     for route in routes or ()]
    app = Starlette(
        routes=[
            Route("/health", health),
            Mount("/static", LayeredStaticFiles(lookup_dirs(site, "static")), name="static"),
            # theme packs come and go while the site runs: looked up on each request
            Mount("/theme/{name}", ThemeFiles(site), name="theme"),
            *api.routes,
            *oauth.routes,
            *auth.routes,
            *admin.routes, *admin_api.routes, *admin_webhooks.routes, *admin_mail.routes,
            *studio.routes, *studio_layout.routes, *studio_lists.routes,
            *calendar.routes,
            *documents.routes,
            *plugin_routes,
            *views.routes,
        ],
        middleware=[
            Middleware(SecurityHeadersMiddleware, https=https),
            Middleware(SessionMiddleware, secret_key=site.config["secret_key"],
                       session_cookie="crbm_session", max_age=SESSION_DAYS * 86400,
                       same_site="lax", https_only=https),
        ],
        exception_handlers={HTTPException: http_error, NotFoundError: not_found},
    )
    app.state.site = site
    app.state.templates = Templates(site)
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
