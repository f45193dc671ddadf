"""Adding records to a target list from their list page (``crbm_list_actions``): the
toolbar's "Add to target list" posts the ticked rows (or "all": every record the list's
filters and search match) here; this page asks which list, carrying the selection along,
and adds them in one transaction (members.add_members)."""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.records import Query
from core.web.actions import selection_query
from core.web.pages import page
from core.web.templating import flash
from plugins.targets import members

URL = "/prospect_lists/add/{module}"


@page()
def add_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    module_name = request.path_params["module"]
    if form is None or module_name not in members.member_modules(site):
        raise HTTPException(404)
    module = site.registry.module(module_name)
    carried = [(key, str(value)) for key, value in form.multi_items()
               if key in ("ids", "all", "q") or key.startswith("f_")]
    list_id = str(form.get("target_list_id") or "").strip()
    everything = form.get("all") == "1"
    ids = [r["id"] for r in site.records.list(module_name, user, selection_query(
        module, form, fields=["id"]))] if everything else [str(i) for i in form.getlist("ids")]
    errors = {}
    if list_id:
        if not ids:
            errors["target_list_id"] = Message(N_("nothing was selected: tick some rows, or "
                                                  "choose all of them"))
        else:
            try:
                added, hidden = members.add_members(site, user, list_id, module_name, ids)
            except NotFoundError as exc:
                errors["target_list_id"] = exc.args[0]
            else:
                flash(request, Message(N_("%(added)s added to the target list (%(already)s "
                                          "were in it already)."), added=added,
                                       already=len(ids) - hidden - added), "info")
                return RedirectResponse(f"/m/prospect_lists/{list_id}", 303)
    lists = site.records.list(members.LISTS, user, Query(fields=["name"], limit=200,
                                                         sort="name"), action="edit")
    return request.app.state.templates.render(
        request, "prospect_lists_add.html", status=422 if errors else 200, module=module,
        count=len(ids), lists=lists, carried=carried, errors=errors,
        action=URL.format(module=module_name))


routes = [Route(URL, add_view, methods=["POST"])]
