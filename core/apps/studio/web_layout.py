"""Studio: the Layout Editor (implementation guide 7.5.1), over ``site.studio``.

Administrators only (everyone else gets 403, before anything is looked up).

    /admin/studio/modules/{module}/layouts/{view}               the editor; POST saves
    /admin/studio/modules/{module}/layouts/{view}/restore       POST: the default layout back
    /admin/studio/modules/{module}/layouts/subpanel/{rel}       a subpanel's columns (same)
    /admin/studio/modules/{module}/layouts/subpanel/{rel}/restore

``view`` is detail, edit (sections of rows of two positions), quick_create, list, filters
or ``subpanel:<relationship>`` (ordered lists of field names). The page keeps the staged
layout in the browser (static/studio_layout.js) and posts it as JSON in the hidden input
``layout``; detail and edit also post ``labels``, the field labels changed in the page
({name: label}). The layout sections hold field names only, so a label is the field's own
label, the same everywhere the module shows that field; the service saves the layout and
the labels as one change.

The posted JSON is checked here (its shape, known fields, no field twice) before the
service checks it again against the registry's schemas; any refusal re-renders the editor
with the messages (422), having saved nothing.
"""
from __future__ import annotations

import json
from urllib.parse import quote

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _redirect, _render
from core.apps.studio.studio import StudioError
from core.apps.studio.web import problem_lines
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

SECTION_VIEWS = ("detail", "edit")
LIST_VIEWS = ("quick_create", "list", "filters")
MAX_SECTIONS = 50
MAX_ROWS = 200
MAX_ITEMS = 200
MAX_LABEL = 100
MAX_POST = 200_000  # characters of JSON: far more than any real layout

VIEW_LABELS = {"detail": N_("Detail view"), "edit": N_("Edit view"),
               "quick_create": N_("Quick create"), "list": N_("List view columns"),
               "filters": N_("List filters")}
VIEW_HINTS = {
    "detail": N_("Sections of rows, two fields a row, as a record's page shows them."),
    "edit": N_("Sections of rows, two fields a row, as the edit form shows them."),
    "quick_create": N_("The fields of the short create form, in order."),
    "list": N_("The columns of the module's list, in order."),
    "filters": N_("The filters above the module's list, in order."),
    "subpanel": N_("The columns of this subpanel on a record's page, in order."),
}

BAD_JSON = N_("The layout could not be read (it is not valid JSON).")
BAD_SHAPE = N_("The layout does not have the expected shape: %(reason)s.")
UNKNOWN_FIELD = N_("There is no field %(name)s that this layout can show.")
TWICE = N_("The field %(name)s is placed more than once.")
EMPTY = N_("Place at least one field.")
BAD_LABEL = N_("The label of %(name)s must be 1 to %(max)s characters.")
LABEL_FIXED = N_("The label of %(name)s cannot be changed here.")
NOTHING_SAVED = N_("Nothing was saved.")
REFUSED = N_("The layout was not saved:")
SAVED = N_("The layout was saved.")
SAVED_WITH = N_("The layout was saved. Note: %(warnings)s")
UNCHANGED = N_("Nothing to save: the layout is as it was.")
RESTORED = N_("The default layout was restored.")


class LayoutInputError(Exception):
    """The posted layout is unreadable or malformed; ``messages`` say why."""

    def __init__(self, messages: list[Message]):
        super().__init__("; ".join(str(m) for m in messages))
        self.messages = messages


# -- helpers ------------------------------------------------------------------------------

def _studio(request: Request):
    return request.app.state.site.studio


def editor_url(module: str, view: str) -> str:
    """The editor's address for ``view`` (a subpanel as /layouts/subpanel/<relationship>)."""
    if view.startswith("subpanel:"):
        return (f"/admin/studio/modules/{quote(module)}/layouts/subpanel/"
                f"{quote(view.split(':', 1)[1])}")
    return f"/admin/studio/modules/{quote(module)}/layouts/{quote(view)}"


def _target(request: Request):
    """(module definition, view) named in the URL, or 404."""
    _admin_only(request)
    site = request.app.state.site
    name = request.path_params["module"]
    module = site.registry.modules.get(name)
    if module is None:
        raise HTTPException(404, Message(N_("There is no such module.")))
    params = request.path_params
    view = f"subpanel:{params['relationship']}" if "relationship" in params else params["view"]
    if view.startswith("subpanel:"):
        relationship = view.split(":", 1)[1]
        if relationship not in {r["name"] for r in _studio(request).relationships(name)}:
            raise HTTPException(404, Message(N_("%(module)s has no relationship %(name)s."),
                                             module=module.label, name=relationship))
    elif view not in SECTION_VIEWS + LIST_VIEWS:
        raise HTTPException(404, Message(N_("There is no layout called %(name)s."), name=view))
    return module, view


def _kind(view: str) -> str:
    return "sections" if view in SECTION_VIEWS else "list"


def _placed(kind: str, layout) -> list[str]:
    if kind == "list":
        return [n for n in layout if n]
    return [n for section in layout for row in section.get("rows", []) for n in row if n]


def _entry_label(module, name: str) -> str:
    """What a layout entry is called: its field's label, or a composite's (an address)."""
    if name in module.fields:
        return module.fields[name].label
    parts = module.expand(name)
    return parts[0].label.split(":")[0] if parts else name


def _normalize(kind: str, layout):
    """Sections with rows of exactly two positions (a shorter row padded with None)."""
    if kind == "list":
        return list(layout)
    return [{"label": section.get("label") or "",
             "rows": [(list(row) + [None, None])[:2] for row in section.get("rows", [])]}
            for section in layout]


def _views(request: Request, module) -> list[dict]:
    """The layouts of this module one can edit here (the page's tabs)."""
    views = [{"view": v, "label": Message(VIEW_LABELS[v])} for v in SECTION_VIEWS + LIST_VIEWS]
    for rel in _studio(request).relationships(module.name):
        if rel.get("subpanel"):
            views.append({"view": f"subpanel:{rel['name']}",
                          "label": Message(N_("Subpanel: %(name)s"),
                                           name=rel.get("label") or rel["name"])})
    for v in views:
        v["url"] = editor_url(module.name, v["view"])
    return views


def _view_label(request: Request, view: str) -> Message:
    if view.startswith("subpanel:"):
        rel_name = view.split(":", 1)[1]
        rel = next((r for r in _studio(request).relationships(request.path_params["module"])
                    if r["name"] == rel_name), {})
        return Message(N_("Subpanel: %(name)s"), name=rel.get("label") or rel_name)
    return Message(VIEW_LABELS[view])


def _editable_labels(request: Request, module) -> dict[str, dict]:
    """Fields whose label this page may change: name -> the service's spec."""
    return {info.name: info.spec for info in _studio(request).fields(module.name)
            if not info.system}


# -- reading the posted layout ------------------------------------------------------------

def _shape(reason: str) -> LayoutInputError:
    return LayoutInputError([Message(BAD_SHAPE, reason=reason)])


def _load(text: str):
    if len(text) > MAX_POST:
        raise _shape("too large")
    try:
        return json.loads(text)
    except ValueError:
        raise LayoutInputError([Message(BAD_JSON)]) from None


def _name(value, where: str, nullable: bool = False):
    if value is None and nullable:
        return None
    if not isinstance(value, str) or not value:
        raise _shape(f"{where} must be a field name" + (" or null" if nullable else ""))
    return value


def parse_layout(kind: str, text: str, allowed: set[str]):
    """The posted layout, checked: a list of sections (``{"label", "rows"}``, rows of one
    or two positions) or a list of names; only ``allowed`` names, none twice."""
    value = _load(text)
    if not isinstance(value, list):
        raise _shape("a list was expected")
    if kind == "list":
        if len(value) > MAX_ITEMS:
            raise _shape(f"at most {MAX_ITEMS} fields")
        layout = [_name(v, f"item {i + 1}") for i, v in enumerate(value)]
    else:
        if len(value) > MAX_SECTIONS:
            raise _shape(f"at most {MAX_SECTIONS} sections")
        layout = []
        for s, section in enumerate(value, 1):
            if not isinstance(section, dict) or not set(section) <= {"label", "rows"} \
                    or "rows" not in section:
                raise _shape(f'section {s} must be an object with "label" and "rows"')
            label = section.get("label") or ""
            if not isinstance(label, str) or len(label) > MAX_LABEL:
                raise _shape(f"the name of section {s} must be text of at most "
                             f"{MAX_LABEL} characters")
            rows = section["rows"]
            if not isinstance(rows, list) or len(rows) > MAX_ROWS:
                raise _shape(f"the rows of section {s} must be a list (at most {MAX_ROWS})")
            checked = []
            for r, row in enumerate(rows, 1):
                if not isinstance(row, list) or not 1 <= len(row) <= 2:
                    raise _shape(f"row {r} of section {s} must be a list of one or two "
                                 f"positions")
                checked.append([_name(v, f"position {c} of row {r} of section {s}",
                                      nullable=True) for c, v in enumerate(row, 1)])
            layout.append({"label": " ".join(label.split()), "rows": checked})
        layout = _normalize(kind, layout)
    names = _placed(kind, layout)
    problems = [Message(UNKNOWN_FIELD, name=n) for n in dict.fromkeys(names) if n not in allowed]
    seen: set[str] = set()
    for n in names:
        if n in seen and n in allowed:
            problems.append(Message(TWICE, name=n))
        seen.add(n)
    if not names and not problems:
        problems.append(Message(EMPTY))
    if problems:
        raise LayoutInputError(list(dict.fromkeys(problems)))
    return layout


def parse_labels(text: str, module, editable: dict[str, dict]) -> dict[str, str]:
    """The changed labels posted with a detail/edit layout: ``{name: label}``, only the
    ones that differ from the label shown now."""
    if not text.strip():
        return {}
    value = _load(text)
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise _shape("the labels must be an object of field names and texts")
    changed, problems = {}, []
    for name, label in value.items():
        label = " ".join(label.split())
        if name not in module.fields:
            problems.append(Message(UNKNOWN_FIELD, name=name))
        elif label == module.fields[name].label:
            continue
        elif name not in editable:
            problems.append(Message(LABEL_FIXED, name=name))
        elif not 1 <= len(label) <= MAX_LABEL:
            problems.append(Message(BAD_LABEL, name=name, max=MAX_LABEL))
        else:
            changed[name] = label
    if problems:
        raise LayoutInputError(problems)
    return changed


# -- the page -----------------------------------------------------------------------------

def _editor(request: Request, module, view: str, status: int = 200, layout=None,
            labels=None, errors=(), problems=()):
    studio = _studio(request)
    kind = _kind(view)
    saved = _normalize(kind, studio.layout(module.name, view))
    layout = saved if layout is None else layout
    available = studio.available_fields(module.name, view)
    # the fields of a subpanel are those of the module on the other side
    shown = module
    if view.startswith("subpanel:"):
        rel_name = view.split(":", 1)[1]
        rel = next(r for r in studio.relationships(module.name) if r["name"] == rel_name)
        shown = request.app.state.site.registry.modules.get(rel["module"], module)
    editable = _editable_labels(request, module) if kind == "sections" else {}
    fields = {}
    for name, label, custom in available:
        fields[name] = {"label": str(label), "custom": bool(custom)}
    for name in _placed(kind, layout):  # placed already, if the service leaves them out
        fields.setdefault(name, {"label": _entry_label(shown, name), "custom": False})
    for name, meta in fields.items():
        meta["label_editable"] = name in editable and name in module.fields
    placed = set(_placed(kind, layout))
    order = [name for name, _l, _c in available]
    order += [n for n in fields if n not in order]
    data = {"kind": kind, "view": view, "layout": layout, "fields": fields, "order": order,
            "labels": labels or {}}
    return _render(
        request, "studio_layout.html", status=status, module=module, view=view, kind=kind,
        layout=layout, fields=fields, placed=placed,
        free_custom=[n for n in order if fields[n]["custom"] and n not in placed],
        free_standard=[n for n in order if not fields[n]["custom"] and n not in placed],
        views=_views(request, module), view_label=_view_label(request, view),
        view_hint=VIEW_HINTS["subpanel" if view.startswith("subpanel:") else view],
        customized=studio.layout_customized(module.name, view),
        action=editor_url(module.name, view),
        designer=f"/admin/studio/modules/{quote(module.name)}",
        data=data, errors=list(errors), problems=list(problems))


@page()
def layout_page(request: Request, form):
    module, view = _target(request)
    if request.method != "POST":
        return _editor(request, module, view)
    return _save(request, form, module, view)


def _save(request: Request, form, module, view: str):
    studio = _studio(request)
    user = request.state.user
    kind = _kind(view)
    current = _normalize(kind, studio.layout(module.name, view))
    allowed = {name for name, _l, _c in studio.available_fields(module.name, view)}
    allowed |= set(_placed(kind, current))
    editable = _editable_labels(request, module) if kind == "sections" else {}
    try:
        layout = parse_layout(kind, str(form.get("layout", "")), allowed)
        labels = parse_labels(str(form.get("labels", "")), module, editable) \
            if kind == "sections" else {}
    except LayoutInputError as exc:
        return _editor(request, module, view, 422, errors=[*exc.messages, Message(NOTHING_SAVED)])
    warnings: list[str] = []
    if layout != current or labels:
        try:  # the layout and its labels in one change: both saved or neither
            change = studio.save_layout(user, module.name, view, layout, labels=labels)
        except StudioError as exc:
            return _editor(request, module, view, 422, layout=layout, labels=labels,
                           errors=[Message(REFUSED)], problems=problem_lines(exc))
        warnings += change.warnings
    if layout == current and not labels:
        flash(request, Message(UNCHANGED))
    elif warnings:
        flash(request, Message(SAVED_WITH, warnings="; ".join(warnings)))
    else:
        flash(request, Message(SAVED))
    return _redirect(editor_url(module.name, view))


@page()
def restore_page(request: Request, form):
    module, view = _target(request)
    try:
        _studio(request).restore_layout(request.state.user, module.name, view)
    except StudioError as exc:
        return _editor(request, module, view, 422, errors=[Message(REFUSED)],
                       problems=problem_lines(exc))
    flash(request, Message(RESTORED))
    return _redirect(editor_url(module.name, view))


BASE = "/admin/studio/modules/{module}/layouts"
routes = [
    Route(BASE + "/subpanel/{relationship}/restore", restore_page, methods=["POST"]),
    Route(BASE + "/subpanel/{relationship}", layout_page, methods=["GET", "POST"]),
    Route(BASE + "/{view}/restore", restore_page, methods=["POST"]),
    Route(BASE + "/{view}", layout_page, methods=["GET", "POST"]),
]
