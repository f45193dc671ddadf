"""The workflow editor in the browser (implementation guide §7.5.5, issue 18 item 6):
``/admin/workflows/<id>/rules`` edits a workflow's conditions and actions, and tests them
against a record.

**Contract.** The page carries everything the editor script needs as one JSON data block
(the trigger module's fields with their operator family and options, the operators per
family, the *when* options, group kinds, date periods and units, the action types of
``actions.action_types(site)`` with their ``Param``s, the choices those need, and every
word in the reader's language), so the script builds controls with ``textContent`` and
never turns user data into markup; the app's CSP (no inline script) holds. The script
writes the workflow's two JSON values into the save form. **Saving** (a form post with the
CSRF token, administrators only) checks both — the conditions with ``conditions.validate``
(``scan=True`` for a scheduled workflow), the actions against the registry (known type,
required params, choices, delay, and each type's ``check``) — and saves the record through
the record service only when there is no problem; otherwise the page comes back (400) with
each problem beside the condition or action its path names, the edits kept, nothing saved.
**Testing** posts the editor's current (unsaved) rules with a record of the trigger module
and optional previous values: the server runs ``Compiled.explain`` and shows which
conditions held and which actions would run, with their delays — it runs none of them.

The hooks (``crbm_web_routes``, ``crbm_record_actions``: an "Edit conditions and actions"
button on a workflow's detail page) are registered by the workflows plugin.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, ConflictError, CrbmError, Message, NotFoundError, ValidationError
from core.kernel.fields import FieldError
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash
from plugins.workflows import conditions as cond
from plugins.workflows import dates

log = logging.getLogger(__name__)

MODULE = "workflows"
URL = "/admin/workflows/{record_id}/rules"
MAX_POST = 200_000  # characters of JSON a save may carry (a tree of hundreds of filters)
DELAY_UNITS = {"minutes": N_("minutes"), "hours": N_("hours"), "days": N_("days"),
               "weeks": N_("weeks")}
MAX_DELAY = 10_000
CHOICES_KEPT = 500  # templates, workflows, teams offered in a dropdown
PREVIOUS_ROWS = 20

OPERATOR_LABELS = {
    "is": N_("Equals"), "is_not": N_("Not equal"), "contains": N_("Contains"),
    "not_contains": N_("Doesn't contain"), "starts_with": N_("Starts with"),
    "ends_with": N_("Ends with"), "empty": N_("Empty"), "not_empty": N_("Not empty"),
    "lt": N_("Less than"), "lte": N_("At most"), "gt": N_("More than"), "gte": N_("At least"),
    "between": N_("Between"), "any": N_("Any value"), "one_of": N_("Any of"),
    "none_of": N_("None of"), "all_of": N_("All of"), "checked": N_("Yes"),
    "not_checked": N_("No"),
}
DATE_OPERATOR_LABELS = {  # the guide's Figure 140
    "any": N_("Any date"), "empty": N_("Empty"), "not_empty": N_("Not empty"),
    "month": N_("Select month…"), "current": N_("Current…"), "before": N_("Before date…"),
    "after": N_("After date…"), "on": N_("On date…"), "between": N_("From date… to date…"),
    "within": N_("Within range…"),
}
POINT_LABELS = {"date": N_("Select date…"), "field": N_("Select date field…"),
                "today": N_("Today"), "start_of": N_("Start of…"), "end_of": N_("End of…"),
                "offset": N_("Custom offset…")}
DIRECTION_LABELS = {"range": N_("Range"), "next": N_("Next"), "previous": N_("Previous")}
UNIT_LABELS = {"days": N_("days"), "weeks": N_("weeks"), "months": N_("months"),
               "quarters": N_("quarters"), "years": N_("years"),
               "fiscal_quarters": N_("fiscal quarters"), "fiscal_years": N_("fiscal years")}
MONTHS = (N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"),
          N_("July"), N_("August"), N_("September"), N_("October"), N_("November"),
          N_("December"))
RECIPIENT_KINDS = {"assigned_user": N_("Assigned user"), "owner": N_("Record owner"),
                   "related_contact": N_("Related contact"), "address": N_("Email address")}

# the words the editor script shows, translated on the server (the script has no catalog)
SCRIPT_TEXT = {
    "addCondition": N_("Add condition"), "addGroup": N_("Add group"),
    "group": N_("Group:"), "field": N_("Field"), "when": N_("When"),
    "operator": N_("Filter"), "value": N_("Value"), "chooseField": N_("Choose a field…"),
    "remove": N_("Remove"), "moveUp": N_("Move up"), "moveDown": N_("Move down"),
    "indent": N_("Indent (into the group above)"), "outdent": N_("Outdent (out of its group)"),
    "drag": N_("Drag to move; drag right or left to indent or outdent"),
    "noConditions": N_("No conditions: the workflow runs for every record it is triggered by."),
    "emptyGroup": N_("This group has no conditions yet."),
    "from": N_("From"), "to": N_("To"), "and": N_("and"), "amount": N_("Amount"),
    "unit": N_("Unit"), "period": N_("Period"), "month": N_("Month"), "date": N_("Date"),
    "before": N_("before"), "after": N_("after"), "direction": N_("Direction"),
    "anchor": N_("Around"), "typeToSearch": N_("Type to search…"),
    "noActions": N_("No actions yet."), "addAction": N_("Add action"),
    "editAction": N_("Edit"), "actionType": N_("Action"), "chooseAction": N_("Choose an action…"),
    "atOnce": N_("At once"), "afterDelay": N_("After a delay"),
    "unique": N_("Unique (replaces a pending one of this workflow and record)"),
    "delayIs": N_("after {amount} {unit}"), "uniqueShort": N_("unique"),
    "apply": N_("Apply"), "cancel": N_("Cancel"), "required": N_("is required"),
    "addValue": N_("Add a value"), "addRecipient": N_("Add a recipient"),
    "kind": N_("Who"), "address": N_("Email address"), "contactField": N_("Contact field"),
    "none": N_("(none)"), "changed": N_("Unsaved changes"), "yes": N_("Yes"), "no": N_("No"),
    "conditionN": N_("condition {number}"), "groupN": N_("group {number}"),
    "actionN": N_("Action {number}"), "removeNamed": N_("Remove {name}"),
    "moved": N_("Moved."), "choose": N_("Choose…"),
}


# -- the registry of action types (the engine's ``actions`` module) ----------------------

def action_types(site) -> dict:
    """The engine's registry, ``actions.action_types(site)`` (imported when asked: the
    engine is a sibling module)."""
    from plugins.workflows import actions
    return actions.action_types(site)


# -- reading and checking what the editor posts -------------------------------------------

class Problems:
    """Problems of one save, each with where it is: ``("conditions", path)`` — the path of
    ``ConditionProblem`` — or ``("actions", (index,))``; ``()`` is the whole value."""

    def __init__(self):
        self.items: list[dict] = []

    def add(self, scope: str, path, text: str) -> None:
        self.items.append({"scope": scope, "path": list(path), "text": text})

    def __bool__(self) -> bool:
        return bool(self.items)


def _load_json(text: str, scope: str, problems: Problems, gettext, default):
    if len(text) > MAX_POST:
        problems.add(scope, (), gettext("%(what)s: too long (at most %(limit)s characters)")
                     % {"what": gettext(_SCOPE_WORDS[scope]), "limit": MAX_POST})
        return default, False
    if not text.strip():
        return default, True
    try:
        return json.loads(text), True
    except ValueError as exc:
        problems.add(scope, (), gettext("%(what)s: not valid JSON: %(error)s")
                     % {"what": gettext(_SCOPE_WORDS[scope]), "error": exc})
        return default, False


_SCOPE_WORDS = {"conditions": N_("Conditions"), "actions": N_("Actions")}


def _say(message, gettext) -> str:
    """A kernel ``Message`` (or plain text) in the reader's language."""
    if not isinstance(message, Message):
        return gettext(str(message))
    params = {k: _say(v, gettext) if isinstance(v, Message) else v
              for k, v in message.params.items()}
    return gettext(message.template) % params if params else gettext(message.template)


def _blank(value) -> bool:
    return value is None or value == "" or value == [] or value == {}


def check_actions(site, module: str, actions_value, gettext) -> list[tuple[tuple, str]]:
    """Every problem of an actions list as (path, text): not a list, an unknown type, a
    missing required param, a choice not offered, a bad delay, and what the type's own
    ``check`` says."""
    if actions_value is None:
        return []
    if not isinstance(actions_value, list):
        return [((), gettext("Actions: must be a list"))]
    registry = action_types(site)
    out = []
    for index, action in enumerate(actions_value):
        where = gettext("Action %(number)s") % {"number": index + 1}

        def say(text, *, _where=where, _index=index):
            out.append(((_index,), gettext("%(where)s: %(problem)s")
                        % {"where": _where, "problem": text}))
        if not isinstance(action, dict):
            say(gettext("must be an object with a \"type\""))
            continue
        kind = registry.get(action.get("type"))
        if kind is None:
            say(gettext("unknown action type %(type)s") % {"type": repr(action.get("type"))})
            continue
        params = {k: v for k, v in action.items() if k not in ("type", "delay", "unique")}
        known = {p.name for p in kind.params}
        extra = sorted(set(params) - known)
        if extra:
            say(gettext("unknown keys: %(keys)s") % {"keys": ", ".join(extra)})
        for param in kind.params:
            value = params.get(param.name)
            if param.required and _blank(value):
                say(gettext("%(param)s is required") % {"param": gettext(param.label)})
            elif param.kind == "choice" and not _blank(value) and \
                    str(value) not in {v for v, _ in param.choices}:
                say(gettext("%(value)s is not a choice of %(param)s")
                    % {"value": repr(value), "param": gettext(param.label)})
        delay = action.get("delay")
        if delay is not None:
            if not kind.can_delay:
                say(gettext("this action runs at once: it takes no delay"))
            elif not isinstance(delay, dict) or delay.get("unit") not in DELAY_UNITS or \
                    not isinstance(delay.get("amount"), int) or \
                    isinstance(delay.get("amount"), bool) or \
                    not 1 <= delay["amount"] <= MAX_DELAY:
                say(gettext("the delay must be a whole number from 1 to %(limit)s of "
                            "minutes, hours, days or weeks") % {"limit": MAX_DELAY})
        if not isinstance(action.get("unique", False), bool):
            say(gettext("\"unique\" must be true or false"))
        if kind.check is not None and not out:
            try:  # as the engine calls it: the module's definition and the whole action
                found = kind.check(site, site.registry.modules[module], action) or []
            except Exception as exc:  # a (plugin's) check that breaks: refuse the save,
                log.exception("workflow action check %s failed", kind.name)  # never a 500
                found = [str(exc) or type(exc).__name__]
            for text in found:
                say(_say(text, gettext))
    return out


def check_rules(site, record: dict, conditions_text: str, actions_text: str,
                gettext, *, for_test: bool = False) -> tuple[Any, Any, Problems]:
    """(conditions, actions, problems) of what the editor posted for ``record``; a
    scheduled workflow's conditions must also suit a scan, except ``for_test`` (one record)."""
    problems = Problems()
    conditions_value, ok = _load_json(conditions_text, "conditions", problems, gettext,
                                      {"group": "all_of", "conditions": []})
    module = record.get("trigger_module") or ""
    if ok:
        scan = record.get("trigger") == "scheduled" and not for_test
        for p in cond.validate(site, module, conditions_value, scan=scan):
            problems.add("conditions", p.path, p.text(gettext))
    actions_value, ok = _load_json(actions_text, "actions", problems, gettext, [])
    if ok and module in site.registry.modules:
        for path, text in check_actions(site, module, actions_value, gettext):
            problems.add("actions", path, text)
    return conditions_value, actions_value, problems


# -- the page ------------------------------------------------------------------------------

def _admin(request: Request):
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change workflows.")))
    if MODULE not in request.app.state.site.registry.modules:
        raise HTTPException(404, Message(N_("There is no such page.")))
    return user


def _workflow(request: Request, user) -> dict:
    try:
        return request.app.state.site.records.get(MODULE, request.path_params["record_id"], user)
    except NotFoundError:
        raise HTTPException(404, Message(N_("There is no such workflow."))) from None


def _parsed(text, default):
    if isinstance(text, dict | list):
        return text
    try:
        return json.loads(text) if text and text.strip() else default
    except ValueError:
        return default


@page()
def rules_page(request: Request, form):
    user = _admin(request)
    site = request.app.state.site
    record = _workflow(request, user)
    gettext = request.state.fmt.gettext
    if form is None:
        return _render(request, record, _parsed(record.get("conditions"), None),
                       _parsed(record.get("actions"), []))
    conditions_text = str(form.get("conditions") or "")
    actions_text = str(form.get("actions") or "")
    conditions_value, actions_value, problems = check_rules(site, record, conditions_text,
                                                            actions_text, gettext)
    if not problems:
        try:
            version = int(form.get("version") or record["version"])
        except ValueError:
            version = -1
        try:
            site.records.update(MODULE, record["id"], {
                "conditions": json.dumps(conditions_value, ensure_ascii=False),
                "actions": json.dumps(actions_value, ensure_ascii=False)},
                user, base={**record, "version": version})
        except ConflictError:
            problems.add("conditions", (), gettext(
                "Someone else changed this workflow since you opened it: reload the page "
                "(your changes are not saved)."))
        except (ValidationError, FieldError, CrbmError) as exc:  # the engine's own checks
            for field_name, text in getattr(exc, "errors", {"": str(exc)}).items():
                scope = "actions" if field_name == "actions" else "conditions"
                problems.add(scope, (), _say(text, gettext))
    if problems:
        return _render(request, record, conditions_value, actions_value, problems=problems,
                       status=400, raw=(conditions_text, actions_text))
    log.info("workflow %s: conditions and actions saved by %r", record["id"], user.username)
    flash(request, N_("The conditions and actions were saved."), "info")
    return RedirectResponse(request.url.path, 303)


@page()
def test_page(request: Request, form):
    """Runs the posted (unsaved) rules against a record: which conditions held, what
    would run. Changes nothing."""
    user = _admin(request)
    site = request.app.state.site
    record = _workflow(request, user)
    if form is None:
        return RedirectResponse(request.url.path.rsplit("/", 1)[0], 303)
    gettext = request.state.fmt.gettext
    conditions_text = str(form.get("conditions") or "")
    actions_text = str(form.get("actions") or "")
    conditions_value, actions_value, problems = check_rules(site, record, conditions_text,
                                                            actions_text, gettext, for_test=True)
    test = {"record_id": str(form.get("record_id") or ""), "new": bool(form.get("as_new")),
            "previous": list(zip(form.getlist("prev_field"), form.getlist("prev_value"),
                                 strict=False))[:PREVIOUS_ROWS]}
    result = None
    if not problems:
        result = _run_test(request, record, conditions_value, actions_value, test)
    return _render(request, record, conditions_value, actions_value, problems=problems,
                   status=200 if result and "error" not in result else 400,
                   raw=(conditions_text, actions_text), test=test, result=result)


def _run_test(request: Request, workflow: dict, conditions_value, actions_value, test) -> dict:
    site = request.app.state.site
    user = request.state.user
    gettext = request.state.fmt.gettext
    module_name = workflow.get("trigger_module") or ""
    module = site.registry.modules.get(module_name)
    if module is None or not test["record_id"]:
        return {"error": gettext("Choose a record to test with.")}
    try:
        record = site.records.get(module_name, test["record_id"], user)
    except (NotFoundError, ValidationError):
        return {"error": gettext("There is no such record in %(module)s.")
                % {"module": module.label}}
    previous = None if test["new"] else dict(record)
    bad = []
    for name, text in test["previous"]:
        f = module.fields.get(name)
        if not name:
            continue
        if f is None or cond.family(f) is None:
            bad.append(gettext("%(field)s: no such field") % {"field": name})
            continue
        if previous is None:
            previous = {}
        try:
            previous[name] = f.type.normalize(text if text != "" else None, f.spec)
        except FieldError as exc:
            bad.append(f"{f.label}: {_say(exc.message, gettext)}")
    if bad:
        return {"error": "; ".join(bad)}
    try:
        compiled = cond.compile_condition(site, module_name, conditions_value)
    except cond.ConditionError as exc:
        return {"error": "; ".join(p.text(gettext) for p in exc.problems)}
    tree = compiled.explain(record, previous, settings=dates.date_settings(site))
    describe = Describer(site, module, gettext)
    held = tree["held"]
    applies = workflow.get("applies_to") or "both"
    is_new = previous is None
    applies_ok = applies == "both" or (applies == "new") == is_new
    types = action_types(site)
    planned = []
    for action in actions_value or []:
        kind = types.get(action.get("type")) if isinstance(action, dict) else None
        delay = action.get("delay") if isinstance(action, dict) else None
        when = gettext("at once")
        if delay:
            when = gettext("after %(amount)s %(unit)s") % {
                "amount": delay["amount"], "unit": gettext(DELAY_UNITS[delay["unit"]])}
            if action.get("unique"):
                when += " · " + gettext("unique")
        planned.append({"label": gettext(kind.label) if kind else str(action.get("type")),
                        "when": when, "summary": describe.action(kind, action)})
    return {"tree": describe.tree(tree), "held": held, "applies_ok": applies_ok,
            "is_new": is_new, "runs": held and applies_ok, "actions": planned,
            "record_label": record.get(module.name_field) or record["id"],
            "record_url": f"/m/{module_name}/{record['id']}"}


class Describer:
    """Conditions and actions in words, for the test's green and red tree."""

    def __init__(self, site, module, gettext):
        self.site, self.module, self.gettext = site, module, gettext

    def tree(self, node: dict) -> dict:
        return {"held": node["held"], "kind": node["kind"], "text": self.node(node["spec"]),
                "children": [self.tree(c) for c in node["children"]]}

    def node(self, spec: dict) -> str:
        g = self.gettext
        if "group" in spec:
            return g(cond.GROUPS.get(spec["group"], spec["group"]))
        f = self.module.fields.get(spec.get("field"))
        label = f.label if f else str(spec.get("field"))
        when = spec.get("when", "current")
        parts = [label, g(cond.WHEN.get(when, when))]
        if when in cond.NO_OPERATOR:
            return " · ".join(parts)
        fam = cond.family(f) if f else None
        operator = spec.get("operator")
        labels = DATE_OPERATOR_LABELS if fam in ("date", "datetime") else OPERATOR_LABELS
        parts.append(g(labels.get(operator, str(operator))).rstrip("…"))
        value = self.value(f, fam, spec)
        if value:
            parts.append(value)
        return " · ".join(parts)

    def value(self, f, fam, spec) -> str:
        g = self.gettext
        operator = spec.get("operator")
        if fam in ("date", "datetime"):
            if operator == "month" and isinstance(spec.get("value"), int) and \
                    1 <= spec["value"] <= 12:
                return g(MONTHS[spec["value"] - 1])
            if operator == "current":
                return g(dates.PERIOD_LABELS.get(spec.get("period"), str(spec.get("period"))))
            if operator in ("before", "after", "on"):
                return self.point(spec.get("date"))
            if operator == "between":
                return f"{self.point(spec.get('from'))} → {self.point(spec.get('to'))}"
            if operator == "within":
                unit = g(UNIT_LABELS.get(spec.get("unit"), str(spec.get("unit"))))
                direction = g(DIRECTION_LABELS.get(spec.get("direction", "range"), ""))
                anchor = self.point(spec.get("anchor") or {"kind": "today"})
                return f"{direction} {spec.get('amount')} {unit} ({anchor})"
            return ""
        value = spec.get("value")
        if value is None or value == "":
            return ""
        values = value if isinstance(value, list) else [value]
        if fam in ("choice", "multi") and f is not None:
            labels = dict(self.site.registry.choices(f))
            values = [labels.get(v, v) for v in values]
        return ", ".join(str(v) for v in values)

    def point(self, spec) -> str:
        g = self.gettext
        if not isinstance(spec, dict):
            return "?"
        kind = spec.get("kind")
        if kind == "date":
            return str(spec.get("date"))
        if kind == "field":
            f = self.module.fields.get(spec.get("field"))
            return f.label if f else str(spec.get("field"))
        if kind == "today":
            return g("Today")
        if kind in ("start_of", "end_of"):
            side = g(POINT_LABELS[kind]).rstrip("…")
            return f"{side} {g(dates.PERIOD_LABELS.get(spec.get('period'), '?'))}"
        if kind == "offset":
            amount = spec.get("amount") or 0
            unit = g(UNIT_LABELS.get(spec.get("unit"), str(spec.get("unit"))))
            return f"{g('Today')} {amount:+d} {unit}"
        return "?"

    def label(self, name) -> str:
        f = self.module.fields.get(name) if isinstance(name, str) else None
        return f.label if f else (name or "")

    def action(self, kind, action: dict) -> str:
        if kind is None:
            return ""
        out = []
        for param in kind.params:
            value = action.get(param.name)
            if _blank(value):
                continue
            if isinstance(value, dict):
                value = ", ".join(f"{self.label(k)} = {v}" for k, v in value.items())
            elif isinstance(value, list):
                value = ", ".join(str(v.get("address") or self.label(v.get("field")) or
                                      self.gettext(RECIPIENT_KINDS.get(v.get("kind"), "?")))
                                  if isinstance(v, dict) else str(v) for v in value)
            out.append(f"{self.gettext(param.label)}: {value}")
        return " · ".join(out)


# -- what the page and its script get -------------------------------------------------------

def _field_data(site, module, gettext) -> list[dict]:
    out = []
    for f in module.fields.values():
        fam = cond.family(f)
        if fam is None or f.name in ("id", "deleted"):
            continue
        entry: dict[str, Any] = {"name": f.name, "label": f.label, "family": fam}
        if fam in ("choice", "multi"):
            entry["options"] = [list(pair) for pair in site.registry.choices(f)]
        if fam == "link":
            target = f.spec.get("module")
            entry["pick"] = "/users/pick" if f.type.name == "user" else \
                f"/m/{target}/pick" if target in site.registry.modules else None
        out.append(entry)
    out.sort(key=lambda e: e["label"].lower())
    return out


def _rows(site, module_name: str, user, name_field: str | None = None) -> list[list[str]]:
    if module_name not in site.registry.modules:
        return []
    module = site.registry.modules[module_name]
    name_field = name_field or module.name_field or "id"
    from core.kernel.records import Query
    try:
        rows = site.records.list(module_name, user, Query(fields=[name_field], limit=CHOICES_KEPT))
    except CrbmError:
        return []
    return sorted(([r["id"], str(r.get(name_field) or r["id"])] for r in rows),
                  key=lambda pair: pair[1].lower())


def _teams(site) -> list[list[str]]:
    teams = site.tables.tables["crbm_teams"]
    with site.engine.connect() as conn:
        return [[r.id, r.name] for r in conn.execute(
            sa.select(teams.c.id, teams.c.name).order_by(teams.c.name).limit(CHOICES_KEPT))]


def _user_labels(site, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return {r.id: r.display_name or r.username for r in conn.execute(
            sa.select(users.c.id, users.c.username, users.c.display_name)
            .where(users.c.id.in_(sorted(ids)[:200])))}


def _ids_in(value, out: set[str]) -> None:
    """Every string that may be a record or user id in the rules (to label pickers)."""
    if isinstance(value, dict):
        for v in value.values():
            _ids_in(v, out)
    elif isinstance(value, list):
        for v in value:
            _ids_in(v, out)
    elif isinstance(value, str) and 8 <= len(value) <= 36:
        out.add(value)


def _record_labels(site, module, conditions_value, user) -> dict[str, str]:
    """Labels of the records a link filter names (its picker shows the name, not the id)."""
    out = {}
    wanted: list[tuple[str, str]] = []

    def walk(node):
        if not isinstance(node, dict):
            return
        for child in node.get("conditions", []) if isinstance(node.get("conditions"), list) else []:
            walk(child)
        f = module.fields.get(node.get("field")) if isinstance(node.get("field"), str) else None
        if f is not None and cond.family(f) == "link" and f.spec.get("module"):
            values = node.get("value")
            for v in values if isinstance(values, list) else [values]:
                if isinstance(v, str) and v:
                    wanted.append((f.spec["module"], v))
    walk(conditions_value)
    for target, record_id in wanted[:50]:
        target_module = site.registry.modules.get(target)
        if target_module is None:
            continue
        try:
            found = site.records.get(target, record_id, user)
        except (NotFoundError, ValidationError):
            continue
        out[record_id] = str(found.get(target_module.name_field) or record_id)
    return out


def _script_data(request: Request, record: dict, conditions_value, actions_value,
                 problems: Problems | None) -> dict:
    site = request.app.state.site
    user = request.state.user
    g = request.state.fmt.gettext
    module = site.registry.modules.get(record.get("trigger_module") or "")
    fields = _field_data(site, module, g) if module else []
    types = action_types(site)
    kinds = {p.kind for t in types.values() for p in t.params}
    choices: dict[str, list] = {}
    if "module" in kinds:
        choices["module"] = sorted(([m.name, m.label] for m in site.registry.modules.values()),
                                   key=lambda pair: pair[1].lower())
    if "template" in kinds:
        choices["template"] = _rows(site, "email_templates", user)
    if "workflow" in kinds:
        choices["workflow"] = [r for r in _rows(site, MODULE, user) if r[0] != record["id"]]
    if "team" in kinds:
        choices["team"] = _teams(site)
    ids: set[str] = set()
    _ids_in(actions_value, ids)
    _ids_in(conditions_value, ids)
    labels = _user_labels(site, ids)
    if module:
        labels.update(_record_labels(site, module, conditions_value, user))
    return {
        "module": {"name": module.name, "label": module.label} if module else None,
        "fields": fields,
        "operators": {fam: [[op, g((DATE_OPERATOR_LABELS if fam in ("date", "datetime")
                                    else OPERATOR_LABELS)[op]), shape]
                            for op, shape in ops.items()]
                      for fam, ops in cond.OPERATORS.items()},
        "when": [[k, g(v)] for k, v in cond.WHEN.items()],
        "noOperator": sorted(cond.NO_OPERATOR),
        "groups": [[k, g(v)] for k, v in cond.GROUPS.items()],
        "periods": [[k, g(dates.PERIOD_LABELS[k])] for k in dates.PERIODS],
        "units": [[k, g(UNIT_LABELS[k])] for k in dates.UNITS],
        "points": [[k, g(POINT_LABELS[k])] for k in cond.POINT_KINDS],
        "directions": [[k, g(DIRECTION_LABELS[k])] for k in cond.DIRECTIONS],
        "months": [[i + 1, g(m)] for i, m in enumerate(MONTHS)],
        "delayUnits": [[k, g(v)] for k, v in DELAY_UNITS.items()],
        "recipientKinds": [[k, g(v)] for k, v in RECIPIENT_KINDS.items()],
        "actionTypes": [{"name": t.name, "label": g(t.label), "canDelay": t.can_delay,
                         "params": [{"name": p.name, "label": g(p.label), "kind": p.kind,
                                     "required": p.required,
                                     "choices": [[v, g(lbl)] for v, lbl in p.choices]}
                                    for p in t.params]}
                        for t in types.values()],
        "choices": choices,
        "labels": labels,
        "conditions": conditions_value if isinstance(conditions_value, dict) else
        {"group": "all_of", "conditions": []},
        "actions": actions_value if isinstance(actions_value, list) else [],
        "problems": problems.items if problems else [],
        "text": {k: g(v) for k, v in SCRIPT_TEXT.items()},
    }


def _render(request: Request, record: dict, conditions_value, actions_value, *,
            problems: Problems | None = None, status: int = 200, raw=None, test=None,
            result=None):
    site = request.app.state.site
    module = site.registry.modules.get(record.get("trigger_module") or "")
    data = _script_data(request, record, conditions_value, actions_value, problems)
    conditions_text, actions_text = raw or (
        json.dumps(data["conditions"], ensure_ascii=False, indent=1),
        json.dumps(data["actions"], ensure_ascii=False, indent=1))
    response = request.app.state.templates.render(
        request, "workflow_rules.html", status=status, workflow=record, trigger_module=module,
        data=data, conditions_text=conditions_text, actions_text=actions_text,
        problems=problems.items if problems else [], test=test or {"record_id": "", "new": False,
                                                                    "previous": []},
        result=result, shown=_shown(site, record),
        base_url=URL.format(record_id=record["id"]),
        previous_fields=[(f["name"], f["label"]) for f in data["fields"]])
    response.headers["Cache-Control"] = "no-store"
    return response


def _shown(site, record: dict) -> dict[str, str]:
    """The workflow's trigger and "applies to" as its dropdowns label them."""
    labels = site.registry.option_labels(MODULE)
    return {name: labels.get(name, {}).get(record.get(name), record.get(name) or "")
            for name in ("trigger", "applies_to")}


# -- hooks (registered by the workflows plugin) -------------------------------------------

routes = [Route(URL, rules_page, methods=["GET", "POST"]),
          Route(URL + "/test", test_page, methods=["GET", "POST"])]


@hookimpl
def crbm_web_routes(site):
    return routes


@hookimpl
@for_modules(MODULE)
def crbm_record_actions(site, module, record, user):
    if not user.is_admin:
        return []
    return [Action(N_("Edit conditions and actions"), URL.format(record_id=record["id"]),
                   primary=True)]
