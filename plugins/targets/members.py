"""Target list members (module ``prospect_lists``): adding targets (``prospects``),
contacts or leads to a target list — the ticked rows of a list page, or every record its filters and search match — in one transaction.

Access as the record service's ``link`` applies it, set-based: the user must be able to
edit the target list and to see each record added (one query per 500 records, the
records' view predicate); records they may not see are left out and counted. Links
already there are kept (adding twice is harmless). The link rows go into the
relationship's link table (the one ``RecordService.link`` writes) with one INSERT.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import link_columns
from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.records import now

LISTS = "prospect_lists"
IN_BATCH = 500
# the member modules a target list holds, by the list's relationship to them
MEMBER_RELATIONSHIPS = {"prospects": "prospects", "contacts": "contacts", "leads": "leads"}


def member_modules(site) -> list[str]:
    lists = site.registry.modules.get(LISTS)
    return [m for m, rel in MEMBER_RELATIONSHIPS.items()
            if lists is not None and rel in lists.relationships and m in site.registry.modules]


def can_join_lists(site, module_name: str) -> bool:
    """Whether the records of this module can be members of a target list."""
    return module_name in member_modules(site)


def add_members(site, user, list_id: str, module_name: str, record_ids) -> tuple[int, int]:
    """Add the records to the list; (added, left out because not visible to the user)."""
    if module_name not in member_modules(site):
        raise NotFoundError(f"target lists do not hold {module_name}")
    lists = site.registry.module(LISTS)
    relationship = MEMBER_RELATIONSHIPS[module_name]
    table = site.tables.tables[lists.link_table(relationship)]
    mine, theirs = link_columns(lists, relationship)
    ids = sorted({str(i) for i in record_ids if i})
    with site.engine.begin() as conn:
        if not site.records.allowed(LISTS, [list_id], user, "edit", connection=conn):
            raise NotFoundError(Message(N_("no target list with id %(id)s that you may "
                                           "change"), id=list_id))
        site.records.lock(LISTS, [list_id], connection=conn)  # adders of one list queue
        visible: set[str] = set()
        for start in range(0, len(ids), IN_BATCH):
            visible |= site.records.allowed(module_name, ids[start:start + IN_BATCH], user,
                                            "view", connection=conn)
        there: set[str] = set()
        chosen = sorted(visible)
        for start in range(0, len(chosen), IN_BATCH):
            there |= set(conn.execute(sa.select(table.c[theirs]).where(
                table.c[mine] == list_id,
                table.c[theirs].in_(chosen[start:start + IN_BATCH]))).scalars())
        stamp = now()
        rows = [{mine: list_id, theirs: record_id, "created_at": stamp, "created_by": user.id}
                for record_id in chosen if record_id not in there]
        if rows:
            conn.execute(table.insert(), rows)
    return len(rows), len(ids) - len(visible)


def member_count(site, list_id: str, module_name: str) -> int:
    lists = site.registry.module(LISTS)
    relationship = MEMBER_RELATIONSHIPS[module_name]
    table = site.tables.tables[lists.link_table(relationship)]
    mine, _theirs = link_columns(lists, relationship)
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(table.c[mine] == list_id)).scalar()
