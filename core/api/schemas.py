"""Records as JSON: the shape of every field, both ways, derived from the merged registry.

One place decides how a field looks in the API, and the OpenAPI document publishes exactly
what the endpoints check, so a client (or schemathesis) can trust the schema:

    text-like, dropdowns, ids    string (dropdowns: enum of the list's values on input)
    integer                      integer (64-bit)
    decimal, percentage,         string in plain decimal notation, no exponent, trailing
    currency                     zeros dropped ("1234.5"); input: that string or a number
    checkbox                     boolean
    date / datetime              "2024-03-01" / "2024-03-01T10:30:00Z" (UTC; input may
                                 carry any offset)
    multiselect                  array of strings
    related, user                the other record's id; with ``labels=1`` its name in
                                 ``_labels`` (only if the caller may see that record)

Input is validated against the module's JSON Schema before the record service sees it:
unknown and read-only fields (a document number too, unless the module's sequence is
``manual``), wrong JSON types, strings too long for their column and numbers too large
for theirs are refused with the field named, nothing written. File and image fields are
read-only through the API (v1 has no uploads).

Schemas and validators are built once per registry (the Studio or a pack installs a new
registry object, and the cache follows).
"""
from __future__ import annotations

import datetime as dt
import threading
import weakref
from decimal import Decimal

import jsonschema

from core.kernel.registry import FieldDef, ModuleDef, Registry

INT64 = 2**63 - 1
TEXT_LIMIT = 16_383  # text without max_size: what MariaDB's TEXT holds in 4-byte characters
DATE_PATTERN = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
DATETIME_PATTERN = (r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?"
                    r"(Z|[+-][0-9]{2}:[0-9]{2})?$")
HIDDEN = frozenset({"deleted"})  # never shown: every record the API returns is live


# -- what kind of JSON value a field holds ---------------------------------------------------

def kind_of(registry: Registry, module: ModuleDef, f: FieldDef, depth: int = 0) -> str:
    """string, integer, decimal, boolean, date, datetime, list or any (the type's
    ``value_kind``; a related value has the kind of the field it shows)."""
    source = f.type.source(registry, module, f) if not f.stored else None
    if source is not None:  # the kind of the field it shows, in the other module
        return kind_of(registry, *source, depth + 1) if depth < 3 else "string"
    if not f.stored and f.type.derived:
        return "string"
    return f.type.value_kind(f.spec)


def decimal_text(value) -> str | None:
    """1234.500000 -> "1234.5": plain notation whatever the column's scale."""
    if value is None:
        return None
    if isinstance(value, float):
        value = Decimal(repr(value))
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def _datetime_text(value) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None and value.tzinfo is not dt.UTC:  # stored ones are UTC
        value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat() + "Z"


def _any(value):
    if isinstance(value, Decimal | float):
        return decimal_text(value)
    if isinstance(value, dt.datetime):
        return _datetime_text(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if value is None or isinstance(value, str | int | bool | list | dict):
        return value
    return str(value)


CONVERT = {
    "string": lambda v: v,
    "integer": lambda v: None if v is None else int(v),
    "decimal": decimal_text,
    "boolean": lambda v: None if v is None else bool(v),
    "date": lambda v: None if v is None else
    (v.date() if isinstance(v, dt.datetime) else v).isoformat(),
    "datetime": _datetime_text,
    "list": lambda v: list(v) if v else [],
    "any": _any,
}


def to_json(value):
    """Any value a handler returns (an action's result) as JSON-ready data."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return _any(value)


# -- per-module shapes, cached per registry ----------------------------------------------------

class Shapes:
    """What one module looks like through the API."""

    def __init__(self, registry: Registry, module: ModuleDef):
        self.module = module
        self.kinds = {n: kind_of(registry, module, f) for n, f in module.fields.items() if n not in HIDDEN}
        self.readable = list(self.kinds)
        numbered = _numbered(module)
        self.writable = [n for n, f in module.fields.items() if _writable(f) and n != numbered]
        self.converters = {n: CONVERT[k] for n, k in self.kinds.items()}
        self._plans: dict[tuple, list] = {}
        self.labelled = [n for n, f in module.fields.items()
                         if f.type.is_link and "modules" not in f.spec]
        self.record = record_schema(registry, module, self.kinds)
        self.create = input_schema(registry, module, self.writable, self.kinds, new=True)
        self.update = input_schema(registry, module, self.writable, self.kinds, new=False)
        self.validators = {
            "create": jsonschema.Draft202012Validator(self.create),
            "update": jsonschema.Draft202012Validator(self.update),
        }
        for feature, _options in registry.features_of(module):  # PUT .../<feature> bodies
            schema = feature.api_input_schema()
            if schema is not None:
                self.validators[feature.name] = jsonschema.Draft202012Validator(schema)

    def record_json(self, row: dict, fields=None) -> dict:
        """A record row (as the record service reads it) as the API shows it."""
        return self.records_json([row], fields)[0]

    def records_json(self, rows: list[dict], fields=None) -> list[dict]:
        """``record_json`` of rows read together (the same keys in each): the converters
        and the labels read are found once, not once a row."""
        if not rows:
            return []
        names, converted = self._plan(tuple(fields or self.readable))
        labels = [(name, f"{name}__label") for name in self.labelled
                  if f"{name}__label" in rows[0]]
        as_read = list(rows[0]) == names  # the row holds these fields, in this order
        data = []
        for row in rows:
            out = row.copy() if as_read else dict(zip(names, map(row.get, names)))
            for name, convert in converted:  # then the values that are not JSON as read
                out[name] = convert(out[name])
            if labels:
                out["_labels"] = {name: row[key] for name, key in labels}
            data.append(out)
        return data

    def _plan(self, fields: tuple) -> tuple[list, list]:
        """The fields of this selection in order, and (field, converter) of those whose
        value is not JSON as read: a list page converts 50 rows of the same fields, and
        its clients ask for the same few selections, so work it out once."""
        plan = self._plans.get(fields)
        if plan is None:
            names = [n for n in fields if n in self.converters]
            plan = names, [(n, self.converters[n]) for n in names if self.kinds[n] != "string"]
            if len(self._plans) < 64:
                self._plans[fields] = plan
        return plan

    def input_errors(self, body, which: str) -> dict[str, str]:
        """field -> message for everything in ``body`` the schema refuses."""
        errors: dict[str, str] = {}
        for error in self.validators[which].iter_errors(body):
            errors.update(describe(error, self.module))
        return errors


def _writable(f: FieldDef) -> bool:
    return ((not f.system or f.name == "assigned_user_id")
            and f.type.writable(f.spec) and f.type.api_writes
            and "computed_by" not in f.spec and not f.spec.get("read_only"))


def _numbered(module: ModuleDef) -> str | None:
    """The field only the module's sequence writes (None when writers may number)."""
    sequence = module.features.get("sequence") or {}
    return None if sequence.get("manual") else sequence.get("field")


# registry id -> (the registry, its modules' shapes); a registry is replaced, never changed
_cache: dict[int, tuple[weakref.ref, dict[str, Shapes]]] = {}
_lock = threading.Lock()


def shapes(registry: Registry, module: ModuleDef) -> Shapes:
    entry = _cache.get(id(registry))
    if entry is None or entry[0]() is not registry:
        with _lock:
            for key in [k for k, (ref, _) in _cache.items() if ref() is None]:
                del _cache[key]  # registries that are gone
            entry = _cache[id(registry)] = (weakref.ref(registry), {})
    by_module = entry[1]
    found = by_module.get(module.name)
    if found is None or found.module is not module:
        found = by_module[module.name] = Shapes(registry, module)
    return found


# -- JSON Schemas ------------------------------------------------------------------------------

def value_schema(registry: Registry, f: FieldDef, kind: str, *, for_input: bool) -> dict:
    """The JSON Schema of one field's value (null allowed: blank): the type's own
    (``FieldType.json_schema``), else the one of its kind."""
    spec = f.spec
    schema: dict | None = f.type.json_schema(f, registry, for_input=for_input)
    if schema is not None:
        pass
    elif kind == "string":
        schema = {"type": ["string", "null"]}
        if for_input:
            limit = spec.get("max_size", f.type.default_size) or TEXT_LIMIT
            schema["maxLength"] = min(limit, TEXT_LIMIT)
    elif kind == "integer":
        schema = {"type": ["integer", "null"],
                  "minimum": max(spec.get("min", -INT64 - 1), -INT64 - 1),
                  "maximum": min(spec.get("max", INT64), INT64)}
        if not for_input:
            schema = {"type": ["integer", "null"]}
    elif kind == "decimal":
        precision, scale = f.type.digits(spec)
        digits = max(precision - scale, 1)
        if for_input:
            bound = 10 ** digits
            schema = {"type": ["string", "number", "null"],
                      "pattern": rf"^-?[0-9]{{1,{digits}}}(\.[0-9]{{1,{max(scale, 1) + 6}}})?$",
                      "exclusiveMinimum": -bound, "exclusiveMaximum": bound,
                      "description": "a decimal number, as a string (exact) or a JSON number"}
        else:
            schema = {"type": ["string", "null"], "pattern": r"^-?[0-9]+(\.[0-9]+)?$",
                      "description": "a decimal number as a string (exact)"}
    elif kind == "boolean":
        schema = {"type": ["boolean", "null"]}
    elif kind == "date":
        schema = {"type": ["string", "null"], "format": "date", "pattern": DATE_PATTERN}
    elif kind == "datetime":
        schema = {"type": ["string", "null"], "format": "date-time",
                  "pattern": DATETIME_PATTERN}
    elif kind == "list":
        item = {"type": "string"}
        if for_input and "options" in spec:
            item = {"enum": [o["value"] for o in registry.dropdowns.get(spec["options"], [])]}
        schema = {"type": ["array", "null"], "items": item, "maxItems": 200}
        if not for_input:
            schema = {"type": "array", "items": {"type": "string"}}
    else:
        schema = {}
    schema = dict(schema)
    schema["title"] = str(f.label)
    return schema


def record_schema(registry: Registry, module: ModuleDef, kinds: dict[str, str]) -> dict:
    properties = {n: value_schema(registry, module.fields[n], k, for_input=False)
                  for n, k in kinds.items()}
    properties["id"] = {"type": "string", "title": "ID"}
    properties["_labels"] = {
        "type": "object", "additionalProperties": {"type": ["string", "null"]},
        "description": "names of the related records and users (with labels=1)"}
    return {"type": "object", "title": str(module.label_singular), "properties": properties,
            "required": ["id"]}


def input_schema(registry: Registry, module: ModuleDef, writable: list[str],
                 kinds: dict[str, str], *, new: bool) -> dict:
    properties = {n: value_schema(registry, module.fields[n], kinds[n], for_input=True)
                  for n in writable}
    if module.features.get("team_owned"):
        properties["teams"] = {"type": "array", "items": {"type": "string", "maxLength": 36},
                               "maxItems": 100, "uniqueItems": True,
                               "description": "ids of the teams the record belongs to"}
    for feature, _options in registry.features_of(module):  # e.g. the lines
        schema = feature.api_value_schema()
        if schema is not None:
            properties[feature.name] = schema
    required = []
    if new:
        required = [n for n in writable if module.fields[n].required
                    and "default" not in module.fields[n].spec
                    and "depends_on" not in module.fields[n].spec]
    else:
        properties["version"] = {"type": "integer", "minimum": 1, "maximum": INT64,
                                 "description": "the version you read (like If-Match)"}
    schema = {"type": "object", "additionalProperties": False, "properties": properties}
    if required:
        schema["required"] = required
    return schema


# -- validation errors as field -> message -----------------------------------------------------

def describe(error: jsonschema.ValidationError, module: ModuleDef | None = None) -> dict:
    """One jsonschema error as {field path: a short message} (never the whole value)."""
    path = ".".join(str(p) for p in error.absolute_path)
    v = error.validator
    if v == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = sorted(set(error.instance) - allowed) if isinstance(error.instance, dict) else []
        out = {}
        for key in extra:
            where = f"{path}.{key}" if path else str(key)
            known = module is not None and not path and key in module.fields
            out[where[:200]] = "is read-only" if known else "no such field"
        return out
    if v == "required":
        missing = error.message.split("'")[1] if "'" in error.message else ""
        return {f"{path}.{missing}" if path else missing: "is required"}
    messages = {
        "type": lambda: "must be " + " or ".join(
            _TYPE_WORDS.get(t, t) for t in _as_list(error.validator_value)),
        "enum": lambda: "must be one of: " + _short(", ".join(
            "null" if x is None else str(x) for x in error.validator_value)),
        "maxLength": lambda: f"is longer than {error.validator_value} characters",
        "maxItems": lambda: f"has more than {error.validator_value} items",
        "pattern": lambda: "is not in the expected format",
        "minimum": lambda: f"must be at least {error.validator_value}",
        "maximum": lambda: f"must be at most {error.validator_value}",
        "exclusiveMinimum": lambda: f"must be more than {error.validator_value}",
        "exclusiveMaximum": lambda: f"must be less than {error.validator_value}",
        "uniqueItems": lambda: "has the same item twice",
    }
    message = messages[v]() if v in messages else _short(error.message)
    return {path or "body": message}


_TYPE_WORDS = {"string": "a string", "integer": "an integer", "number": "a number",
               "boolean": "true or false", "null": "null", "array": "an array",
               "object": "an object"}


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def _short(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "…"
