"""The smart lists' pages: saving a list as one, editing, deleting, the column chooser.

Every one is a POST from the list page (CSRF as every form, ``pages.page``) sent back to
the list, except the edit page (``GET`` shows it):

- ``POST /m/<module>/smart-lists``: "Save as smart list" — a name, KPIs and sharing, with
  the list's current parameters and columns (hidden fields of the list page); opens it.
- ``GET|POST /m/<module>/smart-lists/<id>``: rename, share, columns, KPIs (its owner or an
  administrator; someone it is shared with gets 403, anyone else 404 — as a record).
- ``POST /m/<module>/smart-lists/<id>/delete``, ``.../filters`` (the list's current
  search, filters and sort saved into it).
- ``POST /m/<module>/list-settings``: the column chooser and the KPIs of the list shown,
  saved into the smart list open when the user may change it, else as the user's own
  defaults for the module; ``move=up:<name>`` / ``down:<name>`` (the chooser's arrows, no
  JavaScript needed) saves the new order and comes back with the chooser open;
  ``do=reset`` goes back to the layout's columns.
- ``GET /admin/smart-lists``: every smart list of the site, for an administrator to
  manage (§7.5.4).
"""
from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.admin import access_admin
from core.apps.smart_lists import lists
from core.apps.smart_lists.tables import LISTS, SHARES
from core.kernel.errors import N_, Message, NotFoundError
from core.web.pages import page
from core.web.templating import flash
from core.web.views import _module, _render, _said


def _back(module, form, drop_list: bool = False, **extra) -> str:
    """The list page the form came from (its query string in ``back``), plus ``extra``."""
    params = [(k, v) for k, v in parse_qsl(str(form.get("back", "")))
              if not (drop_list and k == "list") and k not in extra]
    params += [(k, v) for k, v in extra.items() if v]
    return f"/m/{module.name}" + (f"?{urlencode(params)}" if params else "")


def _problems(request: Request, exc: lists.SmartListError) -> str:
    return " ".join(_said(request, p) for p in exc.problems)


def posted_kpis(form) -> list[dict]:
    """The KPI selects (``kpi``: "fn:field", "count:" for the records), in order."""
    out = []
    for value in form.getlist("kpi"):
        fn, _, name = str(value).partition(":")
        if fn.strip():
            out.append({"fn": fn, "field": name or None})
    return out


def posted_columns(form) -> list[str]:
    """The ticked columns in the order the chooser shows (``order``: every row's name),
    one moved up or down when an arrow was pressed (``move``)."""
    order = [str(n) for n in form.getlist("order")] or [str(n) for n in form.getlist("columns")]
    direction, _, name = str(form.get("move", "")).partition(":")
    if name in order:
        i = order.index(name)
        j = i - 1 if direction == "up" else i + 1
        if 0 <= j < len(order):
            order[i], order[j] = order[j], order[i]
    ticked = set(map(str, form.getlist("columns")))
    return [n for n in order if n in ticked]


def _smart(request: Request, module, list_id: str, change: bool = True) -> lists.SmartList:
    site, user = request.app.state.site, request.state.user
    try:
        smart = lists.get(site, user, module.name, list_id)
    except NotFoundError as exc:
        raise HTTPException(404, exc.args[0]) from None
    if change and not lists.may_change(user, smart):
        raise HTTPException(403, Message(N_("Only its owner or an administrator may change "
                                            "this smart list.")))
    return smart


@page()
def create_view(request: Request, form):
    module = _module(request)
    site, user = request.app.state.site, request.state.user
    params = {k: v for k, v in form.items() if lists._is_param(k)}
    try:
        smart = lists.create(site, user, module, form.get("name"), params,
                             form.getlist("columns"), posted_kpis(form),
                             str(form.get("share", "")), form.getlist("share_users"),
                             form.getlist("share_teams"))
    except lists.SmartListError as exc:
        flash(request, Message(N_("The smart list was not saved: %(reason)s"),
                               reason=_problems(request, exc)), "error")
        return RedirectResponse(_back(module, form, save="open"), 303)
    flash(request, Message(N_("Smart list %(name)s saved."), name=smart.name))
    return RedirectResponse(f"/m/{module.name}?list={smart.id}", 303)


def _choices(request: Request, module) -> dict:
    """What the sharing, column and KPI pickers offer."""
    site = request.app.state.site
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        people = [(r.id, r.display_name or r.username) for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.display_name)
            .where(users.c.active.is_(True)).order_by(users.c.username))]
    return {"share_user_choices": people, "share_team_choices": access_admin.team_names(site),
            **lists.pickers(module)}


@page()
def edit_view(request: Request, form):
    module = _module(request)
    site, user = request.app.state.site, request.state.user
    smart = lists.with_shares(site, _smart(request, module, request.path_params["list_id"]))
    errors, values = "", None
    if form is not None:
        mode = str(form.get("share", ""))
        values = {"name": str(form.get("name", "")), "columns": posted_columns(form),
                  "kpis": posted_kpis(form), "share": mode,
                  "users": form.getlist("share_users"), "teams": form.getlist("share_teams")}
        if not form.get("move"):
            try:
                lists.update(site, user, module, smart, name=values["name"],
                             columns=values["columns"], kpis=values["kpis"],
                             shares=(mode, values["users"], values["teams"]))
            except lists.SmartListError as exc:
                errors = _problems(request, exc)
            else:
                flash(request, Message(N_("Smart list %(name)s saved."), name=smart.name))
                return RedirectResponse(f"/m/{module.name}?list={smart.id}", 303)
    if values is None:
        kinds = {k for k, _ in smart.shares}
        values = {"name": smart.name, "columns": lists.applied_columns(module, smart.columns)[0],
                  "kpis": [k.as_json() for k in lists.applied_kpis(module, smart.kpis)[0]],
                  "share": "everyone" if "everyone" in kinds else
                  "chosen" if kinds else "private",
                  "users": [t for k, t in smart.shares if k == "user"],
                  "teams": [t for k, t in smart.shares if k == "team"]}
    return _render(request, "smart_list_edit.html", status=422 if errors else 200,
                   module=module, smart=smart, values=values, errors=errors,
                   column_rows=lists.chooser_rows(module, values["columns"]),
                   kpi_values=[f"{k['fn']}:{k['field'] or ''}" for k in values["kpis"]],
                   **_choices(request, module))


@page()
def delete_view(request: Request, form):
    module = _module(request)
    smart = _smart(request, module, request.path_params["list_id"])
    lists.delete(request.app.state.site, request.state.user, smart)
    flash(request, Message(N_("Smart list %(name)s deleted."), name=smart.name))
    return RedirectResponse(f"/m/{module.name}", 303)


@page()
def filters_view(request: Request, form):
    """The list's current search, filters, sort and size saved into the smart list."""
    module = _module(request)
    smart = _smart(request, module, request.path_params["list_id"])
    params = {k: v for k, v in form.items() if lists._is_param(k)}
    lists.update(request.app.state.site, request.state.user, module, smart, params=params)
    flash(request, Message(N_("Smart list %(name)s saved."), name=smart.name))
    return RedirectResponse(f"/m/{module.name}?list={smart.id}", 303)


@page()
def settings_view(request: Request, form):
    """The column chooser and KPIs of the list shown: into the smart list open when the
    user may change it, else into their own defaults for the module."""
    module = _module(request)
    site, user = request.app.state.site, request.state.user
    tabs, default = lists.visible(site, user, module.name)
    list_id = str(form.get("list", ""))
    try:
        current = lists.get(site, user, module.name, list_id, tabs) if list_id else None
    except NotFoundError as exc:
        raise HTTPException(404, exc.args[0]) from None
    mine = current is not None and lists.may_change(user, current)
    reset = form.get("do") == "reset"
    columns = [] if reset else posted_columns(form)
    kpis = None if reset else posted_kpis(form)
    try:
        if mine:
            lists.update(site, user, module, current, columns=columns, kpis=kpis)
        else:
            lists.save_defaults(site, user, module, columns=columns, kpis=kpis,
                                current=default)
    except lists.SmartListError as exc:
        flash(request, Message(N_("Not saved: %(reason)s"), reason=_problems(request, exc)),
              "error")
        return RedirectResponse(_back(module, form, chooser="open"), 303)
    if form.get("move"):  # an arrow: the chooser stays open for the next one
        return RedirectResponse(_back(module, form, drop_list=current is not None and not mine,
                                      chooser="open") + "#list-settings", 303)
    if reset:
        flash(request, Message(N_("Columns reset to the layout's.")))
    elif mine:
        flash(request, Message(N_("Columns and KPIs saved to smart list %(name)s."),
                               name=current.name))
    elif current is not None:  # a list shared with them: theirs are their own defaults
        flash(request, Message(N_("Saved as your own columns and KPIs for %(module)s (the "
                                  "All tab); this shared list keeps its own."),
                               module=module.label))
    else:
        flash(request, Message(N_("Columns and KPIs saved.")))
    return RedirectResponse(_back(module, form, drop_list=current is not None and not mine), 303)


@page()
def admin_view(request: Request, form):
    """Every named smart list of the site, with its owner and sharing (§7.5.4)."""
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators may see this page.")))
    site = request.app.state.site
    t, s = site.tables.tables[LISTS], site.tables.tables[SHARES]
    users, teams = site.tables.tables["crbm_users"], site.tables.tables["crbm_teams"]
    with site.engine.connect() as conn:
        rows = conn.execute(
            sa.select(t.c.id, t.c.module, t.c.name, t.c.modified_at,
                      sa.func.coalesce(users.c.display_name, users.c.username).label("owner"))
            .select_from(t.outerjoin(users, users.c.id == t.c.owner_id))
            .where(t.c.name.is_not(None)).order_by(t.c.module, t.c.name)).all()
        shares = conn.execute(
            sa.select(s.c.list_id, s.c.kind,
                      sa.func.coalesce(users.c.display_name, users.c.username, teams.c.name)
                      .label("who"))
            .select_from(s.outerjoin(users, sa.and_(s.c.kind == "user",
                                                    users.c.id == s.c.target_id))
                         .outerjoin(teams, sa.and_(s.c.kind == "team",
                                                   teams.c.id == s.c.target_id)))
            .order_by(s.c.id)).all()
    shared: dict[str, list] = {}
    for r in shares:
        shared.setdefault(r.list_id, []).append((r.kind, r.who))
    modules = site.registry.modules
    return _render(request, "smart_list_admin.html",
                   rows=[(r, modules.get(r.module), shared.get(r.id, [])) for r in rows])


routes = [
    Route("/m/{module}/smart-lists", create_view, methods=["POST"]),
    Route("/m/{module}/smart-lists/{list_id}", edit_view, methods=["GET", "POST"]),
    Route("/m/{module}/smart-lists/{list_id}/delete", delete_view, methods=["POST"]),
    Route("/m/{module}/smart-lists/{list_id}/filters", filters_view, methods=["POST"]),
    Route("/m/{module}/list-settings", settings_view, methods=["POST"]),
    Route("/admin/smart-lists", admin_view),
]
