"""The dashboards' pages: the home page ``/`` (the user's dashboard), the changes to it
(each a POST with the CSRF token, redirecting back to the tab), the drill-down page and
Admin → Dashboards.

The home page draws every dashlet of the chosen tab in the request: the user's dashboards
(one statement), then each dashlet's ``render`` (a small fixed number of statements each).
A dashlet that fails to draw says so in its place and the others still show.
"""
from __future__ import annotations

import json
import logging
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, CrbmError, Message, ValidationError
from core.kernel.i18n import label
from core.kernel.records import Query
from core.web.pages import page
from core.web.templating import flash
from plugins.dashboards import store
from plugins.dashboards.dashlets import WIDTHS, Drawn, Registry, plain

log = logging.getLogger("crbm.dashboards")
ADMIN_URL = "/admin/dashboards"
DRILL_PAGE = 50


def _home_url(tab: str | None) -> str:
    return f"/?tab={quote(tab)}" if tab and tab != store.STARTING else "/"


def _draw(site, user, fmt, kind, item) -> Drawn:
    try:
        return kind.render(site, user, item.get("options") or {}, fmt)
    except CrbmError as exc:
        return Drawn(error=str(exc))
    except Exception:  # one broken dashlet must not take the home page down
        log.exception("dashlet %s failed to draw", kind.name)
        return Drawn(error=fmt.gettext("This dashlet could not be drawn; the error was "
                                       "logged."))


def _json(data) -> str:
    """JSON safe inside a <script> element (no "</script>" from a label can end it)."""
    return json.dumps(data).replace("<", "\\u003c").replace(">", "\\u003e") \
        .replace("&", "\\u0026")


@page()
def home(request: Request, form):
    site, user = request.app.state.site, request.state.user
    fmt = request.state.fmt
    tabs = store.dashboards(site, user)
    chosen = next((t for t in tabs if t.id == request.query_params.get("tab")), tabs[0])
    types = Registry.of(site).types
    if any(item.get("type") == "dashboards.recent" for item in chosen.dashlets):
        request.app.state.recent.flush()  # this worker's views first: the one just made shows
    items = []
    for item in chosen.dashlets:
        kind = types.get(str(item.get("type")))
        if kind is None:  # its plugin was disabled or removed: absent until it is back
            continue
        drawn = plain(_draw(site, user, fmt, kind, item))
        width = item.get("width") if item.get("width") in WIDTHS else kind.width
        form = drawn["form"]
        items.append({"id": str(item.get("id")), "type": kind.name,
                      "label": drawn["title"] or label(kind.label), "width": width,
                      "drawn": drawn, "chart": _json(drawn["chart"]) if drawn["chart"] else None,
                      # a quick-create form's module, for the record forms' inputs
                      "form_module": site.registry.modules[form["module"]] if form else None})
    offered = []
    for kind in types.values():
        offered.append({"name": kind.name, "label": label(kind.label),
                        "description": label(kind.description),
                        "option_label": label(kind.option_label or ""),
                        "choices": kind.choices(site, user) if kind.choices else None})
    response = request.app.state.templates.render(
        request, "home.html", tabs=[{"id": t.id, "name": t.name} for t in tabs],
        dashboard={"id": chosen.id, "name": chosen.name, "role_id": chosen.role_id,
                   "stored": chosen.stored},
        items=items, offered=offered, widths=list(WIDTHS), most=store.max_dashlets(site),
        roles=store.roles(site) if user.is_admin else [],
        home_url=_home_url(chosen.id), options=site.registry.choices)
    response.headers["Cache-Control"] = "no-store"
    return response


def _act(request: Request, form, action):
    """Run ``action(site, user, tab)``; back to the tab (its stored id), a refusal flashed;
    JSON for a script's request."""
    site, user = request.app.state.site, request.state.user
    tab = request.path_params.get("tab")
    wants_json = "application/json" in request.headers.get("accept", "")
    try:
        tab = action(site, user, tab) or tab
    except ValidationError as exc:
        reason = "; ".join(_say(request.state.fmt, v) for v in exc.errors.values())
        if wants_json:
            return JSONResponse({"ok": False, "error": reason}, status_code=422)
        flash(request, Message(N_("Not changed: %(reason)s"), reason=reason), "error")
        return RedirectResponse(_home_url(tab), 303)
    if wants_json:
        return JSONResponse({"ok": True, "tab": tab})
    return RedirectResponse(_home_url(tab), 303)


def _say(fmt, message) -> str:
    """A refusal's message in the reader's language (each says what is wrong in full)."""
    if isinstance(message, Message):
        text = fmt.gettext(message.template)
        return text % message.params if message.params else text
    return str(message)


@page()
def add_view(request: Request, form):
    return _act(request, form, lambda site, user, tab: store.add_dashlet(
        site, user, tab, str(form.get("type") or ""), str(form.get("option") or "") or None))


@page()
def remove_view(request: Request, form):
    return _act(request, form, lambda site, user, tab: store.remove_dashlet(
        site, user, tab, str(form.get("dashlet") or "")))


@page()
def resize_view(request: Request, form):
    return _act(request, form, lambda site, user, tab: store.resize_dashlet(
        site, user, tab, str(form.get("dashlet") or ""), form.get("width")))


@page()
def move_view(request: Request, form):
    step = -1 if form.get("step") == "up" else 1
    return _act(request, form, lambda site, user, tab: store.move_dashlet(
        site, user, tab, str(form.get("dashlet") or ""), step))


@page()
def order_view(request: Request, form):
    ids = [i for i in str(form.get("order") or "").split(",") if i]
    return _act(request, form, lambda site, user, tab: store.reorder(site, user, tab, ids))


@page()
def rename_view(request: Request, form):
    return _act(request, form, lambda site, user, tab: store.rename(
        site, user, tab, form.get("name")))


@page()
def new_tab_view(request: Request, form):
    return _act(request, form, lambda site, user, tab: store.add_tab(site, user,
                                                                     form.get("name")))


@page()
def delete_tab_view(request: Request, form):
    def delete(site, user, tab):
        store.delete_tab(site, user, tab)
        return store.STARTING  # back to the first tab
    return _act(request, form, delete)


@page()
def publish_view(request: Request, form):
    return _act(request, form, lambda site, user, tab: store.publish(
        site, user, tab, str(form.get("role") or "") or None))


# -- drill-down ------------------------------------------------------------------------------

def _columns(module) -> list:
    return [f for name in module.list_columns() for f in module.expand(name)
            if (f.stored or f.type.derived) and not f.type.internal][:8]


@page()
def drill_view(request: Request, form):
    """The records behind a chart's segment, as the reader may list them, 50 a page."""
    site, user, fmt = request.app.state.site, request.state.user, request.state.fmt
    kind = Registry.of(site).types.get(request.path_params["dashlet"])
    drill = kind.drill(site, user, request.path_params["key"]) if kind and kind.drill else None
    module = site.registry.modules.get(drill.module) if drill else None
    if module is None:
        raise HTTPException(404, Message(N_("There is no such chart segment.")))
    number = request.query_params.get("page", "0")
    number = int(number) if number.isdigit() and int(number) < 100_000 else 0
    columns = _columns(module)
    rows, total = site.records.page(module.name, user, Query(
        filters=list(drill.filters), fields=[f.name for f in columns], labels=True,
        limit=DRILL_PAGE, offset=number * DRILL_PAGE))
    options = {f.name: dict(site.registry.choices(f)) for f in columns if f.type.has_options}
    table = []
    for record in rows:
        cells = []
        for f in columns:
            if f.type.is_link:
                text = record.get(f"{f.name}__label") or ""
            else:
                text = fmt.field(f, record.get(f.name), record, options=options.get(f.name))
            cells.append(str(text))
        table.append({"id": record["id"], "cells": cells})
    response = request.app.state.templates.render(
        request, "dashboards_drill.html", module=module, title=drill.title,
        headers=[str(f.label) for f in columns], rows=table, total=total, page=number,
        pages=(total + DRILL_PAGE - 1) // DRILL_PAGE, dashlet=label(kind.label))
    response.headers["Cache-Control"] = "no-store"
    return response


# -- Admin → Dashboards ----------------------------------------------------------------------

@page()
def settings_page(request: Request, form):
    site = request.app.state.site
    if not request.state.user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change this setting.")))
    errors: dict = {}
    values = {"max_dashlets": store.max_dashlets(site)}
    if form is not None:
        values, errors = store.clean_settings(form)
        if not errors:
            current = site.settings.get(store.SETTING)
            site.set_setting(store.SETTING, {**(current if isinstance(current, dict) else {}),
                                             **values})
            flash(request, N_("The dashboard settings were saved."), "info")
            return RedirectResponse(ADMIN_URL, 303)
    response = request.app.state.templates.render(
        request, "admin_dashboards.html", status=422 if errors else 200, values=values,
        errors=errors, published=store.published(site), high=store.MAX_LIMIT)
    response.headers["Cache-Control"] = "no-store"
    return response


def routes() -> list[Route]:
    post = ["POST"]
    return [Route("/", home),
            Route("/dashboards/new", new_tab_view, methods=post),
            Route("/dashboards/drill/{dashlet}/{key}", drill_view),
            Route("/dashboards/{tab}/add", add_view, methods=post),
            Route("/dashboards/{tab}/remove", remove_view, methods=post),
            Route("/dashboards/{tab}/resize", resize_view, methods=post),
            Route("/dashboards/{tab}/move", move_view, methods=post),
            Route("/dashboards/{tab}/order", order_view, methods=post),
            Route("/dashboards/{tab}/rename", rename_view, methods=post),
            Route("/dashboards/{tab}/delete", delete_tab_view, methods=post),
            Route("/dashboards/{tab}/publish", publish_view, methods=post),
            Route(ADMIN_URL, settings_page, methods=["GET", "POST"])]
