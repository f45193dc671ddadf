"""List parameters of the REST API -> a record-service ``Query``, strictly.

    fields=a,b   sort=-name,created_at   q=text   limit=1..200 (20)   labels=1
    page=N  or  cursor=<opaque>          filter[field]=v   filter[field][op]=v

Anything else — an unknown parameter, field or operator, a value that is not of the
field's type, a parameter given twice — is a 400 problem naming the parameter. Values
only ever reach the database as bind parameters (the record service builds the SQL from
the registry's column objects; a parameter can only pick among them).

Cursors are keyset pagination: the sort fields' values and the id of the last row, so a
page stays put while records are added before it. They are opaque to clients (base64url
JSON) and checked like any input when they come back.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from urllib.parse import urlencode

from core.api.problems import ApiProblem
from core.api.schemas import HIDDEN, INT64, Shapes
from core.kernel.fields import UTC, FieldError
from core.kernel.records import OPERATORS, Query
from core.kernel.registry import ModuleDef

LIST_PARAMS = frozenset({"fields", "sort", "q", "limit", "page", "cursor", "labels", "count"})
FILTER_KEY = re.compile(r"^filter\[([a-z][a-z0-9_]{0,62})\](?:\[([a-z_]{1,20})\])?$")
NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
NUMBER = re.compile(r"^-?[0-9]{1,40}(\.[0-9]{1,40})?$")
DEFAULT_LIMIT, MAX_LIMIT, MAX_PAGE, MAX_IN = 20, 200, 100_000, 500
TRUE, FALSE = frozenset({"1", "true"}), frozenset({"0", "false"})


@dataclass
class ListRequest:
    query: Query
    limit: int
    page: int | None  # page mode; None: cursor mode
    shown: list[str]  # the fields each record shows
    sort_keys: list[tuple[str, bool]] = field(default_factory=list)
    # meta.total wanted: always in page mode (pages need it), on request with cursors —
    # counting is most of what a list of a big module costs
    count: bool = False


def parse(params, module: ModuleDef, shapes: Shapes, records) -> ListRequest:
    """``params``: the request's query parameters (a multi-dict)."""
    errors: dict[str, str] = {}
    seen: set[str] = set()
    filters = []
    for key, value in params.multi_items():
        if "\x00" in key or "\x00" in value:
            raise ApiProblem(400, "Query parameters may not contain NUL characters.")
        if key in seen:
            errors[key[:100]] = "is given more than once"
            continue
        seen.add(key)
        if key in LIST_PARAMS:
            continue
        match = FILTER_KEY.match(key)
        if not match:
            errors[key[:100]] = "is not a parameter of this list"
            continue
        name, op = match.group(1), match.group(2) or "eq"
        f = module.fields.get(name)
        if f is None or not f.stored or name in HIDDEN:
            errors[key] = f"{module.label} has no field {name!r} to filter on"
        elif op not in OPERATORS:
            errors[key] = f"unknown operator {op!r}; use one of {', '.join(OPERATORS)}"
        elif op not in f.type.filter_operators:
            errors[key] = (f"{op!r} is not an operator of {name!r}; use one of "
                           f"{', '.join(o for o in OPERATORS if o in f.type.filter_operators)}")
        else:
            try:
                filters.append((name, op, filter_value(f, shapes.kinds[name], op, value)))
            except FieldError as exc:
                errors[key] = str(exc.message)
    shown = _fields(params.get("fields"), shapes, errors)
    sort = params.get("sort")
    keys = _sort(sort, module, errors)
    limit = _integer(params.get("limit"), "limit", 1, MAX_LIMIT, DEFAULT_LIMIT, errors)
    page = _integer(params.get("page"), "page", 1, MAX_PAGE, None, errors)
    labels = params.get("labels", "0").lower()
    if labels not in TRUE | FALSE:
        errors["labels"] = "must be true or false (1 or 0)"
    count = params.get("count", "0").lower()
    if count not in TRUE | FALSE:
        errors["count"] = "must be true or false (1 or 0)"
    search = params.get("q")
    if search is not None and len(search) > 200:
        errors["q"] = "is longer than 200 characters"
    after = None
    if "cursor" in params:
        if page is not None:
            errors["cursor"] = "give a cursor or a page, not both"
        else:
            after = decode_cursor(params["cursor"], module, shapes, keys, errors)
    if errors:
        raise ApiProblem(400, "Some query parameters are invalid.", errors=errors)
    selected = list(dict.fromkeys([*shown, *(name for name, _ in keys)]))
    query = Query(filters=filters, search=(search or "").strip() or None,
                  sort=",".join(("-" if d else "") + n for n, d in keys) or None,
                  limit=limit + 1, offset=((page or 1) - 1) * limit, fields=selected,
                  labels=labels in TRUE, after=after)
    if not keys:  # the module's default order: the cursor needs its fields too
        keys = records.sort_keys(module, None)
        query.fields = list(dict.fromkeys([*selected, *(n for n, _ in keys)]))
    return ListRequest(query, limit, page, shown, keys,
                       count=page is not None or count in TRUE)


def _fields(text: str | None, shapes: Shapes, errors: dict) -> list[str]:
    if text is None:
        return list(shapes.readable)
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in shapes.kinds]
    if unknown or not names:
        errors["fields"] = f"no field {unknown[0][:60]!r}" if unknown else "name some fields"
    return list(dict.fromkeys(["id", *names]))


def _sort(text: str | None, module: ModuleDef, errors: dict) -> list[tuple[str, bool]]:
    if text is None:
        return []
    keys = []
    for key in text.split(","):
        key = key.strip()
        name = key.removeprefix("-")
        f = module.fields.get(name) if NAME.match(name) else None
        if f is None or not f.stored or name in HIDDEN:
            errors["sort"] = f"{module.label} has no field {name[:60]!r} to sort by"
            return []
        keys.append((name, key.startswith("-")))
    if len(keys) > 5:
        errors["sort"] = "at most 5 sort keys"
    return keys


def _integer(text, name: str, low: int, high: int, default, errors: dict):
    if text is None:
        return default
    if not text.isdigit() or not low <= int(text) <= high:
        errors[name] = f"must be a whole number from {low} to {high:,}"
        return default
    return int(text)


# -- values ----------------------------------------------------------------------------------

def filter_value(f, kind: str, op: str, text: str):
    """A filter's text as the field's value (FieldError: not one)."""
    if op in ("empty", "not_empty"):
        if text.lower() not in TRUE | {""}:
            raise FieldError(f"{op} takes no value (or true)")
        return None
    if op in ("starts", "contains"):
        if len(text) > 255:
            raise FieldError("is longer than 255 characters")
        return text
    if op == "in":
        values = text.split(",")
        if len(values) > MAX_IN:
            raise FieldError(f"at most {MAX_IN} values")
        return [value_of(f, kind, v) for v in values]
    return value_of(f, kind, text)


def value_of(f, kind: str, text: str):
    """One value, typed by the field's JSON kind; bounded so no database refuses it."""
    text = text.strip()
    if kind == "integer":
        if not re.fullmatch(r"-?[0-9]{1,19}", text) or not -INT64 - 1 <= int(text) <= INT64:
            raise FieldError(f"{text[:40]!r} is not a whole number")
        return int(text)
    if kind == "decimal":
        digits = (f.spec.get("precision", getattr(f.type, "precision", 18))
                  - f.spec.get("scale", getattr(f.type, "scale", 4)))
        try:
            number = Decimal(text) if NUMBER.match(text) else None
        except InvalidOperation:
            number = None
        if number is None or abs(number) >= Decimal(10) ** max(digits, 1):
            raise FieldError(f"{text[:40]!r} is not a number this field holds")
        return number
    if kind == "boolean":
        if text.lower() not in TRUE | FALSE:
            raise FieldError("must be true or false")
        return text.lower() in TRUE
    if kind == "date":
        try:
            return dt.date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) \
                else _bad_date(text)
        except ValueError:
            return _bad_date(text)
    if kind == "datetime":
        try:
            value = dt.datetime.fromisoformat(text)  # 3.11 reads a trailing Z
        except ValueError:
            raise FieldError(f"{text[:40]!r} is not a date and time (ISO 8601)") from None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if len(text) > 1000:
        raise FieldError("is longer than 1000 characters")
    return text


def _bad_date(text: str):
    raise FieldError(f"{text[:40]!r} is not a date (YYYY-MM-DD)")


# -- cursors ---------------------------------------------------------------------------------

def encode_cursor(row: dict, keys: list[tuple[str, bool]], shapes: Shapes) -> str:
    sort = ",".join(("-" if d else "") + n for n, d in keys)
    values = [shapes.converters[n](row.get(n)) for n, _ in keys]
    raw = json.dumps({"s": sort, "v": values, "id": row["id"]}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(text: str, module: ModuleDef, shapes: Shapes,
                  keys: list[tuple[str, bool]], errors: dict) -> dict | None:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        data = json.loads(raw)
        sort = ",".join(("-" if d else "") + n for n, d in keys)
        if not isinstance(data, dict) or data.get("s") != sort or \
                not isinstance(data.get("v"), list) or len(data["v"]) != len(keys) or \
                not isinstance(data.get("id"), str) or len(data["id"]) > 36:
            raise ValueError
        after = {"id": data["id"]}
        for (name, _), value in zip(keys, data["v"]):
            kind = shapes.kinds[name]
            if value is None:
                after[name] = None
            elif kind == "list":
                after[name] = [str(v) for v in value] if isinstance(value, list) else \
                    _invalid()
            else:
                after[name] = value_of(module.fields[name], kind,
                                       json.dumps(value) if isinstance(value, bool) else str(value))
        return after
    except (ValueError, TypeError, binascii.Error, FieldError, UnicodeDecodeError):
        errors["cursor"] = "is not a cursor of this list (with this sort)"
        return None


def _invalid():
    raise ValueError("invalid")


def link(request, **changes) -> str:
    """This request's URL with some parameters changed (None: removed)."""
    params = [(k, v) for k, v in request.query_params.multi_items() if k not in changes]
    params += [(k, str(v)) for k, v in changes.items() if v is not None]
    return request.url.path + ("?" + urlencode(params) if params else "")
