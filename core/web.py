"""The web application (Starlette). For now a status page; the generic list, detail and
edit views rendered from metadata arrive with the web UI."""
from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from core import __version__

TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(default=True))
SECURITY_HEADERS = {"X-Content-Type-Options": "nosniff", "X-Frame-Options": "DENY",
                    "Referrer-Policy": "same-origin",
                    "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'"}


def create_app(site) -> Starlette:
    async def home(request: Request):
        modules = sorted(site.registry.modules.values(), key=lambda m: m.label)
        html = TEMPLATES.get_template("status.html").render(
            version=__version__, modules=modules, plugins=site.plugins)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    async def health(request: Request):
        return JSONResponse({"status": "ok", "version": __version__})

    return Starlette(routes=[Route("/", home), Route("/health", health)])
