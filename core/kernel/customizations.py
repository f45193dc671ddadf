"""The site's own customizations: the last layer of the registry, stored in the database.

Each item is an overlay document — a module overlay (``kind="module"``: new fields,
layout changes, a renamed tab, a tab group) or a dropdown edit (``kind="dropdowns"``:
``{list_name: [options]}``) — keyed by (kind, name). The Studio (``core.apps.studio.studio``, whose
``save_items`` checks the merged registry first and changes nothing when it would be
invalid) and personality packs write them through ``write``.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel import database
from core.kernel.registry import Document, Layer

KINDS = ("module", "dropdowns")


@dataclass(frozen=True)
class Item:
    kind: str  # "module" or "dropdowns"
    name: str  # the module's name, or the dropdown document's name
    body: dict
    modified_at: dt.datetime | None = None

    @property
    def key(self) -> tuple[str, str]:
        return (self.kind, self.name)


def _table(engine: sa.Engine) -> sa.Table | None:
    if not sa.inspect(engine).has_table("crbm_customizations"):
        return None  # a new database: nothing customized yet
    return database.kernel_table("crbm_customizations")


def read(engine: sa.Engine) -> list[Item]:
    table = _table(engine)
    if table is None:
        return []
    with engine.connect() as conn:
        rows = conn.execute(sa.select(table).order_by(table.c.kind.desc(), table.c.name)).all()
    return [Item(r.kind, r.name, json.loads(r.body), _aware(r.modified_at)) for r in rows]


def _aware(value: dt.datetime | None) -> dt.datetime | None:
    return value.replace(tzinfo=dt.UTC) if value is not None and value.tzinfo is None else value


def layer(items: list[Item]) -> Layer:
    """Modules after dropdowns, so an overlay may use a list its site added."""
    ordered = sorted(items, key=lambda i: (i.kind != "dropdowns", i.name))
    return Layer("site", [Document(f"site customization: {i.kind} {i.name}", i.kind, i.body)
                          for i in ordered])


def bump_epoch(conn: sa.Connection) -> None:
    """Tell every worker the registry changed (they rebuild it on their next request)."""
    epoch = database.kernel_table("crbm_metadata_epoch")
    if conn.execute(epoch.update().where(epoch.c.id == 1)
                    .values(epoch=epoch.c.epoch + 1)).rowcount == 0:
        conn.execute(epoch.insert().values(id=1, epoch=1))


def read_epoch(engine: sa.Engine) -> int:
    if not sa.inspect(engine).has_table("crbm_metadata_epoch"):
        return 0
    epoch = database.kernel_table("crbm_metadata_epoch")
    with engine.connect() as conn:
        return conn.execute(sa.select(epoch.c.epoch).where(epoch.c.id == 1)).scalar() or 0


def write(conn: sa.Connection, table: sa.Table, items: list[Item], removed: list[tuple[str, str]],
          user_id: str | None) -> None:
    """Upsert ``items`` and delete ``removed`` keys, inside the caller's transaction."""
    now = dt.datetime.now(dt.UTC)
    bump_epoch(conn)
    for kind, name in removed:
        conn.execute(table.delete().where(table.c.kind == kind, table.c.name == name))
    for item in items:
        conn.execute(table.delete().where(table.c.kind == item.kind, table.c.name == item.name))
        conn.execute(table.insert().values(kind=item.kind, name=item.name,
                                           # key order kept: fields in the order added
                                           body=json.dumps(item.body),
                                           modified_at=item.modified_at or now,
                                           modified_by=user_id))
