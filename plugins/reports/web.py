"""The reports' pages (user guide "Reports"; issue 25).

- ``/reports/new`` and ``/reports/<id>/design`` (GET, POST): the builder. A plain form that
  works without JavaScript (reports.js only makes it quicker): the module (a GET form of its
  own: changing it reloads the choices, ``?module=``), the columns (a field chooser — the
  module's stored fields, then its many-to-one links' targets' fields ``via=<link>``, then
  its relationships' ``via=<relationship>`` — each with an aggregate), the filters, up to
  two group-by levels (a date by day, month, quarter or year), the sort and the chart.
  Saving checks the definition (compiler.check) first: every problem is shown beside the
  row it is about and nothing is saved; the record service's own checks (the plugin's
  ``crbm_before_save``, the name) are shown the same way.
- ``/reports/<id>``: the chart (ECharts: the site's one chart code, core.web.charts, builds
  its option, embedded as JSON, and its static/charts.js draws it; each segment carries its
  drill-down URL) and always the table below it,
  the accessible alternative: the groups with their sub-totals and the grand total, each
  group a link to its records; a list report's rows a page at a time. Buttons: Design,
  Export CSV, Export XLSX and, for administrators, Show SQL.
- ``/reports/<id>/records?g0=...&g1=...``: one group's records (a drill-down).
- ``/reports/<id>/export.csv``, ``.xlsx``: the table as a file (export.py), refused as every
  export is (``export_refusal`` for the report's module).

A report is read like any record (``site.records.get``: one the user may not view is not
found). A report whose definition no longer checks (a field removed in the Studio since)
is shown as broken — each problem and its place, a link to the builder — with status 409,
never as a server error; a runner who may not report on a module it reads gets a 403 that
names the module.
"""
from __future__ import annotations

import json
import math
import re
from urllib.parse import quote, urlencode

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from core.kernel.errors import N_, Message, ValidationError, VetoError
from core.kernel.fields import OPERATORS, FieldError
from core.web import charts
from core.web.exporting import export_refusal
from core.web.pages import page
from core.web.templating import flash
from plugins.reports import compiler
from plugins.reports import run as running
from plugins.reports.compiler import (
    MAX_LEVELS,
    ReportError,
    ReportRefused,
    check,
    parse,
    show_sql,
)
from plugins.reports.export import to_csv, to_xlsx
from plugins.reports.plugin import MODULE, starter

URL = "/reports"
SKIPPED = ("deleted", "version")  # bookkeeping columns no one reports on
AGGREGATE_LABELS = running.AGGREGATE_LABELS
OPERATOR_LABELS = {"eq": N_("is"), "ne": N_("is not"), "lt": N_("is less than"),
                   "lte": N_("is at most"), "gt": N_("is more than"), "gte": N_("is at least"),
                   "in": N_("is one of (comma-separated)"), "starts": N_("starts with"),
                   "contains": N_("contains"), "empty": N_("is empty"),
                   "not_empty": N_("is not empty")}
PART_LABELS = {"": N_("Its value"), "day": N_("By day"), "month": N_("By month"),
               "quarter": N_("By quarter"), "year": N_("By year")}
CHART_LABELS = {"": N_("No chart"), **charts.LABELS}
BLANK_COLUMNS, BLANK_FILTERS, MORE = 2, 1, 3  # empty rows the builder offers; "More rows" adds


# -- reading a report --------------------------------------------------------------------------


def _site(request: Request):
    return request.app.state.site


def _record(request: Request) -> dict:
    """The report, if the user may view it (NotFoundError -> 404 otherwise)."""
    return _site(request).records.get(MODULE, request.path_params["id"], request.state.user)


def _refused(exc: ReportRefused) -> HTTPException:
    return HTTPException(403, Message(N_("You may not run reports on %(module)s, which this "
                                         "report reads."), module=exc.module_label))


def _render(request: Request, name: str, status: int = 200, **context):
    response = request.app.state.templates.render(request, name, status=status, **context)
    response.headers["Cache-Control"] = "no-store"
    return response


def _number(text, default: int = 1) -> int:
    try:
        return max(int(str(text)), 1)
    except (TypeError, ValueError):
        return default


# -- what a column shows as its header ---------------------------------------------------------


def said(fmt, message) -> str:
    """A ``Message`` in the reader's language (other text as it is)."""
    if not isinstance(message, Message):
        return "" if message is None else str(message)
    text = fmt.gettext(message.template)
    return text % message.params if message.params else text


def headers(definition, raw: dict, fmt) -> list[str]:
    """Each column's header (run.headers: the page and the files say the same)."""
    return running.headers(definition, fmt)


# -- the builder -------------------------------------------------------------------------------


def reportable(site, user) -> list:
    """The modules ``user`` may report on, by label: not hidden, not disabled for them, a
    table of records (not the reports themselves)."""
    found = [m for m in site.registry.modules.values()
             if not m.definition.get("hidden") and m.name != MODULE
             and site.access.mode(user, m) != "disabled" and site.access.can(user, m, "report")]
    return sorted(found, key=lambda m: str(m.label).lower())


def _kind(f) -> str:
    kind = f.type.value_kind(f.spec)
    if kind in compiler.NUMBERS:
        return "number"
    return kind if kind in ("date", "datetime") else "other"


def _fields(module) -> list:
    return [f for n, f in module.fields.items() if f.stored and n not in SKIPPED]


def field_choices(site, module, fmt, *, grouping: bool = False) -> list[dict]:
    """The chooser's option groups: the module's fields, each many-to-one link's target's
    (``link.field``), then (not for grouping) each relationship's (``relationship.field``)."""
    registry = site.registry
    groups = [{"label": module.label, "many": False,
               "options": [(f.name, f.label, _kind(f)) for f in _fields(module)]}]
    for f in module.fields.values():
        target = registry.modules.get(f.spec.get("module") or "") if f.type.is_link else None
        if target is None or not f.stored or target.definition.get("hidden"):
            continue
        groups.append({"label": f"{f.label} → {target.label_singular}", "many": False,
                       "options": [(f"{f.name}.{t.name}", f"{f.label} → {t.label}", _kind(t))
                                   for t in _fields(target)]})
    if not grouping:
        for name, rel in module.relationships.items():
            target = registry.modules.get(rel.get("module") or "")
            if target is None or rel.get("kind") not in ("one_to_many", "many_to_many"):
                continue
            label = rel.get("label") or target.label
            groups.append({"label": said(fmt, Message(N_("%(label)s (many per record)"),
                                                      label=label)),
                           "many": True,
                           "options": [(f"{name}.{t.name}", f"{label}: {t.label}", _kind(t))
                                       for t in _fields(target)]})
    return groups


def _key(spec: dict) -> str:
    field = str(spec.get("field") or "")
    return f"{spec['via']}.{field}" if spec.get("via") else field


def _split(key: str) -> dict:
    via, _, field = key.rpartition(".")
    return {"via": via, "field": field} if via else {"field": field}


def state_of(raw: dict) -> dict:
    """The builder's rows from a stored (or starter) definition, checked or not."""
    def rows(key):
        value = raw.get(key)
        return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []

    def shown(value):
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return "" if value is None else ("1" if value is True else "0" if value is False
                                         else str(value))

    sort = raw.get("sort") if isinstance(raw.get("sort"), dict) else {}
    chart = raw.get("chart") if isinstance(raw.get("chart"), dict) else {}
    return {
        "module": str(raw.get("module") or ""),
        "columns": [{"key": _key(c), "aggregate": str(c.get("aggregate") or ""),
                     "label": str(c.get("label") or "")} for c in rows("columns")],
        "filters": [{"key": _key(f), "op": str(f.get("op") or "eq"),
                     "value": shown(f.get("value"))} for f in rows("filters")],
        "groups": [{"key": _key(g), "by": str(g.get("by") or "")} for g in rows("group_by")],
        "sort_column": str(sort.get("column", "")) if sort else "",
        "sort_desc": bool(sort.get("desc")),
        "chart_type": str(chart.get("type") or ""),
        "chart_column": str(chart.get("column", 0)) if chart else "",
    }


def state_from_form(form) -> dict:
    def rows(prefix: str, names: tuple) -> list[dict]:
        found = []
        for i in range(200):
            if f"{prefix}{i}_key" not in form:
                break
            found.append({n: str(form.get(f"{prefix}{i}_{n}") or "").strip() for n in names})
        return found

    return {"module": str(form.get("module") or ""),
            "columns": rows("c", ("key", "aggregate", "label")),
            "filters": rows("f", ("key", "op", "value")),
            "groups": rows("g", ("key", "by")),
            "sort_column": str(form.get("sort_column") or ""),
            "sort_desc": bool(form.get("sort_desc")),
            "chart_type": str(form.get("chart_type") or ""),
            "chart_column": str(form.get("chart_column") or "")}


def definition_of(state: dict) -> tuple[dict, dict]:
    """The definition the rows say (blank rows left out), and where each of its items came
    from: {"columns[2]": "c3", ...} — a problem is shown beside its row."""
    places: dict[str, str] = {}
    data: dict = {"module": state["module"], "columns": [], "filters": [], "group_by": []}
    column_of_row: dict[int, int] = {}
    for i, row in enumerate(state["columns"]):
        if not row["key"]:
            continue
        spec = _split(row["key"])
        if row["aggregate"]:
            spec["aggregate"] = row["aggregate"]
        if row["label"]:
            spec["label"] = row["label"][:100]
        places[f"columns[{len(data['columns'])}]"] = f"c{i}"
        column_of_row[i] = len(data["columns"])
        data["columns"].append(spec)
    for i, row in enumerate(state["filters"]):
        if not row["key"]:
            continue
        op = row["op"] or "eq"
        value: object = row["value"]
        if op == "in":
            value = [v.strip() for v in row["value"].split(",") if v.strip()]
        elif op in ("empty", "not_empty"):
            value = None
        places[f"filters[{len(data['filters'])}]"] = f"f{i}"
        data["filters"].append({**_split(row["key"]), "op": op, "value": value})
    for i, row in enumerate(state["groups"][:MAX_LEVELS]):
        if not row["key"]:
            continue
        spec = _split(row["key"])
        if row["by"]:
            spec["by"] = row["by"]
        places[f"group_by[{len(data['group_by'])}]"] = f"g{i}"
        data["group_by"].append(spec)

    def column(text: str, path: str):
        if text.isdigit() and int(text) in column_of_row:
            return column_of_row[int(text)]
        return -1 if text else None  # a blank row chosen: refused as "a column's number"

    sort = column(state["sort_column"], "sort")
    if sort is not None:
        data["sort"] = {"column": sort, "desc": state["sort_desc"]}
        places["sort.column"] = "sort"
    if state["chart_type"]:
        data["chart"] = {"type": state["chart_type"],
                         "column": column(state["chart_column"] or "0", "chart") or 0}
        places.update({"chart": "chart", "chart.type": "chart", "chart.column": "chart"})
    return data, places


def placed(problems: dict, places: dict) -> tuple[dict, list]:
    """{row: [(part, message)]} for the rows, and what belongs to no row (the summary)."""
    by_row: dict[str, list] = {}
    loose = []
    for path, message in problems.items():
        head, _, part = path.partition(".")
        if path in places:
            by_row.setdefault(places[path], []).append((part, message))
        elif head in places:
            by_row.setdefault(places[head], []).append((part, message))
        else:
            loose.append((path, message))
    return by_row, loose


def _padded(state: dict, more: int = 0) -> dict:
    blank_column = {"key": "", "aggregate": "", "label": ""}
    state["columns"] += [dict(blank_column) for _ in range(BLANK_COLUMNS + more)]
    state["filters"] += [{"key": "", "op": "eq", "value": ""}
                         for _ in range(BLANK_FILTERS + more)]
    state["groups"] = (state["groups"] + [{"key": "", "by": ""}] * MAX_LEVELS)[:MAX_LEVELS]
    return state


def _builder(request: Request, record: dict | None, state: dict, *, status: int = 200,
             errors: dict | None = None, loose: list | None = None, values: dict,
             moved: bool = False):
    site, user = _site(request), request.state.user
    modules = reportable(site, user)
    module = site.registry.modules.get(state["module"])
    known = {m.name for m in modules}
    if module is not None and state["module"] not in known:  # a report on a module now refused
        modules = [module, *modules]
    fmt = request.state.fmt
    choices = field_choices(site, module, fmt) if module is not None else []
    group_choices = field_choices(site, module, fmt, grouping=True) if module else []
    action = f"{URL}/{record['id']}/design" if record else f"{URL}/new"
    return _render(request, "reports_builder.html", status=status, record=record,
                   state=state, modules=modules, module=module, choices=choices,
                   group_choices=group_choices, known_keys={o[0] for g in choices
                                                           for o in g["options"]},
                   known_group_keys={o[0] for g in group_choices for o in g["options"]},
                   errors=errors or {}, loose=loose or [], values=values, action=action,
                   aggregates=AGGREGATE_LABELS, operators=[(op, OPERATOR_LABELS[op])
                                                           for op in OPERATORS],
                   parts=PART_LABELS, charts=CHART_LABELS, moved=moved,
                   row_count=len(state["columns"]), place=_place_label)


def _start(site, user, module_name: str | None) -> dict:
    modules = reportable(site, user)
    module = site.registry.modules.get(module_name or "")
    if module is None or module not in modules:
        module = next((m for m in modules if m.name == "accounts"), modules[0] if modules else None)
    if module is None:
        raise HTTPException(403, Message(N_("There is no module you may run reports on.")))
    return state_of(starter(module))


@page()
def new_report(request: Request, form):
    site, user = _site(request), request.state.user
    if not site.access.can(user, site.registry.modules[MODULE], "edit"):
        raise HTTPException(403, Message(N_("Your role does not allow creating reports.")))
    if form is None:
        params = request.query_params
        state = _padded(_start(site, user, params.get("module")))
        return _builder(request, None, state, values={
            "name": str(params.get("name") or "")[:150],
            "description": str(params.get("description") or "")})
    return _save(request, None, form)


@page()
def design_report(request: Request, form):
    site, user = _site(request), request.state.user
    record = _record(request)
    if form is None:
        params = request.query_params
        values = {"name": str(params.get("name") or record["name"] or "")[:150],
                  "description": record.get("description") or ""}
        asked = params.get("module")
        if asked and asked != record.get("report_module"):  # another module: start anew
            return _builder(request, record, _padded(_start(site, user, asked)), values=values,
                            moved=True)
        try:
            raw = parse(record.get("definition"))
        except ReportError:
            raw = starter(site.registry.modules[record["report_module"]]) \
                if record.get("report_module") in site.registry.modules else {}
        state = state_of(raw)
        errors, loose = {}, []
        try:
            check(site.registry, raw)
        except ReportError as exc:  # a broken report: its problems beside their rows
            _, places = definition_of(state)
            errors, loose = placed(exc.problems, places)
        return _builder(request, record, _padded(state), values=values, errors=errors,
                        loose=loose)
    return _save(request, record, form)


def _save(request: Request, record: dict | None, form):
    site, user = _site(request), request.state.user
    state = state_from_form(form)
    values = {"name": str(form.get("name") or "").strip(),
              "description": str(form.get("description") or "").strip()}
    if form.get("_more"):  # "More rows": the same form, longer; nothing saved
        return _builder(request, record, _padded(state, MORE), values=values)
    data, places = definition_of(state)
    errors: dict = {}
    loose: list = []
    if not values["name"]:
        errors["name"] = [("", Message(N_("is required")))]
    if state["module"] and state["module"] not in {m.name for m in reportable(site, user)} \
            and not (record and state["module"] == record.get("report_module")):
        errors["module"] = [("", Message(N_("You may not run reports on this module.")))]
    try:
        check(site.registry, data)
    except ReportError as exc:
        found, loose = placed(exc.problems, places)
        errors.update(found)
    if not errors:
        fields = {**values, "definition": json.dumps(data)}
        try:
            if record is None:
                saved = site.records.create(MODULE, fields, user)
            else:
                saved = site.records.update(MODULE, record["id"], fields, user)
        except ValidationError as exc:  # the record service's checks (name, size, hooks)
            for key, message in exc.errors.items():
                if key in ("name", "description"):
                    errors[key] = [("", message)]
                else:
                    loose.append((key, message))
        except VetoError as exc:
            loose.append(("", str(exc)))
        else:
            flash(request, N_("The report was saved."), "info")
            return RedirectResponse(f"{URL}/{saved['id']}", 303)
    return _builder(request, record, _padded(state, 0), status=422, errors=errors,
                    loose=loose, values=values)


# -- the report ---------------------------------------------------------------------------------


def _broken(request: Request, record: dict, exc: ReportError | None, problems=None):
    """The page of a report that no longer checks: each problem, where it is."""
    raw: dict = {}
    try:
        raw = parse(record.get("definition"))
    except ReportError:
        pass
    items = problems if problems is not None else [
        (_place_label(path, raw), message) for path, message in exc.problems.items()]
    return _render(request, "reports_broken.html", status=409, record=record, problems=items)


def _place_label(path: str, raw: dict | None = None):
    """"columns[1].field" as "Column 2 (contacts.tier)": the row the builder shows it on."""
    found = re.match(r"(columns|filters|group_by)\[(\d+)\](?:\.(\w+))?$", path)
    if not found:
        return {"definition": Message(N_("Definition")), "module": Message(N_("Module")),
                "sort.column": Message(N_("Sort")), "chart": Message(N_("Chart")),
                "chart.type": Message(N_("Chart")), "chart.column": Message(N_("Chart")),
                "columns": Message(N_("Columns")), "filters": Message(N_("Filters")),
                "group_by": Message(N_("Group by"))}.get(path, path)
    kind, index = found.group(1), int(found.group(2))
    spec = (raw or {}).get(kind)
    spec = spec[index] if isinstance(spec, list) and index < len(spec) \
        and isinstance(spec[index], dict) else {}
    key = _key(spec)
    if key:
        what = {"columns": N_("Column %(n)s (%(key)s)"), "filters": N_("Filter %(n)s (%(key)s)"),
                "group_by": N_("Group level %(n)s (%(key)s)")}[kind]
        return Message(what, n=index + 1, key=key)
    what = {"columns": N_("Column %(n)s"), "filters": N_("Filter %(n)s"),
            "group_by": N_("Group level %(n)s")}[kind]
    return Message(what, n=index + 1)


def _checked(request: Request, record: dict):
    """(raw definition, Definition) or a broken page's response."""
    site = _site(request)
    try:
        raw = parse(record.get("definition"))
        return raw, check(site.registry, raw)
    except ReportError as exc:
        return None, _broken(request, record, exc)


def _run(request: Request, record: dict, definition, **kwargs):
    """The report's Result, or the response saying why not (refused, or the database
    could not run it — a report never shows a server error)."""
    site, user = _site(request), request.state.user
    try:
        return running.run(site, definition, user, request.state.fmt, **kwargs), None
    except ReportRefused as exc:
        raise _refused(exc) from None
    except (FieldError, sa.exc.DBAPIError, sa.exc.StatementError) as exc:
        reason = exc.message if isinstance(exc, FieldError) else \
            str(getattr(exc, "orig", None) or exc).splitlines()[0][:300]
        return None, _broken(request, record, None, problems=[
            (Message(N_("Database")), Message(N_("could not run this report: %(reason)s"),
                                              reason=reason))])


@page()
def report_page(request: Request, form):
    site, user = _site(request), request.state.user
    record = _record(request)
    raw, definition = _checked(request, record)
    if raw is None:
        return definition
    number = _number(request.query_params.get("page"))
    result, refused = _run(request, record, definition, page=number - 1)
    if refused is not None:
        return refused
    fmt = request.state.fmt
    columns = headers(definition, raw, fmt)
    chart, chart_note = chart_option(record["id"], definition, result, fmt, columns,
                                     currency=_currency(site, result, definition))
    sql = None
    if user.is_admin:
        compiled = result.compiled
        sql = show_sql(compiled, compiled.groups if compiled.groups is not None
                       else compiled.rows(limit=50), site.engine)
    return _render(request, "reports_report.html", record=record, definition=definition,
                   result=result, headers=columns, chart=chart, chart_note=chart_note,
                   chart_json=charts.script_json(chart) if chart else "", parts=PART_LABELS,
                   per_page=running.PAGE,
                   sql=sql, page_number=number, pages=_pages(result.row_count),
                   base=f"{URL}/{record['id']}", list_shape=_list_shape(definition, columns),
                   may_export=export_refusal(site, user, definition.module) is None,
                   group_cap=fmt.number(compiler.GROUP_CAP),
                   can_design=site.records.permissions(MODULE, record["id"], user,
                                                       ("edit",))["edit"])


def _pages(count: int) -> int:
    return max(math.ceil(count / running.PAGE), 1)


def _list_shape(definition, columns: list[str]) -> dict:
    """A list report's table: which column links to the record (its name field), or a
    leading column with the record's name when the report shows none; which columns are
    numbers (right-aligned); whether there is a totals row (an aggregate to show)."""
    name = definition.module.name_field
    linked = next((i for i, c in enumerate(definition.columns)
                   if c.source.kind == "primary" and c.field.name == name), None)
    return {"linked": linked,
            "lead": None if linked is not None else str(definition.module.label_singular),
            "numeric": [c.aggregate is not None and c.aggregate not in ("min", "max")
                        or _kind(c.field) == "number" for c in definition.columns],
            "totals": any(c.aggregate for c in definition.columns),
            # a row shows a record's own value ("Amount"), the totals row its aggregate; a
            # record's id means nothing to a reader: counted in the totals, blank in a row
            "headers": [h if c.source.kind == "many" or c.aggregate is None
                        or c.field.name == "id" else c.label
                        for c, h in zip(definition.columns, columns, strict=True)],
            "blank": [c.source.kind != "many" and c.field.name == "id"
                      for c in definition.columns]}


# -- the chart --------------------------------------------------------------------------------


def _currency(site, result, definition) -> str | None:
    """The one currency of the chart's column, when it is a currency and every figure in it
    is in that currency (a mix is plain numbers)."""
    chart = definition.chart
    if not chart or not definition.groups:
        return None
    index = chart.get("column", 0)
    column = definition.columns[index]
    if column.field.type.name != "currency" or column.aggregate in (None, "count"):
        return None
    total = result.total.cells[index] if result.total else None
    if total is None or total.mixed or total.value is None:
        return None
    code = getattr(total, "currency", None)
    if code:
        return code
    # (run.Cell does not keep the code yet: the grand total's, read once)
    with site.engine.connect() as conn:
        row = conn.execute(result.compiled.totals()).one()._mapping
    low, high = row.get(f"c{index}_lo"), row.get(f"c{index}_hi")
    return low if low and low == high else None


def chart_option(report_id: str, definition, result, fmt, columns: list[str], *,
                 currency: str | None = None) -> tuple[dict | None, Message | None]:
    """The ECharts option of the report's chart (``core.web.charts``, its ``page`` look) over
    its finest groups, and a note when it shows only the first CHART_CAP of them. Every
    segment carries ``url``: its drill-down; two levels stack as bars of the first."""
    chart = definition.chart
    if not chart or not definition.groups or not result.groups:
        return None, None
    kind, index = chart["type"], chart.get("column", 0)
    finest = result.finest
    note = None
    if len(finest) > running.CHART_CAP or result.capped:
        note = Message(N_("The chart shows the first %(shown)s groups; the table below shows "
                          "them all."), shown=fmt.number(running.CHART_CAP))
    segments = [charts.Segment(" · ".join(g.labels), (g.cells[index].value,),
                               f"{URL}/{report_id}/records?{g.query}", g.count,
                               text=g.cells[index].text, parts=tuple(zip(g.keys, g.labels)))
                for g in finest[:running.CHART_CAP]]
    group = " · ".join(str(g.field.label) for g in definition.groups)
    return charts.option(kind, segments, [columns[index]], fmt, currency=currency,
                         look="page", about=(columns[index], group)), note


# -- a group's records -------------------------------------------------------------------------


@page()
def records_page(request: Request, form):
    site, user = _site(request), request.state.user
    record = _record(request)
    raw, definition = _checked(request, record)
    if raw is None:
        return definition
    params = request.query_params
    if not definition.groups:
        raise HTTPException(400, Message(N_("This report has no groups: its records are on "
                                            "the report's page.")))
    where: dict = {}
    for name in params:
        if name == "page":
            continue
        level = re.fullmatch(r"g(\d)", name)
        if not level or int(level.group(1)) >= len(definition.groups):
            raise HTTPException(400, Message(N_("%(name)s is not a group level of this "
                                                "report."), name=repr(name)))
        group = definition.groups[int(level.group(1))]
        try:
            where[int(level.group(1))] = running.parse_key(group, params[name])
        except (FieldError, ValueError, TypeError) as exc:
            raise HTTPException(400, Message(
                N_("%(value)s is not a value of %(field)s: %(reason)s"),
                value=repr(params[name]), field=str(group.field.label),
                reason=getattr(exc, "message", str(exc)))) from None
    if not where or 0 not in where and len(where) < len(definition.groups):
        raise HTTPException(400, Message(N_("Say which group: g0=<value>.")))
    number = _number(params.get("page"))
    result, refused = _run(request, record, definition, where=where, page=number - 1)
    if refused is not None:
        return refused
    labels = running._Labels(site, definition, user, request.state.fmt)
    labels.load_groups([{f"g{k}": v for k, v in where.items()}])
    fmt = request.state.fmt
    title = [(str(definition.groups[k].field.label), labels.group(k, v))
             for k, v in sorted(where.items())]
    columns = headers(definition, raw, fmt)
    keep = {f"g{k}": params[f"g{k}"] for k in sorted(where)}
    return _render(request, "reports_records.html", record=record, definition=definition,
                   result=result, headers=columns, title=title, page_number=number,
                   per_page=running.PAGE,
                   pages=_pages(result.row_count), list_shape=_list_shape(definition, columns),
                   base=f"{URL}/{record['id']}/records?{urlencode(keep)}",
                   back=f"{URL}/{record['id']}")


# -- exports ------------------------------------------------------------------------------------


def _filename(name: str, extension: str) -> str:
    plain = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "report"
    return f"attachment; filename=\"{plain[:80]}.{extension}\"; " \
           f"filename*=UTF-8''{quote(name[:80])}.{extension}"


def _export(request: Request, kind: str):
    site, user = _site(request), request.state.user
    record = _record(request)
    raw, definition = _checked(request, record)
    back = f"{URL}/{record['id']}"
    if raw is None:
        flash(request, N_("This report is broken: open Design to repair it."), "error")
        return RedirectResponse(back, 303)
    refusal = export_refusal(site, user, definition.module)
    if refusal is not None:
        flash(request, refusal, "error")
        return RedirectResponse(back, 303)
    fmt = request.state.fmt
    try:
        if kind == "csv":
            body = to_csv(site, definition, user, fmt)
            media = "text/csv; charset=utf-8"
        else:
            body = to_xlsx(site, definition, user, fmt, str(record["name"])[:31])
            media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    except ReportRefused as exc:
        raise _refused(exc) from None
    except (FieldError, sa.exc.DBAPIError, sa.exc.StatementError):
        flash(request, N_("The database could not run this report."), "error")
        return RedirectResponse(back, 303)
    return Response(body, media_type=media, headers={
        "Content-Disposition": _filename(str(record["name"]), kind),
        "Cache-Control": "no-store"})


@page()
def export_csv(request: Request, form):
    return _export(request, "csv")


@page()
def export_xlsx(request: Request, form):
    return _export(request, "xlsx")


def to_the_builder(request: Request):
    """The Reports list's Create button: a report is made in the builder, not the generic
    form (this route comes before the generic views')."""
    return RedirectResponse(f"{URL}/new", status_code=303)


def routes() -> list[Route]:
    return [Route(f"/m/{MODULE}/new", to_the_builder, methods=["GET"]),
            Route(f"{URL}/new", new_report, methods=["GET", "POST"]),
            Route(URL + "/{id}/design", design_report, methods=["GET", "POST"]),
            Route(URL + "/{id}/records", records_page, methods=["GET"]),
            Route(URL + "/{id}/export.csv", export_csv, methods=["GET"]),
            Route(URL + "/{id}/export.xlsx", export_xlsx, methods=["GET"]),
            Route(URL + "/{id}", report_page, methods=["GET"])]

