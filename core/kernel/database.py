"""Tables built from the registry, and keeping the database in step with it.

``schema_for(registry)`` gives the SQLAlchemy ``MetaData`` the registry implies: the
kernel's own ``crbm_*`` tables plus one table per module and one per many-to-many link.
``check`` and ``sync`` let Alembic compare that with the live database and apply the
difference. Sync only ever *adds and widens*; dropping a column or table loses data, so
it is listed and left alone unless the caller passes ``allow_drop``.

Lists sort text regardless of case (``CaseFolded``); each indexed text field also gets an
index on that expression where the database needs one (SQLite, PostgreSQL). Alembic cannot
compare expression indexes on SQLite, so ``check`` and ``sync`` look those up by name.
"""
from __future__ import annotations

import contextlib
import functools
import threading
import time
import warnings
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import ClassVar

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.migration import MigrationContext
from alembic.operations import Operations, ops
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal

from core.kernel.access import owner_field
from core.kernel.fields import SEARCH_KEY, UTCDateTime
from core.kernel.registry import ModuleDef, Registry

SETTINGS_EPOCH_ROW = 2  # crbm_metadata_epoch's row for the settings' version (1: registry)
ID = sa.String(36)


# -- text ordered regardless of case -----------------------------------------------------------

FOLDED_ON = ("sqlite", "postgresql")  # MariaDB's default collations ignore case already
EVERY_DIALECT = (*FOLDED_ON, "mysql", "mariadb")  # indexes compared by name (some with expressions)


class CaseFolded(sa.sql.expression.ColumnElement):
    """A text column (or value) as lists order and compare it: regardless of case, alike on
    every database ("apple" before "Zebra"). SQLite: ``x COLLATE NOCASE``; PostgreSQL,
    whose databases are often made with the C collation: ``lower(coalesce(x, ''))``
    (NULL first, as SQLite and MariaDB put it); MariaDB: ``x``.
    The same expression is the sort index (``ix_<table>_<field>_ci``), so ordering by it
    walks an index as ordering by the column did."""

    inherit_cache = True
    _traverse_internals: ClassVar = [("element", InternalTraversal.dp_clauseelement)]

    def __init__(self, element):
        self.element = element
        self.type = element.type


@compiles(CaseFolded)
def _as_stored(folded, compiler, **kw):
    return compiler.process(folded.element, **kw)


@compiles(CaseFolded, "sqlite")
def _nocase(folded, compiler, **kw):
    return compiler.process(folded.element, **kw) + " COLLATE NOCASE"


@compiles(CaseFolded, "postgresql")  # an empty text for NULL, so it sorts first as elsewhere
def _lower(folded, compiler, **kw):  # and a page's cursor is a range of the sort index
    return "lower(coalesce(" + compiler.process(folded.element, **kw) + ", ''))"


def case_folded(f, column) -> bool:
    """Whether field ``f`` (its ``column``) sorts regardless of case: text, but not ids,
    codes or unique values (their index must stay exact)."""
    return isinstance(column.type, sa.String) and not f.type.exact_sort \
        and not f.spec.get("unique")


def kernel_tables(metadata: sa.MetaData) -> None:
    """The tables every site has, whatever plugins are installed."""
    sa.Table(
        "crbm_users", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("username", sa.String(60), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(255)),
        sa.Column("display_name", sa.String(120)),
        sa.Column("email", sa.String(255)),
        sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
        sa.Column("active", sa.Boolean, nullable=False, default=True),
        sa.Column("must_change_password", sa.Boolean, nullable=False, default=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("modified_at", UTCDateTime(), nullable=False),
        # login protection: failures since the last success, and the lock they earned
        sa.Column("failed_logins", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", UTCDateTime()),
        sa.Column("last_login_at", UTCDateTime()),
        # bumped on password change / deactivation: every older session cookie stops working
        sa.Column("session_epoch", sa.Integer, nullable=False, server_default="0"),
        sa.Column("preferences", sa.Text),  # JSON: language, timezone, formats
        # "local" (password here) or the directory that vouches for them ("ldap")
        sa.Column("auth_source", sa.String(20), nullable=False, server_default="local"),
        # delegation (guide 7.3): a non-admin who may assign roles and teams to users
        sa.Column("can_assign_access", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("reports_to_id", ID),  # their manager (a user): forecasts roll up along it
        sa.Column("department", sa.String(100)),  # the company calendar shows one department
    )
    access_tables(metadata)
    pack_tables(metadata)
    sa.Table(
        "crbm_password_resets", metadata,
        sa.Column("token_hash", sa.String(64), primary_key=True),  # sha256 of the emailed token
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("used_at", UTCDateTime()),
    )
    # One row per signed-in browser: the session cookie carries a random id, the row its
    # sha256. Logging out deletes the row, so a copied cookie stops working at once.
    sa.Table(
        "crbm_sessions", metadata,
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        # touched at most once a day (core.kernel.users.SESSION_TOUCH): idle sessions expire
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Index("ix_crbm_sessions_user", "user_id"),
        sa.Index("ix_crbm_sessions_seen", "last_seen_at"),
    )
    # Request counters shared by every worker (core.web.throttle): sign-in failures and reset
    # requests per IP address, API requests per user and client; one row per key and window.
    sa.Table(
        "crbm_rate_counters", metadata,
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("window_start", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("hits", sa.Integer, nullable=False),
        sa.Index("ix_crbm_rate_counters_window", "window_start"),
    )
    sa.Table(
        "crbm_recent_items", metadata,
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("module", sa.String(60), primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        sa.Column("viewed_at", UTCDateTime(), nullable=False),
        sa.Index("ix_crbm_recent_items_user", "user_id", "viewed_at"),
    )
    sa.Table(
        "crbm_sequences", metadata,
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("prefix", sa.String(40), nullable=False, default=""),
        sa.Column("next_value", sa.BigInteger, nullable=False),
    )
    sa.Table(
        "crbm_change_log", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("field", sa.String(64), nullable=False),
        sa.Column("old_value", sa.Text),
        sa.Column("new_value", sa.Text),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.Column("changed_by", ID),
        sa.Index("ix_crbm_change_log_record", "module", "record_id"),
    )
    sa.Table(  # the "site" layer of the registry: studio customizations
        "crbm_customizations", metadata,
        sa.Column("kind", sa.String(20), primary_key=True),  # "module" or "dropdowns"
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("body", sa.Text, nullable=False),  # JSON overlay document
        sa.Column("modified_at", UTCDateTime(), nullable=False),
        sa.Column("modified_by", ID),
    )
    sa.Table(
        "crbm_settings", metadata,
        sa.Column("key", sa.String(100), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),  # JSON
    )


@functools.cache
def kernel_table(name: str) -> sa.Table:
    """One kernel table, for code that runs before (or without) a registry."""
    metadata = sa.MetaData()
    kernel_tables(metadata)
    return metadata.tables[name]


def pack_tables(metadata: sa.MetaData) -> None:
    """Installed packs, what each one owns, and the history of every pack operation.

    ``crbm_pack_objects`` has one row per object (table, column, field, layout, dropdown,
    template, translation...) keyed by the object alone, so the database itself refuses
    two packs owning one object. ``core.apps.packs.packs`` reads and writes these.
    """
    sa.Table(
        "crbm_packs", metadata,
        sa.Column("name", sa.String(60), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        # "enabled", "disabled" (files, schema, data kept; unhooked) or "uninstalled"
        # (code and metadata gone, data kept until a purge)
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("manifest", sa.Text, nullable=False),  # JSON
        sa.Column("digest", sa.String(64), nullable=False),  # sha256 of the archive
        sa.Column("installed_at", UTCDateTime(), nullable=False),
        sa.Column("installed_by", ID),
    )
    sa.Table(
        "crbm_pack_objects", metadata,
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("name", sa.String(200), primary_key=True),
        sa.Column("pack", sa.String(60), nullable=False),
        sa.Column("version", sa.String(40), nullable=False),
        sa.Index("ix_crbm_pack_objects_pack", "pack"),
    )
    sa.Table(
        "crbm_pack_history", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("user_id", ID),
        sa.Column("username", sa.String(60)),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("pack", sa.String(60), nullable=False),
        sa.Column("version", sa.String(40)),
        sa.Column("outcome", sa.String(20), nullable=False),  # "ok", "failed", "refused"
        sa.Column("detail", sa.Text),
    )


def access_tables(metadata: sa.MetaData) -> None:
    """Teams, roles and who has them; which teams a record belongs to; record denies.

    The model of the implementation guide 7.3; ``core.kernel.access`` turns it into SQL.
    """
    sa.Table(
        "crbm_teams", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        # a non-inheritable team is never copied onto new records by the inheritance rules
        sa.Column("non_inheritable", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("modified_at", UTCDateTime(), nullable=False),
    )
    sa.Table(
        "crbm_team_members", metadata,
        sa.Column("team_id", ID, primary_key=True),
        sa.Column("user_id", ID, primary_key=True),
        sa.Index("ix_crbm_team_members_user", "user_id"),
    )
    sa.Table(
        "crbm_roles", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False, unique=True),
        sa.Column("description", sa.Text),
        sa.Column("builtin", sa.String(20), unique=True),  # "default", "dpm" or NULL
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("modified_at", UTCDateTime(), nullable=False),
    )
    rule_columns = [sa.Column(action, sa.String(10), nullable=False) for action in
                    ("view", "list", "edit", "delete", "export", "import", "report",
                     "approve", "personal")]
    sa.Table(  # one row per role and module; a module without a row has the defaults
        "crbm_role_rules", metadata,
        sa.Column("role_id", ID, primary_key=True),
        sa.Column("module", sa.String(60), primary_key=True),
        sa.Column("access", sa.String(10), nullable=False),
        *rule_columns,
    )
    sa.Table(
        "crbm_role_users", metadata,
        sa.Column("role_id", ID, primary_key=True),
        sa.Column("user_id", ID, primary_key=True),
        sa.Index("ix_crbm_role_users_user", "user_id"),
    )
    sa.Table(
        "crbm_role_teams", metadata,
        sa.Column("role_id", ID, primary_key=True),
        sa.Column("team_id", ID, primary_key=True),
        sa.Index("ix_crbm_role_teams_team", "team_id"),
    )
    sa.Table(  # the teams a record belongs to (any number)
        "crbm_record_teams", metadata,
        sa.Column("module", sa.String(60), primary_key=True),
        sa.Column("team_id", ID, primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        # (module, team_id, record_id) serves "records of my teams"; this one "teams of a record"
        sa.Index("ix_crbm_record_teams_record", "module", "record_id"),
    )
    sa.Table(  # one record hidden from one user or one team, whatever their roles say
        "crbm_record_denies", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("user_id", ID),
        sa.Column("team_id", ID),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", ID),
        sa.Index("ix_crbm_record_denies_record", "module", "record_id"),
    )
    sa.Table(  # one row; bumped by every change to the tables above but record teams,
        # so each worker knows when its cached grants are stale
        "crbm_access_epoch", metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.Integer, nullable=False),
    )
    # Moves on with every change to the registry's pack or site layer (Studio, packs), so
    # every worker sharing the database rebuilds its registry on its next request. Its
    # row SETTINGS_EPOCH_ROW moves with every change to crbm_settings (Site.settings).
    sa.Table(
        "crbm_metadata_epoch", metadata,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("epoch", sa.Integer, nullable=False),
    )
    # The Studio's audit trail: who changed what in the metadata, and when.
    sa.Table(
        "crbm_studio_log", metadata,
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("user_id", ID),
        sa.Column("username", sa.String(60)),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("target", sa.String(130), nullable=False),
        sa.Column("detail", sa.Text, nullable=False),
    )
    # Fields and modules removed in the Studio, restorable while their data is kept.
    sa.Table(
        "crbm_studio_removed", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),  # "field" or "module"
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("name", sa.String(70), nullable=False),
        sa.Column("body", sa.Text, nullable=False),  # JSON: what restoring puts back
        sa.Column("removed_at", UTCDateTime(), nullable=False),
        sa.Column("removed_by", ID),
    )


def module_table(module: ModuleDef, metadata: sa.MetaData) -> sa.Table:
    columns, indexes, sorted_by = [], [], []
    sequence_field = module.features.get("sequence", {}).get("field")
    for f in module.stored_fields:
        if f.name == "id":
            columns.append(sa.Column("id", ID, primary_key=True))
            continue
        col_type = f.type.column_type(f.spec)
        not_null = f.name in ("created_at", "modified_at", "deleted", "version")
        columns.append(sa.Column(f.name, col_type, nullable=not not_null))
        unique = f.spec.get("unique") or f.name == sequence_field
        if unique or f.type.indexed and f.name not in ("created_by", "modified_by") \
                or f.spec.get("indexed"):
            indexes.append(sa.Index(f"ix_{module.table}_{f.name}", f.name,  # the owner's with
                                    *["deleted"][:f.name == "assigned_user_id"],  # deleted: a
                                    unique=bool(unique)))  # count of "mine" reads it alone
            if not unique:
                sorted_by.append(f)
    columns += [sa.Column(f"_sk_{n}", SEARCH_KEY) for n in module.search_fields]  # quick search's
    table = sa.Table(module.table, metadata, *columns, *indexes)
    for f in sorted_by:  # lists sort text regardless of case, then by id: an index for that order
        if case_folded(f, table.c[f.name]):
            sa.Index(f"ix_{module.table}_{f.name}_ci", CaseFolded(table.c[f.name]), table.c.id,
                     info={"dialects": FOLDED_ON}).ddl_if(dialect=FOLDED_ON)
    # Each search key with the owner and what lists sort by first (as that sort's index has
    # it): a page of hits is picked and sorted from these indexes alone, however many records
    # hit, a hit's access checked in them
    first = module.fields.get(module.default_sort.split(",")[0].strip().lstrip("-"))
    by = table.c[first.name] if first is not None and first.stored else None
    if by is not None and isinstance(by.type, sa.String) and not by.type.length:
        by = None  # long text: no index takes it whole
    by = CaseFolded(by) if by is not None and case_folded(first, by) else by
    for n in module.search_fields:
        sa.Index(f"ix_{module.table}__sk_{n}_s", table.c[f"_sk_{n}"], table.c.deleted,
                 table.c[owner_field(module)], *([by] if by is not None else []), table.c.id,
                 info={"dialects": EVERY_DIALECT})
    # a list column's sort (column, id) unless indexed or a filter (see docs/architecture.md)
    skip = {i.name[len(module.table) + 4:] for i in indexes} | {*module.layouts.get("filters", [])}
    for f in (module.fields[n] for n in module.layouts.get("list", {}).get("columns", [])
              if n in module.fields and n not in skip and module.fields[n].stored):
        if getattr((column := table.c[f.name]).type, "length", 1):  # not unbounded text
            sa.Index(f"ix_{module.table}_{f.name}_sort"[:63], CaseFolded(column) if case_folded(
                f, column) else column, table.c.id, info={"dialects": EVERY_DIALECT})
    return table


def link_columns(module: ModuleDef, relationship: str) -> tuple[str, str]:
    """(column for this side, column for the other side) of a many-to-many link table."""
    other = module.relationships[relationship]["module"]
    if other == module.name:
        return f"{module.name}_id", "related_id"
    return f"{module.name}_id", f"{other}_id"


def link_table(module: ModuleDef, relationship: str, metadata: sa.MetaData) -> sa.Table:
    name = module.link_table(relationship)
    if name in metadata.tables:  # both sides may declare the same link
        return metadata.tables[name]
    mine, theirs = sorted(link_columns(module, relationship))
    return sa.Table(
        name, metadata,
        sa.Column(mine, ID, primary_key=True),
        sa.Column(theirs, ID, primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", ID),
        sa.Index(f"ix_{name}_{theirs}", theirs),
    )


def schema_for(registry: Registry) -> sa.MetaData:
    metadata = sa.MetaData()
    kernel_tables(metadata)
    for module in registry.modules.values():
        module_table(module, metadata)
        for feature, _options in registry.features_of(module):  # the tables it owns
            feature.tables(module, metadata)
    for module in registry.modules.values():
        for rel_name, rel in module.relationships.items():
            if rel["kind"] == "many_to_many":
                link_table(module, rel_name, metadata)
    return metadata


# -- check and sync ------------------------------------------------------------------------

DESTRUCTIVE = (ops.DropTableOp, ops.DropColumnOp)


@dataclass
class SchemaDiff:
    """What ``sync`` would do: ``pending`` additive changes, ``destructive`` ones held back."""

    pending: list[str]
    destructive: list[str]
    # what sync made, so a failed pack install can take exactly that back
    created_tables: list[str] = field(default_factory=list)
    added_columns: list[tuple[str, str]] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.pending and not self.destructive


def _context(connection: sa.Connection, metadata: sa.MetaData,
             only: Collection[str] | None = None,
             keep: Collection[tuple[str, str]] = ()) -> MigrationContext:
    ours = set(metadata.tables) if only is None else set(metadata.tables) & set(only)

    def include_name(name, type_, parent_names):
        # not even reflected: reading every table's shape is most of a comparison's cost
        return type_ != "table" or name in ours

    folded = {index.name for index in _folded_indexes(metadata)}

    def include_object(obj, name, type_, reflected, compare_to):
        if type_ == "index" and name in folded:
            return False  # Alembic cannot compare them on SQLite: _missing_folded does
        # Only our tables: a database shared with other software stays untouched.
        table = obj if type_ == "table" else getattr(obj, "table", None)
        if table is not None and keep and reflected and compare_to is None:
            # a disabled plugin's column on an active module's table (and its index or
            # foreign key): kept with its data, not proposed for dropping
            columns = [obj.name] if type_ == "column" else \
                [c.name for c in getattr(obj, "columns", ())]
            if any((table.name, c) in keep for c in columns):
                return False
        return table is None or table.name in ours

    return MigrationContext.configure(connection, opts={
        "compare_type": True, "include_object": include_object,
        "include_name": include_name, "render_as_batch": True,
    })


def changed_tables(before: sa.MetaData, after: sa.MetaData) -> set[str]:
    """The tables of ``after`` that are new or differ from ``before`` in a column (name,
    type, nullability, key) or an index: what a Studio change or a pack needs compared
    with the database, instead of all of them."""
    def shapes(metadata: sa.MetaData) -> dict[str, tuple]:
        if "shapes" not in metadata.info:  # kept: the next change compares against these
            metadata.info["shapes"] = {name: (
                tuple((c.name, str(c.type), c.nullable, c.primary_key) for c in table.columns),
                tuple(sorted((i.name or "", tuple(c.name for c in i.columns), i.unique)
                             for i in table.indexes)))
                for name, table in metadata.tables.items()}
        return metadata.info["shapes"]

    old, new = shapes(before), shapes(after)
    return {name for name, shape in new.items() if old.get(name) != shape}


def _describe(op: ops.MigrateOperation) -> str:
    match op:
        case ops.CreateTableOp():
            return f"create table {op.table_name}"
        case ops.DropTableOp():
            return f"drop table {op.table_name}"
        case ops.AddColumnOp():
            return f"add column {op.table_name}.{op.column.name} ({op.column.type})"
        case ops.DropColumnOp():
            return f"drop column {op.table_name}.{op.column_name}"
        case ops.AlterColumnOp():
            change = []
            if op.modify_type is not None:
                change.append(f"type {op.existing_type} -> {op.modify_type}")
            if op.modify_nullable is not None:
                change.append("nullable" if op.modify_nullable else "not null")
            return f"alter column {op.table_name}.{op.column_name} ({', '.join(change)})"
        case ops.CreateIndexOp():
            return f"create index {op.index_name} on {op.table_name}"
        case ops.DropIndexOp():
            return f"drop index {op.index_name} on {op.table_name}"
        case _:
            return type(op).__name__


def _folded_indexes(metadata: sa.MetaData, dialect: str | None = None,
                    only: Collection[str] | None = None) -> list[sa.Index]:
    """The indexes compared by name (case-folded sort indexes, ``CaseFolded``, and quick
    search's), those ``dialect`` has if given."""
    return [index for table in metadata.tables.values() if only is None or table.name in only
            for index in table.indexes if "dialects" in index.info
            and (dialect is None or dialect in index.info["dialects"])]


def _missing_folded(connection: sa.Connection, metadata: sa.MetaData,
                    only: Collection[str] | None = None) -> list[sa.Index]:
    """Sort indexes the database lacks (a new table or field, or a site made before
    lists sorted regardless of case). Checked by name, outside Alembic, which cannot
    compare expression indexes on SQLite."""
    inspector = sa.inspect(connection)
    tables = set(inspector.get_table_names())
    have: dict[str, set[str]] = {}
    missing = []
    for index in _folded_indexes(metadata, connection.dialect.name, only):
        name = index.table.name
        if name not in have:
            have[name] = {i["name"] for i in inspector.get_indexes(name)} if name in tables \
                else set()
        if index.name not in have[name]:
            missing.append(index)
    return missing


def _plan(connection: sa.Connection, metadata: sa.MetaData,
          only: Collection[str] | None = None, keep: Collection[tuple[str, str]] = ()):
    with warnings.catch_warnings():  # _missing_folded compares what Alembic cannot
        warnings.filterwarnings("ignore", "autogenerate skipping metadata-specified "
                                "expression-based index")
        script = produce_migrations(_context(connection, metadata, only, keep), metadata)
    plan = []  # (table name or None, op)
    for op in script.upgrade_ops.ops:
        if isinstance(op, ops.ModifyTableOps):
            plan.extend((op.table_name, sub) for sub in op.ops)
        else:
            plan.append((None, op))
    return plan


def check(engine: sa.Engine, registry: Registry, keep: Collection[tuple[str, str]] = (),
          metadata: sa.MetaData | None = None) -> SchemaDiff:
    """``keep``: (table, column) left alone, never proposed for dropping (a disabled
    plugin's columns on an active module's table); ``metadata``: as for ``sync``."""
    metadata = metadata if metadata is not None else schema_for(registry)
    with engine.connect() as connection:
        plan = _plan(connection, metadata, keep=keep)
        folded = _missing_folded(connection, metadata)
    return SchemaDiff([_describe(op) for _, op in plan if not isinstance(op, DESTRUCTIVE)]
                      + [f"create index {i.name} on {i.table.name}" for i in folded],
                      [_describe(op) for _, op in plan if isinstance(op, DESTRUCTIVE)])


def sync(engine: sa.Engine, registry: Registry, allow_drop: bool = False,
         metadata: sa.MetaData | None = None, only: Collection[str] | None = None,
         keep: Collection[tuple[str, str]] = ()) -> SchemaDiff:
    """Apply the difference. Returns what was applied, and what was held back.
    ``metadata``: the registry's tables, when the caller has them already; ``only``: the
    tables to compare (see ``changed_tables``), when the caller knows the others are as
    they were."""
    metadata = metadata if metadata is not None else schema_for(registry)
    applied, held = [], []
    created, added = [], []
    rebuilt: set[str] = set()  # sort indexes made again after SQLite rebuilt their table
    with engine.begin() as connection:
        if not set(metadata.tables) & set(sa.inspect(connection).get_table_names()):
            # A new database: nothing to compare, so create everything in one pass
            # (several times faster than planning each table through Alembic).
            metadata.create_all(connection)
            names = list(metadata.tables)
            return SchemaDiff([f"create table {name}" for name in names], [], names, [])
        plan = _plan(connection, metadata, only, keep)
        operations = Operations(_context(connection, metadata, only, keep))
        by_table: dict[str, list] = {}
        for table, op in plan:
            if isinstance(op, DESTRUCTIVE) and not allow_drop:
                held.append(_describe(op))
                continue
            applied.append(_describe(op))
            if isinstance(op, ops.CreateTableOp):
                created.append(op.table_name)
            elif isinstance(op, ops.AddColumnOp):
                added.append((op.table_name, op.column.name))
            if table is None:
                operations.invoke(op)
            else:
                by_table.setdefault(table, []).append(op)
        for table, table_ops in by_table.items():
            # Batch mode: SQLite rebuilds the table (data copied); others ALTER in place.
            with operations.batch_alter_table(table) as batch:
                for op in table_ops:
                    batch.invoke(op)
            if connection.dialect.name == "sqlite":  # the rebuilt table's sort indexes came
                for index in _folded_indexes(metadata, "sqlite", [table]):  # back exact
                    connection.execute(sa.text(f'DROP INDEX IF EXISTS "{index.name}"'))
                    rebuilt.add(index.name)
        for index in _missing_folded(connection, metadata, only):
            index.create(connection)
            if index.name not in rebuilt:
                applied.append(f"create index {index.name} on {index.table.name}")
    return SchemaDiff(applied, held, created, added)


def drop(engine: sa.Engine, tables: list[str] = (), columns: list[tuple[str, str]] = ()) -> list[str]:
    """Drop exactly these tables and columns (a purge, or undoing a failed install);
    ones already gone are skipped. Returns what was dropped."""
    dropped = []
    with engine.begin() as connection:
        inspector = sa.inspect(connection)
        existing = set(inspector.get_table_names())
        operations = Operations(MigrationContext.configure(connection))
        by_table: dict[str, list[str]] = {}
        for table, column in columns:
            if table in existing and table not in tables and \
                    column in {c["name"] for c in inspector.get_columns(table)}:
                by_table.setdefault(table, []).append(column)
        for table, names in by_table.items():
            for index in inspector.get_indexes(table):  # a sort index on a dropped column
                if set(index["column_names"] or ()) & set(names):  # (SQLite's rebuild keeps it)
                    operations.drop_index(index["name"], table_name=table)
            with operations.batch_alter_table(table) as batch:
                for name in names:
                    batch.drop_column(name)
                    dropped.append(f"drop column {table}.{name}")
        for table in tables:
            if table in existing:
                operations.drop_table(table)
                dropped.append(f"drop table {table}")
    return dropped


def engine_for(url: str, **kwargs) -> sa.Engine:
    """An engine with the settings CRBM relies on for each database."""
    url_obj = sa.make_url(url)
    if url_obj.get_backend_name() == "sqlite":
        engine = sa.create_engine(url, **kwargs)

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record):
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the writer
            cursor.execute("PRAGMA busy_timeout=10000")
            # SQLite's default 2 MB page cache turns each scattered row read (a team's
            # records, a record's related names) into a system call: map the file into
            # memory (shared by all connections through the OS cache) and keep 16 MB hot
            cursor.execute("PRAGMA mmap_size=1073741824")
            cursor.execute("PRAGMA cache_size=-16384")
            # commits write the log without waiting for the disk (fsync): the checkpoint
            # job does, every few seconds (docs/architecture.md, "SQLite")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        # this process's writers queue on a lock, not in SQLite's busy handler, whose sleeps
        # let a steady stream of writers starve one past busy_timeout (20 API clients did)
        writers = threading.RLock()

        @contextlib.contextmanager
        def begin():  # writers lock first (BEGIN IMMEDIATE): what they read holds as they write
            with writers, engine.connect() as conn, conn.begin():
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn

        engine.begin = begin  # reads (engine.connect()) stay in the driver's autocommit
        return engine
    postgresql = url_obj.get_backend_name() == "postgresql"
    if postgresql:  # reads (engine.connect()) in autocommit: no BEGIN nor ROLLBACK round trip
        kwargs.setdefault("isolation_level", "AUTOCOMMIT")  # (each reads the latest commit)
    else:  # MariaDB/MySQL
        kwargs.setdefault("pool_recycle", 3600)
        url_obj = url_obj.update_query_dict({"charset": "utf8mb4"})
    # a connection for each of the web's request threads (WEB_THREADS) and the background
    # ones: a request never waits for one (QueuePool's waiters can starve under load)
    kwargs.setdefault("max_overflow", 25)
    engine = sa.create_engine(url_obj, **kwargs)
    if postgresql:  # writers transact
        engine.begin = engine.execution_options(isolation_level="READ COMMITTED").begin

    @sa.event.listens_for(engine, "checkout")  # not pool_pre_ping's round trip at each checkout:
    def _ping_if_idle(dbapi_connection, record, _proxy):  # idle a minute, it may be gone
        seen, record.info["seen"] = record.info.get("seen"), time.monotonic()
        try:
            if seen is not None and record.info["seen"] - seen > 60:
                engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:  # the pool connects again
            raise sa.exc.DisconnectionError(str(exc)) from exc
    return engine
