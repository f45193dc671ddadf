"""A module's kanban board: its records as cards in one column per option of a dropdown.

A module opts in with ``features.board`` (``BoardSpec``): the dropdown whose options are
the columns (``field``), optionally an amount summed per column (``amount``) and a
percentage weighing it (``weight``: "weighted" = sum of amount × weight / 100, the
pipeline's expected value), the fields a card shows (``card``), option values that get no
column (``hidden``: closed-lost deals) and the cards' order (``sort``; else the list's).

What a board reads, for a user, a list's filters and its quick search:

- ``totals``: one ``GROUP BY`` statement over every record of every column the user may
  list — count, face value and weighted value per column (and per currency when the
  amount is a currency field: amounts in different currencies are never added up). It is
  the list view's own statement (the record service's ``_select``: access predicate,
  deleted rows, filters, search) with its columns replaced by the aggregates, so a total
  never counts a record its reader could not find in the list;
- ``cards``: the first ``PAGE`` cards of a column through ``RecordService.list`` (the
  same predicate), one statement per column shown; "more" reads the next page after the
  last card shown (keyset, ``Query.after``).

Moving a card (``move``) is ``RecordService.update`` of the one field, with the card's
version as the base: validation, access control, the change log, hooks, transitions and
workflows all apply, and a stale card is a conflict.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from core.api.listing import decode_cursor, encode_cursor
from core.api.schemas import shapes
from core.kernel.records import Query, User
from core.kernel.registry import ModuleDef

PAGE = 50  # cards a column shows before "more"
NONE = ""  # the column of records with no value (shown only when it has some)
AMOUNT_KINDS = ("decimal", "integer", "number")  # json_kind of a field that can be summed


@dataclass(frozen=True)
class BoardSpec:
    field: str
    amount: str | None
    weight: str | None
    card: tuple[str, ...]
    hidden: frozenset[str]
    sort: str | None

    @classmethod
    def of(cls, module: ModuleDef) -> BoardSpec | None:
        options = module.features.get("board")
        if not isinstance(options, dict):
            return None
        return cls(options["field"], options.get("amount"), options.get("weight"),
                   tuple(options.get("card", ())), frozenset(options.get("hidden", ())),
                   options.get("sort"))

    def currency(self, module: ModuleDef) -> str | None:
        """The amount's currency code field (a currency field's ``<name>_currency``)."""
        code = f"{self.amount}_currency" if self.amount else None
        return code if code in module.fields and module.fields[code].group == self.amount \
            else None


def problems(module: ModuleDef, options: dict, registry) -> list[tuple[str, str]]:
    """What is wrong with a module's ``features.board`` (path under it, message): checked
    with the rest of the registry, all or nothing."""
    out, fields = [], module.fields

    def field_of(key: str, kinds: tuple[str, ...], what: str):
        name = options.get(key)
        if name is None:
            return None
        f = fields.get(name)
        if f is None or f.system and name != "assigned_user_id":
            out.append((key, f"no field {name!r} in this module"))
        elif not f.stored or f.type.json_kind not in kinds:
            out.append((key, f"{name!r} is not {what}"))
        else:
            return f
        return None

    column = fields.get(options["field"])
    if column is None:
        out.append(("field", f"no field {options['field']!r} in this module"))
    elif column.type.name not in ("dropdown", "status") or "options" not in column.spec:
        out.append(("field", f"{column.name!r} is not a dropdown field"))
    elif column.spec["options"] in registry.dropdowns:
        allowed = registry.option_values(column.spec["options"])
        for i, value in enumerate(options.get("hidden", ())):
            if value not in allowed:
                out.append((f"hidden[{i}]", f"{value!r} is not an option of {column.name!r}"))
    field_of("amount", AMOUNT_KINDS, "a number or currency field")
    if field_of("weight", AMOUNT_KINDS, "a number or percentage field") and \
            not options.get("amount"):
        out.append(("weight", "a weight needs an amount to weigh"))
    for i, name in enumerate(options.get("card", ())):
        f = fields.get(name)
        if f is None:
            out.append((f"card[{i}]", f"no field {name!r} in this module"))
        elif not (f.stored or f.type.derived):
            out.append((f"card[{i}]", f"{name!r} holds no value to show"))
    for key in filter(None, (s.strip() for s in str(options.get("sort", "")).split(","))):
        f = fields.get(key.lstrip("-"))
        if f is None or not f.stored:
            out.append(("sort", f"no field {key.lstrip('-')!r} to sort by"))
    return out


@dataclass
class Column:
    value: str  # NONE: records without a value
    label: str
    count: int = 0
    face: dict[str | None, Decimal] | None = None  # currency code (None: no code) -> sum
    weighted: dict[str | None, Decimal] | None = None
    cards: list[dict] | None = None
    more: str | None = None  # the cursor of the column's next cards, if any
    color: str | None = None  # the option's palette colour (its ``color``), if it has one


def columns(site, module: ModuleDef, spec: BoardSpec) -> list[Column]:
    """The board's columns in the dropdown's order, hidden values left out, each with its
    option's colour (the header shows it)."""
    f = module.fields[spec.field]
    colors = {o["value"]: o.get("color") for o in site.registry.dropdowns[f.spec["options"]]}
    return [Column(value, label, color=colors.get(value))
            for value, label in site.registry.choices(f) if value not in spec.hidden]


def _totals_select(site, module: ModuleDef, spec: BoardSpec, user: User, query: Query):
    """The list's statement for ``user`` and ``query`` (access, filters, search), its
    columns replaced by per-column aggregates: one GROUP BY."""
    records = site.records
    # The record service's own list statement, so the WHERE is exactly the list view's
    # (``_select`` is what ``page`` and ``count`` build theirs from; no public builder
    # returns a statement to aggregate over, and the kernel is at its size cap).
    stmt, table = records.select(module, user, Query(query.filters, query.search, limit=None,
                                                      fields=["id"]), "list")
    keys = [table.c[spec.field]]
    code = spec.currency(module)
    if code:
        keys.append(table.c[code])
    aggregates = [sa.func.count().label("n")]
    if spec.amount:
        money = sa.Numeric(38, 6)
        amount = sa.func.coalesce(table.c[spec.amount], 0)
        aggregates.append(sa.cast(sa.func.sum(amount), money).label("face"))
        if spec.weight:
            weighted = amount * sa.func.coalesce(table.c[spec.weight], 0) / 100
            aggregates.append(sa.cast(sa.func.sum(weighted), money).label("weighted"))
    return stmt.order_by(None).with_only_columns(*keys, *aggregates).group_by(*keys)


def totals(site, module: ModuleDef, spec: BoardSpec, user: User, query: Query,
           into: list[Column]) -> list[Column]:
    """Fill ``into`` (the board's columns) with their totals over every record ``user``
    may list that ``query`` matches; a column for records without a value is added when
    there are some. Returns the columns to show."""
    with site.engine.connect() as conn:
        rows = conn.execute(_totals_select(site, module, spec, user, query)).all()
    by_value = {c.value: c for c in into}
    extra = None
    for row in rows:
        value = row[0] if row[0] is not None else NONE
        column = by_value.get(value)
        if column is None:
            if value != NONE:
                continue  # a hidden value, or one no longer offered: no column
            column = extra = extra or Column(NONE, "")
        column.count += row.n
        if spec.amount:
            currency = row[1] if spec.currency(module) else None
            column.face = column.face or {}
            column.face[currency] = column.face.get(currency, Decimal(0)) + \
                Decimal(str(row.face or 0))
            if spec.weight:
                column.weighted = column.weighted or {}
                column.weighted[currency] = column.weighted.get(currency, Decimal(0)) + \
                    Decimal(str(row.weighted or 0))
    return [extra, *into] if extra is not None else into


def card_fields(module: ModuleDef, spec: BoardSpec) -> list[str]:
    """What a card's statement reads: its title, its fields (with their sub-fields), what
    the board needs (the column's value, the version a move is based on, the assignee)."""
    names = [module.name_field, spec.field, "version", spec.amount, spec.weight,
             "assigned_user_id" if "assigned_user_id" in module.fields else None]
    for name in spec.card:
        names += [f.name for f in module.expand(name) if f.stored or f.type.derived]
    if spec.amount:
        names += [f.name for f in module.expand(spec.amount)]
    return list(dict.fromkeys(n for n in names if n))


def sort_of(spec: BoardSpec, query: Query) -> str | None:
    return query.sort or spec.sort


def cards(site, module: ModuleDef, spec: BoardSpec, user: User, query: Query, value: str,
          after: str | None = None) -> tuple[list[dict], str | None]:
    """A page of one column's cards in the board's order, and the cursor of the next page
    (None when this one is the last). ``after``: a cursor "more" got from the page before
    (one of another order or a crafted one reads the first page)."""
    records, sort = site.records, sort_of(spec, query)
    keys = records.sort_keys(module, sort)
    shaped = shapes(site.registry, module)
    start = None
    if after and all(name in shaped.kinds for name, _ in keys):
        start = decode_cursor(after, module, shaped, keys, {})
    column = (spec.field, "eq", value if value != NONE else None)
    rows = records.list(module.name, user, Query(
        filters=[*query.filters, column], search=query.search, sort=sort,
        fields=list(dict.fromkeys([*card_fields(module, spec), *(n for n, _ in keys)])),
        labels=True, limit=PAGE + 1, after=start))
    more = len(rows) > PAGE and all(name in shaped.kinds for name, _ in keys)
    rows = rows[:PAGE]
    return rows, encode_cursor(rows[-1], keys, shaped) if more else None
