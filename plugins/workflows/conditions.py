"""Workflow conditions (implementation guide §7.5.5): one JSON tree, checked against the
module it is about, evaluated in memory on a save and compiled to SQL for a scan.

**The shape** (what a workflow stores, what the editor writes)::

    {"group": "all_of",                          # all_of | any_of | none_of | not_all_of
     "conditions": [                             # filters and groups, nested to any depth
        {"field": "temperature", "when": "changed_to", "operator": "is", "value": "hot"},
        {"group": "any_of", "conditions": [
            {"field": "amount", "when": "current", "operator": "gte", "value": "1000"},
            {"field": "close_on", "when": "current", "operator": "within",
             "anchor": {"kind": "today"}, "amount": 2, "unit": "weeks", "direction": "next"}]}]}

``when`` is one of the guide's five: ``changed_to`` (value changed to), ``current`` (check
current value), ``previous`` (check previous value), ``changed`` (value is changed),
``unchanged`` (value is unchanged); the last two take no operator. The operators depend on
the field's type family (``OPERATORS``; a plugin's field type joins the family its
``json_kind``, ``has_options`` and ``is_link`` say): text, number, choice (dropdown,
status), multi (multiselect), boolean, link (related, user), date and datetime. The date
operators and their points are those of ``dates.py``'s docstring and §7.5.5's date filters.

**Empty values** mean the same on both paths: a negative operator (``is_not``,
``not_contains``, ``none_of``, ``not_checked``) holds for an empty value ("status is not
Closed" includes records without a status, as a list filter does), every other comparison
(equality, order, ranges, text matches, date filters) never holds for one, ``any`` always
holds, and ``empty`` / ``not_empty`` say what they say (a text of only "" is empty). In SQL
every filter is two-valued (a NULL column never makes a group's NOT unknown). Text
comparisons ignore case: Python's ``str.lower`` in memory, the database's ``lower()`` in SQL
— the same for ASCII letters everywhere and for all letters on PostgreSQL and MariaDB
(compared in a binary collation, so accents count); SQLite's ``lower()`` folds ASCII only,
so there a scan compares "É" and "é" as different letters.

**A new record** has no previous values: ``previous`` sees every field empty, a value
that is not empty has ``changed`` (so "value changed to Hot" holds for a lead created hot).

**Three entry points.** ``validate(site, module, condition, scan=False)`` lists every
problem with where it is ("Group 2 › condition 3: field 'temperature' no longer exists in
Leads"); the engine refuses to save a workflow that has any. ``compile_condition`` turns a
valid condition into a ``Compiled`` (closures made once, cached by the condition's JSON and
the registry it was checked against, so a save pays only the calls): ``evaluate``,
``explain`` (which parts held, for "test this workflow against a record") and ``to_sql``
(current values only: ``validate(..., scan=True)`` says what a scan cannot do). A condition
whose field has since vanished fails ``compile_condition`` with ``ConditionError`` naming
it, never an exception from inside a save.
"""
from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from core.kernel.errors import N_, CrbmError, Message
from core.kernel.fields import FieldError, like_escape
from plugins.workflows import dates
from plugins.workflows.dates import DateSettings

GROUPS = {"all_of": N_("All of"), "any_of": N_("Any of"), "none_of": N_("None of"),
          "not_all_of": N_("Not all of")}
WHEN = {"changed_to": N_("Value changed to"), "current": N_("Check current value"),
        "previous": N_("Check previous value"), "changed": N_("Value is changed"),
        "unchanged": N_("Value is unchanged")}
NO_OPERATOR = frozenset({"changed", "unchanged"})
SCANNABLE_WHEN = frozenset({"current"})  # a scan sees what is stored now, nothing before

# operator -> what its value is: None (no value), "one", "many" (a non-empty list),
# "range" ([low, high]), "date" (see _date_spec)
DATE_OPERATORS = {"any": None, "empty": None, "not_empty": None, "month": "date",
                  "current": "date", "before": "date", "after": "date", "on": "date",
                  "between": "date", "within": "date"}
OPERATORS: dict[str, dict[str, str | None]] = {
    "text": {"is": "one", "is_not": "one", "contains": "one", "not_contains": "one",
             "starts_with": "one", "ends_with": "one", "empty": None, "not_empty": None},
    "number": {"is": "one", "is_not": "one", "lt": "one", "lte": "one", "gt": "one",
               "gte": "one", "between": "range", "empty": None, "not_empty": None},
    "choice": {"any": None, "is": "one", "is_not": "one", "one_of": "many", "none_of": "many",
               "empty": None, "not_empty": None},
    # a multiselect "is" one value when it includes it
    "multi": {"any": None, "is": "one", "is_not": "one", "one_of": "many", "all_of": "many",
              "none_of": "many", "empty": None, "not_empty": None},
    "boolean": {"checked": None, "not_checked": None},
    "link": {"is": "one", "is_not": "one", "one_of": "many", "none_of": "many",
             "empty": None, "not_empty": None},
    "date": DATE_OPERATORS,
    "datetime": DATE_OPERATORS,
}
FAMILY_LABELS = {"text": N_("a text"), "number": N_("a number"), "choice": N_("a dropdown"),
                 "multi": N_("a multi-select"), "boolean": N_("a checkbox"),
                 "link": N_("a link to a record"), "date": N_("a date"),
                 "datetime": N_("a date and time")}
POINT_KINDS = ("date", "field", "today", "start_of", "end_of", "offset")
DIRECTIONS = ("range", "next", "previous")
MAX_DEPTH = 20  # groups inside groups
MAX_AMOUNT = 1000  # units an offset may move (years of 1000 stay within the calendar)
FILTER_KEYS = frozenset({"field", "when", "operator", "value", "period", "date", "from", "to",
                         "anchor", "amount", "unit", "direction"})


def family(f) -> str | None:
    """The operator family of field ``f`` (a ``FieldDef``), None when conditions cannot
    test it (not stored: read from another record)."""
    kind_ = f.type.value_kind(f.spec)
    if not f.type.stored:
        return None
    if f.type.is_link:
        return "link"
    if kind_ == "list":
        return "multi"
    if f.type.has_options or f.type.name == "parent_type":
        return "choice"
    if kind_ == "boolean":
        return "boolean"
    if kind_ in ("integer", "decimal"):
        return "number"
    if kind_ in ("date", "datetime"):
        return kind_
    return "text"


# -- problems --------------------------------------------------------------------------------

@dataclass(frozen=True)
class ConditionProblem:
    """One thing wrong with a condition: where (positions from the root, 0-based, and as
    words: "group 2 › condition 3") and what."""

    path: tuple[int, ...]
    where: tuple[Message, ...]
    message: Message

    def text(self, gettext: Callable[[str], str] = str) -> str:
        """The problem as one line, in the language ``gettext`` speaks."""
        def say(message: Message) -> str:  # its Message parameters said first
            params = {k: say(v) if isinstance(v, Message) else v
                      for k, v in message.params.items()}
            translated = gettext(message.template)
            return translated % params if params else translated
        place = " › ".join(say(w) for w in self.where) if self.where else say(_CONDITIONS)
        return say(Message(N_("%(where)s: %(problem)s"), where=place[:1].upper() + place[1:],
                           problem=say(self.message)))

    def __str__(self) -> str:
        return self.text()


_CONDITIONS = Message(N_("conditions"))


class ConditionError(CrbmError):
    """A condition that cannot be used as it is (``problems`` says each thing and where)."""

    def __init__(self, problems: list[ConditionProblem]):
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems))


# -- the clock a date filter reads ------------------------------------------------------------

class Clock:
    """One reading of the time for one evaluation: ``now`` (aware; the current time when
    None), the site's ``DateSettings`` and time zone; today and period bounds computed at
    most once. The engine may make one and pass it to ``Compiled.test`` for every workflow
    of a save."""

    __slots__ = ("_now", "_periods", "_today", "settings", "tz")

    def __init__(self, now: dt.datetime | None = None, tz: ZoneInfo | str | None = None,
                 settings: DateSettings | None = None):
        self.settings = settings or DateSettings()
        if tz is None:
            tz = self.settings.tz
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        if now is not None and now.tzinfo is None:
            raise ValueError("now must be an aware datetime")
        self._now, self._today, self._periods = now, None, None

    @property
    def now(self) -> dt.datetime:
        if self._now is None:
            self._now = dt.datetime.now(dt.UTC)
        return self._now

    @property
    def today(self) -> dt.date:
        if self._today is None:
            self._today = self.now.astimezone(self.tz).date()
        return self._today

    def period(self, name: str) -> tuple[dt.date, dt.date]:
        if self._periods is None:
            self._periods = {}
        if name not in self._periods:
            self._periods[name] = dates.period(name, self.today, self.settings)
        return self._periods[name]

    def start(self, day: dt.date) -> dt.datetime:
        """The instant ``day`` starts at in the site's time zone."""
        return dates.day_start(day, self.tz)


# -- validating and compiling -----------------------------------------------------------------

Test = Callable[[Mapping, Mapping | None, Clock], bool]
EMPTY: Mapping = {}


@dataclass
class Node:
    """A compiled group or filter: its place, how it reads, and its test."""

    kind: str  # "group" or "filter"
    path: tuple[int, ...]
    where: tuple[Message, ...]
    spec: dict
    test: Test
    children: list[Node] = field(default_factory=list)
    sql: Callable[[sa.Table, Clock], Any] | None = None  # None: not scannable


@dataclass
class Compiled:
    """A checked condition on ``module``, ready to run many times."""

    module: str
    root: Node
    scan_problems: list[ConditionProblem]

    def test(self, record: Mapping, previous: Mapping | None, clock: Clock) -> bool:
        """Whether the condition holds (the fast path: a clock the caller made)."""
        return self.root.test(record, previous, clock)

    def evaluate(self, record: Mapping, previous: Mapping | None = None, *,
                 now: dt.datetime | None = None, tz: ZoneInfo | str | None = None,
                 settings: DateSettings | None = None) -> bool:
        """Whether the condition holds for ``record`` (its values as the record service
        returns them); ``previous`` is the record before the save, None for a new one."""
        return self.root.test(record, previous, Clock(now, tz, settings))

    def explain(self, record: Mapping, previous: Mapping | None = None, *,
                now: dt.datetime | None = None, tz: ZoneInfo | str | None = None,
                settings: DateSettings | None = None) -> dict:
        """Every group and filter with whether it held, as a tree: ``{"held", "where",
        "spec", "children"}`` (``where`` the words of ``ConditionProblem``)."""
        clock = Clock(now, tz, settings)

        def walk(node: Node) -> dict:
            return {"held": node.test(record, previous, clock), "kind": node.kind,
                    "where": " › ".join(node.where), "path": list(node.path),
                    "spec": node.spec, "children": [walk(c) for c in node.children]}
        return walk(self.root)

    def to_sql(self, table: sa.Table, *, now: dt.datetime | None = None,
               tz: ZoneInfo | str | None = None, settings: DateSettings | None = None):
        """The condition on current values as a SQL boolean over ``table``'s columns
        (``ConditionError`` when it tests something only a save can tell)."""
        if self.scan_problems:
            raise ConditionError(self.scan_problems)
        return self.root.sql(table, Clock(now, tz, settings))


def _registry(site_or_registry):
    return getattr(site_or_registry, "registry", site_or_registry)


def _parse(condition) -> tuple[Any, str | None]:
    if isinstance(condition, str | bytes):
        try:
            return json.loads(condition), None
        except ValueError as exc:
            return None, str(exc)
    return condition, None


def validate(site, module: str, condition, *, scan: bool = False) -> list[ConditionProblem]:
    """Every problem of ``condition`` (a dict, or its JSON) on ``module`` of ``site`` (or a
    registry); with ``scan``, also what keeps it from running as a scan over stored records.
    An empty list: it can be saved."""
    builder = _Builder(_registry(site), module)
    builder.build(condition)
    return builder.problems + (builder.scan_problems if scan else [])


# compiled conditions per registry (by its id, holding it so the id stays its own): a new
# registry — a Studio change, a plugin turned off — starts afresh, and the few kept bound
# the memory old ones hold
_CACHE: dict[int, tuple[Any, dict[tuple[str, str], Compiled]]] = {}
_REGISTRIES_KEPT = 4
_ENTRIES_PER_REGISTRY = 4096


def compile_condition(site, module: str, condition) -> Compiled:
    """``condition`` (a dict, or its JSON text: pass the stored text, it is the cache key)
    made ready to run on ``module``; kept per registry, so a Studio change that removes a
    field is seen at the next call. ``ConditionError`` when it is not valid (any more)."""
    registry = _registry(site)
    text = condition if isinstance(condition, str) else \
        json.dumps(condition, sort_keys=True, default=str)
    kept = _CACHE.get(id(registry))
    if kept is None or kept[0] is not registry:
        while len(_CACHE) >= _REGISTRIES_KEPT:
            _CACHE.pop(next(iter(_CACHE)))
        kept = _CACHE[id(registry)] = (registry, {})
    entries = kept[1]
    compiled = entries.get((module, text))
    if compiled is not None:
        return compiled
    builder = _Builder(registry, module)
    compiled = builder.build(condition)
    if builder.problems:
        raise ConditionError(builder.problems)
    if len(entries) >= _ENTRIES_PER_REGISTRY:
        entries.clear()
    entries[(module, text)] = compiled
    return compiled


def _ordinal_where(parent: tuple[Message, ...], index: int, is_group: bool) -> tuple[Message, ...]:
    word = Message(N_("group %(number)s"), number=index + 1) if is_group else \
        Message(N_("condition %(number)s"), number=index + 1)
    return (*parent, word)


class _Builder:
    """Walks a condition once: collects problems and makes the tests and SQL builders."""

    def __init__(self, registry, module: str):
        self.registry = registry
        self.module_name = module
        self.module = registry.modules.get(module)
        self.problems: list[ConditionProblem] = []
        self.scan_problems: list[ConditionProblem] = []

    def problem(self, node_path, where, template: str, scan: bool = False, **params) -> None:
        entry = ConditionProblem(tuple(node_path), tuple(where), Message(template, **params))
        (self.scan_problems if scan else self.problems).append(entry)

    def build(self, condition) -> Compiled | None:
        condition, error = _parse(condition)
        if error is not None:
            self.problem((), (), N_("not valid JSON: %(error)s"), error=error)
            return None
        if self.module is None:
            self.problem((), (), N_("module %(module)s does not exist"),
                         module=repr(self.module_name))
            return None
        if condition is None or condition == {}:
            condition = {"group": "all_of", "conditions": []}
        if not isinstance(condition, dict) or "group" not in condition:
            self.problem((), (), N_("must be a group: {\"group\": \"all_of\", \"conditions\": [...]}"))
            return None
        root = self.node(condition, (), (), depth=0)
        return Compiled(self.module_name, root, self.scan_problems)

    def node(self, spec, path, where, depth: int) -> Node:
        if isinstance(spec, dict) and "group" in spec:
            return self.group(spec, path, where, depth)
        if isinstance(spec, dict) and "field" in spec:
            return self.filter(spec, path, where)
        self.problem(path, where, N_("must be a filter (with a \"field\") or a group "
                                     "(with a \"group\")"))
        return _never(path, where, spec)

    # -- groups ---------------------------------------------------------------------------

    def group(self, spec, path, where, depth) -> Node:
        kind_ = spec.get("group")
        children_spec = spec.get("conditions", [])
        broken = False
        if kind_ not in GROUPS:
            self.problem(path, where, N_("unknown group %(group)s: use one of %(choices)s"),
                         group=repr(kind_), choices=", ".join(GROUPS))
            broken = True
        extra = sorted(set(spec) - {"group", "conditions"})
        if extra:
            self.problem(path, where, N_("unknown keys: %(keys)s"), keys=", ".join(extra))
        if not isinstance(children_spec, list):
            self.problem(path, where, N_("\"conditions\" must be a list"))
            return _never(path, where, spec)
        if depth >= MAX_DEPTH:
            self.problem(path, where, N_("groups are nested more than %(limit)s deep"),
                         limit=MAX_DEPTH)
            return _never(path, where, spec)
        if path and not children_spec:
            self.problem(path, where, N_("the group has no conditions"))
        children = [self.node(child, (*path, i),
                              _ordinal_where(where, i, isinstance(child, dict) and "group" in child),
                              depth + 1)
                    for i, child in enumerate(children_spec)]
        if broken:
            return _never(path, where, spec)
        tests = tuple(c.test for c in children)
        sqls = [c.sql for c in children]
        return Node("group", path, where, spec, _group_test(kind_, tests), children,
                    _group_sql(kind_, sqls) if all(s is not None for s in sqls) else None)

    # -- filters --------------------------------------------------------------------------

    def filter(self, spec, path, where) -> Node:
        name, when = spec.get("field"), spec.get("when", "current")
        extra = sorted(set(spec) - FILTER_KEYS)
        if extra:
            self.problem(path, where, N_("unknown keys: %(keys)s"), keys=", ".join(extra))
        f = self.module.fields.get(name) if isinstance(name, str) else None
        if f is None:
            self.problem(path, where, N_("field %(field)s no longer exists in %(module)s"),
                         field=repr(name), module=self.module.label)
            return _never(path, where, spec)
        fam = family(f)
        if fam is None:
            self.problem(path, where, N_("%(field)s is shown from another record: conditions "
                                         "cannot test it"), field=f.label)
            return _never(path, where, spec)
        if when not in WHEN:
            self.problem(path, where, N_("unknown \"when\" %(when)s: use one of %(choices)s"),
                         when=repr(when), choices=", ".join(WHEN))
            return _never(path, where, spec)
        if when not in SCANNABLE_WHEN:
            self.problem(path, where, N_("\"%(when)s\" needs the value before a save: a "
                                         "scheduled scan sees only current values"),
                         scan=True, when=Message(WHEN[when]))
        if when in NO_OPERATOR:
            if spec.get("operator") is not None:
                self.problem(path, where, N_("\"%(when)s\" takes no operator"),
                             when=Message(WHEN[when]))
            value_test = None
            value_sql = None
        else:
            made = self.value_test(f, fam, spec, path, where)
            if made is None:
                return _never(path, where, spec)
            value_test, value_sql = made
        return Node("filter", path, where, spec, _when_test(f.name, when, value_test), [],
                    (lambda table, clock: value_sql(table, clock)) if when == "current"
                    and value_sql is not None else None)

    def value_test(self, f, fam, spec, path, where):
        """(test(value, record, clock), sql(table, clock)) for the operator, or None."""
        operator = spec.get("operator")
        allowed = OPERATORS[fam]
        if operator not in allowed:
            self.problem(path, where, N_("%(operator)s is not an operator for %(field)s "
                                         "(%(kind)s): use one of %(choices)s"),
                         operator=repr(operator), field=f.label, kind=Message(FAMILY_LABELS[fam]),
                         choices=", ".join(allowed))
            return None
        shape = allowed[operator]
        if shape is None and "value" in spec and spec["value"] not in (None, "", []):
            self.problem(path, where, N_("%(operator)s takes no value"), operator=repr(operator))
            return None
        if fam in ("date", "datetime"):
            return self.date_test(f, fam, operator, spec, path, where)
        value = spec.get("value")
        try:
            value = self.typed(f, fam, shape, value)
        except FieldError as exc:
            self.problem(path, where, N_("the value for %(field)s: %(reason)s"), field=f.label,
                         reason=exc.message)
            return None
        return _VALUE_TESTS[fam](f.name, operator, value)

    def typed(self, f, fam, shape, value):
        """The filter's value as the field stores it (FieldError naming what is wrong)."""
        if shape is None:
            return None
        if shape in ("many", "range"):
            if not isinstance(value, list) or not value:
                raise FieldError(Message(N_("give a list of values")))
            if shape == "range" and len(value) != 2:
                raise FieldError(Message(N_("give two values: from and to")))
            items = [self.one(f, fam, v) for v in value]
            if shape == "range" and items[0] > items[1]:
                raise FieldError(Message(N_("the range starts after it ends")))
            return items
        return self.one(f, fam, value)

    def one(self, f, fam, value):
        if value is None or isinstance(value, list | dict) or (isinstance(value, str)
                                                               and not value.strip()):
            raise FieldError(Message(N_("a value is needed (use \"empty\" for none)")))
        if fam == "text":
            if not isinstance(value, str | int | float | Decimal) or isinstance(value, bool):
                raise FieldError(Message(N_("%(value)s is not a text"), value=repr(value)))
            return str(value)
        if fam == "number":
            spec = {k: v for k, v in f.spec.items() if k not in ("min", "max")}
            return f.type.normalize(value, spec)
        if fam in ("choice", "multi"):
            options = self.options(f)
            if not isinstance(value, str) or (options is not None and value not in options):
                raise FieldError(Message(N_("%(value)s is not an option of %(field)s"),
                                         value=repr(value), field=f.label))
            return value
        if fam == "link":
            if not isinstance(value, str) or len(value) > 36:
                raise FieldError(Message(N_("%(value)s is not a record id"), value=repr(value)))
            return value
        raise FieldError(Message(N_("%(value)s cannot be compared"), value=repr(value)))

    def options(self, f) -> frozenset[str] | None:
        if f.type.name == "parent_type":
            return frozenset(f.spec.get("allowed", ()))
        dom = f.spec.get("options")
        return self.registry.option_values(dom) if dom in self.registry.dropdowns else None

    # -- date filters ---------------------------------------------------------------------

    def date_test(self, f, fam, operator, spec, path, where):
        is_datetime = fam == "datetime"
        name = f.name
        if operator in ("any", "empty", "not_empty"):  # a date column is NULL or a date
            return _VALUE_TESTS["number" if operator != "any" else "choice"](name, operator,
                                                                            None)
        if operator == "month":
            month = spec.get("value")
            if not isinstance(month, int) or isinstance(month, bool) or not 1 <= month <= 12:
                self.problem(path, where, N_("give a month from 1 to 12"))
                return None
            if is_datetime:
                self.problem(path, where, N_("\"select month\" on %(field)s, a date and time, "
                                             "works on saves only: a scan cannot tell the "
                                             "month in the site's time zone"),
                             scan=True, field=f.label)
            return _month_test(name, month, is_datetime)
        if operator == "current":
            period = spec.get("period")
            if period not in dates.PERIODS:
                self.problem(path, where, N_("unknown period %(period)s: use one of %(choices)s"),
                             period=repr(period), choices=", ".join(dates.PERIODS))
                return None
            low = _Point(fixed=lambda clock, p=period: clock.period(p)[0])
            high = _Point(fixed=lambda clock, p=period: clock.period(p)[1])
            return _range_test(name, is_datetime, low, high)
        if operator in ("before", "after", "on"):
            point = self.point(f, spec.get("date"), path, where, N_("date"))
            if point is None:
                return None
            if operator == "before":
                return _range_test(name, is_datetime, None, point.moved(0, -1))
            if operator == "after":
                return _range_test(name, is_datetime, point.moved(0, 1), None)
            return _range_test(name, is_datetime, point, point)
        if operator == "between":
            low = self.point(f, spec.get("from"), path, where, N_("from"))
            high = self.point(f, spec.get("to"), path, where, N_("to"))
            if low is None or high is None:
                return None
            return _range_test(name, is_datetime, low, high)
        # within a range around a point (today unless an anchor is given)
        anchor = self.point(f, spec.get("anchor") or {"kind": "today"}, path, where,
                            N_("anchor"))
        amount, unit, direction = spec.get("amount"), spec.get("unit"), \
            spec.get("direction", "range")
        ok = anchor is not None
        if not _whole(amount) or not 0 <= amount <= MAX_AMOUNT:
            self.problem(path, where, N_("the amount must be a whole number from 0 to %(limit)s"),
                         limit=MAX_AMOUNT)
            ok = False
        if unit not in dates.UNITS:
            self.problem(path, where, N_("unknown unit %(unit)s: use one of %(choices)s"),
                         unit=repr(unit), choices=", ".join(dates.UNITS))
            ok = False
        if direction not in DIRECTIONS:
            self.problem(path, where, N_("unknown direction %(direction)s: use one of "
                                         "%(choices)s"),
                         direction=repr(direction), choices=", ".join(DIRECTIONS))
            ok = False
        if not ok:
            return None
        months, days = dates.UNITS[unit]
        before = anchor.moved(-amount * months, -amount * days)
        after = anchor.moved(amount * months, amount * days)
        low = anchor if direction == "next" else before
        high = anchor if direction == "previous" else after
        return _range_test(name, is_datetime, low, high)

    def point(self, f, spec, path, where, role: str):
        """A ``_Point`` from its JSON (``POINT_KINDS``), or None after saying why."""
        def bad(template, **params):
            self.problem(path, where, N_("%(role)s: %(problem)s"), role=Message(role),
                         problem=Message(template, **params))
        if not isinstance(spec, dict) or spec.get("kind") not in POINT_KINDS:
            bad(N_("give a date point whose \"kind\" is one of %(choices)s"),
                choices=", ".join(POINT_KINDS))
            return None
        kind_ = spec["kind"]
        if kind_ == "date":
            try:
                day = dt.date.fromisoformat(str(spec.get("date")))
            except ValueError:
                bad(N_("%(value)s is not a date (YYYY-MM-DD)"), value=repr(spec.get("date")))
                return None
            return _Point(fixed=lambda clock, d=day: d)
        if kind_ == "today":
            return _Point(fixed=lambda clock: clock.today)
        if kind_ in ("start_of", "end_of"):
            period = spec.get("period")
            if period not in dates.PERIODS:
                bad(N_("unknown period %(period)s: use one of %(choices)s"),
                    period=repr(period), choices=", ".join(dates.PERIODS))
                return None
            side = 0 if kind_ == "start_of" else 1
            return _Point(fixed=lambda clock, p=period, s=side: clock.period(p)[s])
        if kind_ == "offset":
            amount, unit = spec.get("amount"), spec.get("unit")
            if not _whole(amount) or abs(amount) > MAX_AMOUNT or unit not in dates.UNITS:
                bad(N_("an offset needs a whole \"amount\" (at most %(limit)s either way) and "
                       "a \"unit\" among %(choices)s"),
                    limit=MAX_AMOUNT, choices=", ".join(dates.UNITS))
                return None
            return _Point(fixed=lambda clock, a=amount, u=unit: dates.shift(clock.today, a, u))
        other = self.module.fields.get(spec.get("field")) if isinstance(spec.get("field"), str) \
            else None
        if other is None:
            bad(N_("field %(field)s no longer exists in %(module)s"),
                field=repr(spec.get("field")), module=self.module.label)
            return None
        if family(f) != "date" or family(other) != "date":
            bad(N_("comparing with another field works between date fields only "
                   "(%(field)s and %(other)s)"), field=f.label, other=other.label)
            return None
        return _Point(field=other.name)


def _whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _never(path, where, spec) -> Node:
    return Node("filter" if "field" in (spec if isinstance(spec, dict) else {}) else "group",
                path, where, spec if isinstance(spec, dict) else {}, lambda r, p, c: False,
                [], lambda table, clock: sa.false())


# -- tests and SQL, made once per condition ---------------------------------------------------

def _group_test(kind_: str, tests: tuple) -> Test:
    if kind_ == "all_of":
        if len(tests) == 1:
            return tests[0]

        def all_of(record, previous, clock):
            for test in tests:
                if not test(record, previous, clock):
                    return False
            return True
        return all_of

    def any_held(record, previous, clock):
        for test in tests:
            if test(record, previous, clock):
                return True
        return False

    def all_held(record, previous, clock):
        for test in tests:
            if not test(record, previous, clock):
                return False
        return True

    return {"any_of": any_held,
            "none_of": lambda r, p, c: not any_held(r, p, c),
            "not_all_of": lambda r, p, c: not all_held(r, p, c)}[kind_]


def _group_sql(kind_: str, sqls: list):
    def build(table, clock):
        parts = [s(table, clock) for s in sqls]
        if kind_ in ("all_of", "not_all_of"):
            clause = sa.and_(*parts) if parts else sa.true()
        else:
            clause = sa.or_(*parts) if parts else sa.false()
        return sa.not_(clause) if kind_ in ("none_of", "not_all_of") else clause
    return build


def _blank(value) -> bool:
    return value is None or value == "" or value == []


def _comparable(value):
    """A value as a change is judged: blank is None, a multiselect an unordered set."""
    if _blank(value):
        return None
    return frozenset(value) if isinstance(value, list) else value


def _when_test(name: str, when: str, value_test) -> Test:
    if when == "current":
        return lambda record, previous, clock: value_test(record.get(name), record, clock)
    if when == "previous":
        def previous_value(record, previous, clock):
            before = previous if previous is not None else EMPTY
            return value_test(before.get(name), before, clock)
        return previous_value

    def changed(record, previous):
        old = previous.get(name) if previous is not None else None
        new = record.get(name)
        return new != old and _comparable(new) != _comparable(old)

    if when == "changed":
        return lambda record, previous, clock: changed(record, previous)
    if when == "unchanged":
        return lambda record, previous, clock: not changed(record, previous)
    return lambda record, previous, clock: changed(record, previous) and \
        value_test(record.get(name), record, clock)


class _TextMatch(sa.sql.functions.FunctionElement):
    """A text column matching a pattern regardless of case, as ``str.lower`` folds it:
    ``lower(column) LIKE pattern`` (a pattern without wildcards is an equality); on MariaDB
    in a binary collation (its default ones would also take "é" for "e"); on SQLite, whose
    ``lower()`` folds only ASCII, as a GLOB whose other letters are classes of both cases
    (``[éÉ]``). Clauses: the column, the LIKE pattern, the GLOB pattern."""

    type = sa.Boolean()
    inherit_cache = True
    name = "crbm_text_match"


def _text_match(column, text: str, head: bool, tail: bool) -> _TextMatch:
    """``column`` holds ``text`` (lower case) anywhere, at its start, at its end, or whole:
    ``head``/``tail`` say whether anything may come before/after it."""
    like = ("%" if head else "") + like_escape(text) + ("%" if tail else "")
    glob = "".join("[*]" if c == "*" else "[?]" if c == "?" else "[[]" if c == "[" else
                   f"[{c}{c.upper()}]" if not c.isascii() and len(c.upper()) == 1
                   and c.upper() != c else c for c in text)
    glob = ("*" if head else "") + glob + ("*" if tail else "")
    return _TextMatch(column, sa.literal(like, sa.Text), sa.literal(glob, sa.Text))


@compiles(_TextMatch)
def _text_match_default(element, compiler, **kw):
    column, like, _ = element.clauses
    return compiler.process(sa.func.lower(column).like(like, escape="\\"), **kw)


@compiles(_TextMatch, "mysql")
@compiles(_TextMatch, "mariadb")
def _text_match_mysql(element, compiler, **kw):
    column, like, _ = element.clauses
    return compiler.process(sa.func.lower(column).collate("utf8mb4_bin").like(like, escape="\\"),
                            **kw)


@compiles(_TextMatch, "sqlite")
def _text_match_sqlite(element, compiler, **kw):
    column, _, glob = element.clauses
    return compiler.process(sa.func.lower(column).op("GLOB")(glob), **kw)


def _text_tests(name, operator, value):
    if operator in ("empty", "not_empty"):
        want = operator == "empty"
        return (lambda v, r, c: _blank(v) == want,
                lambda t, c: (sa.or_(t.c[name].is_(None), t.c[name] == "") if want
                              else sa.and_(t.c[name].is_not(None), t.c[name] != "")))
    low = value.lower()
    head, tail = {"is": (False, False), "is_not": (False, False), "contains": (True, True),
                  "not_contains": (True, True), "starts_with": (False, True),
                  "ends_with": (True, False)}[operator]
    match = {"is": lambda text: text == low, "is_not": lambda text: text == low,
             "contains": lambda text: low in text, "not_contains": lambda text: low in text,
             "starts_with": lambda text: text.startswith(low),
             "ends_with": lambda text: text.endswith(low)}[operator]
    negative = operator in ("is_not", "not_contains")

    def test(v, record, clock):
        if _blank(v):
            return negative
        return match(str(v).lower()) != negative

    def sql(t, clock):
        column = t.c[name]
        found = _text_match(column, low, head, tail)
        if negative:
            return sa.or_(column.is_(None), column == "", sa.not_(found))
        return sa.and_(column.is_not(None), column != "", found)
    return test, sql


def _number_tests(name, operator, value):
    if operator in ("empty", "not_empty"):
        want = operator == "empty"
        return (lambda v, r, c: (v is None) == want,
                lambda t, c: t.c[name].is_(None) if want else t.c[name].is_not(None))
    if operator == "is_not":
        return (lambda v, r, c: v is None or v != value,
                lambda t, c: sa.or_(t.c[name].is_(None), t.c[name] != value))
    if operator == "between":
        low, high = value
        return (lambda v, r, c: v is not None and low <= v <= high,
                lambda t, c: sa.and_(t.c[name].is_not(None), t.c[name] >= low,
                                     t.c[name] <= high))
    compare = {"is": lambda v: v == value, "lt": lambda v: v < value,
               "lte": lambda v: v <= value, "gt": lambda v: v > value,
               "gte": lambda v: v >= value}[operator]
    column_compare = {"is": lambda c: c == value, "lt": lambda c: c < value,
                      "lte": lambda c: c <= value, "gt": lambda c: c > value,
                      "gte": lambda c: c >= value}[operator]
    return (lambda v, r, c: v is not None and compare(v),
            lambda t, c: sa.and_(t.c[name].is_not(None), column_compare(t.c[name])))


def _choice_tests(name, operator, value):
    """Dropdowns, statuses and links: a stored value compared with given ones."""
    if operator == "any":
        return lambda v, r, c: True, lambda t, c: sa.true()
    if operator in ("empty", "not_empty"):
        want = operator == "empty"
        return (lambda v, r, c: _blank(v) == want,
                lambda t, c: (sa.or_(t.c[name].is_(None), t.c[name] == "") if want
                              else sa.and_(t.c[name].is_not(None), t.c[name] != "")))
    values = frozenset([value] if operator in ("is", "is_not") else value)
    listed = list(values)
    if operator in ("is", "one_of"):
        return (lambda v, r, c: v in values,
                lambda t, c: sa.and_(t.c[name].is_not(None), t.c[name].in_(listed)))
    return (lambda v, r, c: v is None or v not in values,
            lambda t, c: sa.or_(t.c[name].is_(None), t.c[name].not_in(listed)))


def _multi_tests(name, operator, value):
    """A multiselect's values (a list; stored ``^a^,^b^``, so LIKE finds one anywhere)."""
    if operator == "any":
        return lambda v, r, c: True, lambda t, c: sa.true()
    if operator in ("empty", "not_empty"):
        want = operator == "empty"
        return (lambda v, r, c: _blank(v) == want,
                lambda t, c: (sa.or_(t.c[name].is_(None), sa.type_coerce(t.c[name], sa.Text) == "")
                              if want else sa.and_(t.c[name].is_not(None),
                                                   sa.type_coerce(t.c[name], sa.Text) != "")))
    wanted = [value] if operator in ("is", "is_not") else list(value)
    every = operator == "all_of"
    negative = operator in ("is_not", "none_of")

    def test(v, record, clock):
        held = set(v or ())
        found = all(w in held for w in wanted) if every else any(w in held for w in wanted)
        return found != negative

    def sql(t, clock):
        text = sa.type_coerce(t.c[name], sa.Text)
        likes = [text.like(f"%^{like_escape(w)}^%", escape="\\") for w in wanted]
        found = sa.and_(t.c[name].is_not(None), sa.and_(*likes) if every else sa.or_(*likes))
        return sa.not_(found) if negative else found
    return test, sql


def _boolean_tests(name, operator, value):
    if operator == "checked":
        return lambda v, r, c: v is True, lambda t, c: t.c[name].is_(True)
    return lambda v, r, c: v is not True, lambda t, c: t.c[name].is_not(True)


_VALUE_TESTS = {"text": _text_tests, "number": _number_tests, "choice": _choice_tests,
                "link": _choice_tests, "multi": _multi_tests, "boolean": _boolean_tests}


class _Point:
    """A day a date filter compares with: fixed for a clock reading (a date, today, the
    start or end of a period, an offset from today), or another date field of the record;
    ``moved`` by months then days."""

    __slots__ = ("days", "field", "fixed", "months")

    def __init__(self, fixed=None, field=None, months=0, days=0):
        self.fixed, self.field, self.months, self.days = fixed, field, months, days

    def moved(self, months: int, days: int) -> _Point:
        return _Point(self.fixed, self.field, self.months + months, self.days + days)

    def _shift(self, day: dt.date | None) -> dt.date | None:
        if day is None:
            return None
        try:
            if self.months:
                day = dates.add_months(day, self.months)
            return day + dt.timedelta(days=self.days) if self.days else day
        except (ValueError, OverflowError):  # past year 9999 or before year 1
            return None

    def day(self, record: Mapping, clock: Clock) -> dt.date | None:
        base = record.get(self.field) if self.field else self.fixed(clock)
        if isinstance(base, dt.datetime):  # not allowed by validation; tolerated
            base = dates.local_day(base, clock.tz)
        return self._shift(base)

    def sql(self, table: sa.Table, clock: Clock):
        """A date value, or for a field point an expression (None: out of the calendar)."""
        if self.field is None:
            return self._shift(self.fixed(clock))
        column = table.c[self.field]
        return dates.DateShift(column, self.months, self.days) if self.months or self.days \
            else column


def _range_test(name: str, is_datetime: bool, low: _Point | None, high: _Point | None):
    """The value's day lies from ``low`` to ``high`` (inclusive; None: open). A date is
    compared as it is, a date and time by the instants its site-time-zone days start at."""

    def test(v, record, clock):
        if v is None:
            return False
        bounds = []
        for point in (low, high):
            if point is None:
                bounds.append(None)
                continue
            day = point.day(record, clock)
            if day is None:
                return False
            bounds.append(day)
        first, last = bounds
        if is_datetime:
            if v.tzinfo is None:
                v = v.replace(tzinfo=dt.UTC)
            if first is not None and v < clock.start(first):
                return False
            if last is not None:
                try:
                    end = clock.start(last + dt.timedelta(days=1))
                except OverflowError:
                    return True
                return v < end
            return True
        if isinstance(v, dt.datetime):
            v = v.date()
        return (first is None or v >= first) and (last is None or v <= last)

    def sql(t, clock):
        column = t.c[name]
        parts = [column.is_not(None)]
        for point, is_low in ((low, True), (high, False)):
            if point is None:
                continue
            bound = point.sql(t, clock)
            if bound is None:
                return sa.false()
            if point.field is not None:
                parts.append(t.c[point.field].is_not(None))
            if is_datetime:
                if is_low:
                    parts.append(column >= clock.start(bound))
                else:
                    try:
                        parts.append(column < clock.start(bound + dt.timedelta(days=1)))
                    except OverflowError:
                        pass
            else:
                parts.append(column >= bound if is_low else column <= bound)
        return sa.and_(*parts)
    return test, sql


def _month_test(name: str, month: int, is_datetime: bool):
    def test(v, record, clock):
        if v is None:
            return False
        if is_datetime:
            return dates.local_day(v, clock.tz).month == month
        return v.month == month

    def sql(t, clock):  # dates only (a date and time's month is refused for scans)
        column = t.c[name]
        return sa.and_(column.is_not(None), sa.extract("month", column) == month)
    return test, sql
