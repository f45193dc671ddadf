"""Running a report: its figures read with one statement, then labelled and formatted for
the runner (their language, number format and currencies).

``run(site, definition, user, fmt)`` returns a ``Result``: for a grouped report the groups
in display order (each level-0 group, then its sub-total; the grand total last), each with
the keys a drill-down needs; for a list report a page of rows and the totals. Labels of
grouped dropdowns, users and related records are looked up once for all the keys shown
(the names of related records only where the runner may view them).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from babel import dates

from core.kernel.errors import N_
from core.kernel.records import Query
from plugins.reports.compiler import GROUP_CAP, Compiled, Definition, compile_report

CHART_CAP = 50  # segments a chart draws; the table below it shows every group
PAGE = 50


@dataclass
class Cell:
    value: Any
    text: str
    mixed: bool = False  # a sum over several currencies: a number, not an amount


@dataclass
class GroupRow:
    level: int  # 0: the finest groups; len(groups): the grand total
    keys: tuple  # the raw keys of the levels this row keeps
    labels: tuple[str, ...]
    cells: list[Cell]
    count: int
    query: str = ""  # the drill-down's query string (g0=...&g1=...)


@dataclass
class Result:
    definition: Definition
    compiled: Compiled
    headers: list[str]
    groups: list[GroupRow] = field(default_factory=list)  # in display order, total last
    total: GroupRow | None = None
    rows: list[dict] = field(default_factory=list)  # a list report's page (or a drill-down's)
    row_count: int = 0
    capped: bool = False  # more groups than GROUP_CAP

    @property
    def finest(self) -> list[GroupRow]:
        return [g for g in self.groups if g.level == 0]


AGGREGATE_LABELS = {"": N_("Value"), "count": N_("Count"), "sum": N_("Sum"),
                    "avg": N_("Average"), "min": N_("Minimum"), "max": N_("Maximum")}


def headers(definition: Definition, fmt) -> list[str]:
    """Each column's header, the same on the page and in every file: its own label if the
    report gave one, else what it shows — "Number of Contacts" for a count of ids,
    "Amount (Sum)" for a sum."""
    out = []
    for c in definition.columns:
        if c.named or c.aggregate is None:
            out.append(c.label)
        elif c.aggregate == "count" and c.field.name == "id":
            what = c.label if c.source.kind == "one" else str(c.source.module.label)
            out.append(fmt.gettext(N_("Number of %(what)s")) % {"what": what})
        else:
            out.append(fmt.gettext(N_("%(label)s (%(aggregate)s)")) % {
                "label": c.label, "aggregate": fmt.gettext(AGGREGATE_LABELS[c.aggregate])})
    return out


def key_text(value) -> str:
    """A group key in a URL ("" for none); ``parse_key`` reads it back."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    return str(value)


def parse_key(group, text: str):
    """A drill-down's key as the group's column holds it (a date's part stays text)."""
    if text == "":
        return None
    if group.by:
        return text
    return group.field.type.normalize(text, group.field.spec)


def run(site, definition: Definition, user, fmt, *, page: int = 0,
        where: dict | None = None) -> Result:
    """The report's figures for ``user``; ``where`` (level -> key) narrows it to a group
    and lists its rows (a drill-down)."""
    compiled = compile_report(site, definition, user)
    result = Result(definition, compiled, headers(definition, fmt))
    with site.engine.connect() as conn:
        if definition.groups and where is None:
            rows = [dict(r._mapping) for r in conn.execute(compiled.groups)]
        else:
            rows = [dict(r._mapping) for r in conn.execute(
                compiled.rows(limit=PAGE, offset=page * PAGE, where=where))]
            totals = dict(conn.execute(compiled.totals(where)).one()._mapping)
    labels = _Labels(site, definition, user, fmt)
    if definition.groups and where is None:
        _grouped(result, rows, labels, fmt)
    else:
        result.rows = [_row(definition, r, labels, fmt) for r in rows]
        result.row_count = totals["_count"]
        result.total = GroupRow(len(definition.groups), (), (), _cells(definition, totals, fmt),
                                totals["_count"])
        labels.fill_rows(result.rows)
    return result


def _grouped(result: Result, rows: list[dict], labels: _Labels, fmt) -> None:
    d = result.definition
    depth = len(d.groups)
    by_level: dict[int, list[dict]] = {}
    for r in rows:
        by_level.setdefault(r["_level"], []).append(r)
    for level in range(depth):
        if len(by_level.get(level, [])) > GROUP_CAP:
            result.capped = True
            by_level[level] = by_level[level][:GROUP_CAP]
    labels.load_groups(rows)

    def group_row(r: dict) -> GroupRow:
        kept = depth - r["_level"]
        keys = tuple(r[f"g{k}"] for k in range(kept))
        return GroupRow(r["_level"], keys, tuple(labels.group(k, v) for k, v in enumerate(keys)),
                        _cells(d, r, fmt), r["_count"],
                        urlencode({f"g{k}": key_text(v) for k, v in enumerate(keys)}))

    finest = [group_row(r) for r in by_level.get(0, [])]
    finest = _ordered(d, finest, labels)
    if depth == 2:
        subtotals = {g.keys: g for g in map(group_row, by_level.get(1, []))}
        seen: list = []
        for g in finest:
            if g.keys[:1] not in seen:
                seen.append(g.keys[:1])
        for head in seen:
            result.groups += [g for g in finest if g.keys[:1] == head]
            if head in subtotals:
                result.groups.append(subtotals[head])
    else:
        result.groups = finest
    total = by_level.get(depth, [])
    if total:
        result.total = group_row(total[0])
        result.row_count = result.total.count


def _ordered(d: Definition, groups: list[GroupRow], labels: _Labels) -> list[GroupRow]:
    """By the sort column if the report has one, else by the keys, level by level — a
    dropdown's in its list order (stages from prospecting to closed), a related record or
    user by its name (not its id), anything else by its value; none last."""
    if d.sort is not None:
        column, desc = d.sort
        present = [g for g in groups if g.cells[column].value is not None]
        absent = [g for g in groups if g.cells[column].value is None]
        present.sort(key=lambda g: g.cells[column].value, reverse=desc)
        return present + absent
    orders = [labels.option_order(level) for level in range(len(d.groups))]
    named = [not g.by and labels._target(g.field) is not None for g in d.groups]

    def key(g: GroupRow) -> tuple:
        parts = []
        for level, k in enumerate(g.keys):
            if orders[level]:
                parts.append((orders[level].get(k, len(orders[level])), ""))
            elif named[level]:
                parts.append((k is None, g.labels[level].casefold()))
            else:  # one type per level: numbers as numbers, dates as dates
                parts.append((k is None, k if k is not None else ""))
        return tuple(parts)
    return sorted(groups, key=key)


def order_key(value):
    return (value is None, str(value) if value is not None else "")


def _cells(d: Definition, r: dict, fmt) -> list[Cell]:
    cells = []
    for i, c in enumerate(d.columns):
        value = r.get(f"c{i}")
        if c.aggregate is None:
            cells.append(Cell(None, ""))
            continue
        cells.append(_aggregate_cell(c, value, r.get(f"c{i}_lo"), r.get(f"c{i}_hi"), fmt))
    return cells


def _aggregate_cell(c, value, lo, hi, fmt) -> Cell:
    if value is None:
        return Cell(None, "")
    if c.aggregate == "count":
        return Cell(int(value), fmt.number(int(value)))
    kind = c.field.type.value_kind(c.field.spec)
    if kind in ("date", "datetime"):
        value = _as_date(value, kind)
        return Cell(value, fmt.date(value) if kind == "date" else fmt.datetime(value))
    value = value if isinstance(value, Decimal) else Decimal(str(value))
    if c.field.type.name == "currency":
        if lo != hi:
            return Cell(value, fmt.number(value, 2), mixed=True)
        return Cell(value, fmt.currency(value, lo))
    if c.aggregate == "avg":
        return Cell(value, fmt.number(value, 2))
    return Cell(value, fmt.field(c.field, value, {}))


def _as_date(value, kind):
    """min/max of a date come back as text from SQLite."""
    if isinstance(value, str):
        return dt.date.fromisoformat(value[:10]) if kind == "date" else \
            dt.datetime.fromisoformat(value)
    return value


def _row(d: Definition, r: dict, labels: _Labels, fmt) -> dict:
    """A list report's row: each column's text (links' names are filled in afterwards)."""
    out = {"id": r["id"], "name": r.get("name"), "cells": []}
    for i, c in enumerate(d.columns):
        value = r.get(f"c{i}")
        if c.source.kind == "many":
            out["cells"].append(_aggregate_cell(c, value, r.get(f"c{i}_lo"),
                                                r.get(f"c{i}_hi"), fmt))
            continue
        record = {f"{c.field.name}_currency": r.get(f"c{i}_lo")}
        text = fmt.field(c.field, value, record, options=labels.options(c.field))
        out["cells"].append(Cell(value, text))
    return out


class _Labels:
    """Display names for keys and values: dropdown labels, users' and records' names."""

    def __init__(self, site, d: Definition, user, fmt):
        self.site, self.d, self.user, self.fmt = site, d, user, fmt
        self.names: dict[tuple, str] = {}  # (target, id) -> name

    def options(self, f) -> dict:
        return dict(self.site.registry.choices(f)) if f.type.has_options else {}

    def option_order(self, level: int) -> dict:
        g = self.d.groups[level]
        if g.by or not g.field.type.has_options:
            return {}
        return {value: i for i, (value, _) in enumerate(self.site.registry.choices(g.field))}

    def _target(self, f) -> str | None:
        if not f.type.is_link:
            return None
        return "users" if f.type.label_source is not None else f.spec.get("module")

    def _load(self, wanted: dict[str, set]) -> None:
        for target, ids in wanted.items():
            ids = {i for i in ids if i is not None and (target, i) not in self.names}
            if not ids:
                continue
            if target == "users":
                import sqlalchemy as sa

                users = self.site.tables.tables["crbm_users"]
                with self.site.engine.connect() as conn:
                    for row in conn.execute(sa.select(users.c.id, users.c.display_name,
                                                      users.c.username)
                                            .where(users.c.id.in_(sorted(ids)))):
                        self.names[(target, row.id)] = row.display_name or row.username
                continue
            module = self.site.registry.modules.get(target)
            if module is None or not module.name_field:
                continue
            for record in self.site.records.list(target, self.user, Query(
                    filters=[("id", "in", sorted(ids))], fields=["id", module.name_field],
                    limit=None)):
                self.names[(target, record["id"])] = record[module.name_field] or ""

    def load_groups(self, rows: list[dict]) -> None:
        wanted: dict[str, set] = {}
        for level, g in enumerate(self.d.groups):
            target = self._target(g.field)
            if target:
                wanted.setdefault(target, set()).update(r[f"g{level}"] for r in rows)
        self._load(wanted)

    def group(self, level: int, key) -> str:
        g = self.d.groups[level]
        if key is None:
            return self.fmt.gettext(N_("(none)"))
        if g.by:
            return _date_part_label(str(key), g.by, self.fmt)
        target = self._target(g.field)
        if target:
            return self.names.get((target, key), self.fmt.gettext(N_("(no access)")))
        options = self.options(g.field)
        if options:
            return options.get(key, str(key))
        return self.fmt.field(g.field, key, {}) or str(key)

    def fill_rows(self, rows: list[dict]) -> None:
        """Links' names in a list report's cells, one lookup per target module."""
        wanted: dict[str, set] = {}
        for i, c in enumerate(self.d.columns):
            target = c.source.kind != "many" and self._target(c.field)
            if target:
                wanted.setdefault(target, set()).update(r["cells"][i].value for r in rows)
        self._load(wanted)
        for i, c in enumerate(self.d.columns):
            target = c.source.kind != "many" and self._target(c.field)
            if target:
                for r in rows:
                    value = r["cells"][i].value
                    r["cells"][i].text = "" if value is None else \
                        self.names.get((target, value), self.fmt.gettext(N_("(no access)")))


def _date_part_label(key: str, by: str, fmt) -> str:
    """"2026-03" as "Mar 2026" in the reader's language; "2026-Q1" as "Q1 2026"."""
    try:
        if by == "year":
            return key
        if by == "quarter":
            year, quarter = key.split("-Q")
            return dates.format_skeleton("yQQQ", dt.date(int(year), int(quarter) * 3 - 2, 1),
                                         locale=fmt.locale)
        if by == "month":
            year, month = key.split("-")[:2]
            return dates.format_skeleton("yMMM", dt.date(int(year), int(month), 1),
                                         locale=fmt.locale)
        return fmt.date(dt.date.fromisoformat(key))
    except (ValueError, TypeError):
        return key
