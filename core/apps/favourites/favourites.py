"""Favourites: the records a user starred to find them again (issue 25), and what the
favourites page shows — those, then the records the user opened last.

- ``is_favourite`` / ``star`` / ``unstar``: one statement each on the primary key
  (``tables.py``). ``star`` is each database's insert-or-nothing, so starring twice (a
  double click, two workers) leaves one row and raises nothing; ``unstar`` deletes what
  is there, if anything. Whether the user may read the record is the caller's check
  (``web.py``): only a readable record is starred; any favourite may be removed.
- ``starred`` / ``recent``: the user's favourites grouped by module, and their recently
  viewed records (``crbm_recent_items``, written by core/web/recent.py). Both read names
  through ``names``: the record service with the user's access predicate, one statement
  per module among them (never one per record), so a record deleted since, in a module
  the user's roles now disable, or that the user may no longer view is left out — it
  stays in the table and shows again if it comes back.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from core.apps.favourites.tables import TABLE
from core.kernel.records import Query, now

RECENT_SHOWN = 10  # as the home page's "Recently viewed"


def _item(module: str, record_id: str, name: str) -> dict:
    """A record the page links to. A plain dict: a theme's sandboxed templates may read
    it (core/web/sandbox.py) without another allowed type."""
    return {"module": module, "id": record_id, "name": name}


def _table(site) -> sa.Table:
    return site.tables.tables[TABLE]


def _key(table: sa.Table, user_id: str, module: str, record_id: str):
    return sa.and_(table.c.user_id == user_id, table.c.module == module,
                   table.c.record_id == str(record_id))


def is_favourite(site, user, module: str, record_id: str) -> bool:
    table = _table(site)
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.literal(1)).where(
            _key(table, user.id, module, record_id))).first() is not None


def star(site, user, module: str, record_id: str) -> None:
    """Add the record to the user's favourites (nothing when it is one already)."""
    row = {"user_id": user.id, "module": module, "record_id": str(record_id),
           "created_at": now()}
    with site.engine.begin() as conn:
        conn.execute(_insert_or_nothing(conn, _table(site)), [row])


def unstar(site, user, module: str, record_id: str) -> None:
    """Remove the record from the user's favourites (nothing when it is not one)."""
    table = _table(site)
    with site.engine.begin() as conn:
        conn.execute(table.delete().where(_key(table, user.id, module, record_id)))


def _insert_or_nothing(conn, table: sa.Table):
    """INSERT, or nothing on the same (user, module, record): each database's own (a
    select then an insert races between workers; a caught IntegrityError would end a
    PostgreSQL transaction)."""
    if conn.dialect.name in ("mysql", "mariadb"):
        stmt = mysql.insert(table)  # no-op update: keeps the first created_at
        return stmt.on_duplicate_key_update(created_at=table.c.created_at)
    stmt = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
    return stmt.on_conflict_do_nothing(index_elements=[c.name for c in table.primary_key])


def names(site, user, pairs) -> dict[tuple[str, str], str]:
    """(module, record id) -> the record's name, for the pairs the user may view: one
    statement per module (ids read with ``IN``), through the record service so the
    user's access predicate and the deleted flag apply in SQL. A module that is gone or
    that the user's roles disable is skipped without a statement."""
    by_module: dict[str, list[str]] = {}
    for module_name, record_id in pairs:
        by_module.setdefault(module_name, []).append(str(record_id))
    out: dict[tuple[str, str], str] = {}
    for module_name, ids in by_module.items():
        module = site.registry.modules.get(module_name)
        if module is None or site.access.mode(user, module) == "disabled":
            continue
        fields = [module.name_field] if module.name_field else []
        for record in site.records.list(module_name, user, Query(
                filters=[("id", "in", ids)], fields=fields, limit=None), action="view"):
            name = record.get(module.name_field) if module.name_field else None
            out[(module_name, str(record["id"]))] = str(name or record["id"])
    return out


def starred(site, user) -> list[tuple[object, list[dict]]]:
    """The user's favourites they may still view: (module, items) per module, modules by
    label and records by name."""
    table = _table(site)
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.module, table.c.record_id)
                            .where(table.c.user_id == user.id)).all()
    found = names(site, user, rows)
    groups: dict[str, list[dict]] = {}
    for (module_name, record_id), name in found.items():
        groups.setdefault(module_name, []).append(_item(module_name, record_id, name))
    modules = sorted((site.registry.modules[m] for m in groups),
                     key=lambda m: str(m.label).casefold())
    return [(m, sorted(groups[m.name], key=lambda i: (i["name"].casefold(), i["id"])))
            for m in modules]


def recent(site, user, limit: int = RECENT_SHOWN) -> list[tuple[object, dict]]:
    """The records the user opened last that they may still view, newest first, each with
    its module. The caller flushes this worker's pending views first."""
    table = site.tables.tables["crbm_recent_items"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.module, table.c.record_id)
                            .where(table.c.user_id == user.id)
                            .order_by(table.c.viewed_at.desc()).limit(limit)).all()
    found = names(site, user, rows)
    return [(site.registry.modules[r.module], _item(r.module, str(r.record_id), found[key]))
            for r in rows if (key := (r.module, str(r.record_id))) in found]
