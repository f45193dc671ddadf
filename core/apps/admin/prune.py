"""Pruning the database: the scheduler task ``admin.prune_deleted`` removes for good the
records deleted longer ago than the retention (a built-in plugin of its own, registered in
``core.kernel.plugins.BUILTIN_PLUGINS``; its setting on Admin → Deleted records,
prune_web.py).

Deletes are soft (``RecordService.delete_many`` sets ``deleted`` and stamps ``modified_at``,
which a deleted record keeps): the rows stay, and links left to them still name them. After ``deleted_records.retention_days`` days (default 30; 0 keeps them
for ever) they go, with what hangs off them, by the rules the kernel's own purges follow
(a pack's purge, ``PackService._forget_modules``, at the module's scale):

- the kernel's rows about the record: every ``crbm_`` table with ``module`` and
  ``record_id`` columns (change log, record teams and denies, recent items, webhook
  deliveries);
- its many-to-many links, from whichever side the relationship is declared;
- its module features' rows (a document's line groups and lines: the tables a feature
  declares, by their ``record_id``).

A deleted record a live record still points at is kept: through a related field (a link
kept from before, drawn "Acme (deleted)") or from its feature rows (a line's product or tax
code: a document keeps being priced with a deleted tax code). Removing it would leave that
link naming nothing. It is counted, and goes once nothing live points at it. Feature rows
declare no targets, so any of their ``*_id`` columns holding the id counts (ids are UUIDs).

Set-based and short: per module, batches of ``BATCH`` ids (keyset by id), found and
checked by reading (no lock: the checks scan feature tables), then removed in a write
transaction of their own — a statement per table per batch — so one run never holds
SQLite's single write lock for long. (A pointer made between the two, a document copied
from one that uses a deleted tax code, is the one thing this can miss.) Access and
ownership do not enter into it: this is the system cleaning up. A second run finds nothing
more to do.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from starlette.routing import Route

from core.kernel.database import link_columns
from core.kernel.deletion import _pointing  # "live records pointing at these", as deletes ask
from core.kernel.errors import N_, Message
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, ScheduledTask
from core.kernel.records import now

SETTING = "deleted_records"
DEFAULT_RETENTION = 30
MAX_RETENTION = 36_500
TASK = "admin.prune_deleted"
SCHEDULE = "0 3 * * 0"  # Sundays at 03:00: the quietest hour of the quietest day
BATCH = 500
URL = "/admin/deleted-records"


def retention_days(site) -> int:
    """Days a deleted record is kept (0: for ever); a bad stored value counts as unset."""
    stored = site.settings.get(SETTING)
    days = stored.get("retention_days") if isinstance(stored, dict) else None
    return days if isinstance(days, int) and not isinstance(days, bool) and \
        0 <= days <= MAX_RETENTION else DEFAULT_RETENTION


@dataclass
class Pruned:
    removed: dict[str, int]  # module -> records removed
    kept: int = 0  # deleted long enough, but live records still point at them

    def message(self) -> Message:
        total = sum(self.removed.values())
        result = Message(N_("Removed %(records)s records from %(modules)s modules"),
                         records=total, modules=len([n for n in self.removed.values() if n]))
        if self.kept:
            result = Message(N_("%(result)s; %(kept)s kept: live records still refer to them"),
                             result=result, kept=self.kept)
        return result


def _links_by_module(registry) -> dict[str, list[tuple[str, str]]]:
    """module -> (link table, column holding that module's ids), from both sides."""
    found: dict[str, set[tuple[str, str]]] = {}
    for module in registry.modules.values():
        for name, rel in module.relationships.items():
            if rel["kind"] != "many_to_many" or rel["module"] not in registry.modules:
                continue
            mine, theirs = link_columns(module, name)
            table = module.link_table(name)
            found.setdefault(module.name, set()).add((table, mine))
            found.setdefault(rel["module"], set()).add((table, theirs))
    return {name: sorted(pairs) for name, pairs in found.items()}


def _feature_tables(site, module) -> list[sa.Table]:
    """The site's tables ``module``'s features own, children first (lines, then groups)."""
    found = []
    for feature, _options in site.registry.features_of(module):
        owned = sa.MetaData()
        feature.tables(module, owned)
        found += [site.tables.tables[t.name] for t in reversed(owned.sorted_tables)
                  if t.name in site.tables.tables and "record_id" in t.c]
    return found


def _feature_pointers(site) -> list[tuple[sa.Table, sa.Table, list[sa.Column]]]:
    """(feature table, its owner's table, its ``*_id`` columns) of every module."""
    found = []
    for module in site.registry.modules.values():
        owner = site.tables.tables.get(module.table)
        for table in _feature_tables(site, module) if owner is not None else ():
            columns = [c for c in table.c if c.name.endswith("_id") and c.name != "record_id"]
            if columns:
                found.append((table, owner, columns))
    return found


def _held(site, conn, module, ids: list[str], pointers) -> set[str]:
    """Those of ``ids`` that live records point at: one query per related field pointing
    at ``module`` (the delete's own test), one per feature table."""
    held: set[str] = set()
    for other, f, _action in site.registry.references(module.name):
        other_table = site.tables.tables[other.table]
        held.update(conn.execute(sa.select(other_table.c[f.name]).distinct()
                                 .where(*_pointing(other_table, f, module.name, ids))).scalars())
    for table, owner, columns in pointers:
        for row in conn.execute(
                sa.select(*columns).join(owner, owner.c.id == table.c.record_id)
                .where(owner.c.deleted.is_(False), sa.or_(*(c.in_(ids) for c in columns)))):
            held.update(row)
    return held & set(ids)


def _hanging_tables(site, module, links) -> list[tuple[sa.Table, sa.ColumnElement | None, str]]:
    """(table, extra condition, id column) of every row that hangs off ``module``'s records."""
    tables = site.tables.tables
    found = [(table, None, "record_id") for table in _feature_tables(site, module)]
    for name, column in links:
        if name in tables:
            found.append((tables[name], None, column))
    for table in site.tables.sorted_tables:
        if table.name.startswith("crbm_") and {"module", "record_id"} <= set(table.c.keys()):
            found.append((table, table.c.module == module.name, "record_id"))
    return found


def prune(site, at: dt.datetime | None = None, batch: int = BATCH) -> Pruned:
    """Remove the records deleted before ``at`` minus the retention, and what hangs off
    them; ``Pruned`` says how many went, by module."""
    days = retention_days(site)
    pruned = Pruned({})
    if days == 0:
        return pruned
    cutoff = (at or now()) - dt.timedelta(days=days)
    links = _links_by_module(site.registry)
    pointers = _feature_pointers(site)
    for module in sorted(site.registry.modules.values(), key=lambda m: m.name):
        table = site.tables.tables.get(module.table)
        if table is None or "deleted" not in table.c:
            continue
        hanging = _hanging_tables(site, module, links.get(module.name, ()))
        last = None
        while True:
            with site.engine.connect() as conn:  # finding is reading: no lock held
                stmt = sa.select(table.c.id).where(
                    table.c.deleted.is_(True), table.c.modified_at < cutoff)
                if last is not None:
                    stmt = stmt.where(table.c.id > last)
                ids = list(conn.execute(stmt.order_by(table.c.id).limit(batch)).scalars())
                if not ids:
                    break
                last = ids[-1]
                held = _held(site, conn, module, ids, pointers)
            going = [i for i in ids if i not in held]
            pruned.kept += len(ids) - len(going)
            if going:
                with site.engine.begin() as conn:  # one batch, one short write transaction
                    for hanging_table, condition, column in hanging:
                        where = [hanging_table.c[column].in_(going)]
                        if condition is not None:
                            where.append(condition)
                        conn.execute(hanging_table.delete().where(*where))
                    conn.execute(table.delete().where(table.c.id.in_(going),
                                                      table.c.deleted.is_(True)))
                pruned.removed[module.name] = pruned.removed.get(module.name, 0) + len(going)
            if len(ids) < batch:
                break
    return pruned


def run(site, due: dt.datetime | None = None) -> Message:
    """The scheduler's run for ``due``: what was deleted before it, less the retention."""
    if retention_days(site) == 0:
        return Message(N_("Deleted records are kept for ever (Admin → Deleted records)."))
    return prune(site, at=due).message()


# -- the hooks of this built-in plugin --------------------------------------------------

@hookimpl
def crbm_scheduled_tasks(site):
    return [ScheduledTask(TASK, N_("Prune deleted records"), run, SCHEDULE)]


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Deleted records"), URL,
                      N_("How long deleted records are kept before they are removed for good."))]


@hookimpl
def crbm_web_routes(site):
    from core.apps.admin.prune_web import retention_page  # the web layer, when it runs
    return [Route(URL, retention_page, methods=["GET", "POST"])]
