"""Quick search's keys for the records that have none.

Each field quick search looks in (``ModuleDef.search_fields``) has a hidden column
``_sk_<field>`` holding ``core.kernel.fields.search_key`` of its value — case folded,
accents dropped — with an index led by it: the record service writes it on every save and
``RecordService._search`` finds a prefix as a range of it. A key is never NULL once written
("" for an empty field), so NULL means "not keyed yet": the rows of a site upgraded from
before the keys, of a field the list layout's ``search`` has just added, or written by
something other than the record service. ``backfill`` runs after every schema sync
(``crbm db sync``, the Studio, a pack install) and finds those rows through the keys'
own indexes, so on a keyed site it costs one indexed probe per module.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.fields import search_key


def backfill(site, batch: int = 2_000) -> int:
    """Key every row whose key is missing, deleted ones too (an undelete finds them
    keyed): a select of ``batch`` rows and one executemany update per batch, each batch
    its own transaction (a big table does not hold the writer's lock for minutes).
    Returns how many rows were keyed."""
    keyed = 0
    for module in site.registry.modules.values():
        names = module.search_fields
        table = site.tables.tables.get(module.table)
        if not names or table is None or any(f"_sk_{n}" not in table.c for n in names):
            continue
        missing = sa.or_(*(table.c[f"_sk_{n}"].is_(None) for n in names))
        update = table.update().where(table.c.id == sa.bindparam("b_id")) \
            .values({f"_sk_{n}": sa.bindparam(f"k_{n}") for n in names})
        while True:
            with site.engine.begin() as conn:
                rows = conn.execute(sa.select(table.c.id, *(table.c[n] for n in names))
                                    .where(missing).limit(batch)).all()
                if rows:
                    conn.execute(update, [{"b_id": row[0], **{f"k_{n}": search_key(value)
                                           for n, value in zip(names, row[1:])}}
                                          for row in rows])
            keyed += len(rows)
            if len(rows) < batch:
                break
    return keyed
