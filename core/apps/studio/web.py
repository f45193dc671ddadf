"""The Studio's Module Designer and Custom Fields editor (implementation guide 7.5.2, 7.5.9).

Administrators only (everyone else gets 403, before anything is looked up). The pages are
forms over ``site.studio`` (core/apps/studio/studio.py), which checks every change against the merged
registry and changes nothing when it refuses:

    /admin/studio                                   modules, links to the other editors
    /admin/studio/modules/new                       create a module
    /admin/studio/modules/{module}                  the designer: settings, fields,
                                                    relationships, subpanels, list filters
    /admin/studio/modules/{module}/fields/new       create a field (the 21 types)
    /admin/studio/modules/{module}/fields/{field}   edit a field; .../remove
    /admin/studio/modules/{module}/formula?text=    check a formula (JSON)
    /admin/studio/history                           the audit trail
    /admin/studio/removed                           removed fields and modules; restore

A refused change re-renders its form with the values as sent and the service's problems
next to the inputs they concern (422); a successful one redirects (303) with a flash.
"""
from __future__ import annotations

import re

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.apps.admin import web as admin
from core.apps.admin.web import _admin_only, _checked, _redirect, _site, _text
from core.apps.studio.studio import FIELD_TYPES, StudioError
from core.kernel import i18n
from core.kernel.errors import N_, Message
from core.kernel.registry import MODULE_SCHEMA
from core.web.pages import page
from core.web.templating import flash

NO_STORE = {"Cache-Control": "no-store"}
HISTORY_LIMIT = 200
TYPE_NAMES = [name for name, _ in FIELD_TYPES]
TYPE_LABELS = dict(FIELD_TYPES)
FLAGS = ("required", "audited", "personal", "mass_update", "merge_duplicates")
FLAG_LABELS = {"required": N_("Required field"), "audited": N_("Audit enabled"),
               "personal": N_("Personal data"), "mass_update": N_("Mass update"),
               "merge_duplicates": N_("Merge duplicates")}
FLAG_HINTS = {"required": N_("Give required fields a default value, or new records may not "
                             "save."),
              "audited": N_("Changes to the field are written to the change log."),
              "personal": N_("Sensitive personal data (GDPR)."),
              "mass_update": N_("The field appears on the list's mass update panel."),
              "merge_duplicates": N_("Used to find and merge duplicate records.")}
FEATURES = ("assignable", "team_owned", "audited", "importable")
FEATURE_LABELS = {"assignable": N_("Assignable (records have an assigned user)"),
                  "team_owned": N_("Teams (records belong to teams)"),
                  "audited": N_("Audited (changes go to the change log)"),
                  "importable": N_("Importable")}
ACCESS_LEVELS = {"editable": N_("Editable"), "fixed": N_("Fixed")}
RELATIONSHIP_KINDS = {"many_to_one": N_("Many to one (a related field here)"),
                      "one_to_many": N_("One to many (a related field there)"),
                      "many_to_many": N_("Many to many")}
KIND_LABELS = {"one_to_many": N_("One to many"), "many_to_many": N_("Many to many"),
               "many_to_one": N_("Many to one")}
LAYOUT_VIEWS = {"detail": N_("Detail view"), "edit": N_("Edit view"),
                "quick_create": N_("Quick create"), "list": N_("List view")}
FORMATS = {"text": N_("Text"), "integer": N_("Integer"), "decimal": N_("Decimal"),
           "percentage": N_("Percentage"), "currency": N_("Currency"),
           "checkbox": N_("Checkbox"), "date": N_("Date")}
REMOVED_KINDS = {"field": N_("Field"), "module": N_("Module")}
DYNAMIC = "_dynamic"

# which inputs each type shows besides the common ones (studio.js shows/hides the same)
PARTS = {
    "max_size": {"text", "textarea", "name", "item_number", "phone", "email", "url"},
    "plain_number": {"integer"},
    "options": {"dropdown", "status", "multiselect"},
    "related": {"related"},
    "related_value": {"related_value"},
    "currency": {"currency"},
    "parts": {"name"},
    "calculated": {"calculated"},
    "conditional": {"dropdown", "status"},
    "default": set(TYPE_NAMES) - {"calculated", "related_value", "html"},
}
# the keys a field definition may have (module.json); a merged spec also carries keys its
# expansion adds (a dynamic related field's type_field), which are not written back
SPEC_KEYS = frozenset(MODULE_SCHEMA["$defs"]["field"]["properties"])
# the spec keys the field form governs; others a field has (min, max, precision...) stay
FORM_KEYS = {"type", "label", "default", "help", "max_size", "plain_number", "options", "module",
             "modules", "related_field", "source_field", "currency", "parts", "formula",
             "format", "depends_on", "conditional_options", *FLAGS}
REQUIRED = N_("is required")
NOT_WHOLE = N_("%(value)s is not a whole number")
CURRENCY_CODE = re.compile(r"^[A-Z]{3}$")
IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
LABELS = {"types": TYPE_LABELS, "flags": FLAG_LABELS, "flag_hints": FLAG_HINTS,
          "features": FEATURE_LABELS, "access": ACCESS_LEVELS,
          "relationship_kinds": RELATIONSHIP_KINDS, "kinds": KIND_LABELS,
          "views": LAYOUT_VIEWS, "formats": FORMATS, "removed": REMOVED_KINDS}


# -- helpers ------------------------------------------------------------------------------

def _studio(request: Request):
    return request.app.state.site.studio


def _render(request: Request, name: str, status: int = 200, **context):
    return admin._render(request, name, status, labels=LABELS, **context)


def _raw(form, name: str) -> str:
    """A multi-line input (help, formula), only trimmed."""
    return str(form.get(name, "") or "").strip()


def _whole(form, name: str, errors: dict) -> int | None:
    text = _text(form, name)
    if not text:
        return None
    try:
        return int(text)
    except ValueError:
        errors[name] = Message(NOT_WHOLE, value=repr(text))
        return None


def _module_name(request: Request) -> str:
    """The module in the URL, or 404."""
    name = request.path_params["module"]
    if name not in _site(request).registry.modules:
        raise HTTPException(404, Message(N_("There is no such module.")))
    return name


def _summary(request: Request, name: str):
    return next((m for m in _studio(request).modules() if m.name == name), None)


def _field_info(request: Request, module: str, name: str):
    info = next((f for f in _studio(request).fields(module) if f.name == name), None)
    if info is None or info.system:
        raise HTTPException(404, Message(N_("There is no such field.")))
    return info


def _sorted_problems(exc: StudioError, inputs, aliases=None) -> tuple[dict, list]:
    """(input name -> reason, the other problems): a problem goes next to the input its
    ``where`` names (its last dotted part, e.g. ``$.fields.vin.default`` -> ``default``;
    ``aliases`` renames a service's word to the form's input)."""
    inline: dict[str, str] = {}
    general = []
    for problem in exc.problems:
        where = str(problem.where or "")
        key = next((part for part in reversed(re.split(r"[.\[\]/: $]+", where)) if part), "")
        key = (aliases or {}).get(key, key)
        if key in inputs and key not in inline:
            inline[key] = problem.reason
        else:
            general.append(problem)
    return inline, general


def _mark(text: str, position: int | None) -> dict | None:
    """A formula cut at its error: the text up to it, the character at it (a space past
    the end), the rest of that line, the caret's column, and the lines after."""
    if position is None or not text:
        return None
    at = max(0, min(position, len(text)))
    line_start = text.rfind("\n", 0, at) + 1
    line_end = text.find("\n", at)
    line_end = len(text) if line_end < 0 else line_end
    char = text[at:at + 1] if at < line_end else " "
    return {"before": text[:at], "char": char, "line_rest": text[at + 1:line_end] if
            at < line_end else "", "column": at - line_start, "after": text[line_end + 1:]}


def _position(problems) -> int | None:
    return next((p.position for p in problems if getattr(p, "position", None) is not None),
                None)


# -- the index ----------------------------------------------------------------------------

@page()
def index(request: Request, form):
    _admin_only(request)
    return _render(request, "studio_index.html", modules=_studio(request).modules())


# -- modules ------------------------------------------------------------------------------

MODULE_INPUTS = ("name", "label", "label_singular", "tab_group", "icon", "access_level",
                 "sequence_prefix", "features")


def _module_values(form) -> dict:
    values = {key: _text(form, key) for key in ("name", "label", "label_singular", "tab_group",
                                                "icon")}
    values["name"] = str(form.get("name", "") or "").strip()
    values["access_level"] = str(form.get("access_level", "editable"))
    values["features"] = {key: _checked(form, key) for key in FEATURES}
    values["numbered"] = _checked(form, "numbered")
    values["sequence_prefix"] = str(form.get("sequence_prefix", "") or "").strip()
    return values


def _module_errors(values: dict, new: bool) -> dict:
    errors = {}
    if new and not values["name"]:
        errors["name"] = Message(REQUIRED)
    if not values["label"]:
        errors["label"] = Message(REQUIRED)
    if values["access_level"] not in ACCESS_LEVELS:
        errors["access_level"] = Message(N_("Choose Editable or Fixed."))
    return errors


def _features(values: dict) -> dict:
    return {**values["features"],
            "sequence_prefix": values["sequence_prefix"] if values["numbered"] else None}


def _tab_groups(request: Request) -> list[str]:
    return sorted({m.tab_group for m in _studio(request).modules() if m.tab_group})


def _new_module_page(request: Request, values: dict, status: int = 200, errors=None,
                     problems=()):
    return _render(request, "studio_module_new.html", status=status, values=values,
                   errors=errors or {}, problems=problems, tab_groups=_tab_groups(request),
                   new=True)


@page()
def module_new(request: Request, form):
    user = _admin_only(request)
    if form is None:
        return _new_module_page(request, {"access_level": "editable", "features": {}})
    values = _module_values(form)
    errors = _module_errors(values, new=True)
    if errors:
        return _new_module_page(request, values, status=422, errors=errors)
    try:
        change = _studio(request).create_module(
            user, values["name"], values["label"],
            label_singular=values["label_singular"] or None,
            tab_group=values["tab_group"] or None, icon=values["icon"] or None,
            access_level=values["access_level"], features=_features(values))
    except StudioError as exc:
        errors, problems = _sorted_problems(exc, MODULE_INPUTS)
        return _new_module_page(request, values, status=422, errors=errors, problems=problems)
    flash_change(request, Message(N_("Module %(label)s was created."), label=values["label"]),
                  change)
    return _redirect(f"/admin/studio/modules/{values['name']}")


def problem_lines(exc: StudioError) -> list[str]:
    """A refusal's reasons as lines, each naming where ("where: reason")."""
    return [str(p) for p in exc.problems] or [str(exc)]


def flash_change(request: Request, done: Message, change) -> None:
    """The change's confirmation, with the service's warnings when it has some (every
    Studio page confirms this way)."""
    warnings = list(getattr(change, "warnings", None) or ())
    if warnings:
        flash(request, Message(N_("%(done)s Warning: %(warnings)s"), done=done,
                               warnings="; ".join(warnings)), "warning")
    else:
        flash(request, done)


def _settings_values(settings: dict) -> dict:
    features = settings.get("features") or {}
    prefix = features.get("sequence_prefix")
    return {"label": settings.get("label") or "",
            "label_singular": settings.get("label_singular") or "",
            "tab_group": settings.get("tab_group") or "", "icon": settings.get("icon") or "",
            "access_level": settings.get("access_level") or "editable",
            "features": {key: bool(features.get(key)) for key in FEATURES},
            "numbered": prefix is not None, "sequence_prefix": prefix or ""}


def _designer(request: Request, module: str, status: int = 200, section: str | None = None,
              errors=None, problems=(), values=None):
    """The module's designer page; ``section`` names the form that was refused (its
    ``values`` as sent, its ``errors`` inline and ``problems`` above it)."""
    studio = _studio(request)
    registry = _site(request).registry
    summary = _summary(request, module)
    fields = studio.fields(module)
    relationships = studio.relationships(module)
    filters = list(studio.layout(module, "filters") or [])
    candidates = [(name, label) for name, label, _ in studio.available_fields(module, "filters")]
    filter_items = [(n, lbl) for n in filters for m, lbl in candidates if m == n] + \
        [(n, lbl) for n, lbl in candidates if n not in filters]
    settings = values if section == "settings" and values is not None else \
        _settings_values(studio.module_settings(module))
    others = [m for m in studio.modules() if m.name in registry.modules]
    return _render(
        request, "studio_module.html", status=status, mod=registry.modules[module],
        summary=summary, fields=fields, relationships=relationships,
        filter_items=filter_items, filters=set(filters), settings=settings,
        tab_groups=_tab_groups(request), modules=others, section=section, new=False,
        errors=errors or {}, problems=problems,
        rel_values=values if section == "relationships" and values else {"subpanel": True})


@page()
def designer(request: Request, form):
    _admin_only(request)
    return _designer(request, _module_name(request))


@page()
def module_settings(request: Request, form):
    user = _admin_only(request)
    module = _module_name(request)
    values = _module_values(form)
    errors = _module_errors(values, new=False)
    if not errors:
        try:
            change = _studio(request).update_module(
                user, module, label=values["label"],
                label_singular=values["label_singular"] or None,
                tab_group=values["tab_group"] or None, icon=values["icon"] or None,
                access_level=values["access_level"], features=_features(values))
        except StudioError as exc:
            errors, problems = _sorted_problems(exc, MODULE_INPUTS)
            return _designer(request, module, status=422, section="settings", errors=errors,
                             problems=problems, values=values)
        flash_change(request, Message(N_("The settings of %(label)s were saved."),
                                       label=values["label"]),
                      change)
        return _redirect(f"/admin/studio/modules/{module}")
    return _designer(request, module, status=422, section="settings", errors=errors,
                     values=values)


@page()
def module_remove(request: Request, form):
    user = _admin_only(request)
    module = _module_name(request)
    purge = _checked(form, "purge")
    try:
        change = _studio(request).remove_module(user, module, purge=purge)
    except StudioError as exc:
        return _designer(request, module, status=422, section="remove", problems=exc.problems)
    flash_change(request, Message(N_("Module %(name)s was removed and its data deleted.")
                                   if purge else N_("Module %(name)s was removed; its data "
                                                    "is kept and it can be restored."),
                                   name=module), change)
    return _redirect("/admin/studio")


# -- relationships, subpanels, list filters -----------------------------------------------

REL_INPUTS = ("kind", "other", "field_name", "label")


@page()
def relationship_add(request: Request, form):
    user = _admin_only(request)
    module = _module_name(request)
    values = {"kind": str(form.get("kind", "")), "other": str(form.get("other", "")),
              "field_name": str(form.get("field_name", "") or "").strip(),
              "label": _text(form, "label"), "subpanel": _checked(form, "subpanel")}
    errors = {}
    if values["kind"] not in RELATIONSHIP_KINDS:
        errors["kind"] = Message(N_("Choose the kind of relationship."))
    if not values["other"]:
        errors["other"] = Message(REQUIRED)
    if not errors:
        try:
            change = _studio(request).add_relationship(
                user, module, values["kind"], values["other"],
                field_name=values["field_name"] or None, label=values["label"] or None,
                subpanel=values["subpanel"])
        except StudioError as exc:
            errors, problems = _sorted_problems(exc, REL_INPUTS, {"module": "other"})
            return _designer(request, module, status=422, section="relationships",
                             errors=errors, problems=problems, values=values)
        flash_change(request, Message(N_("The relationship was added.")), change)
        return _redirect(f"/admin/studio/modules/{module}#relationships")
    return _designer(request, module, status=422, section="relationships", errors=errors,
                     values=values)


@page()
def relationship_remove(request: Request, form):
    user = _admin_only(request)
    module = _module_name(request)
    name = request.path_params["name"]
    try:
        change = _studio(request).remove_relationship(user, module, name)
    except StudioError as exc:
        return _designer(request, module, status=422, section="relationships",
                         problems=exc.problems)
    flash_change(request, Message(N_("Relationship %(name)s was removed."), name=name), change)
    return _redirect(f"/admin/studio/modules/{module}#relationships")


@page()
def subpanels_save(request: Request, form):
    user = _admin_only(request)
    module = _module_name(request)
    current = {r["name"]: r.get("label") or "" for r in _studio(request).relationships(module)}
    shown = [str(n) for n in form.getlist("shown") if str(n) in current]
    # only the labels the admin changed: an untouched one keeps following its default
    labels = {n: _text(form, f"label.{n}") for n in current
              if _text(form, f"label.{n}") and _text(form, f"label.{n}") != current[n]}
    try:
        change = _studio(request).save_subpanels(user, module, shown, labels)
    except StudioError as exc:
        return _designer(request, module, status=422, section="subpanels",
                         problems=exc.problems)
    flash_change(request, Message(N_("The subpanels were saved.")), change)
    return _redirect(f"/admin/studio/modules/{module}#subpanels")


@page()
def filters_save(request: Request, form):
    user = _admin_only(request)
    module = _module_name(request)
    chosen = [str(n) for n in form.getlist("filters")]
    try:
        change = _studio(request).save_layout(user, module, "filters",
                                              list(dict.fromkeys(chosen)))
    except StudioError as exc:
        return _designer(request, module, status=422, section="filters", problems=exc.problems)
    flash_change(request, Message(N_("The list filters were saved.")), change)
    return _redirect(f"/admin/studio/modules/{module}#filters")


# -- fields -------------------------------------------------------------------------------

FIELD_INPUTS = ("type", "name", "label", "default", "help", "max_size", "options", "module",
                "modules", "related_field", "source_field", "currency", "parts", "formula",
                "format", "depends_on", "conditional_options", *FLAGS)


def _field_values(form, ftype: str) -> dict:
    """The form as sent, to show again (checkbox lists as lists)."""
    values = {key: str(form.get(key, "") or "") for key in
              ("name", "label", "default", "help", "max_size", "options", "module",
               "related_field", "source_field", "currency", "parts", "formula", "format",
               "depends_on")}
    values["type"] = ftype
    values["modules"] = [str(v) for v in form.getlist("modules")]
    for flag in FLAGS:
        values[flag] = _checked(form, flag)
    values["plain_number"] = _checked(form, "plain_number")
    control = values["depends_on"]
    values["depends_values"] = [str(v) for v in form.getlist(f"depends_values.{control}")]
    values["conditional"] = {key[len("cond."):]: [str(v) for v in form.getlist(key)]
                             for key in form if key.startswith("cond.")}
    return values


def _spec_from_form(request: Request, module: str, form, ftype: str, existing: dict,
                    own_name: str | None) -> tuple[dict, dict]:
    """(the field's spec, errors found reading the form). Blank optional inputs are left
    out, flags only when ticked; keys the form does not show (min, max, precision...)
    are kept as they were."""
    errors: dict = {}
    spec = {k: v for k, v in existing.items() if k in SPEC_KEYS and k not in FORM_KEYS}
    spec["type"] = ftype
    label = _text(form, "label")
    if label:
        spec["label"] = label
    for flag in FLAGS:
        if _checked(form, flag):
            spec[flag] = True
    if ftype in PARTS["default"]:
        default = _text(form, "default")
        if default:
            spec["default"] = default
    help_text = _raw(form, "help")
    if help_text:
        spec["help"] = help_text
    if ftype in PARTS["plain_number"] and _checked(form, "plain_number"):
        spec["plain_number"] = True
    if ftype in PARTS["max_size"]:
        size = _whole(form, "max_size", errors)
        if size is not None:
            if size < 1:
                errors["max_size"] = Message(N_("must be at least 1"))
            spec["max_size"] = size
    if ftype in PARTS["options"]:
        options = _text(form, "options")
        if options:
            spec["options"] = options
        else:
            errors["options"] = Message(N_("Choose the dropdown list of the options."))
    if ftype == "related":
        target = _text(form, "module")
        if target == DYNAMIC:
            modules = list(dict.fromkeys(str(v) for v in form.getlist("modules") if str(v)))
            if modules:
                spec["modules"] = modules
            else:
                errors["modules"] = Message(N_("Choose at least one module a dynamic related "
                                               "field may point to."))
        elif target:
            spec["module"] = target
        else:
            errors["module"] = Message(N_("Choose the related module."))
    if ftype == "related_value":
        for key, message in (("related_field", N_("Choose the related field to follow.")),
                             ("source_field", N_("Choose the field to show."))):
            value = _text(form, key)
            if value:
                spec[key] = value
            else:
                errors[key] = Message(message)
    if ftype == "currency":
        code = _text(form, "currency").upper()
        if code:
            if not CURRENCY_CODE.match(code):
                errors["currency"] = Message(N_("%(value)s is not a three-letter currency code"),
                                             value=repr(code))
            spec["currency"] = code
    if ftype == "name":
        parts = [p for p in re.split(r"[\s,]+", _text(form, "parts")) if p]
        if parts:
            spec["parts"] = parts
    if ftype == "calculated":
        text = _raw(form, "formula")
        if text:
            spec["formula"] = text
        else:
            errors["formula"] = Message(REQUIRED)
        spec["format"] = _text(form, "format") or "text"
        if spec["format"] not in FORMATS:
            errors["format"] = Message(N_("Choose the format of the result."))
    control = _text(form, "depends_on")
    if control:
        chosen = [str(v) for v in form.getlist(f"depends_values.{control}") if str(v)]
        if control == own_name:
            errors["depends_on"] = Message(N_("A field cannot depend on itself."))
        elif not chosen:
            errors["depends_on"] = Message(N_("Tick the values of %(field)s that show this "
                                              "field."), field=control)
        spec["depends_on"] = {"field": control, "values": chosen}
        if ftype in PARTS["conditional"]:
            conditional = {}
            for key in form:
                if key.startswith("cond.") and key[len("cond."):]:
                    offered = list(dict.fromkeys(str(v) for v in form.getlist(key) if str(v)))
                    if offered:
                        conditional[key[len("cond."):]] = offered
            if conditional:
                spec["conditional_options"] = conditional
    return spec, errors


def _field_context(request: Request, module: str) -> dict:
    """What the field editor's selects offer: dropdown lists and their options, modules,
    the module's dropdown and related fields, the target modules' fields, the formula help."""
    studio = _studio(request)
    registry = _site(request).registry
    lists = [d.name for d in studio.dropdowns()]
    # (value, label in the admin's language): the Studio's own per-language value, else
    # the catalog's, as the record forms show them
    options = {name: [(o["value"], o["labels"].get(i18n.language()) or i18n.label(o["label"]))
                      for o in studio.dropdown(name)] for name in lists}
    fields = [f for f in studio.fields(module) if not f.system]
    controls = [f for f in fields if f.type in ("dropdown", "status") and f.spec.get("options")]
    related = [f for f in fields if f.type == "related" and f.spec.get("module")]
    sources = {}
    for f in related:
        target = registry.modules.get(f.spec["module"])
        if target is not None:
            sources[f.name] = (target.label, [(s.name, s.label) for s in target.fields.values()
                                              if s.stored and s.name not in
                                              ("id", "deleted", "version")])
    return {"lists": lists, "list_options": options, "modules": studio.modules(),
            "controls": controls, "related_fields": related, "sources": sources,
            "help": studio.formula_help(module), "types": FIELD_TYPES, "parts": PARTS,
            "module_fields": fields, "dynamic": DYNAMIC}


def _values_of(info) -> dict:
    """A stored field as the form shows it."""
    spec = info.spec
    depends = spec.get("depends_on") or {}
    values = {key: "" if spec.get(key) is None else str(spec.get(key))
              for key in ("label", "default", "help", "max_size", "options", "related_field",
                          "source_field", "currency", "formula", "format")}
    values.update(name=info.name, type=info.type, modules=list(spec.get("modules") or []),
                  module=DYNAMIC if spec.get("modules") else spec.get("module", ""),
                  parts=" ".join(spec.get("parts") or []), depends_on=depends.get("field", ""),
                  depends_values=list(depends.get("values") or []),
                  conditional={k: list(v) for k, v in
                               (spec.get("conditional_options") or {}).items()})
    for flag in FLAGS:
        values[flag] = bool(spec.get(flag))
    values["plain_number"] = bool(spec.get("plain_number"))
    return values


def _field_page(request: Request, module: str, values: dict, info=None, status: int = 200,
                errors=None, problems=(), formula_position=None):
    context = _field_context(request, module)
    data = {"lists": context["list_options"],
            "controls": {f.name: f.spec["options"] for f in context["controls"]},
            "conditional": values.get("conditional") or {}}
    return _render(request, "studio_field.html", status=status,
                   mod=_site(request).registry.modules[module], info=info, new=info is None,
                   kind=values.get("type"), values=values, errors=errors or {},
                   problems=problems, formula_position=formula_position, field_data=data,
                   formula_mark=_mark(values.get("formula") or "", formula_position),
                   **context)


def _save_field(request: Request, module: str, form, info):
    user = request.state.user
    new = info is None
    ftype = str(form.get("type", "")) if new else info.type
    values = _field_values(form, ftype)
    name = values["name"].strip() if new else info.name
    values["name"] = name
    errors: dict = {}
    if new and ftype not in TYPE_NAMES:
        errors["type"] = Message(N_("Choose the data type."))
        return _field_page(request, module, values, info, status=422, errors=errors)
    if new and not name:
        errors["name"] = Message(REQUIRED)
    spec, spec_errors = _spec_from_form(request, module, form, ftype,
                                        {} if new else dict(info.spec), name)
    errors.update(spec_errors)
    if errors:
        return _field_page(request, module, values, info, status=422, errors=errors)
    if ftype == "calculated":  # the formula first: its problems come with their position
        found = _studio(request).check_formula(module, spec["formula"], exclude=name)
        if found:
            return _field_page(request, module, values, info, status=422,
                               errors={"formula": found[0].reason}, problems=found[1:],
                               formula_position=_position(found))
    try:
        change = _studio(request).save_field(user, module, name, spec, new=new)
    except StudioError as exc:
        inline, general = _sorted_problems(exc, FIELD_INPUTS)
        return _field_page(request, module, values, info, status=422, errors=inline,
                           problems=general, formula_position=_position(exc.problems)
                           if "formula" in inline else None)
    flash_change(request, Message(N_("Field %(name)s was saved."), name=name), change)
    return _redirect(f"/admin/studio/modules/{module}#fields")


@page()
def field_new(request: Request, form):
    _admin_only(request)
    module = _module_name(request)
    if form is None:
        chosen = request.query_params.get("type", "text")
        return _field_page(request, module, {"type": chosen if chosen in TYPE_NAMES else "text",
                                             "format": "text", "modules": [],
                                             "depends_values": [], "conditional": {}})
    return _save_field(request, module, form, None)


@page()
def field_edit(request: Request, form):
    _admin_only(request)
    module = _module_name(request)
    info = _field_info(request, module, request.path_params["field"])
    if form is None:
        return _field_page(request, module, _values_of(info), info)
    return _save_field(request, module, form, info)


@page()
def field_remove(request: Request, form):
    user = _admin_only(request)
    module = _module_name(request)
    info = _field_info(request, module, request.path_params["field"])
    purge = _checked(form, "purge")
    try:
        change = _studio(request).remove_field(user, module, info.name, purge=purge)
    except StudioError as exc:
        return _field_page(request, module, _values_of(info), info, status=422,
                           problems=exc.problems)
    flash_change(request, Message(N_("Field %(name)s was removed and its data deleted.")
                                   if purge else N_("Field %(name)s was removed; its data is "
                                                    "kept and it can be restored."),
                                   name=info.name), change)
    return _redirect(f"/admin/studio/modules/{module}#fields")


@page()
def formula_check(request: Request, form):
    """``{"ok": bool, "problems": [{"reason", "position"}]}`` for the formula in ``text``."""
    _admin_only(request)
    module = _module_name(request)
    text = request.query_params.get("text", "")
    own = request.query_params.get("field") or None  # a field may not use itself
    problems = [{"reason": p.reason, "position": p.position}
                for p in _studio(request).check_formula(module, text, exclude=own)]
    return JSONResponse({"ok": not problems, "problems": problems}, headers=NO_STORE)


# -- history, removed items ---------------------------------------------------------------

@page()
def history(request: Request, form):
    _admin_only(request)
    return _render(request, "studio_history.html",
                   rows=_studio(request).history(HISTORY_LIMIT), limit=HISTORY_LIMIT)


def _removed_page(request: Request, status: int = 200, problems=()):
    return _render(request, "studio_removed.html", status=status,
                   items=_studio(request).removed(), problems=problems)


@page()
def removed(request: Request, form):
    _admin_only(request)
    return _removed_page(request)


@page()
def restore(request: Request, form):
    user = _admin_only(request)
    wanted = request.path_params["id"]
    item = next((i for i in _studio(request).removed() if str(i.id) == wanted), None)
    if item is None:
        raise HTTPException(404, Message(N_("Nothing removed has that number.")))
    try:
        change = _studio(request).restore(user, item.id)
    except StudioError as exc:
        return _removed_page(request, status=422, problems=exc.problems)
    what = f"{item.module}.{item.name}" if item.kind == "field" else item.name
    flash_change(request, Message(N_("%(what)s was restored."), what=what), change)
    return _redirect("/admin/studio/removed")


# ``modules/new`` before ``modules/{module}``, ``fields/new`` before ``fields/{field}``
routes = [
    Route("/admin/studio", index),
    Route("/admin/studio/history", history),
    Route("/admin/studio/removed", removed),
    Route("/admin/studio/removed/{id}/restore", restore, methods=["POST"]),
    Route("/admin/studio/modules/new", module_new, methods=["GET", "POST"]),
    Route("/admin/studio/modules/{module}", designer),
    Route("/admin/studio/modules/{module}/settings", module_settings, methods=["POST"]),
    Route("/admin/studio/modules/{module}/remove", module_remove, methods=["POST"]),
    Route("/admin/studio/modules/{module}/relationships", relationship_add, methods=["POST"]),
    Route("/admin/studio/modules/{module}/relationships/{name}/remove", relationship_remove,
          methods=["POST"]),
    Route("/admin/studio/modules/{module}/subpanels", subpanels_save, methods=["POST"]),
    Route("/admin/studio/modules/{module}/filters", filters_save, methods=["POST"]),
    Route("/admin/studio/modules/{module}/formula", formula_check),
    Route("/admin/studio/modules/{module}/fields/new", field_new, methods=["GET", "POST"]),
    Route("/admin/studio/modules/{module}/fields/{field}", field_edit, methods=["GET", "POST"]),
    Route("/admin/studio/modules/{module}/fields/{field}/remove", field_remove,
          methods=["POST"]),
]
