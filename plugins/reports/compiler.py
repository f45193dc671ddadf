"""A report's definition, checked against the registry, and compiled to one SQL statement.

A definition is JSON (a report's ``definition`` field; the builder writes it)::

    {"module": "accounts",
     "columns": [{"field": "name"},
                 {"via": "opportunities", "field": "amount", "aggregate": "sum"},
                 {"via": "contacts", "field": "id", "aggregate": "count"}],
     "filters": [{"field": "account_type", "op": "eq", "value": "Customer"},
                 {"via": "opportunities", "field": "sales_stage", "op": "ne",
                  "value": "Closed Lost"}],
     "group_by": [{"field": "industry"}],
     "sort": {"column": 1, "desc": true},
     "chart": {"type": "bar", "column": 1}}

- ``via`` says where a column or filter reads: absent, the report's module; a related
  field of it (many-to-one: ``account_id``), the record that field points to; one of its
  one-to-many or many-to-many relationships (``opportunities``), its records summed up per
  report row — an ``aggregate`` is required there.
- ``aggregate`` (count, sum, avg, min, max): a grouped report shows each column's aggregate
  per group, per sub-group and in the grand total; a report without groups lists the
  records and shows the aggregates in its totals row. sum and avg take numbers; min and
  max numbers and dates.
- ``filters`` are the list filters' (field, op, value), checked by the field's type;
  on a relationship's records they choose which of them are summed up.
- ``group_by``: up to two levels; a date takes ``"by": "day" | "month" | "quarter" |
  "year"``.

Why one statement, and this shape: a figure must never be built from rows the runner may
not see, so every module read — the report's, each many-to-one join, each relationship —
carries the runner's ``report`` access predicate (``AccessControl.predicate``) where it is
read. Each relationship is summed up in its own subquery (grouped by the report row it
belongs to) and joined on the row, so joining accounts to both their opportunities and
their contacts does not multiply one by the other (the fan-out a naive join makes).
Groups, sub-groups and the grand total come from one read of that base (a CTE): its finest
groups, joined to a row per level and grouped again (``_levels``) — GROUPING SETS is not on
SQLite, WITH ROLLUP not on SQLite and differs on the others, and a ``UNION ALL`` of the
levels would read the base once per level on MariaDB, which computes a CTE per reference.
"""
from __future__ import annotations

import json
import weakref
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import False_

from core.kernel.errors import N_, CrbmError, Message
from core.kernel.fields import OPERATORS, FieldError

AGGREGATES = ("count", "sum", "avg", "min", "max")
NUMBERS = ("integer", "decimal", "number")
DATE_PARTS = ("day", "month", "quarter", "year")
CHARTS = ("bar", "stacked_bar", "line", "pie", "donut", "funnel")
GROUP_CAP = 1000  # groups shown; a field with more values is capped with a message
MAX_COLUMNS, MAX_FILTERS, MAX_LEVELS = 30, 30, 2


class ReportError(CrbmError):
    """What is wrong with a definition: {path: message}, all of it at once."""

    def __init__(self, problems: dict[str, Message | str]):
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


class ReportRefused(CrbmError):
    """The runner may not report on a module the report reads."""

    def __init__(self, module_label: str):
        self.module_label = module_label
        super().__init__(str(Message(N_("You may not run reports on %(module)s, which this "
                                        "report reads."), module=module_label)))


@dataclass(frozen=True)
class Source:
    """Where a column reads: the report's module, a many-to-one link, or a relationship."""

    kind: str  # "primary", "one" or "many"
    module: Any  # ModuleDef
    via: str | None = None
    link: str | None = None  # one: the report module's field; many/one_to_many: the child's
    link_table: str | None = None  # many_to_many: the link table and its two columns
    mine: str | None = None
    theirs: str | None = None


@dataclass(frozen=True)
class Column:
    source: Source
    field: Any  # FieldDef
    aggregate: str | None
    label: str
    named: bool = False  # the report gave the label (else run.headers words it)


@dataclass(frozen=True)
class Group:
    source: Source
    field: Any
    by: str | None  # a date's part, or None


@dataclass(frozen=True)
class Filter:
    source: Source
    field: Any
    op: str
    value: Any


@dataclass
class Definition:
    module: Any
    columns: list[Column]
    filters: list[Filter]
    groups: list[Group]
    sort: tuple[int, bool] | None  # (column index, descending)
    chart: dict | None
    modules: list = field(default_factory=list)  # every module read (access is checked on each)


def parse(text_or_data) -> dict:
    """The stored JSON as a dict; a ReportError if it is not one."""
    if isinstance(text_or_data, dict):
        return text_or_data
    try:
        data = json.loads(text_or_data or "{}")
    except ValueError as exc:
        raise ReportError({"definition": Message(N_("is not valid JSON: %(error)s"),
                                                 error=str(exc))}) from None
    if not isinstance(data, dict):
        raise ReportError({"definition": Message(N_("must be a JSON object"))})
    return data


def check(registry, data) -> Definition:
    """The definition against the registry as it is now: every problem, with its path."""
    data = parse(data)
    problems: dict[str, Message] = {}
    module = registry.modules.get(str(data.get("module") or ""))
    if module is None:
        raise ReportError({"module": Message(N_("no module %(name)s"),
                                             name=repr(data.get("module")))})
    sources: dict[str | None, Source] = {None: Source("primary", module)}

    def source(via, path: str) -> Source | None:
        if via in sources:
            return sources[via]
        link = module.fields.get(via) if isinstance(via, str) else None
        rel = module.relationships.get(via) if isinstance(via, str) else None
        if link is not None and link.type.is_link and link.spec.get("module") \
                and link.spec["module"] in registry.modules:
            found = Source("one", registry.modules[link.spec["module"]], via, link=via)
        elif rel is not None and rel.get("module") in registry.modules:
            other = registry.modules[rel["module"]]
            if rel["kind"] == "one_to_many":
                found = Source("many", other, via, link=rel["field"])
            else:
                from core.kernel.database import link_columns

                mine, theirs = link_columns(module, via)
                found = Source("many", other, via, link_table=module.link_table(via),
                               mine=mine, theirs=theirs)
        else:
            problems[path] = Message(N_("%(module)s has no related field or relationship "
                                        "%(name)s"), module=module.label, name=repr(via))
            return None
        sources[via] = found
        return found

    def field_of(src: Source, name, path: str):
        f = src.module.fields.get(name) if isinstance(name, str) else None
        if f is None or not f.stored:
            problems[path] = Message(N_("%(module)s has no field %(field)s (removed?)"),
                                     module=src.module.label, field=repr(name))
            return None
        return f

    def items(key: str, most: int) -> list:
        value = data.get(key) or []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            problems[key] = Message(N_("must be a list of objects"))
            return []
        if len(value) > most:
            problems[key] = Message(N_("at most %(n)d"), n=most)
        return value[:most]

    def located(spec: dict, path: str):
        """(source, field) a column, group or filter names, or (None, None) if wrong."""
        src = source(spec.get("via"), path + ".via")
        f = src and field_of(src, spec.get("field"), path + ".field")
        return (src, f) if f is not None else (None, None)

    columns: list[Column] = []
    for i, spec in enumerate(items("columns", MAX_COLUMNS)):
        path = f"columns[{i}]"
        src, f = located(spec, path)
        if f is None:
            continue
        aggregate = spec.get("aggregate") or None
        if aggregate is not None and aggregate not in AGGREGATES:
            problems[path + ".aggregate"] = Message(N_("must be one of %(list)s"),
                                                    list=", ".join(AGGREGATES))
            continue
        if src.kind == "many" and aggregate is None:
            problems[path + ".aggregate"] = Message(N_(
                "is required: %(rel)s are many records per row"), rel=repr(src.via))
            continue
        kind = f.type.value_kind(f.spec)
        if aggregate in ("sum", "avg") and kind not in NUMBERS:
            problems[path + ".aggregate"] = Message(N_("%(agg)s needs a number field"),
                                                    agg=aggregate)
            continue
        if aggregate in ("min", "max") and kind not in (*NUMBERS, "date", "datetime"):
            problems[path + ".aggregate"] = Message(N_("%(agg)s needs a number or a date"),
                                                    agg=aggregate)
            continue
        owner = src.module.label_singular if src.kind == "one" else src.module.label
        label = spec.get("label") or (f.label if src.kind == "primary" else f"{owner}: {f.label}")
        columns.append(Column(src, f, aggregate, str(label)[:100], bool(spec.get("label"))))
    if not columns and "columns" not in problems:
        problems["columns"] = Message(N_("choose at least one column"))

    groups: list[Group] = []
    for i, spec in enumerate(items("group_by", MAX_LEVELS)):
        path = f"group_by[{i}]"
        src, f = located(spec, path)
        if f is None:
            continue
        if src.kind == "many":
            problems[path + ".via"] = Message(N_("a report groups by its own module's fields "
                                                 "or a many-to-one link's"))
            continue
        by = spec.get("by") or None
        if by is not None and (by not in DATE_PARTS or f.type.value_kind(f.spec)
                               not in ("date", "datetime")):
            problems[path + ".by"] = Message(N_("a date field groups by %(parts)s"),
                                             parts=", ".join(DATE_PARTS))
            continue
        groups.append(Group(src, f, by))
    if groups:
        for i, c in enumerate(columns):
            if c.aggregate is None:
                problems[f"columns[{i}].aggregate"] = Message(N_(
                    "is required in a grouped report (count, sum, avg, min or max)"))

    filters: list[Filter] = []
    for i, spec in enumerate(items("filters", MAX_FILTERS)):
        path = f"filters[{i}]"
        src, f = located(spec, path)
        if f is None:
            continue
        op = spec.get("op", "eq")
        if op not in OPERATORS or op not in f.type.filter_operators:
            problems[path + ".op"] = Message(N_("%(op)s is not an operator of this field"),
                                             op=repr(op))
            continue
        value = spec.get("value")
        if op == "in" and not isinstance(value, list):
            problems[path + ".value"] = Message(N_("must be a list"))
            continue
        try:  # the type checks the value now, not when the report runs
            f.type.filter_clause(sa.column(f.name), op, value, f.spec)
        except FieldError as exc:
            problems[path + ".value"] = exc.message
            continue
        filters.append(Filter(src, f, op, value))

    sort = data.get("sort")
    if sort is not None:
        if not isinstance(sort, dict) or not isinstance(sort.get("column"), int) \
                or not 0 <= sort["column"] < max(len(columns), 1):
            problems["sort.column"] = Message(N_("must be a column's number"))
            sort = None
        else:
            sort = (sort["column"], bool(sort.get("desc")))
    chart = data.get("chart")
    if chart:
        if not isinstance(chart, dict) or chart.get("type") not in CHARTS:
            problems["chart.type"] = Message(N_("must be one of %(list)s"), list=", ".join(CHARTS))
        elif not groups:
            problems["chart"] = Message(N_("a chart needs a group"))
        elif not isinstance(chart.get("column", 0), int) or \
                not 0 <= chart.get("column", 0) < max(len(columns), 1):
            problems["chart.column"] = Message(N_("must be a column's number"))
    if problems:
        raise ReportError(problems)
    modules = list({s.module.name: s.module for s in sources.values()}.values())
    return Definition(module, columns, filters, groups, sort, chart or None, modules)


# -- compiling ------------------------------------------------------------------------------

# Aliases made once per schema (a Studio change makes a new MetaData): making one copies
# every column of a wide table, and the access predicates compiled for it are cached per
# alias object (AccessControl.predicate), so a fresh alias per run would grow that cache.
_ALIASES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _alias(site, table_name: str, name: str):
    made = _ALIASES.setdefault(site.tables, {})
    key = (table_name, name)
    if key not in made:
        made[key] = site.tables.tables[table_name].alias(name)
    return made[key]



@dataclass
class Compiled:
    """The SQL of one report for one runner (Definition + user)."""

    definition: Definition
    base: Any  # the CTE: one row per report row
    groups: Any  # the UNION ALL of every level, or None
    dialect: str

    def rows(self, *, limit: int | None, offset: int = 0, where: dict | None = None):
        """The report's rows (a page), optionally only a group's (``where``: level -> key)."""
        d, base = self.definition, self.base
        stmt = sa.select(base)
        for level, key in (where or {}).items():
            column = base.c[f"g{level}"]
            stmt = stmt.where(column.is_(None) if key is None else column == key)
        order = []
        if d.sort is not None:
            column = base.c[f"c{d.sort[0]}"]
            order.append(column.desc() if d.sort[1] else column.asc())
        if "name" in base.c:
            order.append(base.c.name.asc())
        stmt = stmt.order_by(*order, base.c.id)
        return stmt.limit(limit).offset(offset) if limit is not None else stmt

    def totals(self, where: dict | None = None):
        """One row: each column's aggregate over all rows (or a group's), and _count."""
        stmt = sa.select(*_aggregates(self.definition, self.base),
                         sa.func.count().label("_count")).select_from(self.base)
        for level, key in (where or {}).items():
            column = self.base.c[f"g{level}"]
            stmt = stmt.where(column.is_(None) if key is None else column == key)
        return stmt


def compile_report(site, definition: Definition, user) -> Compiled:
    """The report as SQL the runner's access allows: refused (ReportRefused) if they may
    not report on a module it reads."""
    access = site.records.access
    tables = site.tables.tables
    d = definition
    for module in d.modules:
        probe = access.predicate(user, module, "report", tables[module.table])
        if isinstance(probe, False_):
            raise ReportRefused(module.label)

    def visible(module, table):
        return sa.and_(table.c.deleted.is_(False),
                       access.predicate(user, module, "report", table))

    primary = _alias(site, d.module.table, "r")
    columns = [primary.c.id.label("id")]
    if d.module.name_field and d.module.fields[d.module.name_field].stored:
        columns.append(primary.c[d.module.name_field].label("name"))
    where = [visible(d.module, primary)]
    joins: list = []
    aliases: dict[str | None, Any] = {None: primary}
    dialect = site.engine.dialect.name

    def table_of(src: Source):
        if src.via in aliases:
            return aliases[src.via]
        n = len(aliases)
        if src.kind == "one":
            alias = _alias(site, src.module.table, f"j{n}")
            joins.append((alias, sa.and_(alias.c.id == primary.c[src.link],
                                         visible(src.module, alias))))
        else:
            alias = _many(site, src, f"m{n}", d, visible, primary)
            joins.append((alias, alias.c.parent == primary.c.id))
        aliases[src.via] = alias
        return alias

    for i, c in enumerate(d.columns):
        table = table_of(c.source)
        if c.source.kind == "many":
            value = table.c[f"v{i}"]
            if c.aggregate == "count":
                value = sa.func.coalesce(value, 0)
            elif c.aggregate == "avg":
                value = table.c[f"v{i}"] / sa.func.nullif(table.c[f"n{i}"], 0)
                columns += [table.c[f"v{i}"].label(f"c{i}_s"), table.c[f"n{i}"].label(f"c{i}_n")]
            columns.append(value.label(f"c{i}"))
            if c.field.type.name == "currency":
                columns += [table.c[f"k{i}_lo"].label(f"c{i}_lo"),
                            table.c[f"k{i}_hi"].label(f"c{i}_hi")]
        else:
            columns.append(table.c[c.field.name].label(f"c{i}"))
            if c.field.type.name == "currency":
                code = table.c[f"{c.field.name}_currency"]
                columns += [code.label(f"c{i}_lo"), code.label(f"c{i}_hi")]
    for level, g in enumerate(d.groups):
        table = table_of(g.source)
        columns.append(_date_part(table.c[g.field.name], g.by, dialect).label(f"g{level}")
                       if g.by else table.c[g.field.name].label(f"g{level}"))
    for flt in d.filters:
        if flt.source.kind != "many":
            table = table_of(flt.source)
            where.append(flt.field.type.filter_clause(table.c[flt.field.name], flt.op,
                                                      flt.value, flt.field.spec))
    frm = primary
    for alias, on in joins:
        frm = frm.outerjoin(alias, on)
    base = sa.select(*columns).select_from(frm).where(*where).cte("base")
    groups = _levels(d, base) if d.groups else None
    return Compiled(d, base, groups, dialect)


def _many(site, src: Source, name: str, d: Definition, visible, primary):
    """A relationship's records summed up per report row: (parent, v<i>, n<i>, ...)."""
    child = _alias(site, src.module.table, f"{name}c")
    if src.link_table is None:
        parent = child.c[src.link]
        frm = child
    else:
        link = _alias(site, src.link_table, f"{name}l")
        parent = link.c[src.mine]
        frm = link.join(child, child.c.id == link.c[src.theirs])
    columns = [parent.label("parent")]
    for i, c in enumerate(d.columns):
        if c.source is not src:
            continue
        value = child.c[c.field.name]
        if c.aggregate == "count":
            columns.append(sa.func.count(value).label(f"v{i}"))
        elif c.aggregate == "avg":
            columns += [sa.func.sum(value).label(f"v{i}"), sa.func.count(value).label(f"n{i}")]
        else:
            columns.append(getattr(sa.func, c.aggregate)(value).label(f"v{i}"))
        if c.field.type.name == "currency":
            code = child.c[f"{c.field.name}_currency"]
            columns += [sa.func.min(code).label(f"k{i}_lo"), sa.func.max(code).label(f"k{i}_hi")]
    where = [visible(src.module, child), parent.is_not(None)]
    for flt in d.filters:
        if flt.source is src:
            where.append(flt.field.type.filter_clause(child.c[flt.field.name], flt.op,
                                                      flt.value, flt.field.spec))
    return sa.select(*columns).select_from(frm).where(*where).group_by(parent).subquery(name)


def _aggregates(d: Definition, base) -> list:
    """Each column's aggregate over a set of base rows (a group, or all of them)."""
    out = []
    for i, c in enumerate(d.columns):
        value = base.c[f"c{i}"]
        if c.aggregate is None:
            out.append(sa.null().label(f"c{i}"))
        elif c.source.kind == "many":  # combining per-row sums: exact, whatever the groups
            if c.aggregate in ("sum", "count"):
                out.append(sa.func.coalesce(sa.func.sum(value), 0).label(f"c{i}")
                           if c.aggregate == "count" else sa.func.sum(value).label(f"c{i}"))
            elif c.aggregate == "avg":
                out.append((sa.func.sum(base.c[f"c{i}_s"]) /
                            sa.func.nullif(sa.func.sum(base.c[f"c{i}_n"]), 0)).label(f"c{i}"))
            else:
                out.append(getattr(sa.func, c.aggregate)(value).label(f"c{i}"))
        else:
            out.append(getattr(sa.func, c.aggregate)(value).label(f"c{i}"))
        if c.field.type.name == "currency":
            out += _currency_codes(base, i)
    return out


def _levels(d: Definition, base):
    """Every level of grouping in one statement that reads the base once: the finest
    groups' partial aggregates (one scan of the base), then each level — 0 the finest
    groups, then each coarser one, the last the grand total — combined from those, with
    the keys a level drops set to NULL; each level's groups kept up to GROUP_CAP + 1 (which
    says "more") in key order. Once, because MariaDB computes a CTE again for every
    reference to it: a UNION ALL of the levels, each reading the base, summed the
    relationships up once per level (twice the hand-written SQL's time). The levels are
    joined to the finest groups with a LEFT JOIN so the grand total has a row (count 0)
    when no record is in the report."""
    depth = len(d.groups)
    fine = sa.select(*(base.c[f"g{k}"] for k in range(depth)), *_partials(d, base),
                     sa.func.count().label("_count")
                     ).group_by(*(base.c[f"g{k}"] for k in range(depth))).subquery("fine")
    levels = sa.union_all(*(sa.select(sa.literal_column(str(level)).label("_level"))
                            for level in range(depth + 1))).subquery("lv")
    spread = sa.select(
        levels.c._level,
        *(sa.case((levels.c._level < sa.literal_column(str(depth - k)), fine.c[f"g{k}"]))
          .label(f"g{k}") for k in range(depth)),
        *(c for c in fine.c if not c.name.startswith("g")),
    ).select_from(levels.outerjoin(fine, sa.true())).subquery("spread")
    keys = [spread.c[f"g{k}"] for k in range(depth)]
    grouped = sa.select(
        spread.c._level, *keys, *_combined(d, spread),
        sa.func.coalesce(sa.func.sum(spread.c._count), 0).label("_count"),
        sa.func.row_number().over(partition_by=spread.c._level, order_by=keys).label("_n"),
    ).group_by(spread.c._level, *keys).having(sa.or_(
        spread.c._level == sa.literal_column(str(depth)), sa.func.count(spread.c._count) > 0,
    )).subquery("grouped")
    return (sa.select(*(c for c in grouped.c if c.name != "_n"))
            .where(grouped.c._n <= GROUP_CAP + 1)
            .order_by(grouped.c._level, grouped.c._n))


def _partials(d: Definition, base) -> list:
    """Per finest group, what every level combines (_combined): a column's sum, count, min
    or max as such; an average as its sum (c<i>_s) and count (c<i>_n)."""
    out = []
    for i, c in enumerate(d.columns):
        value = base.c[f"c{i}"]
        many = c.source.kind == "many"
        if c.aggregate is None:
            out.append(sa.null().label(f"c{i}"))
        elif c.aggregate == "avg":
            out += [sa.func.sum(base.c[f"c{i}_s"] if many else value).label(f"c{i}_s"),
                    (sa.func.sum(base.c[f"c{i}_n"]) if many else sa.func.count(value))
                    .label(f"c{i}_n")]
        elif c.aggregate == "count" and many:  # the per-row counts, summed
            out.append(sa.func.sum(value).label(f"c{i}"))
        else:
            out.append(getattr(sa.func, c.aggregate)(value).label(f"c{i}"))
        if c.field.type.name == "currency":
            out += _currency_codes(base, i)
    return out


def _currency_codes(table, i: int) -> list:
    """A currency column's lowest and highest code over ``table``'s rows: when they differ,
    the figure adds several currencies and is shown as a plain number, marked mixed."""
    return [sa.func.min(table.c[f"c{i}_lo"]).label(f"c{i}_lo"),
            sa.func.max(table.c[f"c{i}_hi"]).label(f"c{i}_hi")]


def _combined(d: Definition, part) -> list:
    """Each column's aggregate over a set of finest groups' partials (_partials): exact,
    as sums, counts, minima and maxima combine."""
    out = []
    for i, c in enumerate(d.columns):
        value = part.c.get(f"c{i}")
        if c.aggregate is None:
            out.append(sa.null().label(f"c{i}"))
        elif c.aggregate == "avg":
            out.append((sa.func.sum(part.c[f"c{i}_s"]) /
                        sa.func.nullif(sa.func.sum(part.c[f"c{i}_n"]), 0)).label(f"c{i}"))
        elif c.aggregate in ("sum", "count"):
            total = sa.func.sum(value)
            out.append((sa.func.coalesce(total, 0) if c.aggregate == "count" else total)
                       .label(f"c{i}"))
        else:
            out.append(getattr(sa.func, c.aggregate)(value).label(f"c{i}"))
        if c.field.type.name == "currency":
            out += _currency_codes(part, i)
    return out


def _date_part(column, by: str, dialect: str):
    """A date's day, month, quarter or year as sortable text ("2026-03", "2026-Q1")."""
    if dialect == "sqlite":
        fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
        if by == "quarter":
            return sa.func.strftime("%Y", column) + "-Q" + sa.cast(
                (sa.cast(sa.func.strftime("%m", column), sa.Integer) + 2) / 3, sa.String)
        return sa.func.strftime(fmt[by], column)
    if dialect == "postgresql":
        fmt = {"day": "YYYY-MM-DD", "month": "YYYY-MM", "year": "YYYY", "quarter": 'YYYY-"Q"Q'}
        return sa.func.to_char(column, fmt[by])
    fmt = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
    if by == "quarter":
        return sa.func.concat(sa.func.year(column), "-Q", sa.func.quarter(column))
    return sa.func.date_format(column, fmt[by])


def show_sql(compiled: Compiled, stmt, engine) -> str:
    """The statement as the database gets it, values inlined where they can be (Show SQL,
    for administrators)."""
    try:
        return str(stmt.compile(dialect=engine.dialect, compile_kwargs={"literal_binds": True}))
    except Exception:  # noqa: BLE001 — a value type with no literal form: show the binds
        return str(stmt.compile(dialect=engine.dialect))
