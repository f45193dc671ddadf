"""RecordService: the one way records are read and written.

UI, API, import, workflows and integrations all come through here, so every write gets
the same treatment, in one transaction:

    normalize + validate (every bad field reported at once) -> calculated fields
    -> sequence numbers -> crbm_before_save -> write -> change log -> crbm_after_save

Updates are optimistic: a caller passes the record as it read it (``base``), and if
someone saved in between, a ``ConflictError`` names the fields they changed instead of
overwriting them. Deletes are soft (``deleted`` flag) and follow what related fields say
of them (``on_delete``: core/kernel/deletion.py).

Reads select only the fields asked for and join what a row needs (related names,
related values) in the same query; visibility is a SQL predicate, never a Python loop.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from core.kernel import access, sequences
from core.kernel import deletion as deleting
from core.kernel.database import CaseFolded, case_folded, link_columns
from core.kernel.deletion import Deleted
from core.kernel.errors import (N_, ConflictError, InUse, InUseError, Message, NotFoundError,
                                ValidationError)
from core.kernel.fields import OPERATORS, UTC, FieldError, search_key
from core.kernel.plugins import ModuleHooks
from core.kernel.registry import FieldDef, ModuleDef, Registry, sequence_field


@dataclass(frozen=True)
class User:
    """Who is acting. Access control (roles, teams) hangs off the id."""

    id: str
    username: str
    is_admin: bool = False
    # the access epoch read with the user (web requests); None: access control reads it
    access_epoch: int | None = None


SYSTEM_USER = User(id="00000000-0000-0000-0000-000000000000", username="system", is_admin=True)


@dataclass
class RecordChange:
    """One record in a write, as the lifecycle hooks see it."""

    record: dict  # every value the row will hold after the write
    changes: dict[str, tuple[Any, Any]]  # field -> (old, new)
    is_new: bool
    # the module features' data this write gives the record, by feature name (a feature
    # absent: the write leaves its data as it was); e.g. the lines with their totals
    features: dict[str, Any] = field(default_factory=dict)



@dataclass
class Query:
    """What a list shows: filters, quick search, sort, page."""

    filters: Sequence[tuple[str, str, Any]] | Mapping[str, Any] = ()
    search: str | None = None
    sort: str | None = None  # "name" or "-name", comma separated
    limit: int | None = 50
    offset: int = 0
    fields: Sequence[str] | None = None  # None: every field
    labels: bool = False  # add "<field>__label" for related and user fields
    # keyset pagination: only the rows after this one (its sort fields' values and id) in
    # the list's order — pages that stay put while records are added (the API's cursors)
    after: Mapping[str, Any] | None = None


MAX_SEARCH_WORDS = 8  # more words only make the query longer, not the answer better


_COLUMN = object()  # _sort_key: the column itself, not a value


def dicts(result) -> list[dict]:
    """A result's rows as dicts, zipped with its keys once: dict() of each RowMapping looks
    every column up in Python, four times the cost of a list page's 50 rows."""
    keys = tuple(result.keys())
    return [dict(zip(keys, row)) for row in result]


def now() -> dt.datetime:
    return dt.datetime.now(UTC)


class RecordService:
    def __init__(self, engine: sa.Engine, registry: Registry, tables: sa.MetaData, hook,
                 access_control: access.AccessControl | None = None, settings=dict, site=None):
        self.site = site  # passed to the hooks and module features that take it
        self.engine, self.registry, self.tables = engine, registry, tables
        self.hook = hook  # pluggy's pm.hook
        # the record hooks as called for one module (implementations scoped to others,
        # ``hookspecs.for_modules``, left out)
        self._hooks = (site.module_hooks if site is not None else ModuleHooks(hook)).of
        self.access = access_control  # compiles (user, module, action) to a SQL predicate
        self._settings = settings  # () -> the site settings (team inheritance rules)
        self._plans: dict[str, _Plan] = {}
        self._aliases: dict[tuple[str, str], sa.Alias] = {}
        self._dense: dict[tuple, bool] = {}  # lists last counted past the cap (``page``)

    # -- helpers ---------------------------------------------------------------------------

    def table(self, module: ModuleDef) -> sa.Table:
        return self.tables.tables[module.table]

    def _visible(self, module: ModuleDef, table: sa.Table, user: User, action: str,
                 scan: bool = False):
        clause = table.c.deleted.is_(False)
        if self.access is not None and action is not None:  # None: the caller has checked
            clause = sa.and_(clause, self.access.predicate(user, module, action, table, scan))
        return clause

    def _alias(self, table: sa.Table, name: str):
        """A named alias of a table, made once (making one copies every column)."""
        key = (table.name, name)
        if key not in self._aliases:
            self._aliases[key] = table.alias(name)
        return self._aliases[key]

    def validate(self, module_name: str, values: Mapping[str, Any],
                 current: Mapping[str, Any] | None = None) -> dict:
        """field -> problem: what ``create`` (or, given the ``current`` record, ``update``)
        would refuse in ``values``, found without writing anything (related ids are not
        looked up). The API reports these beside what its JSON Schema refused, so a caller
        learns every invalid field at once."""
        module = self.registry.module(module_name)
        if module.name not in self._plans:
            self._plans[module.name] = _plan_for(module, self.registry)
        plan = self._plans[module.name]
        record, errors = self._normalize(module, plan, values, dict(current) if current else None)
        return self._derive(module, plan, record, formulas=False) | errors

    # -- reads -----------------------------------------------------------------------------

    def get(self, module_name: str, record_id: str, user: User, *, labels: bool = False,
            connection: sa.Connection | None = None, action: str = "view") -> dict:
        """One record, if the user may ``action`` it (NotFoundError otherwise: whether a
        record exists is not told to someone who may not see it)."""
        module = self.registry.module(module_name)
        stmt, _ = self.select(module, user, Query(limit=None, labels=labels), action)
        stmt = stmt.where(self.table(module).c.id == str(record_id))
        with self._reading(connection) as conn:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFoundError(f"no {module.label_singular} with id {record_id}")
        return dict(row)

    def list(self, module_name: str, user: User, query: Query | None = None,
             action: str = "list", connection=None) -> list[dict]:
        """Records the user may ``action`` ("list"; "export" and "report" for those)."""
        module = self.registry.module(module_name)
        stmt, _ = self.select(module, user, query or Query(), action)
        with self._reading(connection) as conn:
            return dicts(conn.execute(stmt))

    def _counting(self, module: ModuleDef, user: User, query: Query, cap: int | None, dense=False):
        """SELECT how many match (up to cap + 1), unordered, without ids: the access predicate's
        disjoint parts added up, but for a search or a list known to match past the cap (``dense``)."""
        stmt, table = self.select(module, user, Query(query.filters, query.search, limit=None,
                                                       fields=["id"]), None)
        stmt = stmt.order_by(None).with_only_columns(sa.literal_column("1"))
        parts = [sa.true()] if self.access is None else \
            [self.access.predicate(user, module, "list", table, True)] if query.search or dense \
            else self.access.predicate(user, module, "list", table, "parts")
        stmt = sa.union_all(*(stmt.where(p) for p in parts)) if parts[1:] else stmt.where(parts[0])
        return sa.select(sa.func.count()).select_from(
            (stmt.limit(cap + 1) if cap is not None else stmt).subquery())

    def count(self, module_name: str, user: User, query: Query | None = None,
              cap: int | None = None) -> int:
        """How many records match. With ``cap``, stops counting at cap + 1 ("1,000+")."""
        with self.engine.connect() as conn:
            return conn.execute(self._counting(self.registry.module(module_name), user,
                                               query or Query(), cap)).scalar()

    def page(self, module_name: str, user: User, query: Query, cap: int | None = None
             ) -> tuple[list[dict], int]:
        """One list page and how many records match (up to cap + 1).

        One statement, the count a subquery, when the user may list every record and
        searches nothing, or read this list past the cap last time (``_dense``). Otherwise
        the capped count comes first (0: nothing to read) and decides how the page is read:
        past the cap along the sort index, each row checked; under it gathered and sorted.
        A search always gathers through its keys' indexes: its hits cluster in the sort
        order (a name's first word), where a walk along it may read most of the table."""
        module = self.registry.module(module_name)
        hint = (user.id, module.name, repr(query.filters), query.search)
        dense = cap is not None and hint in self._dense
        if not dense and query.search and cap is not None and query.after is None:
            # Hits (up to the cap) gathered once, counted and the page sorted from them:
            # one pass over the keys' indexes, where a count and a page would make two.
            stmt, _ = self.select(module, user, query, "list", hits_cap=cap)
            with self.engine.connect() as conn:
                rows = dicts(conn.execute(stmt))
            matched = rows[0]["__total"] if rows else \
                self.count(module_name, user, query, cap) if query.offset else 0
            if matched <= cap:
                for row in rows:
                    del row["__total"]
                return rows, matched
            self._dense = {**self._dense, hint: True} if len(self._dense) < 10_000 else {}
            dense = True
        if not dense and (query.search or self.access and self.access.restricts(user, module, "list")):
            matched = self.count(module_name, user, query, cap)
            if not matched:
                return [], 0
            if cap is not None and matched > cap:
                self._dense = {**self._dense, hint: True} if len(self._dense) < 10_000 else {}
            stmt, _ = self.select(module, user, query, "list",
                                   scan=cap is not None and matched > cap and not query.search)
            with self.engine.connect() as conn:
                return dicts(conn.execute(stmt)), matched
        stmt, _ = self.select(module, user, query, "list", scan=dense and not query.search)
        total = self._counting(module, user, query, cap, dense).scalar_subquery()
        with self.engine.connect() as conn:
            rows = dicts(conn.execute(stmt.add_columns(total.label("__total"))))
        if dense and (rows[0]["__total"] if rows else 0) <= cap:
            self._dense.pop(hint, None)
        if not rows:  # past the last page the count still matters ("0 of 12"); on the first, 0
            return rows, self.count(module_name, user, query, cap) if query.offset or query.after else 0
        for row in rows[1:]:
            del row["__total"]
        return rows, rows[0].pop("__total")

    def related(self, module_name: str, record_id: str, relationship: str, user: User,
                query: Query | None = None) -> list[dict]:
        """Records of the other module in a relationship (a subpanel)."""
        stmt = self.related_select(module_name, record_id, relationship, user, query)
        with self.engine.connect() as conn:
            return dicts(conn.execute(stmt))

    def related_select(self, module_name: str, record_id: str, relationship: str, user: User,
                       query: Query | None = None) -> sa.Select:
        """``related``'s statement: for combining several in one (a detail page's counts);
        ``record_id`` may be a bind parameter (a statement built once, run for any record)."""
        module = self.registry.module(module_name)
        record_id = record_id if isinstance(record_id, sa.BindParameter) else str(record_id)
        if relationship not in module.relationships:
            raise NotFoundError(f"{module.label} has no relationship {relationship!r}")
        rel = module.relationships[relationship]
        other = self.registry.module(rel["module"])
        query = query or Query()
        stmt, other_table = self.select(other, user, query, "list")
        if rel["kind"] == "one_to_many":
            stmt = stmt.where(other_table.c[rel["field"]] == record_id)
        else:
            link = self.tables.tables[module.link_table(relationship)]
            mine, theirs = link_columns(module, relationship)
            stmt = stmt.join(link, link.c[theirs] == other_table.c.id) \
                .where(link.c[mine] == record_id)
        return stmt

    def allowed(self, module_name: str, record_ids: Sequence[str], user: User, action: str,
                *, connection=None, deleted: bool = False) -> set[str]:
        """Which of these records the user may ``action``: one query per 500 ids.
        ``deleted``: count records deleted in this transaction too (announcing a delete
        to whoever could see the record); ``connection``: see what it has written."""
        with self._reading(connection) as conn:
            return self._allowed(conn, self.registry.module(module_name), record_ids, user,
                                 action, deleted)

    def _allowed(self, conn, module: ModuleDef, record_ids: Sequence[str], user: User,
                 action: str, deleted: bool = False) -> set[str]:
        table = self.table(module)
        ids = [str(i) for i in record_ids]
        visible = self._visible(module, table, user, action)
        if deleted:  # the same rights, whatever the deleted flag says
            visible = self.access.predicate(user, module, action, table) \
                if self.access is not None else sa.true()
        found: set[str] = set()
        for start in range(0, len(ids), 500):  # IN lists stay a sane size
            found |= set(conn.execute(sa.select(table.c.id).where(
                table.c.id.in_(ids[start:start + 500]), visible)).scalars())
        return found

    def permissions(self, module_name: str, record_id: str, user: User,
                    actions: Sequence[str] = ("edit", "delete")) -> dict[str, bool]:
        """action -> whether the user may do it to this record (which buttons to show),
        in one query."""
        module = self.registry.module(module_name)
        table = self.table(module)
        columns = [sa.case((self._visible(module, table, user, a), 1), else_=0).label(a)
                   for a in actions]
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*columns).where(table.c.id == str(record_id))).first()
        return {a: bool(row and row._mapping[a]) for a in actions}

    def teams_of(self, module_name: str, record_ids: Sequence[str]) -> dict[str, list[str]]:
        """record id -> ids of the teams it belongs to."""
        with self.engine.connect() as conn:
            return access.record_teams(conn, self.tables, module_name, record_ids)

    def set_teams(self, module_name: str, record_ids: Sequence[str], user: User, *,
                  add: Sequence[str] = (), remove: Sequence[str] = ()) -> int:
        """Add records to teams and take them out of others ("Teams: mass assign"), for the
        records among ``record_ids`` the user may edit. Returns how many that was."""
        module = self.registry.module(module_name)
        if not module.features.get("team_owned"):
            raise ValidationError({"teams": Message(N_("%(module)s records have no teams"),
                                                    module=module.label)})
        self._check_teams(add)
        with self.engine.begin() as conn:
            editable = sorted(self._allowed(conn, module, record_ids, user, "edit"))
            access.add_record_teams(conn, self.tables, module.name, editable, add)
            if remove:
                access.remove_record_teams(conn, self.tables, module.name, editable, remove)
        return len(editable)

    def _check_teams(self, team_ids: Sequence[str]) -> None:
        if not team_ids:
            return
        teams = self.tables.tables["crbm_teams"]
        with self.engine.connect() as conn:
            found = set(conn.execute(sa.select(teams.c.id)
                                     .where(teams.c.id.in_(list(team_ids)))).scalars())
        missing = [t for t in team_ids if t not in found]
        if missing:
            raise ValidationError({"teams": Message(N_("no team with id %(id)s"), id=missing[0])})

    def change_log(self, module_name: str, record_id: str, record: Mapping | None = None
                   ) -> list[dict]:
        """A record's history, oldest first: its "created" entry (``CREATED`` in the field
        column: who made it and when), then every logged change.

        The created entry is the record's own ``created_at``/``created_by`` — stamped by
        the save pipeline on every create, never changed afterwards — read in the same
        query rather than stored a second time: a row per created record in the log cost
        a quarter of ``create_many``'s speed (bench/records.py), for the same two facts;
        a caller that has read the ``record`` passes it and saves that query."""
        module = self.registry.module(module_name)
        log, table = self.tables.tables["crbm_change_log"], self.table(module)
        stmt = sa.select(log).where(log.c.module == module_name, log.c.record_id == str(record_id)) \
            .order_by(log.c.changed_at, log.c.id)
        with self.engine.connect() as conn:
            created = record if record is not None else conn.execute(
                sa.select(table.c.created_at, table.c.created_by)
                .where(table.c.id == str(record_id))).mappings().first()
            entries = dicts(conn.execute(stmt))
        if created is None or not module.features.get("audited"):
            return entries
        return [{"id": None, "module": module_name, "record_id": str(record_id),
                 "field": CREATED, "old_value": None, "new_value": None,
                 "changed_at": created["created_at"], "changed_by": created["created_by"]},
                *entries]

    def _reading(self, connection):
        """The caller's connection (left open), or a new one."""
        return nullcontext(connection) if connection is not None else self.engine.connect()

    def select(self, module: ModuleDef, user: User, query: Query, action: str,
               scan: bool = False, hits_cap: int | None = None):
        """(SELECT, table) of what ``user`` may ``action`` by ``query``: every read's base."""
        table = self.table(module)
        names = list(query.fields) if query.fields is not None else list(module.fields)
        if "id" not in names:
            names.insert(0, "id")
        columns, joins = [], []
        for name in names:
            f = module.fields.get(name)
            if f is None:
                raise ValidationError({name: Message(N_("%(module)s has no field %(field)s"),
                                                     module=module.label, field=repr(name))})
            if f.stored:
                columns.append(table.c[name])
            elif f.type.source(self.registry, module, f) is not None:  # a related value
                link = module.fields[f.spec["related_field"]]
                target = self.registry.module(link.spec["module"])
                alias = self._alias(self.table(target), f"rv_{name}")
                joins.append((alias, sa.and_(alias.c.id == table.c[link.name],
                                             self._visible(target, alias, user, "view"))))
                columns.append(alias.c[f.spec["source_field"]].label(name))
            if query.labels and f.type.is_link and "modules" not in f.spec:
                labels, join = self._label_join(table, f, name, user)
                if labels:
                    columns.extend(labels)
                    joins.append(join)
        order = self._order(module, table, query.sort)
        where = [self._visible(module, table, user, action, scan or bool(query.search)),
                 *self._filters(module, table, query.filters)]
        if query.search:
            where.append(self._search(module, table, query.search, scan))
        if query.after is not None:
            where.append(self._after(module, table, query.sort, query.after))
        if query.search and query.limit is not None and not scan:
            # A page of hits: the hits gathered through the search keys' indexes, which
            # carry the sort key (database.module_table), sorted, and only the page's rows
            # read. On PostgreSQL the hits come first (OFFSET 0): its planner would rather
            # walk the sort index, but a name's first word clusters there, far from its start.
            # ``hits_cap``: the hits (at most cap + 1) kept in a CTE and counted as __total.
            hits = table
            if hits_cap is not None or self.engine.dialect.name == "postgresql":
                hits = sa.select(table.c.id, *(table.c[n] for n, _ in self.sort_keys(
                    module, query.sort) if n != "id")).where(*where)
                hits = hits.limit(hits_cap + 1).cte("hits") if hits_cap is not None \
                    else hits.offset(0).subquery("hits")
            picked = sa.select(hits.c.id).where(*(where if hits is table else ())) \
                .order_by(*self._order(module, hits, query.sort)) \
                .limit(query.limit).offset(query.offset).subquery("picked")
            stmt = sa.select(*columns).select_from(table.join(picked, picked.c.id == table.c.id))
            if hits_cap is not None:
                stmt = stmt.add_columns(sa.select(sa.func.count()).select_from(hits)
                                        .scalar_subquery().label("__total"))
        else:
            stmt = sa.select(*columns).select_from(table).where(*where)
            if query.limit is not None:
                stmt = stmt.limit(query.limit).offset(query.offset)
        for alias, on in joins:
            stmt = stmt.outerjoin(alias, on)
        return stmt.order_by(*order), table

    def _label_join(self, table: sa.Table, f: FieldDef, name: str, user: User):
        """The name of the record a related field points to — only if the user may see
        that record (a name is data too) — and, as ``<field>__deleted``, whether it was
        deleted: a link left to a deleted record reads "Acme (deleted)" to whoever may
        see Acme, not "(no access)"."""
        if f.type.label_source is not None:  # a user: a kernel table, seen by everyone
            users = self._alias(self.tables.tables[f.type.label_source], f"lbl_{name}")
            label = sa.func.coalesce(users.c.display_name, users.c.username)
            return [label.label(f"{name}__label")], (users, users.c.id == table.c[name])
        target = self.registry.module(f.spec["module"])
        if target.name_field is None:
            return [], None
        alias = self._alias(self.table(target), f"lbl_{name}")
        seen = self.access.predicate(user, target, "view", alias) \
            if self.access is not None else sa.true()
        return [alias.c[target.name_field].label(f"{name}__label"),
                alias.c.deleted.label(f"{name}__deleted")], \
            (alias, sa.and_(alias.c.id == table.c[name], seen))

    def _filters(self, module: ModuleDef, table: sa.Table, filters) -> list:
        items = filters.items() if isinstance(filters, Mapping) else filters
        clauses, errors = [], {}
        for item in items:
            name, op, value = (item[0], "eq", item[1]) if len(item) == 2 else item
            f = module.fields.get(name)
            if f is None or not f.stored:
                errors[name] = Message(N_("no such field to filter on"))
                continue
            if op not in OPERATORS:
                errors[name] = Message(N_("unknown operator %(op)s"), op=repr(op))
                continue
            if op not in f.type.filter_operators:
                errors[name] = Message(N_("%(op)s is not an operator of this field"), op=repr(op))
                continue
            try:  # the type turns operator and value into SQL (FieldType.filter_clause)
                clauses.append(f.type.filter_clause(table.c[name], op, value, f.spec))
            except FieldError as exc:
                errors[name] = exc.message
        if errors:
            raise ValidationError(errors)
        return clauses

    def _search(self, module: ModuleDef, table: sa.Table, text: str, scan: bool = False):
        """Quick search, set-based: the text starts one of the searched fields, or — more
        than one word — every word starts one of them, in any order ("Elizabeth Hurley",
        "hurley eliz" find first name Elizabeth, last name Hurley), regardless of case and
        accents: ranges of the fields' search keys (``fields.search_key``), which lead the
        query (access is then checked row by row); ``scan``: checked along the sort index."""
        columns = [sa.func.coalesce(table.c[f"_sk_{n}"], "") if scan else table.c[f"_sk_{n}"]
                   for n in module.search_fields]
        if not columns:
            return sa.true()

        def starts(word: str):  # U+10FFFF: the last code point, after any that may follow
            key = search_key(word)
            return sa.or_(*(sa.and_(c >= key, c < key + "\U0010ffff") for c in columns))

        words = list(dict.fromkeys(text.split()))[:MAX_SEARCH_WORDS]
        if len(words) < 2:
            return starts(text)
        driver = max(reversed(words), key=len)  # same answer, led by the longest word's ranges
        return sa.and_(sa.or_(starts(text), starts(driver)),
                       sa.or_(starts(text), sa.and_(*(starts(w) for w in words if w != driver))))

    def sort_keys(self, module: ModuleDef, sort: str | None) -> list[tuple[str, bool]]:
        """(field, descending) per sort key, the module's default order when none."""
        sort = sort or module.default_sort
        keys = []
        for key in filter(None, (s.strip() for s in sort.split(","))):
            name = key.lstrip("-")
            f = module.fields.get(name)
            if f is None or not f.stored:
                raise ValidationError({name: Message(N_("no such field to sort by"))})
            keys.append((name, key.startswith("-")))
        return keys

    def _sort_key(self, module: ModuleDef, name: str, value, table=None):
        """What rows are ordered by for field ``name``: its column, or ``value`` (a bind
        parameter compared the same way); text regardless of case on every database
        (``database.CaseFolded``, which is also the field's sort index)."""
        column = (self.table(module) if table is None else table).c[name]
        key = column if value is _COLUMN else value
        return CaseFolded(key) if case_folded(module.fields[name], column) else key

    def _order(self, module: ModuleDef, table: sa.Table, sort: str | None) -> list:
        order, keys = [], self.sort_keys(module, sort)
        for name, desc in keys:
            key = self._sort_key(module, name, _COLUMN, table)
            order.append(key.desc() if desc else key.asc())
        # a stable order, so pages never overlap; id goes the last key's way, so one (key,
        # id) index serves both ways and the reverse order is every key flipped
        order.append(table.c.id.desc() if keys and keys[-1][1] else table.c.id)
        return order

    def _after(self, module: ModuleDef, table: sa.Table, sort: str | None, after: Mapping):
        """Rows that come after ``after`` in the order ``_order`` gives: for each key, the
        earlier keys tie and this one is beyond, compared as ``_order`` compares them (text
        regardless of case). NULLs sort where the database puts them (PostgreSQL: last
        ascending, but text sorts its NULLs as "", first; SQLite and MariaDB: first), so
        they are placed alike."""
        nulls_high = self.engine.dialect.name == "postgresql"
        beyond_any, ties, keys = [], [], self.sort_keys(module, sort)
        for name, desc in [*keys, ("id", bool(keys) and keys[-1][1])]:
            column, value = table.c[name], after.get(name)
            key = column if name == "id" else self._sort_key(module, name, _COLUMN)
            never_null = nulls_high and isinstance(key, CaseFolded)  # "" for NULL there
            if never_null and value is None:
                value = ""
            nulls_last = nulls_high != desc and not never_null
            if value is None:
                beyond = sa.false() if nulls_last else column.is_not(None)
                tie = column.is_(None)
            else:
                value = sa.literal(value, column.type)  # a bind parameter (booleans too)
                if name != "id":
                    value = self._sort_key(module, name, value)
                beyond = key < value if desc else key > value
                if nulls_last:
                    beyond = sa.or_(beyond, column.is_(None))
                tie = key == value
            beyond_any.append(sa.and_(*ties, beyond))
            ties.append(tie)
            if len(ties) == 1:  # the first key's range, so that every planner seeks its index
                seek = sa.true() if value is None or nulls_last else key <= value if desc \
                    else key >= value
        return sa.and_(seek, sa.or_(*beyond_any))

    # -- writes ----------------------------------------------------------------------------

    def _writing(self, connection):
        """The caller's transaction (several writes that stand or fall together, like a
        conversion), or a new one."""
        return nullcontext(connection) if connection is not None else self.engine.begin()

    def create(self, module_name: str, values: Mapping[str, Any], user: User, *,
               teams: Sequence[str] = (), connection=None) -> dict:
        """A new record. Team-owned records get ``teams`` plus those the inheritance rules
        give them. Returns the record as stored."""
        module = self.registry.module(module_name)
        self._check_teams(teams)
        with self._writing(connection) as conn:
            [change] = self._save(conn, module, user, [values], None, teams).batch
            # what they just wrote, even if their rights will not show it to them again
            return self.get(module_name, change.record["id"], user, connection=conn, action=None)

    def create_many(self, module_name: str, rows: Iterable[Mapping[str, Any]], user: User, *,
                    connection=None) -> list[str]:
        """Create many records in one transaction (imports, demo data; or the caller's). All or nothing."""
        module, rows = self.registry.module(module_name), list(rows)
        if not rows:
            return []
        with self._writing(connection) as conn:
            return [c.record["id"] for c in self._save(conn, module, user, rows, None).batch]

    def update(self, module_name: str, record_id: str, values: Mapping[str, Any], user: User,
               *, base: Mapping[str, Any] | None = None,
               teams: Sequence[str] | None = None, connection=None) -> dict:
        """Change some fields. ``base`` is the record as the caller read it (with its
        ``version``); if it is stale, nothing is written and ``ConflictError`` says why.
        ``teams``, when given, become the record's teams in the same transaction."""
        module = self.registry.module(module_name)
        if teams is not None:
            self._check_teams(teams)
        with self._writing(connection) as conn:
            current = self._current(conn, module, record_id, user)
            if base is not None and "version" in base and base["version"] != current["version"]:
                raise ConflictError(str(record_id), _differences(module, base, current))
            self._save(conn, module, user, [values], [current], teams)
            return self.get(module_name, record_id, user, connection=conn)

    def update_many(self, module_name: str, record_ids: Sequence[str],
                    values: Mapping[str, Any], user: User, *, connection=None) -> int:
        """Give many records the same values (mass update), all or nothing.

        One locking read of every record, then the save pipeline once for the lot (one
        validation pass, one hook call, one executemany). Returns how many records
        actually changed.
        """
        module = self.registry.module(module_name)
        table = self.table(module)
        with self._writing(connection) as conn:
            currents = dicts(conn.execute(
                sa.select(*(table.c[f.name] for f in module.stored_fields))
                .where(table.c.id.in_([str(i) for i in record_ids]),
                       self._visible(module, table, user, "edit"))
                .order_by(table.c.id).with_for_update()))
            if not currents:
                return 0
            return len(self._save(conn, module, user, [values] * len(currents), currents).batch)

    # -- the save pipeline -----------------------------------------------------------------

    def _save(self, conn, module: ModuleDef, user: User, rows: list,
              currents: list[dict] | None, teams: Sequence[str] | None = None) -> _Save:
        """Run ``SAVE_STEPS`` on one write: new records (``currents`` None) or changes to
        the records ``currents`` (as stored, locked or version-checked by the caller).
        Every step works on the whole batch; a step that has nothing to do costs nothing.
        A write that changes nothing stops after "prepare" (only an update's ``teams``
        are still set)."""
        save = _Save(conn, module, user, rows, currents, teams)
        for step in SAVE_STEPS:
            getattr(self, f"_step_{step}")(save)
            if not save.batch:
                if currents is not None and teams is not None:
                    self._step_teams(save)
                break
        return save

    def _step_prepare(self, save: _Save) -> None:
        """Normalize, validate, calculate (``_prepare``: one error for the lot); a new
        record gets its id, stamps and its creator as owner; an update keeps only the
        records something changes in."""
        module, user, rows = save.module, save.user, save.rows
        if save.is_new:
            if "assigned_user_id" in module.fields and user.id != SYSTEM_USER.id:
                # a new record is its creator's unless the writer names someone (or
                # nobody): web, API, bulk, imports and conversions alike — an Owner-level
                # creator would not see it otherwise
                rows = [row if "assigned_user_id" in row else {**row, "assigned_user_id": user.id}
                        for row in rows]
            for record, changes, data in self._prepare(save.conn, module, rows, user, None):
                record["id"] = record.get("id") or str(uuid.uuid4())
                record.update(created_at=save.stamp, created_by=user.id,
                              modified_at=save.stamp, modified_by=user.id, deleted=False,
                              version=1)
                save.batch.append(RecordChange(record, changes, True, data))
            return
        prepared = self._prepare(save.conn, module, rows, user, save.currents)
        save.batch = [RecordChange(record, changes, is_new=False, features=data)
                      for record, changes, data in prepared
                      if changes or data]

    def _step_number(self, save: _Save) -> None:
        if save.is_new:
            self._number(save.conn, save.module, [c.record for c in save.batch], save.stamp.date())

    def _step_before_save(self, save: _Save) -> None:
        self._hooks(save.module).crbm_before_save(
            site=self.site, module=save.module, batch=save.batch, user=save.user,
            connection=save.conn)
        if not save.is_new:  # hooks may have adjusted values
            for change in save.batch:
                change.changes = _diff(save.module, save.current(change), change.record)
        self._check_transitions(save)  # after the hooks: what they set is checked too

    def _check_transitions(self, save: _Save) -> None:
        """A module that declares its status field's transitions (``features.transitions``)
        changes that field only through ``transition``: any other change, on any path
        (form, API, import, mass update, a hook), is refused naming the field, from and
        to. Moves among its ``free`` values need no action. New records may start at any
        value."""
        spec = save.module.features.get("transitions")
        if not spec or save.is_new:
            return
        name = spec["field"]
        moving = _TRANSITIONS.get() or {}
        free = frozenset(spec.get("free", ()))
        f = save.module.fields[name]
        errors = {}
        labels = self._state_labels(f)
        for index, change in enumerate(save.batch):
            if name not in change.changes:
                continue
            old, new = (status_value(f, v) for v in change.changes[name])
            if old == new or moving.get((save.module.name, change.record["id"])) == (old, new) \
                    or (old in free and new in free):  # a declared action, or a free move
                continue
            action = next((a for a in spec["actions"] if old in a["from"] and a["to"] == new), None)
            values = {"field": f.label, "from": labels.get(old, old or "—"),
                      "to": labels.get(new, new or "—")}
            message = Message(N_("%(field)s cannot go from %(from)s to %(to)s"), **values) \
                if action is None else \
                Message(N_("%(field)s goes from %(from)s to %(to)s only through "
                           "\u201c%(action)s\u201d"), action=Message(action["label"]), **values)
            errors[name if len(save.batch) == 1 else f"row {index + 1}: {name}"] = message
        if errors:
            raise ValidationError(errors)

    def _state_labels(self, f) -> dict:
        """A status field's values -> what a message says of them."""
        if f.type.name == "checkbox":
            return {True: Message(N_("Yes")), False: Message(N_("No"))}
        return dict(self.registry.choices(f))

    def transition(self, module_name: str, record_id: str, action_name: str, user: User, *,
                   values: Mapping[str, Any] | None = None,
                   base: Mapping[str, Any] | None = None, connection=None) -> dict:
        """Perform one of the module's declared transitions (``features.transitions``): the
        status field goes to the action's ``to`` — if it holds one of its ``from`` values and
        the user has the action's right on the record — with ``values`` saved alongside,
        through the whole save pipeline. Returns the record as stored."""
        module = self.registry.module(module_name)
        spec = module.features.get("transitions") or {}
        action = next((a for a in spec.get("actions", ()) if a["name"] == action_name), None)
        if action is None:
            raise NotFoundError(f"{module.label} have no action {action_name!r}")
        name = spec["field"]
        with self._writing(connection) as conn:
            current = self._current(conn, module, record_id, user,
                                    action=action.get("right", "edit"))
            f = module.fields[name]
            state = status_value(f, current[name])
            if state not in action["from"]:
                labels = self._state_labels(f)
                raise ValidationError({name: Message(
                    N_("\u201c%(action)s\u201d is not possible while %(field)s is %(value)s"),
                    action=Message(action["label"]), field=f.label,
                    value=labels.get(state, state or "—"))})
            moves = {**(_TRANSITIONS.get() or {}), (module.name, current["id"]): (state,
                                                                          action["to"])}
            token = _TRANSITIONS.set(moves)
            try:
                return self.update(module_name, record_id, {**(values or {}), name: action["to"]},
                                   user, base=base, connection=conn)
            finally:
                _TRANSITIONS.reset(token)

    def _step_write(self, save: _Save) -> None:
        """New records: one executemany INSERT. Changes: one executemany UPDATE of the
        columns any record changes, each row only if its version is still the one read
        (a single record that lost that race is a ``ConflictError``)."""
        module, table, records = save.module, self.table(save.module), \
            [c.record for c in save.batch]
        if save.is_new:  # with quick search's keys; without the columns no record fills
            rows = _filled(table, [{**r, **search_keys(module, r)} for r in records])
            with _UniqueGuard(self, module, records):
                save.conn.execute(table.insert(), rows)
            return
        columns = sorted({name for c in save.batch for name in c.changes})
        keyed = [f"_sk_{n}" for n in module.search_fields if n in columns]
        params = []
        for change in save.batch:
            record, version = change.record, save.current(change)["version"]
            record.update(modified_at=save.stamp, modified_by=save.user.id, version=version + 1)
            params.append({**{f"v_{c}": record[c] for c in columns}, "b_id": record["id"],
                           "b_version": version, "v_modified_at": save.stamp,
                           "v_modified_by": save.user.id, "v_version": version + 1,
                           **{f"v_{k}": v for k, v in search_keys(module, record, columns).items()}})
        targets = [*columns, *keyed, "modified_at", "modified_by", "version"]
        statement = table.update().where(table.c.id == sa.bindparam("b_id"),
                                         table.c.version == sa.bindparam("b_version")) \
            .values({c: sa.bindparam(f"v_{c}") for c in targets})
        with _UniqueGuard(self, module, records, [save.current(c) for c in save.batch]):
            written = save.conn.execute(statement, params if len(params) > 1 else params[0])
        if len(params) == 1 and written.rowcount != 1:  # someone committed in between
            current = save.currents[0]
            latest = self._current(save.conn, module, current["id"], save.user)
            raise ConflictError(str(current["id"]), _differences(module, current, latest))

    def _step_lines(self, save: _Save) -> None:
        """Each module feature writes the data the write gave it (line items: the lines)."""
        for change in save.batch:
            for name, data in change.features.items():
                self.registry.features[name].write(self.site, save.conn, save.module,
                                                   change.record["id"], data)

    def _step_change_log(self, save: _Save) -> None:
        """The audited fields an update changed. A new record's "created" entry is its
        own stamps (``created_at``/``created_by``, written by "prepare"), which
        ``change_log`` reads as the history's first line."""
        if not save.is_new:
            self._log_changes(save.conn, save.module,
                              [(c.record["id"], c.changes) for c in save.batch], save.user)

    def _step_teams(self, save: _Save) -> None:
        """New team-owned records: the teams asked for plus what the inheritance rules
        give; an update given ``teams``: exactly those."""
        module, conn = save.module, save.conn
        if not module.features.get("team_owned"):
            return
        if save.is_new:
            self._give_teams(conn, module, [c.record for c in save.batch], save.user,
                             save.teams or ())
        elif save.teams is not None:
            ids = [c["id"] for c in save.currents]
            had = access.record_teams(conn, self.tables, module.name, ids)
            for record_id in ids:
                mine = set(had.get(record_id, ()))
                access.add_record_teams(conn, self.tables, module.name, [record_id],
                                        sorted(set(save.teams) - mine))
                access.remove_record_teams(conn, self.tables, module.name, [record_id],
                                           sorted(mine - set(save.teams)))

    def _step_after_save(self, save: _Save) -> None:
        self._hooks(save.module).crbm_after_save(
            site=self.site, module=save.module, batch=save.batch, user=save.user,
            connection=save.conn)

    def delete(self, module_name: str, record_id: str, user: User) -> None:
        """Soft delete: the record disappears from every read but stays in the table.
        ``InUseError`` while other records depend on it (see ``delete_many``)."""
        if self.delete_many(module_name, [record_id], user) == 0:
            module = self.registry.module(module_name)
            raise NotFoundError(f"no {module.label_singular} with id {record_id}")

    def delete_many(self, module_name: str, record_ids: Sequence[str], user: User, *,
                    skip_in_use: bool = False, connection=None) -> Deleted:
        """Soft-delete the records among ``record_ids`` the user may delete, in one
        transaction, with what the metadata deletes along (``on_delete``: core.kernel.deletion).

        A record that live records depend on (``restrict``) refuses the lot with an
        ``InUseError`` naming what refers to it — or, with ``skip_in_use`` (mass delete),
        stays, and the result's ``in_use`` says which and why. One locking read, a query
        per referencing field, one hook call each side per module, one UPDATE per module.
        Returns how many of ``record_ids`` were deleted."""
        module = self.registry.module(module_name)
        table = self.table(module)
        with self._writing(connection) as conn:
            records = dicts(conn.execute(
                sa.select(*(table.c[f.name] for f in module.stored_fields))
                .where(table.c.id.in_([str(i) for i in record_ids]),
                       self._visible(module, table, user, "delete"))
                .order_by(table.c.id).with_for_update()))
            if not records:
                return Deleted(0)
            deletion = deleting.plan(self, conn, module, records)
            left: list[InUse] = []
            while skip_in_use and deletion.in_use:  # leaving one out may strand another
                left += deletion.in_use
                blocked = {u.record_id for u in deletion.in_use}
                records = [r for r in records if r["id"] not in blocked]
                if not records:
                    return Deleted(0, left)
                deletion = deleting.plan(self, conn, module, records)
            for other, rows in deletion.batches():
                self._hooks(other).crbm_before_delete(site=self.site, module=other, records=rows,
                    user=user, connection=conn)
            if deletion.in_use:  # after the hooks: a plugin's own refusal says it better
                raise InUseError(deletion.in_use)
            stamp = now()
            for other, rows in deletion.batches():
                other_table = self.table(other)
                for ids in deleting.chunks([r["id"] for r in rows]):
                    conn.execute(other_table.update().where(other_table.c.id.in_(ids))
                                 .values(deleted=True, modified_at=stamp, modified_by=user.id,
                                         version=other_table.c.version + 1))
            deleting.clear_links(self, conn, deletion, user, stamp)
            for other, rows in deletion.batches():
                self._hooks(other).crbm_after_delete(site=self.site, module=other, records=rows,
                    user=user, connection=conn)
            return Deleted(len(records), left)

    def recalculate(self, module_name: str, names: Iterable[str], *, connection,
                    batch: int = 1_000) -> Recalculated:
        """Compute the calculated fields ``names`` (and those that read them) for every
        live record, in the caller's transaction: a field the Studio adds, or whose
        formula changes, holds its value in the records that exist, not only in those
        saved from now on.

        The values are computed in Python exactly as a save would (a formula has no
        SQL form, and its decimal rules are its own), in batches read by id (keyset) and
        written with one executemany per batch, only for rows whose value changes. These
        are derived values: no save hooks, no version, no change log. A record the formula
        fails for is left blank and counted."""
        module = self.registry.module(module_name)
        plan = _plan_for(module, self.registry)
        table = self.table(module)
        reads = {f.name: f.type.reads(f.spec) for f in plan.calculated}
        affected = set(names)
        for f in plan.calculated:  # in save order: a formula may read an earlier one
            if reads[f.name] & affected:
                affected.add(f.name)
        written = [f.name for f in plan.calculated if f.name in affected]
        if not written:
            return Recalculated(0, 0, None)
        read = {"id"} | {f.name for f in plan.calculated} | \
            {n for used in reads.values() for n in used if n in table.c}
        keyed = [f"_sk_{n}" for n in module.search_fields if n in written]  # searched by
        update = table.update().where(table.c.id == sa.bindparam("b_id")) \
            .values({n: sa.bindparam(f"v_{n}") for n in [*written, *keyed]})
        changed = failed = 0
        first_problem = None
        last = None
        while True:
            stmt = sa.select(*(table.c[n] for n in sorted(read))) \
                .where(table.c.deleted.is_(False)).order_by(table.c.id).limit(batch)
            if last is not None:
                stmt = stmt.where(table.c.id > last)
            rows = connection.execute(stmt).mappings().all()
            if not rows:
                break
            params = []
            for row in rows:
                record = dict(row)
                for f in plan.calculated:
                    try:
                        record[f.name] = f.type.compute(f, record)
                    except FieldError as exc:
                        record[f.name] = None
                        if f.name in affected:
                            failed += 1
                            first_problem = first_problem or f"{f.name}: {exc}"
                if any(record[n] != row[n] for n in written):
                    params.append({"b_id": row["id"], **{f"v_{n}": record[n] for n in written},
                                   **{f"v_{k}": v for k, v in
                                      search_keys(module, record, written).items()}})
            if params:
                connection.execute(update, params)
                changed += len(params)
            last = rows[-1]["id"]
        return Recalculated(changed, failed, first_problem)

    def set_derived(self, module_name: str, values: Mapping[str, Mapping[str, Any]], *,
                    connection, reason: str | None = None) -> list[str]:
        """Write values the system works out — a balance, an amount due, a paid flag —
        into records: ``values`` is {record id: {field: value}}, ``connection`` the
        transaction the values were worked out in (a save hook's).

        The one way a plugin writes a module's table. Set-based: one read of the records
        (500 ids a query), one executemany for those whose values move; unchanged rows
        are not written. A written record gets a new ``version`` (whoever has it open
        learns it moved) and ``modified_at``; ``modified_by`` still names the last
        person who edited it. Where the module is audited, every moved value goes to the
        change log as done by the system, and ``crbm_after_derived`` tells the rest of
        the system (the webhook outbox). The save hooks are not called: they refuse hand
        edits of these fields, and would recurse. Values are normalized by their field
        types (a sum SQLite hands back as a float becomes an exact decimal). Returns the
        ids of the records written."""
        module = self.registry.module(module_name)
        table = self.table(module)
        names = sorted({name for fields in values.values() for name in fields})
        for name in names:
            f = module.fields.get(name)
            if f is None or not f.stored or name in _STAMPS:
                raise ValueError(f"set_derived: {module.name} has no field {name!r} "
                                 "a plugin may set")
        ids = sorted({str(i) for i in values})
        currents: dict[str, dict] = {}
        for start in range(0, len(ids), 500):  # IN lists stay a sane size
            currents.update((row["id"], dict(row)) for row in connection.execute(
                sa.select(*(table.c[f.name] for f in module.stored_fields))
                .where(table.c.id.in_(ids[start:start + 500]))).mappings())
        stamp = now()
        batch: list[RecordChange] = []
        for record_id, fields in values.items():
            current = currents.get(str(record_id))
            if current is None:
                continue
            record = dict(current)
            for name, value in fields.items():
                f = module.fields[name]
                record[name] = None if value is None else f.type.normalize(value, f.spec)
            changes = {name: (current[name], record[name]) for name in fields
                       if current[name] != record[name]}
            if changes:
                record.update(version=current["version"] + 1, modified_at=stamp)
                batch.append(RecordChange(record, changes, is_new=False))
        if not batch:
            return []
        keyed = [f"_sk_{n}" for n in module.search_fields if n in names]
        connection.execute(
            table.update().where(table.c.id == sa.bindparam("b_id"))
            .values({**{name: sa.bindparam(f"v_{name}") for name in [*names, *keyed]},
                     "version": table.c.version + 1, "modified_at": stamp}),
            [{"b_id": c.record["id"], **{f"v_{n}": c.record[n] for n in names},
              **{f"v_{k}": v for k, v in search_keys(module, c.record, names).items()}}
             for c in batch])
        if module.features.get("audited"):  # the figures are what the log is for
            self._log_changes(connection, module, [(c.record["id"], c.changes) for c in batch],
                              SYSTEM_USER, every_field=True)
        self._hooks(module).crbm_after_derived(site=self.site, module=module, batch=batch,
                                     reason=reason, connection=connection)
        return [c.record["id"] for c in batch]

    def lock(self, module_name: str, record_ids: Iterable[str], *, connection) -> None:
        """Hold these records' row locks for the rest of ``connection``'s transaction (a
        plugin serializing the writers of one record: a quote being converted). A write
        that changes nothing, which locks on every database (SQLite has no SELECT ... FOR
        UPDATE, and its driver starts a transaction only at the first write); in id order,
        so two writers never wait on each other crosswise."""
        table = self.table(self.registry.module(module_name))
        for record_id in sorted({str(i) for i in record_ids}):
            connection.execute(table.update().where(table.c.id == record_id)
                               .values(version=table.c.version))

    def link(self, module_name: str, record_id: str, relationship: str, other_id: str,
             user: User) -> None:
        """Add a many-to-many link (linking twice is harmless)."""
        module, link, mine, theirs = self._link_parts(module_name, relationship)
        other = self.registry.module(module.relationships[relationship]["module"])
        with self.engine.begin() as conn:
            self._current(conn, module, record_id, user, action="edit")
            self._current(conn, other, other_id, user, action="view")
            exists = conn.execute(sa.select(sa.literal(1)).where(
                link.c[mine] == str(record_id), link.c[theirs] == str(other_id))).first()
            if not exists:
                conn.execute(link.insert().values({mine: str(record_id), theirs: str(other_id),
                                                   "created_at": now(), "created_by": user.id}))

    def unlink(self, module_name: str, record_id: str, relationship: str, other_id: str,
               user: User) -> None:
        module, link, mine, theirs = self._link_parts(module_name, relationship)
        with self.engine.begin() as conn:
            self._current(conn, module, record_id, user, action="edit")
            conn.execute(link.delete().where(link.c[mine] == str(record_id),
                                             link.c[theirs] == str(other_id)))

    def _link_parts(self, module_name: str, relationship: str):
        module = self.registry.module(module_name)
        rel = module.relationships.get(relationship)
        if rel is None or rel["kind"] != "many_to_many":
            raise NotFoundError(f"{module.label} has no many-to-many relationship {relationship!r}")
        mine, theirs = link_columns(module, relationship)
        return module, self.tables.tables[module.link_table(relationship)], mine, theirs

    def _current(self, conn, module: ModuleDef, record_id: str, user: User,
                 action: str = "edit") -> dict:
        table = self.table(module)
        row = conn.execute(sa.select(*(table.c[f.name] for f in module.stored_fields))
                           .where(table.c.id == str(record_id),
                                  self._visible(module, table, user, action))).mappings().first()
        if row is None:
            raise NotFoundError(f"no {module.label_singular} with id {record_id}")
        return dict(row)

    def _give_teams(self, conn, module: ModuleDef, records: list[dict], user: User,
                    teams: Sequence[str]) -> None:
        """New records' teams: those asked for, plus what the inheritance rules give."""
        settings = access.settings_of(self._settings())
        inherited = access.inherited_teams(conn, self.tables, self.registry, module, records,
                                           user.id, settings)
        by_teams: dict[frozenset, list[str]] = {}
        for record in records:  # one insert per distinct team set, not per record
            wanted = frozenset(inherited.get(record["id"], ())) | frozenset(teams)
            if wanted:
                by_teams.setdefault(wanted, []).append(record["id"])
        for wanted, ids in by_teams.items():
            access.add_record_teams(conn, self.tables, module.name, ids, sorted(wanted))

    def _number(self, conn, module: ModuleDef, records: list[dict], today: dt.date) -> None:
        spec = module.features.get("sequence")
        if not spec:
            return
        needing = [r for r in records if not r.get(spec["field"])]
        if not needing:
            return
        counters = self.tables.tables["crbm_sequences"]
        sequences.ensure(conn, counters, module.name, spec.get("prefix", ""), spec.get("start", 1))
        fold = self._fold()
        given = {fold(r[spec["field"]]) for r in records if r.get(spec["field"])}

        def taken(candidates: list[str]) -> set[str]:
            held = given | {fold(v) for v in self._existing(conn, module, spec["field"],
                                                             candidates)}
            return {c for c in candidates if fold(c) in held}

        numbers = sequences.take(conn, counters, module.name, len(needing), today,
                                 spec.get("digits", 1), taken)
        for record, number in zip(needing, numbers):
            record[spec["field"]] = number

    # -- validation ------------------------------------------------------------------------

    def _prepare(self, conn, module: ModuleDef, rows: list, user: User,
                 currents: list[dict] | None) -> list[tuple[dict, dict, Any]]:
        """Normalize and validate every row; raise one ValidationError for the lot.

        Returns (record, changes, features' data) per row: the full values to write,
        what changed, and each module feature's data to write (``{name: data}``; a
        feature absent leaves its data as it is).
        """
        if module.name not in self._plans:
            self._plans[module.name] = _plan_for(module, self.registry)
        plan = self._plans[module.name]
        features = self.registry.features_of(module)
        given: dict[str, list] = {}
        if features:  # a feature's data is not a field: take it out before normalizing
            rows = [dict(values) for values in rows]
            for feature, _options in features:
                given[feature.name] = [values.pop(feature.name, None) for values in rows]
        normalized = [self._normalize(module, plan, values, currents[i] if currents else None)
                      for i, values in enumerate(rows)]
        documents: list[dict] = [{} for _ in rows]
        for feature, _options in features:
            prepared = feature.prepare(self.site, conn, module, given[feature.name],
                                       normalized, currents)
            for index, data in enumerate(prepared):
                if data is not None:
                    documents[index][feature.name] = data
        out, errors = [], {}
        for index, (record, row_errors) in enumerate(normalized):
            current = currents[index] if currents else None
            # Whole-record rules run even when some fields failed, so the user sees every
            # problem at once; formulas only run on clean input.
            row_errors = self._derive(module, plan, record, formulas=not row_errors) | row_errors
            for name, message in row_errors.items():
                errors[name if len(rows) == 1 else f"row {index + 1}: {name}"] = message
            changes = _diff(module, current or {}, record) if current else \
                {k: (None, v) for k, v in record.items() if v is not None}
            out.append((record, changes, documents[index]))
        if not errors:
            records = [r for r, _, _ in out]
            errors = self._check_references(conn, module, plan, records, currents, user) | \
                self._check_unique(conn, module, plan.unique, records, currents)
        if errors:
            raise ValidationError(errors)
        return out

    def feature_data(self, feature_name: str, module_name: str, record_id: str, user: User, *,
                     connection=None, action: str | None = "view") -> Any:
        """A record's data of a module feature (``ModuleFeature.read``: line items, their
        groups, lines and totals), if ``user`` may ``action`` the record."""
        module = self.registry.module(module_name)
        feature = self.registry.features.get(feature_name)
        if feature is None or module.features.get(feature_name) in (None, False):
            raise NotFoundError(f"{module.label} have no {feature_name.replace('_', ' ')}")
        table = self.table(module)
        with self._reading(connection) as conn:
            row = conn.execute(sa.select(table).where(table.c.id == str(record_id),
                                                      self._visible(module, table, user, action))
                               ).mappings().first()
            if row is None:
                raise NotFoundError(f"no {module.label_singular} with id {record_id}")
            return feature.read(self.site, conn, module, dict(row))

    def _normalize(self, module: ModuleDef, plan: _Plan, values: Mapping, current: dict | None):
        errors = {}
        record = dict(current) if current else dict(plan.defaults)
        for name, value in values.items():
            f = plan.writable.get(name)
            if f is None:
                if name == "id" and current is None:  # imports and syncs keep their ids
                    try:
                        record["id"] = str(uuid.UUID(str(value)))
                    except ValueError:
                        errors["id"] = Message(N_("%(value)s is not a UUID"), value=repr(value))
                elif name not in module.fields:
                    errors[name] = Message(N_("no such field"))
                elif current is None or current.get(name) != value:
                    # read-only fields may come back unchanged (a whole record re-posted)
                    errors[name] = Message(N_("is read-only"))
                continue
            if value is None:  # blank in every type; the commonest value in imports
                record[name] = None
                continue
            try:
                record[name] = f.type.normalize(value, f.spec)
            except FieldError as exc:
                errors[name] = exc.message
        return record, errors

    def _derive(self, module: ModuleDef, plan: _Plan, record: dict, formulas: bool) -> dict:
        """Options, dependencies, required, names and formulas, on the merged record."""
        errors = {}
        for f, allowed in plan.options:
            value = record.get(f.name)
            if value is None:
                continue
            bad = [v for v in value if v not in allowed] if isinstance(value, list) else \
                ([] if value in allowed else [value])
            if bad:
                errors[f.name] = Message(N_("%(values)s is not an option of %(list)s"),
                                         values=", ".join(map(repr, bad)), list=f.spec["options"])
        hidden = set()
        for f, control, shown_for, conditional in plan.dependent:
            control_value = record.get(control)
            if control_value not in shown_for:
                record[f.name] = None  # hidden fields hold nothing
                hidden.add(f.name)
            elif conditional is not None and record.get(f.name) is not None:
                offered = conditional.get(control_value, ())
                if record[f.name] not in offered:
                    errors[f.name] = Message(
                        N_("%(value)s is not offered when %(control)s is %(control_value)s"),
                        value=repr(record[f.name]), control=control,
                        control_value=repr(control_value))
        for f in plan.names:
            record[f.name] = " ".join(str(record[p]) for p in f.spec["parts"] if record.get(p)) or None
        for f in plan.required:
            if f.name not in hidden and record.get(f.name) in (None, [], ""):
                errors[f.name] = Message(N_("is required"))
        for f in plan.calculated if formulas else ():
            try:
                record[f.name] = f.type.compute(f, record)
            except FieldError as exc:
                errors[f.name] = Message(N_("cannot be calculated: %(reason)s"), reason=str(exc))
        return errors

    def _check_references(self, conn, module: ModuleDef, plan: _Plan, records: list[dict],
                          currents: list[dict] | None, user: User) -> dict:
        """Related ids a write sets must name live records the writer may see: one query
        per target module, not per row. An id of a record they may not see gets the very
        answer an unknown id gets (no oracle). A link the record already has is not
        checked again: someone who may see more made it, and it does not stop the rest of
        an edit."""
        count = len(records)
        errors = {}
        wanted: dict[str, set[str]] = {}

        def given(f: FieldDef, index: int, record: dict):
            """The id this write sets in ``f`` (None: none, or the one the record has)."""
            value = record.get(f.name)
            if value is None or currents is None:
                return value
            current = currents[index]
            unchanged = current.get(f.name) == value and (
                "modules" not in f.spec or
                current.get(f.spec["type_field"]) == record.get(f.spec["type_field"]))
            return None if unchanged else value

        for f in plan.links:
            for index, record in enumerate(records):
                value = given(f, index, record)
                if value is None:
                    continue
                if "modules" in f.spec:
                    target = record.get(f.spec["type_field"])
                    if target is None:
                        errors[f.spec["type_field"]] = Message(
                            N_("is required when %(field)s is set"), field=f.name)
                        continue
                else:
                    target = f.spec.get("module", "crbm_users")
                wanted.setdefault(target, set()).add(value)
        found: dict[str, set[str]] = {}
        for target, ids in wanted.items():
            if target == "crbm_users":
                table = self.tables.tables["crbm_users"]
                alive = table.c.active.is_(True)
            else:
                other = self.registry.module(target)
                table = self.table(other)
                alive = self._visible(other, table, user, "view")
            found[target] = set(conn.execute(
                sa.select(table.c.id).where(table.c.id.in_(ids), alive)).scalars())
        for f in plan.links:
            for index, record in enumerate(records):
                value = given(f, index, record)
                target = record.get(f.spec.get("type_field")) if "modules" in f.spec else \
                    f.spec.get("module", "crbm_users")
                if value is not None and target in found and value not in found[target]:
                    what = "user" if target == "crbm_users" else \
                        self.registry.module(target).label_singular
                    key = f.name if count == 1 else f"row {index + 1}: {f.name}"
                    errors[key] = Message(N_("no %(what)s with id %(id)s"), what=what, id=value)
        return errors

    def _check_unique(self, conn, module: ModuleDef, fields: list[FieldDef],
                      records: list[dict], currents: list[dict] | None) -> dict:
        """Values of unique fields (a manual number; an id an import keeps) that another
        record holds — deleted ones too, their rows keep them — or that two rows of the
        batch share: one query per field. A clear error instead of the database's
        unique violation."""
        checks = [(f.name, f) for f in fields]
        if currents is None:
            checks.append(("id", None))  # ids given to new records (imports keep theirs)
        fold = self._fold()
        errors = {}
        for name, _ in checks:
            given = [(index, record[name]) for index, record in enumerate(records)
                     if record.get(name) is not None
                     and (currents is None or currents[index].get(name) != record[name])]
            if not given:
                continue
            seen: set = set()
            held = {fold(v) for v in self._existing(conn, module, name, [v for _, v in given])}
            for index, value in given:
                if fold(value) in held or fold(value) in seen:
                    key = name if len(records) == 1 else f"row {index + 1}: {name}"
                    errors[key] = Message(N_("%(value)s is already taken"), value=value)
                seen.add(fold(value))
        return errors

    def _fold(self):
        """How the database compares text in a unique index: MariaDB's collations ignore
        case, so "quo-1" takes "QUO-1" there."""
        return str.lower if self.engine.dialect.name in ("mysql", "mariadb") else \
            (lambda value: value)

    def _existing(self, conn, module: ModuleDef, name: str, values: list) -> set:
        """Which of ``values`` some row of the module's table holds in column ``name``."""
        column = self.table(module).c[name]
        found: set = set()
        for start in range(0, len(values), 500):  # IN lists stay a sane size
            found |= set(conn.execute(sa.select(column).where(
                column.in_(values[start:start + 500]))).scalars())
        return found

    def _log_changes(self, conn, module: ModuleDef, changed: list[tuple[str, dict]], user: User,
                     every_field: bool = False):
        if not module.features.get("audited"):
            return
        stamp = now()
        rows = [{"module": module.name, "record_id": record_id, "field": name,
                 "old_value": module.fields[name].type.to_text(old),
                 "new_value": module.fields[name].type.to_text(new),
                 "changed_at": stamp, "changed_by": user.id}
                for record_id, changes in changed
                for name, (old, new) in changes.items()
                if every_field or module.fields[name].audited]
        if rows:
            conn.execute(self.tables.tables["crbm_change_log"].insert(), rows)


class _UniqueGuard(AbstractContextManager):
    """Around a write: a unique violation the checks could not foresee (a writer that
    committed the same value in between, a hook that set it) becomes the same
    ValidationError, worked out on a fresh connection once this write has failed."""

    def __init__(self, service: RecordService, module: ModuleDef, records: list[dict],
                 currents: list[dict] | None = None):
        self.service, self.module, self.records, self.currents = \
            service, module, records, currents

    def __exit__(self, kind, exc, tb):
        if kind is None or not issubclass(kind, sa.exc.IntegrityError):
            return False
        module = self.module
        unique = [f for f in module.stored_fields
                  if f.spec.get("unique") or f.name == sequence_field(module)]
        with self.service.engine.connect() as fresh:
            errors = self.service._check_unique(fresh, module, unique, self.records, self.currents)
        if not errors:
            return False  # not a value a writer chose: a fault, reported as one
        raise ValidationError(errors) from exc


@dataclass(frozen=True)
class Recalculated:
    """What ``recalculate`` did: records written, records a formula failed for (left
    blank), and the first such failure ("field: reason")."""

    changed: int
    failed: int
    problem: str | None


# -- the save pipeline ---------------------------------------------------------------------

# Every write — create, create_many, update, update_many; forms, the API, imports, mass
# updates — goes through these steps, in this order, on the whole batch, in one
# transaction (``RecordService._step_<name>``). The hooks are called once per batch.
SAVE_STEPS = ("prepare", "number", "before_save", "write", "lines", "change_log", "teams",
              "after_save")
CREATED = "(created)"  # the change log's field for a record's "created" entry
def status_value(f, value):
    """A status field's value as ``features.transitions`` names it: a checkbox is
    true or false (never empty); any other field's value as it is."""
    return bool(value) if f.type.name == "checkbox" else value


# (module, record id) -> (from, to): the status moves ``transition`` is making right now
_TRANSITIONS: contextvars.ContextVar[dict | None] = contextvars.ContextVar("crbm_transitions",
                                                                           default=None)


@dataclass
class _Save:
    """One write going through ``SAVE_STEPS``."""

    conn: Any
    module: ModuleDef
    user: User
    rows: list  # the values the writer gives, one mapping per record
    currents: list[dict] | None  # the records as stored (an update); None: new records
    teams: Sequence[str] | None = None  # new records: besides the inherited; updates: all
    stamp: dt.datetime = field(default_factory=now)
    batch: list[RecordChange] = field(default_factory=list)  # the records it writes
    _by_id: dict[str, dict] | None = None

    @property
    def is_new(self) -> bool:
        return self.currents is None

    def current(self, change: RecordChange) -> dict:
        """The stored record a change is made to."""
        if self._by_id is None:
            self._by_id = {c["id"]: c for c in self.currents}
        return self._by_id[change.record["id"]]


# -- per-module plans: work out once what each write must check ----------------------------

@dataclass
class _Plan:
    writable: dict[str, FieldDef]
    defaults: dict[str, Any]
    options: list[tuple[FieldDef, frozenset]] = field(default_factory=list)
    dependent: list[tuple[FieldDef, str, frozenset, dict | None]] = field(default_factory=list)
    names: list[FieldDef] = field(default_factory=list)
    required: list[FieldDef] = field(default_factory=list)
    calculated: list[FieldDef] = field(default_factory=list)
    links: list[FieldDef] = field(default_factory=list)
    unique: list[FieldDef] = field(default_factory=list)  # writers' values checked unused


def _plan_for(module: ModuleDef, registry: Registry) -> _Plan:
    writable = {n: f for n, f in module.fields.items()
                if (not f.system or n == "assigned_user_id") and f.type.writable(f.spec)
                and "computed_by" not in f.spec}  # line-item totals: only their lines set them
    number = sequence_field(module)
    if number and not module.features["sequence"].get("manual"):
        writable.pop(number, None)  # only the sequence numbers records
    defaults = {}
    for f in module.stored_fields:
        if f.system:
            continue
        if "default" in f.spec and not f.type.derived:
            defaults[f.name] = f.type.normalize(f.spec["default"], f.spec)
        else:
            defaults[f.name] = f.type.default_value(f.spec)
    plan = _Plan(writable, defaults)
    plan.unique = [f for f in writable.values() if f.spec.get("unique") or f.name == number]
    for f in module.fields.values():
        if f.system and f.name != "assigned_user_id":
            continue
        if f.type.has_options:
            plan.options.append((f, registry.option_values(f.spec["options"])))
        if "depends_on" in f.spec:
            dep = f.spec["depends_on"]
            shown = frozenset(dep["values"])
            plan.dependent.append((f, dep["field"], shown, f.spec.get("conditional_options")))
        if f.type.composed(f.spec):
            plan.names.append(f)
        if f.required:
            plan.required.append(f)
        if f.type.computed:
            plan.calculated.append(f)
        if f.type.is_link:
            plan.links.append(f)
    return plan


# what the record service stamps itself; set_derived does not take them
_STAMPS = frozenset({"id", "version", "deleted", "created_at", "created_by", "modified_at",
                     "modified_by"})


def _diff(module: ModuleDef, old: Mapping, new: Mapping) -> dict[str, tuple[Any, Any]]:
    # the assigned user is a system field people change (reassigning a record)
    return {f.name: (old.get(f.name), new.get(f.name)) for f in module.stored_fields
            if (not f.system or f.name == "assigned_user_id")
            and old.get(f.name) != new.get(f.name)}



def search_keys(module: ModuleDef, record: Mapping[str, Any],
                names: Iterable[str] | None = None) -> dict[str, str]:
    """Quick search's hidden keys (``_sk_<field>``) for the searched fields among ``names``
    (all of them by default): every write of those fields writes its keys with it."""
    return {f"_sk_{n}": search_key(record.get(n)) for n in module.search_fields
            if names is None or n in names}


def _filled(table: sa.Table, rows: list[dict]) -> list[dict]:
    """An insert's rows without the columns that none of them fills and that have no
    default: a new record leaves most of its columns empty (34 of an account's 46), and
    binding those NULLs was half of an executemany's time on SQLite (~20 µs a row)."""
    empty = {k for k, v in rows[0].items() if v is None and table.c[k].default is None
             and table.c[k].server_default is None and all(r[k] is None for r in rows)}
    return [{k: v for k, v in r.items() if k not in empty} for r in rows] if empty else rows


def _differences(module: ModuleDef, before: Mapping, after: Mapping) -> list[str]:
    return [f.name for f in module.stored_fields
            if not f.system and f.name in before and before.get(f.name) != after.get(f.name)]
