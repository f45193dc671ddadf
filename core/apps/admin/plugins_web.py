"""Admin → Plugins: every plugin found (shipped, entry points), with its version, state and
requirements, and buttons to disable or enable it (``Site.disable_plugin`` /
``enable_plugin``, as ``crbm plugins disable|enable`` do).

Administrators only (403 before anything is looked up); the buttons post with the CSRF
token like every form. A refusal (a plugin others require, one whose requirement is
disabled) is shown as the site's one-line reason. The plugins' own pages (routes) are
mounted when the server starts, so they come or go at the next restart; the modules,
menus, API and hooks change at once.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, CrbmError, Message
from core.web.pages import page
from core.web.templating import flash

FORBIDDEN = N_("You are not allowed to open this page.")
DISABLED = N_("Plugin %(names)s disabled: its modules and hooks are gone, its data is kept. "
              "Restart the server to remove its pages too.")
ENABLED = N_("Plugin %(name)s enabled. Restart the server to add its pages too.")
REFUSED = N_("Nothing was changed: %(reason)s")


def _admin_only(request: Request):
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(FORBIDDEN))
    return user


def _rows(site) -> list[dict]:
    active = {p.name: p for p in site.plugins}
    return [{"name": c.name, "title": c.manifest.title or c.name, "version": c.manifest.version,
             "source": c.source, "enabled": c.name in active,
             "requires": [f"{name} {spec}".strip() for name, spec in
                          sorted(c.manifest.requires.items())],
             "description": c.manifest.description}
            for c in site.plugin_candidates]


@page()
def plugin_list(request: Request, form):
    _admin_only(request)
    response = request.app.state.templates.render(
        request, "admin_plugins.html", plugins=_rows(request.app.state.site))
    response.headers["Cache-Control"] = "no-store"
    return response


def _change(request: Request, form, action: str):
    _admin_only(request)
    site, name = request.app.state.site, request.path_params["name"]
    try:
        if action == "disable":
            done = site.disable_plugin(name, with_dependents=form.get("with_dependents") == "1")
            if done:
                flash(request, Message(DISABLED, names=", ".join(done)))
        elif site.enable_plugin(name):
            flash(request, Message(ENABLED, name=name))
    except CrbmError as exc:  # one line naming the reason (and the plugins concerned)
        flash(request, Message(REFUSED, reason=str(exc)), "error")
    templates = request.app.state.templates
    if hasattr(templates, "clear"):  # pages built from the old registry
        templates.clear()
    return RedirectResponse("/admin/plugins", status_code=303)


@page()
def plugin_disable(request: Request, form):
    return _change(request, form, "disable")


@page()
def plugin_enable(request: Request, form):
    return _change(request, form, "enable")


routes = [
    Route("/admin/plugins", plugin_list),
    Route("/admin/plugins/{name}/disable", plugin_disable, methods=["POST"]),
    Route("/admin/plugins/{name}/enable", plugin_enable, methods=["POST"]),
]
