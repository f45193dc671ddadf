"""The panels' rows (panels.py): ``/m/<module>/<id>/panel/<activities|history>`` — the
fragment crbm.js fetches into an opened panel (``?fragment=1``), or without JavaScript a page
of its own. A record the reader may not see is not found; a module that has not opted in has
no such panel."""
from __future__ import annotations

from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from core.apps.activities import panels, timeline
from core.kernel.errors import N_, Message, NotFoundError
from core.web.pages import page

TITLES = {"activities": N_("Activities"), "history": N_("History")}


@page()
def panel_view(request: Request, form):
    site = request.app.state.site
    user = request.state.user
    try:
        module = site.registry.module(request.path_params["module"])
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such module."))) from None
    name = request.path_params["panel"]
    if name not in panels.PANELS or not module.features.get("activities") or \
            site.access.mode(user, module) == "disabled":
        raise HTTPException(404, Message(N_("There is no such subpanel.")))
    record_id = request.path_params["record_id"]
    record = site.records.get(module.name, record_id, user)  # NotFound if not visible
    found = panels.rows(site, module, record_id, name, user)
    labels = {kind.module.name: site.registry.option_labels(kind.module.name)
              for kind in {item["kind"].module.name: item["kind"] for item in found}.values()}
    fragment = request.query_params.get("fragment") == "1"
    title = str(record.get(module.name_field) or record_id) if module.name_field else record_id
    return request.app.state.templates.render(
        request, "activity_rows.html" if fragment else "activity_panel.html",
        module=module, record=record, title=title, panel=name, panel_title=TITLES[name],
        items=found, labels=labels,
        creates=panels.create_links(site, module, record_id, title, name, user))


routes = [Route("/m/{module}/{record_id}/panel/{panel}", panel_view)]


@page()
def timeline_view(request: Request, form):
    """``/m/<module>/<id>/timeline[?kind=…&after=…]``: the record's timeline
    (timeline.py). ``?fragment=1`` is the entries crbm.js puts into the timeline card (a
    page of them, and a "Load more" link carrying the cursor); without it a page of its
    own. A record the reader may not see is not found."""
    site = request.app.state.site
    user = request.state.user
    try:
        module = site.registry.module(request.path_params["module"])
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such module."))) from None
    if site.access.mode(user, module) == "disabled":
        raise HTTPException(404, Message(N_("There is no such module.")))
    record_id = request.path_params["record_id"]
    record = site.records.get(module.name, record_id, user, labels=True)  # NotFound if unseen
    choices = timeline.filters(site, module, user)
    kind = request.query_params.get("kind") or None
    if kind not in {name for name, _ in choices}:
        kind = None
    cursor = timeline.Cursor.decode(request.query_params.get("after"))
    entries, more = timeline.page(site, module, record, user, kind, cursor)
    labels = {e["module"].name: site.registry.option_labels(e["module"].name)
              for e in entries if e["module"] is not None}
    base = f"/m/{module.name}/{record_id}/timeline"
    query = {"kind": kind} if kind else {}
    more_url = f"{base}?{urlencode({**query, 'after': more.encode()})}" if more else None
    fragment = request.query_params.get("fragment") == "1"
    title = str(record.get(module.name_field) or record_id) if module.name_field else record_id
    return request.app.state.templates.render(
        request, "timeline_rows.html" if fragment else "timeline.html",
        module=module, record=record, title=title, entries=entries,
        own_labels=site.registry.option_labels(module.name),  # a dropdown's change: its labels
        labels=labels, choices=choices, kind=kind, more_url=more_url, base=base,
        first_page=cursor is None)


routes.append(Route("/m/{module}/{record_id}/timeline", timeline_view))
