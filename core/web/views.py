"""Generic screens for every module, driven only by the merged metadata.

List (search, filters, sort, pages, select, mass update, export, delete), detail (summary,
sections, subpanels, change log), edit / create / quick create, and the JSON pickers the
related-record widgets use. No module has a template of its own unless a plugin or theme
overrides one.
"""
from __future__ import annotations

import datetime as dt
import io
import itertools
import os
import tempfile
import uuid
from collections.abc import Iterator
from urllib.parse import urlencode

import sqlalchemy as sa
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, StreamingResponse
from starlette.routing import Route

from core.apps.admin import access_admin
from core.apps.duplicates import find_duplicates
from core.apps.fills import fills
from core.apps.smart_lists import lists as smart_lists
from core.kernel import i18n
from core.kernel.errors import (
    N_,
    ConflictError,
    InUseError,
    Message,
    NotFoundError,
    ValidationError,
    VetoError,
)
from core.kernel.records import Query
from core.kernel.registry import ModuleDef
from core.web import csv_export, detail, display, exporting, forms, paging, uploads, xlsx_export
from core.web.actions import record_actions
from core.web.pages import page
from core.web.templating import flash, formatter

COUNT_CAP = 1000
PAGE_SIZES = (10, 20, 50, 100)
RECENT_ITEMS = 10
SUBPANEL_ROWS = 50  # an opened subpanel's rows; its own page links the rest


def _module(request: Request) -> ModuleDef:
    """The module in the URL, if it exists and the user's roles do not disable it."""
    site = request.app.state.site
    try:
        module = site.registry.module(request.path_params["module"])
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such module."))) from None
    if site.access.mode(request.state.user, module) == "disabled":
        raise HTTPException(403, Message(N_("You do not have access to %(module)s."),
                                         module=module.label))
    return module


def _can(request: Request, module: ModuleDef, action: str) -> bool:
    """Whether the user may ``action`` any record of the module (which buttons to show)."""
    return request.app.state.site.access.can(request.state.user, module, action)


def _refuse(what: str):
    return HTTPException(403, Message(N_("You are not allowed to %(what)s here."), what=what))


def _share_teams(request: Request) -> list[tuple[str, str]]:
    """Every team (a smart list's sharing, a team-owned module's pickers): read again only
    when the access epoch moved (every change to the teams moves it, and the signed-in
    user's row brings it)."""
    state, epoch = request.app.state, request.state.user.access_epoch
    known = getattr(state, "team_names", None)
    if known is None or known[0] != epoch or epoch is None:
        known = state.team_names = (epoch, access_admin.team_names(state.site))
    return known[1]


def _team_choices(request: Request, module: ModuleDef) -> list[tuple[str, str]]:
    """Every team, for a team-owned module's pickers."""
    return _share_teams(request) if module.features.get("team_owned") else []


def _service(request: Request):
    return request.app.state.site.records


def _fmt(request: Request) -> i18n.Formatter:
    """The user's formatter (page() made it, with the site's pack catalogs; templating
    reuses it)."""
    if getattr(request.state, "fmt", None) is None:
        request.state.fmt = formatter(request.state.user.preferences,
                                      request.app.state.site.locale_dirs)
    return request.state.fmt


def _render(request: Request, name: str, status: int = 200, **context):
    return request.app.state.templates.render(request, name, status=status, **context)


def _options(request: Request, f) -> list[tuple[str, str]]:
    """(value, label) choices of a dropdown-like field."""
    return request.app.state.site.registry.choices(f)


def _labels(request: Request, module: ModuleDef) -> dict[str, dict[str, str]]:
    """value -> label per dropdown field, for showing stored values."""
    return request.app.state.site.registry.option_labels(module.name)


# -- home ----------------------------------------------------------------------------------

@page()
def home(request: Request, form):
    site = request.app.state.site
    recent = site.tables.tables["crbm_recent_items"]
    request.app.state.recent.flush()  # this worker's views first: the one just made shows
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(recent).where(recent.c.user_id == request.state.user.id)
                            .order_by(recent.c.viewed_at.desc()).limit(RECENT_ITEMS)).all()
    by_module: dict[str, list[str]] = {}
    for row in rows:
        by_module.setdefault(row.module, []).append(row.record_id)
    names = {}
    for module_name, ids in by_module.items():  # one query per module, not per item
        module = site.registry.modules.get(module_name)
        if module is None:
            continue
        fields = [module.name_field] if module.name_field else []
        for record in site.records.list(module_name, request.state.user, Query(
                filters=[("id", "in", ids)], fields=fields, limit=None)):
            names[(module_name, record["id"])] = record.get(module.name_field) or record["id"]
    items = [(site.registry.modules[r.module], r.record_id, names[(r.module, r.record_id)])
             for r in rows if (r.module, r.record_id) in names]
    return _render(request, "home.html", recent=items)


# -- list ----------------------------------------------------------------------------------

def _list_columns(module: ModuleDef, chosen: list[str] | None = None) -> list[str]:
    """The list layout's columns (or the ``chosen`` ones: a smart list's, the user's),
    composites expanded into their parts."""
    return smart_lists.expanded(module, chosen)


def _list_query(request: Request, module: ModuleDef, params) -> tuple[Query, dict]:
    """The list's Query from URL (or form) parameters, and the filter values shown."""
    return smart_lists.list_query(module, params)


@page()
def list_view(request: Request, form):
    module = _module(request)
    user = request.state.user
    site = request.app.state.site
    try:  # the smart list tabs, the one open (?list=), the columns and KPIs: one statement
        smart = smart_lists.state(site, user, module, request.query_params)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such smart list, or you may not "
                                            "see it."))) from None
    params = smart.params  # the smart list's parameters, the URL's over them
    query, shown = _list_query(request, module, params)
    size = int(params["size"]) if params.get("size", "").isdigit() and \
        int(params["size"]) in PAGE_SIZES else 20
    columns = _list_columns(module, smart.columns)
    query.fields, query.labels = columns, True
    exact = request.query_params.get("count") == "exact"
    try:  # the first pages by number, the others by keyset cursor (core/web/paging.py)
        pager = paging.read(_service(request), site.registry, module, user,
                            query, request.query_params, size, cap=None if exact else COUNT_CAP)
    except ValidationError as exc:
        pager, exact = paging.Pager([], 0, None, False, False, size=size), True
        flash(request, Message(N_("Cannot list: %(reason)s"), reason=str(exc)), "error")
    rows, total = pager.rows, pager.total
    capped = not exact and total > COUNT_CAP  # past the cap the page count is unknown
    # every paging, sort and size link carries the URL's own parameters (list= among them)
    keep = {k: v for k, v in request.query_params.items() if k not in paging.PAGING
            and k not in ("chooser", "save")}
    fields = [module.fields[c] for c in columns]
    fmt = _fmt(request)
    kpis = []
    if smart.kpis:  # one more statement: the list's own, aggregated
        try:
            kpis = smart_lists.kpis(site, module, user, query, smart.kpis, fmt)
        except ValidationError:
            kpis = []  # the list's filters were refused: said above, no figures
    row_html = display.list_rows(module, fields, rows, _labels(request, module), fmt,
                                 fmt.gettext("Select"))
    return _render(
        request, "list.html", module=module, rows=rows, row_html=row_html, columns=fields,
        total=total, capped=capped, pager=pager, jump=paging.links(pager), page_url=paging.url,
        size=size, sizes=PAGE_SIZES,
        query=query, filter_fields=[f for n in module.layouts.get("filters", [])
                                    for f in module.expand(n)],
        filter_values=shown, options=lambda f: _options(request, f),
        mass_fields=[f for f in module.fields.values() if f.spec.get("mass_update")],
        can={"edit": _can(request, module, "edit"), "delete": _can(request, module, "delete"),
             "export": exporting.may_export(request.app.state.site, request.state.user, module)},
        team_choices=_team_choices(request, module) if _can(request, module, "edit") else [],
        keep=keep, urlencode=paging.encode, smart=smart, kpis=kpis,
        list_params={k: v for k, v in params.items() if str(v).strip()},
        column_rows=smart_lists.chooser_rows(module, smart.columns or module.list_columns()),
        share_team_choices=_share_teams(request),
        may_change_list=smart.current is not None and smart_lists.may_change(user, smart.current),
        open_chooser="chooser" in request.query_params,
        open_save="save" in request.query_params,
        kpi_values=[f"{k.fn}:{k.field or ''}" for k in smart.kpis], **smart_lists.pickers(module))


def _selected_ids(request: Request, module: ModuleDef, form) -> list[str]:
    """The rows the user ticked, or every row matching the list's filters."""
    if form.get("all") == "1":
        query, _ = _list_query(request, module, form)
        query.fields, query.limit = ["id"], None
        return [r["id"] for r in _service(request).list(module.name, request.state.user, query)]
    return [str(i) for i in form.getlist("ids")]


@page()
def list_action(request: Request, form):
    module = _module(request)
    user = request.state.user
    back = f"/m/{module.name}?" + str(form.get("back", ""))
    action = form.get("action")
    if action in ("export", "export_xlsx"):  # the role's Export right, the site's setting
        refusal = exporting.export_refusal(request.app.state.site, user, module)
        if refusal is not None:
            flash(request, refusal, "error")
            return RedirectResponse(back, 303)
        return _export(request, module, form, back)
    ids = _selected_ids(request, module, form)
    if not ids:
        flash(request, Message(N_("Select at least one record first.")), "error")
        return RedirectResponse(back, 303)
    if action == "delete":
        try:
            deleted = _service(request).delete_many(module.name, ids, user, skip_in_use=True)
        except VetoError as exc:  # a plugin's rule refused the lot
            flash(request, Message(N_("Nothing was deleted: %(reason)s"),
                                   reason=_said(request, exc)), "error")
            return RedirectResponse(back, 303)
        if deleted.in_use:  # left out because other records depend on them: say which
            shown = deleted.in_use[:5]
            reasons = "; ".join(_said(request, u.message) for u in shown)
            if len(deleted.in_use) > len(shown):
                reasons += " …"
            flash(request, Message(
                N_("Deleted %(done)s of %(selected)s selected records; %(kept)s were kept: "
                   "%(reasons)s"), done=int(deleted), selected=len(ids),
                kept=len(deleted.in_use), reasons=reasons), "error")
            return RedirectResponse(back, 303)
        _flash_done(request, N_("Deleted %(done)s of %(selected)s selected records."),
                    N_("Deleted %(done)s of %(selected)s selected records; %(skipped)s were "
                       "skipped: you may not delete them."), deleted, len(ids))
        return RedirectResponse(back, 303)
    if action == "teams":
        teams = [str(t) for t in form.getlist("mass_teams")]
        if not teams:
            flash(request, Message(N_("Choose at least one team.")), "error")
            return RedirectResponse(back, 303)
        mode = "remove" if form.get("teams_mode") == "remove" else "add"
        try:
            done = _service(request).set_teams(module.name, ids, user, **{mode: teams})
        except ValidationError as exc:
            flash(request, Message(N_("Nothing was changed: %(reason)s"), reason=_mass_error(exc)),
                  "error")
            return RedirectResponse(back, 303)
        _flash_done(request, N_("Teams changed on %(done)s of %(selected)s selected records."),
                    N_("Teams changed on %(done)s of %(selected)s selected records; "
                       "%(skipped)s were skipped: you may not edit them."), done, len(ids))
        return RedirectResponse(back, 303)
    if action == "update":
        allowed = [f for f in module.fields.values() if f.spec.get("mass_update")]
        values = {f.name: form.get(f"mass_{f.name}") for f in allowed
                  if str(form.get(f"mass_{f.name}", "")) != ""}
        if not values:
            flash(request, Message(N_("Choose at least one value to set.")), "error")
            return RedirectResponse(back, 303)
        editable = len(_service(request).allowed(module.name, ids, user, "edit"))
        try:
            changed = _service(request).update_many(module.name, ids, values, user)
        except (ValidationError, VetoError) as exc:
            flash(request, Message(N_("Nothing was changed: %(reason)s"), reason=_mass_error(exc)),
                  "error")
            return RedirectResponse(back, 303)
        message = N_("Updated %(done)s of %(selected)s selected records; %(skipped)s were "
                     "skipped: you may not edit them.") if editable < len(ids) else \
            N_("Updated %(done)s of %(selected)s selected records.")
        flash(request, Message(message, done=changed, selected=len(ids),
                               skipped=len(ids) - editable))
        return RedirectResponse(back, 303)
    raise HTTPException(400, Message(N_("Unknown action.")))


def _flash_done(request: Request, plain: str, with_skips: str, done: int, selected: int):
    """"Did 10 of 10", or "Did 8 of 10; 2 were skipped: you may not ..."."""
    flash(request, Message(with_skips if selected > done else plain, done=done,
                           selected=selected, skipped=selected - done))


def _said(request: Request, message) -> str:
    """A kernel message (or a refusal carrying one) in the user's language, to put into
    another message: a flash keeps only plain values."""
    if isinstance(message, Exception):
        message = message.args[0] if message.args else str(message)
    if isinstance(message, Message):
        text = _fmt(request).gettext(message.template)
        return text % message.params if message.params else text
    return str(message)


def _mass_error(exc) -> str:
    """One line per distinct problem (the same error on 30 rows is said once)."""
    if isinstance(exc, ValidationError):
        problems = {f"{key.split(': ', 1)[-1]}: {msg}" for key, msg in exc.errors.items()}
        return "; ".join(sorted(problems))
    return str(exc)


EXPORT_BATCH = 500
NOT_EXPORTED = ("deleted", "version")  # bookkeeping, not data


def _export_fields(module: ModuleDef, choice: str) -> list:
    """The list's columns, or ("all") every field a record holds."""
    if choice == "all":
        return [f for f in module.fields.values() if f.name not in NOT_EXPORTED
                and (f.stored or f.type.derived)]
    return [module.fields[c] for c in _list_columns(module)]


def _export(request: Request, module: ModuleDef, form, back: str):
    """The ticked rows, or — nothing ticked, or "all matching" — every record the list shows
    across all its pages (its filters, search and order), as 1CRM does; as CSV or (the
    action ``export_xlsx``) an Excel workbook. The list's columns or all fields; values as a
    person reads them (in a workbook numbers and dates stay numbers and dates). Only records
    the user may export (the export action's SQL predicate); read in batches of EXPORT_BATCH
    and written as they come, so a big export is never one big list in memory. The caller
    has asked ``exporting.export_refusal`` (the role's right, the site's setting)."""
    fields = _export_fields(module, str(form.get("export_fields", "")))
    ids = [str(i) for i in form.getlist("ids")]
    batches = _ticked(request, module, ids, fields) if ids and form.get("all") != "1" else \
        _matching(request, module, form, fields)
    try:
        first = next(batches, [])  # a bad filter or sort shows on the list, not in the file
    except ValidationError as exc:
        flash(request, Message(N_("Cannot export: %(reason)s"), reason=str(exc)), "error")
        return RedirectResponse(back, 303)
    labels = _labels(request, module)
    fmt = _fmt(request)

    header = [str(f.label) for f in fields]  # translated now, while the page's language is on
    if form.get("action") == "export_xlsx":
        return _export_xlsx(module, fields, header, itertools.chain([first], batches), fmt,
                            labels)

    def lines():  # runs after the handler: each batch in the user's language again
        buffer = io.StringIO()
        writer = csv_export.writer(buffer)  # no cell a spreadsheet would run as a formula
        writer.writerow(header)
        for batch in itertools.chain([first], batches):
            token = i18n.activate(fmt.translations)
            try:
                for row in batch:
                    writer.writerow([_cell(fmt, f, row, labels) for f in fields])
            finally:
                i18n.deactivate(token)
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()

    filename = f"{module.name}.csv"
    return StreamingResponse(lines(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{filename}"'})


def _export_xlsx(module: ModuleDef, fields, header: list[str], batches, fmt, labels):
    """The workbook, written here (the page's language on) batch by batch into a temporary
    file by openpyxl's write-only sheets, sent, then removed (core/web/xlsx_export.py)."""
    rows = ([_xlsx_value(fmt, f, row, labels) for f in fields]
            for batch in batches for row in batch)
    handle, path = tempfile.mkstemp(prefix="crbm-export-", suffix=".xlsx")
    os.close(handle)
    try:
        xlsx_export.write(path, module.label, header, rows, fmt.tz)
    except BaseException:
        os.unlink(path)
        raise
    return FileResponse(path, media_type=xlsx_export.MEDIA_TYPE, filename=f"{module.name}.xlsx",
                        background=BackgroundTask(os.unlink, path))


def _ticked(request: Request, module: ModuleDef, ids: list[str], fields) -> Iterator[list]:
    for start in range(0, len(ids), EXPORT_BATCH):  # IN lists stay a sane size
        yield _service(request).list(module.name, request.state.user, Query(
            filters=[("id", "in", ids[start:start + EXPORT_BATCH])],
            fields=[f.name for f in fields], labels=True, limit=None), action="export")


def _matching(request: Request, module: ModuleDef, form, fields) -> Iterator[list]:
    """The list's records in its order, a batch at a time: each batch starts after the last
    row of the one before (keyset, as the API's cursors), so no row is read twice or
    skipped and no batch costs more than the first."""
    query, _ = _list_query(request, module, form)
    keys = [name for name, _ in _service(request).sort_keys(module, query.sort)]
    query.fields = list(dict.fromkeys([f.name for f in fields] + keys))
    query.labels, query.limit = True, EXPORT_BATCH
    while True:
        batch = _service(request).list(module.name, request.state.user, query, action="export")
        yield batch
        if len(batch) < EXPORT_BATCH:
            return
        last = batch[-1]
        query.after = {name: last[name] for name in [*keys, "id"]}


def _xlsx_value(fmt, f, row: dict, labels: dict):
    """A workbook cell: a number or a date as itself (a datetime on the user's clock:
    xlsx_export), anything else as the CSV's text (labels, names, Yes/No)."""
    value = row.get(f.name)
    if f"{f.name}__label" not in row and (
            csv_export.is_number(value) or isinstance(value, dt.date)):
        return value
    return _cell(fmt, f, row, labels)


def _cell(fmt, f, row: dict, labels: dict) -> str:
    if f"{f.name}__label" in row:
        return row[f"{f.name}__label"] or ""
    text = f.type.export_text(fmt, f, row, labels)
    # a number stays a number a spreadsheet reads ("-12"): only text can carry a formula
    return csv_export.Number(text) if csv_export.is_number(row.get(f.name)) else text


# -- detail --------------------------------------------------------------------------------

@page()
def detail_view(request: Request, form):
    """The record, its subpanels with their counts (rows come when one is opened:
    ``subpanel_view``) and its change log, in a handful of statements whatever the number
    of subpanels (core/web/detail.py), and no write: the view is noted for the home page's
    recent items in memory (core/web/recent.py)."""
    module = _module(request)
    user = request.state.user
    record_id = request.path_params["record_id"]
    record = _service(request).get(module.name, record_id, user, labels=True)
    site = request.app.state.site
    detail.parent_labels(site, module, record, user)  # "Related to": Acme, not its id
    request.app.state.recent.note(user.id, module.name, record_id)
    subpanels = _subpanels(request, module)
    facts = detail.facts(site, module, record, user, subpanels)
    for panel in subpanels:
        panel["count"] = facts.counts.get(panel["name"], 0)
    log = _service(request).change_log(module.name, record_id, record=record) \
        if module.features.get("audited") else []
    image = next((f for f in module.fields.values() if f.type.accept == "image/*"), None)
    editor = _feature_web(request, module)  # a module feature's display: the lines
    lines = editor.table(site, module, record, user, _fmt(request)) if editor else None
    return _render(request, "detail.html", module=module, record=record, lines=lines,
                   actions=record_actions(site, module, record, user),
                   sections=forms.sections(module, "detail"), labels=_labels(request, module),
                   subpanels=subpanels, count_cap=detail.COUNT_CAP, log=log, image=image,
                   rights=facts.rights, teams=facts.teams, can_create=_can(request, module, "edit"),
                   denies=facts.denies, team_choices=facts.team_choices if user.is_admin else [],
                   user_names=facts.user_names, open_panels=facts.open_panels,
                   panel_counts=facts.counts)


def _subpanels(request: Request, module: ModuleDef) -> list[dict]:
    """The module's subpanels the user may see (a module their roles disable is gone from
    subpanels too), each with its columns; no rows."""
    site, user = request.app.state.site, request.state.user
    out = []
    for rel_name in module.layouts.get("subpanels") or list(module.relationships):
        rel = module.relationships[rel_name]
        other = site.registry.module(rel["module"])
        if site.access.mode(user, other) == "disabled":
            continue
        columns = module.layouts.get("subpanel_columns", {}).get(rel_name) or \
            _list_columns(other)[:4]
        out.append({"name": rel_name, "rel": rel, "module": other,
                    "columns": [other.fields[c] for c in columns],
                    # with each column's sub-fields (an amount's currency), as in lists
                    "wanted": list(dict.fromkeys(f.name for c in columns for f in other.expand(c)
                                                 if f.stored or f.type.derived)),
                    "can_create": site.access.can(user, other, "edit")})
    return out


@page()
def subpanel_view(request: Request, form):
    """One subpanel's rows: the fragment crbm.js puts into an opened subpanel
    (``?fragment=1``), or without JavaScript a page of its own (the record's name above)."""
    module = _module(request)
    user = request.state.user
    record_id = request.path_params["record_id"]
    panel = next((p for p in _subpanels(request, module)
                  if p["name"] == request.path_params["relationship"]), None)
    if panel is None:
        raise HTTPException(404, Message(N_("There is no such subpanel.")))
    fragment = request.query_params.get("fragment") == "1"
    if fragment:  # whether the user may see the record, and edit it (Remove), at once
        rights = _service(request).permissions(module.name, record_id, user, ("view", "edit"))
        if not rights["view"]:
            raise NotFoundError(f"no {module.label_singular} with id {record_id}")
        record = {"id": record_id}
    else:
        record = _service(request).get(module.name, record_id, user)
        rights = _service(request).permissions(module.name, record_id, user, ("edit",))
    rows = _service(request).related(module.name, record_id, panel["name"], user, Query(
        fields=panel["wanted"], labels=True, limit=SUBPANEL_ROWS + 1))
    panel.update(rows=rows[:SUBPANEL_ROWS], more=len(rows) > SUBPANEL_ROWS,
                 labels=_labels(request, panel["module"]))
    return _render(request, "_subpanel_rows.html" if fragment else "subpanel.html",
                   module=module, record=record, panel=panel, rights=rights)


@page()
def deny_view(request: Request, form):
    """Hide this record from one user or one team (administrators only)."""
    module = _module(request)
    record_id = request.path_params["record_id"]
    if not request.state.user.is_admin:
        raise _refuse(N_("deny access to records"))
    site = request.app.state.site
    _service(request).get(module.name, record_id, request.state.user)  # 404 if not there
    try:
        access_admin.add_deny(site, module.name, record_id,
                              user_id=str(form.get("who_user", "")) or None,
                              team_id=str(form.get("who_team", "")) or None,
                              by=request.state.user.id)
    except (ValidationError, NotFoundError):
        flash(request, Message(N_("Choose a user or a team to deny.")), "error")
    else:
        flash(request, Message(N_("Access denied to this record.")))
    return RedirectResponse(f"/m/{module.name}/{record_id}", 303)


@page()
def undeny_view(request: Request, form):
    module = _module(request)
    record_id = request.path_params["record_id"]
    if not request.state.user.is_admin:
        raise _refuse(N_("deny access to records"))
    site = request.app.state.site
    denies = {str(d["id"]) for d in access_admin.denies_of(site, module.name, record_id)}
    if request.path_params["deny_id"] in denies:
        access_admin.remove_deny(site, int(request.path_params["deny_id"]))
    return RedirectResponse(f"/m/{module.name}/{record_id}", 303)


# -- edit / create -------------------------------------------------------------------------

def _edit_context(request: Request, module: ModuleDef, layout, values, errors, **extra):
    return dict(module=module, sections=layout, values=values, errors=errors,
                options=lambda f: _options(request, f), team_choices=_team_choices(request, module),
                fields=_form_fields(module, layout), **extra)


def _form_fields(module: ModuleDef, layout) -> list:
    """The layout's inputs; totals only line items write are shown, never edited."""
    return [f for f in forms.form_fields(module, layout) if "computed_by" not in f.spec]


def _feature_web(request: Request, module: ModuleDef):
    """The web side (editor, display) of the module feature that has one: the line
    items' (``ModuleFeature.web``; plugins/line_items/web.py). None: no such feature."""
    for feature, _options in request.app.state.site.registry.features_of(module):
        if feature.web is not None:
            return feature.web
    return None


def _line_editor(request: Request, module: ModuleDef, fields, groups, errors=None,
                 currency=None, saved=None):
    """The line-items editor of a record form (None for modules without line items)."""
    editor = _feature_web(request, module)
    if editor is None:
        return None
    return editor.editor(request.app.state.site, module, request.state.user, fields,
                         groups, errors, currency, saved)


def _chosen_teams(module: ModuleDef, form) -> list[str] | None:
    """The teams ticked on a record form (None: the form has no teams field)."""
    if not module.features.get("team_owned") or form.get("_teams_shown") != "1":
        return None
    return [str(t) for t in form.getlist("_teams")]


def _return_to(request: Request, params, default: str) -> str:
    target = str(params.get("return", ""))
    return target if target.startswith("/") and not target.startswith("//") else default


@page()
def create_view(request: Request, form):
    module = _module(request)
    if not _can(request, module, "edit"):
        raise _refuse(N_("create records"))
    quick = (form or request.query_params).get("_layout") == "quick"
    layout = forms.quick_sections(module) if quick else forms.sections(module, "edit")
    fields = _form_fields(module, layout)
    fmt = _fmt(request)
    if form is None:  # a blank form, prefilled from the URL (e.g. "create in context")
        values = {key: request.query_params[key] for f in fields
                  for key in (f.name, f"{f.name}__label") if key in request.query_params}
        groups = None
        if request.query_params.get("_duplicate"):  # "Duplicate": a copy of a record
            values, groups = _duplicate(request, module, fields,
                                        str(request.query_params["_duplicate"]))
        if "assigned_user_id" in module.fields:  # new records are yours unless you say
            values.setdefault("assigned_user_id", request.state.user.id)
        values.update(_filled_from_links(request, module, fields, values))
        _name_prefilled_links(request, module, fields, values)
        for f in fields:  # what the record would get anyway (a quote's stage starts Draft)
            if "default" in f.spec:
                values.setdefault(f.name, f.spec["default"])
        params = request.query_params
        editor = _feature_web(request, module)
        line_editor = None
        if editor is not None:  # the document currency starts as the default
            code = editor.CURRENCY_FIELD
            values.setdefault(code, params.get(code) or editor.default_currency(
                request.app.state.site, module))
            line_editor = None if quick else _line_editor(
                request, module, fields, groups or editor.blank(
                    editor.group_defaults(request.app.state.site, module)),
                currency=values.get(code))
        return _render(request, "edit.html", **_edit_context(
            request, module, layout, values, {}, record=None, quick=quick, teams=[],
            line_editor=line_editor,
            link=params.get("_link", ""), return_to=_return_to(request, params, ""),
            back=_return_to(request, params, f"/m/{module.name}"),
            quick_query=urlencode({**params, "_layout": "quick"})))
    values, errors = forms.read_form(form, fields, fmt, request.app.state.site.folder / "files")
    editor = _feature_web(request, module)
    posted = editor.read_into(values, form, module, fields) if editor else None
    if errors and editor:
        errors |= editor.check(module, posted)
    duplicates = []
    if not errors and form.get("_duplicates") != "ignore":  # warn first; "Save anyway" posts ignore
        duplicates = find_duplicates(request.app.state.site, module, values, request.state.user)
    if not errors and not duplicates:
        try:
            record = _service(request).create(module.name, values, request.state.user,
                                              teams=_chosen_teams(module, form) or ())
        except (ValidationError, VetoError) as exc:
            errors = _refusal(exc)
        else:
            _link_after_create(request, form.get("_link", ""), module, record["id"])
            flash(request, Message(N_("%(what)s %(name)s created."), what=module.label_singular,
                                   name=record.get(module.name_field) or ""))
            target = f"/m/{module.name}/{record['id']}"
            if not _service(request).allowed(module.name, [record["id"]], request.state.user,
                                             "view"):
                target = f"/m/{module.name}"  # saved, but their rights do not show it to them
            return RedirectResponse(_return_to(request, form, target), 303)
    return _render(request, "edit.html", status=409 if duplicates else 422, **_edit_context(
        request, module, layout, _submitted(form, fields), errors, record=None, quick=quick,
        duplicates=duplicates,
        teams=_chosen_teams(module, form) or [],
        line_editor=_posted_lines_editor(request, module, fields, posted, errors, form),
        link=form.get("_link", ""), return_to=_return_to(request, form, ""),
        back=_return_to(request, form, f"/m/{module.name}")))


def _filled_from_links(request: Request, module: ModuleDef, fields, values: dict) -> dict:
    """What the form's links already given (an account, from its page) fill in its empty
    inputs (a related field's ``fill``, core/apps/fills/fills.py), as the inputs show them."""
    shown = {f.name for f in fields}
    out = {}
    site = request.app.state.site
    for link in fills.fill_links(module):
        if link.name not in shown or not _uuid(values.get(link.name)):
            continue
        with site.engine.connect() as conn:
            found = fills.values_for(site, module, link, _uuid(values[link.name]),
                                     request.state.user, conn, current=values)
        for group in found.values():
            out.update(forms.form_state(group, [module.fields[n] for n in group if n in shown],
                                        _fmt(request)))
    return out


def _name_prefilled_links(request: Request, module: ModuleDef, fields, values: dict) -> None:
    """A link the URL gave by id only (``?meeting_id=…``) shows its record's name, read with
    the reader's rights (one statement per such link; one they may not see stays an id)."""
    site, user = request.app.state.site, request.state.user
    for f in fields:
        value = _uuid(values.get(f.name))
        if f.type.name != "related" or not value or values.get(f"{f.name}__label"):
            continue
        target = site.registry.modules.get(
            values.get(f.spec.get("type_field")) if "modules" in f.spec else f.spec.get("module"))
        if target is None or target.name_field is None or \
                site.access.mode(user, target) == "disabled":
            continue
        found = site.records.list(target.name, user, Query(
            filters=[("id", "eq", value)], fields=["id", target.name_field], limit=1), "view")
        if found and found[0][target.name_field]:
            values[f"{f.name}__label"] = str(found[0][target.name_field])


def _uuid(text) -> str | None:
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        return None


def _duplicate(request: Request, module: ModuleDef, fields, record_id: str):
    """The create form's values (and lines) copied from a record the user may see: what
    its form shows, but not its number, and dropdowns that have a default (a stage, a
    status) start there — a copy is a new document, not one further along."""
    record = _service(request).get(module.name, record_id, request.state.user, labels=True)
    number = (module.features.get("sequence") or {}).get("field")
    values = {name: value for name, value in forms.form_state(
        record, fields, _fmt(request)).items() if name != number}
    for f in fields:
        if f.type.widget == "file":
            values.pop(f.name, None)  # a file belongs to its record; upload it again
        elif f.name in values:
            values[f.name] = f.type.copy_value(f, values[f.name])
        if f.type.is_link and record.get(f"{f.name}__label"):
            values[f"{f.name}__label"] = record[f"{f.name}__label"]
    groups = None
    editor = _feature_web(request, module)
    if editor is not None:
        if editor.CURRENCY_FIELD in record:
            values.setdefault(editor.CURRENCY_FIELD, record[editor.CURRENCY_FIELD])
        saved = editor.saved(request.app.state.site, module, record_id, request.state.user)
        groups = [{**group, "lines": [{**line, "source_line_id": ""} for line in group["lines"]]}
                  for group in editor.state_of(saved)] or None
    return values, groups


def _refusal(exc) -> dict:
    """A refused save's errors for the form: the fields', or a plugin's reason (a
    ``Message`` is kept, so the page says it in the reader's language)."""
    return getattr(exc, "errors", None) or {"": exc.args[0] if exc.args else str(exc)}


def _link_after_create(request: Request, link: str, module: ModuleDef, record_id: str) -> None:
    """"Create" in a many-to-many subpanel: link the new record to the one we came from."""
    if not link:
        return
    owner_module, owner_id, relationship = (link.split(":") + ["", "", ""])[:3]
    try:
        _service(request).link(owner_module, owner_id, relationship, record_id, request.state.user)
    except NotFoundError:
        flash(request, Message(N_("Created, but could not link it back.")), "error")


def _submitted(form, fields) -> dict:
    """The user's input as typed, to show again beside the errors."""
    return {f.name: f.type.form_input(form, f) for f in fields if f.type.widget != "file"}


@page()
def edit_view(request: Request, form):
    module = _module(request)
    record_id = request.path_params["record_id"]
    layout = forms.sections(module, "edit")
    fields = _form_fields(module, layout)
    fmt = _fmt(request)
    record = _service(request).get(module.name, record_id, request.state.user, labels=True,
                                   action="edit")
    back = f"/m/{module.name}/{record_id}"
    if form is None:
        teams = _service(request).teams_of(module.name, [record_id]).get(record_id, [])
        return _render(request, "edit.html", **_edit_context(
            request, module, layout, forms.form_state(record, fields, fmt), {}, record=record,
            snapshot=forms.base_snapshot(record, fields), back=back, teams=teams,
            line_editor=_saved_lines_editor(request, module, fields, record)))
    values, errors = forms.read_form(form, fields, fmt, request.app.state.site.folder / "files")
    editor = _feature_web(request, module)
    posted = editor.read_into(values, form, module, fields) if editor else None
    if errors and editor:
        errors |= editor.check(module, posted)
    base = forms.read_snapshot(str(form.get("_base", "")), module)
    conflict = None
    if not errors:
        try:
            _service(request).update(module.name, record_id, values, request.state.user, base=base,
                                     teams=_chosen_teams(module, form))
        except (ValidationError, VetoError) as exc:
            errors = _refusal(exc)
        except ConflictError as exc:
            conflict = exc
        else:
            flash(request, Message(N_("Saved.")))
            return RedirectResponse(back, 303)
    if conflict:  # show the latest values: the user re-applies their edit knowingly
        latest = _service(request).get(module.name, record_id, request.state.user, labels=True)
        return _render(request, "edit.html", status=409, **_edit_context(
            request, module, layout, _submitted(form, fields), {}, record=latest,
            snapshot=forms.base_snapshot(latest, fields), back=back,
            teams=_chosen_teams(module, form) or [],
            line_editor=_posted_lines_editor(request, module, fields, posted, {}, form),
            conflict=[module.fields[n].label for n in conflict.fields]))
    return _render(request, "edit.html", status=422, **_edit_context(
        request, module, layout, _submitted(form, fields), errors, record=record,
        snapshot=str(form.get("_base", "")), back=back, teams=_chosen_teams(module, form) or [],
        line_editor=_posted_lines_editor(request, module, fields, posted, errors, form)))


def _posted_lines_editor(request: Request, module: ModuleDef, fields, posted, errors, form):
    """The editor again with the lines as the user sent them, problems on their rows."""
    if posted is None:
        return None
    return _line_editor(request, module, fields, posted, errors,
                        str(form.get(_feature_web(request, module).CURRENCY_FIELD, "")))


def _saved_lines_editor(request: Request, module: ModuleDef, fields, record: dict):
    """The editor holding a record's saved lines (an empty group when it has none)."""
    editor = _feature_web(request, module)
    if editor is None:
        return None
    saved = editor.saved(request.app.state.site, module, record["id"], request.state.user,
                         action="edit")
    groups = editor.state_of(saved) or editor.blank(
        editor.group_defaults(request.app.state.site, module))
    return _line_editor(request, module, fields, groups,
                        currency=record.get(editor.CURRENCY_FIELD), saved=saved)


@page()
def delete_view(request: Request, form):
    module = _module(request)
    record_id = request.path_params["record_id"]
    try:
        _service(request).delete(module.name, record_id, request.state.user)
    except VetoError as exc:  # other records depend on it, or a plugin's rule: say so
        flash(request, exc.in_use[0].message if isinstance(exc, InUseError) else
              _said(request, exc), "error")
        return RedirectResponse(f"/m/{module.name}/{record_id}", 303)
    flash(request, Message(N_("%(what)s deleted."), what=module.label_singular))
    return RedirectResponse(f"/m/{module.name}", 303)


@page()
def transition_view(request: Request, form):
    """One of the module's declared status transitions (``features.transitions``), from
    its button on the detail page; a refusal is said there."""
    module = _module(request)
    record_id = request.path_params["record_id"]
    try:
        _service(request).transition(module.name, record_id, request.path_params["action"],
                                     request.state.user)
    except (ValidationError, VetoError) as exc:
        message = next(iter(exc.errors.values())) if isinstance(exc, ValidationError) else exc
        flash(request, _said(request, message), "error")
    return RedirectResponse(f"/m/{module.name}/{record_id}", 303)


# -- relationships and pickers -------------------------------------------------------------

@page()
def link_view(request: Request, form):
    module = _module(request)
    record_id = request.path_params["record_id"]
    other_id = str(form.get("other_id", ""))
    if other_id:
        _service(request).link(module.name, record_id, request.path_params["relationship"],
                               other_id, request.state.user)
    return RedirectResponse(f"/m/{module.name}/{record_id}", 303)


@page()
def unlink_view(request: Request, form):
    module = _module(request)
    record_id = request.path_params["record_id"]
    _service(request).unlink(module.name, record_id, request.path_params["relationship"],
                             request.path_params["other_id"], request.state.user)
    return RedirectResponse(f"/m/{module.name}/{record_id}", 303)


@page()
def pick_view(request: Request, form):
    """Type-ahead for related-record pickers: [{id, label}], name starts with ``q``.

    ``by_<field>=<id>`` (a related field's ``filter_by``: a billing contact's account) puts
    the records whose related or user ``field`` holds that id first, then the others: the
    likely choices on top, without hiding the rest."""
    module = _module(request)
    fields = [module.name_field] if module.name_field else []
    search = request.query_params.get("q", "").strip() or None
    first = []
    for key, value in request.query_params.items():
        if not key.startswith("by_"):
            continue
        f = module.fields.get(key[3:])
        if f is None or not f.type.is_link:
            return JSONResponse({"error": f"cannot filter on {key[3:]!r}"}, status_code=400)
        if value:
            first.append((f.name, value))
    try:
        rows = _service(request).list(module.name, request.state.user, Query(
            filters=[(name, "eq", value) for name, value in first], search=search,
            fields=fields, limit=20))
        if first and len(rows) < 20:  # then the others (read past the first ones)
            seen = {r["id"] for r in rows}
            rows += [r for r in _service(request).list(
                module.name, request.state.user,
                Query(search=search, fields=fields, limit=20 + len(rows)))
                if r["id"] not in seen][:20 - len(rows)]
    except ValidationError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    return JSONResponse([{"id": r["id"], "label": r.get(module.name_field) or r["id"]}
                         for r in rows])


@page()
def fill_view(request: Request, form):
    """``GET /m/<module>/fill/<field>?id=<record>``: what choosing that record in the
    field's picker fills (its ``fill``, core/apps/fills/fills.py), as {group: {input: value}} the way
    the inputs show them. Nothing for a record the user may not see, or no such record."""
    module = _module(request)
    link = module.fields.get(request.path_params["field"])
    if link is None or not link.type.is_link or "fill" not in link.spec:
        raise HTTPException(404, Message(N_("There is no such field.")))
    record_id = _uuid(request.query_params.get("id", ""))
    site = request.app.state.site
    found = {}
    if record_id:
        with site.engine.connect() as conn:
            found = fills.values_for(site, module, link, record_id, request.state.user, conn)
    fmt = _fmt(request)
    response = JSONResponse({group: forms.form_state(values, [module.fields[n] for n in values],
                                                     fmt) for group, values in found.items()})
    response.headers["Cache-Control"] = "no-store"
    return response


@page()
def pick_user_view(request: Request, form):
    site = request.app.state.site
    users = site.tables.tables["crbm_users"]
    text = request.query_params.get("q", "").strip().lower()
    stmt = sa.select(users.c.id, users.c.username, users.c.display_name) \
        .where(users.c.active.is_(True)).order_by(users.c.display_name).limit(20)
    if text:
        stmt = stmt.where(sa.or_(sa.func.lower(users.c.username).startswith(text, autoescape=True),
                                 sa.func.lower(users.c.display_name).startswith(text, autoescape=True)))
    with site.engine.connect() as conn:
        return JSONResponse([{"id": r.id, "label": r.display_name or r.username}
                             for r in conn.execute(stmt)])


@page()
def file_view(request: Request, form):
    """A file or image field's content, for users who can see the record, served so that
    no browser runs it as a page or a script."""
    module = _module(request)
    name = request.path_params["field"]
    f = module.fields.get(name)
    if f is None or f.type.widget != "file":
        raise HTTPException(404, Message(N_("There is no such file.")))
    record = _service(request).get(module.name, request.path_params["record_id"],
                                   request.state.user)
    path = uploads.stored_file(request.app.state.site.folder / "files", record.get(name))
    if path is None:
        raise HTTPException(404, Message(N_("There is no such file.")))
    # The type and disposition come from the content, never from the user-chosen name:
    # only a raster image is shown inline; the rest is an opaque download (core/web/uploads.py).
    return uploads.file_response(path, path.name)


routes = [
    Route("/", home),
    Route("/users/pick", pick_user_view),
    Route("/m/{module}", list_view),
    Route("/m/{module}/action", list_action, methods=["POST"]),
    Route("/m/{module}/new", create_view, methods=["GET", "POST"]),
    Route("/m/{module}/pick", pick_view),
    Route("/m/{module}/fill/{field}", fill_view),
    Route("/m/{module}/{record_id}", detail_view),
    Route("/m/{module}/{record_id}/subpanel/{relationship}", subpanel_view),
    Route("/m/{module}/{record_id}/edit", edit_view, methods=["GET", "POST"]),
    Route("/m/{module}/{record_id}/delete", delete_view, methods=["POST"]),
    Route("/m/{module}/{record_id}/transition/{action}", transition_view, methods=["POST"]),
    Route("/m/{module}/{record_id}/link/{relationship}", link_view, methods=["POST"]),
    Route("/m/{module}/{record_id}/unlink/{relationship}/{other_id}", unlink_view,
          methods=["POST"]),
    Route("/m/{module}/{record_id}/file/{field}", file_view),
    Route("/m/{module}/{record_id}/deny", deny_view, methods=["POST"]),
    Route("/m/{module}/{record_id}/deny/{deny_id}/remove", undeny_view, methods=["POST"]),
]
