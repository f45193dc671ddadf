"""The duplicates pages.

- ``POST /m/<module>/duplicates``: the list action "Find duplicates" on the ticked rows
  (or every row the list's filters match, up to ``find.MAX_SELECTION``): groups of likely
  duplicates, each with a "Merge" link (its first five records);
- ``GET /m/<module>/merge?ids=..``: the records side by side, a radio per field (the
  flagged fields first, then every field a form writes) and the survivor to keep;
- ``POST /m/<module>/merge``: the merge (core.apps.duplicates.merge), then the survivor's
  page; a refusal comes back to the page with its reason, nothing changed.

The create form's warning is drawn by core/web/views.py (``create_view``) from
``find_duplicates``.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.duplicates.find import MAX_SELECTION, find_groups
from core.apps.duplicates.merge import MAX_RECORDS, MergeRefused, merge, merge_rows
from core.kernel.errors import N_, Message, NotFoundError, ValidationError, VetoError
from core.kernel.records import Query
from core.web import views
from core.web.pages import page
from core.web.templating import flash


def _checked_module(request: Request):
    module = views._module(request)  # 404 / 403 as every module page
    if not request.app.state.site.access.can(request.state.user, module, "edit"):
        raise HTTPException(403, Message(N_("You are not allowed to %(what)s here."),
                                         what=Message(N_("merge records"))))
    return module


@page()
def duplicates_view(request: Request, form):
    module = views._module(request)
    back = f"/m/{module.name}?" + str(form.get("back", ""))
    if form.get("all") == "1":  # every row the list's filters match: the first ones
        query, _ = views._list_query(request, module, form)
        query.fields, query.limit = ["id"], MAX_SELECTION + 1
        ids = [r["id"] for r in request.app.state.site.records.list(
            module.name, request.state.user, query)]
    else:
        ids = [str(i) for i in form.getlist("ids")][:MAX_SELECTION + 1]
    if not ids:
        flash(request, Message(N_("Select at least one record first.")), "error")
        return RedirectResponse(back, 303)
    groups = find_groups(request.app.state.site, module, ids, request.state.user)
    return request.app.state.templates.render(
        request, "duplicates.html", module=module, groups=groups, back=back,
        limited=len(ids) > MAX_SELECTION, max_selection=MAX_SELECTION, max_records=MAX_RECORDS)


def _merge_context(request: Request, module, ids: list[str], survivor: str):
    """The records (as the user sees them, with labels) and the rows of the merge table,
    each with the record whose value is offered first: the survivor's, or where it has
    none the first record that has one."""
    site, user = request.app.state.site, request.state.user
    found = {r["id"]: r for r in site.records.list(
        module.name, user, Query(filters=[("id", "in", ids)], limit=None, labels=True))}
    records = [found[i] for i in ids if i in found]
    fmt = views._fmt(request)
    rows = []
    for key, label, names in merge_rows(module):
        shown = [" · ".join(t for t in (_text(fmt, module, n, r) for n in names) if t)
                 for r in records]
        if not any(shown):
            continue  # empty everywhere: nothing to choose
        order = sorted(range(len(records)), key=lambda i: records[i]["id"] != survivor)
        first = next((records[i]["id"] for i in order if shown[i]), survivor)
        rows.append({"key": key, "label": label, "values": shown, "default": first,
                     "same": len(set(shown)) <= 1})
    return records, rows


def _text(fmt, module, name: str, record: dict) -> str:
    f = module.fields[name]
    if f.type.is_link:
        return str(record.get(f"{name}__label") or record.get(name) or "")
    return fmt.field(f, record.get(name), record) if record.get(name) not in (None, "") else ""


@page()
def merge_view(request: Request, form):
    module = _checked_module(request)
    params = form if form is not None else request.query_params
    ids = list(dict.fromkeys(str(i) for i in params.getlist("ids") if str(i).strip()))
    site, user = request.app.state.site, request.state.user
    error = None
    chosen = {key: str(form.get(f"v_{key}")) for key, _, _ in merge_rows(module)
              if form.get(f"v_{key}")} if form is not None else {}
    if form is not None:
        try:
            merged = merge(site, module, ids, user, survivor=str(form.get("survivor") or ""),
                           choices=chosen)
        except (ValidationError, NotFoundError, VetoError) as exc:
            error = exc
        else:
            flash(request, Message(N_("%(count)s records merged into %(name)s."),
                                   count=len(merged.losers) + 1,
                                   name=merged.survivor.get(module.name_field or "") or ""))
            return RedirectResponse(f"/m/{module.name}/{merged.survivor['id']}", 303)
    survivor = str((form or {}).get("survivor") or (ids[0] if ids else ""))
    records, rows = _merge_context(request, module, ids[:MAX_RECORDS + 1], survivor)
    if error is None and not 2 <= len(ids) <= MAX_RECORDS:
        error = ValidationError({"records": Message(
            N_("Choose two to five records to merge (%(count)s given)."), count=len(ids))})
    if error is None and len(records) < len(ids):
        error = NotFoundError(Message(
            N_("%(module)s not found (deleted, or you may not see it): %(ids)s"),
            module=module.label_singular,
            ids=", ".join(i for i in ids if i not in {r["id"] for r in records})))
    messages = list(getattr(error, "errors", {}).values()) or ([error.args[0]] if error else [])
    status = 200 if error is None else 403 if isinstance(error, MergeRefused) else \
        404 if isinstance(error, NotFoundError) else 422
    return request.app.state.templates.render(
        request, "duplicates_merge.html", status=status, module=module, records=records,
        rows=rows, errors=messages, ids=ids, survivor=survivor, chosen=chosen,
        can_merge=2 <= len(records) == len(ids) <= MAX_RECORDS)


routes = [
    Route("/m/{module}/duplicates", duplicates_view, methods=["POST"]),
    Route("/m/{module}/merge", merge_view, methods=["GET", "POST"]),
]
