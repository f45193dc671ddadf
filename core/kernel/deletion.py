"""Deleting records other records refer to: what a related field's ``on_delete`` says.

A related field declares what deleting the record it points to does to the record holding
it (metadata/schema/module.json; default ``restrict`` when the field is required, else
``clear``):

    restrict   the delete is refused while a live record points there (documents on their
               account); ``InUseError`` names what refers to it, by module and count
    cascade    the pointing records are deleted too, their own ``on_delete`` rules in turn
               (a price book's prices)
    clear      the field is emptied (a contact outlives its account)

``RecordService.delete_many`` calls ``plan`` inside the delete's transaction, then deletes
what it found and ``clear_links``. Everything is set-based — a query per referencing field
(per level of cascade), never per record — and counts only live records. Rights do not
enter into it: it is what the data holds together, and a count tells nothing of what the
referring records are.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel.errors import N_, InUse, Message
from core.kernel.registry import FieldDef, ModuleDef, sequence_field


class Deleted(int):
    """How many records ``delete_many`` deleted; ``in_use``: those it left (skip_in_use)
    because other records depend on them."""

    in_use: list[InUse]

    def __new__(cls, count: int, in_use: Sequence[InUse] = ()):
        deleted = super().__new__(cls, count)
        deleted.in_use = list(in_use)
        return deleted


@dataclass
class Deletion:
    records: dict[str, dict[str, dict]]  # module -> id -> record: the asked-for module first
    in_use: list[InUse]
    modules: dict[str, ModuleDef]

    def batches(self) -> list[tuple[ModuleDef, list[dict]]]:
        """(module, its records) in the order found: the hooks' batches."""
        return [(self.modules[name], list(rows.values()))
                for name, rows in self.records.items()]


def chunks(ids: list, size: int = 500):
    """IN lists of a sane size."""
    for start in range(0, len(ids), size):
        yield ids[start:start + size]


def plan(service, conn, module: ModuleDef, records: list[dict]) -> Deletion:
    """What deleting ``records`` deletes and what stops it, from the related fields
    that point at them (``Registry.references``):

    - ``cascade``: the records pointing here go too (locked and read for the hooks),
      and what points at them in turn — one query per field per level;
    - ``restrict``: live records pointing at anything deleted, and not deleted with
      it, make the record it goes with in use — one counting query per field.

    ``service`` is the RecordService (its tables and registry)."""
    found: dict[str, dict[str, dict]] = {module.name: {r["id"]: r for r in records}}
    roots: dict[tuple[str, str], set[str]] = {(module.name, r["id"]): {r["id"]}
                                              for r in records}
    frontier = {module.name: list(found[module.name])}
    while frontier:
        reached: dict[str, list[str]] = {}
        for target, ids in frontier.items():
            for other, f, action in service.registry.references(target):
                if action != "cascade":
                    continue
                table = service.table(other)
                for chunk in chunks(ids):
                    rows = conn.execute(
                        sa.select(*(table.c[g.name] for g in other.stored_fields))
                        .where(*_pointing(table, f, target, chunk))
                        .order_by(table.c.id).with_for_update()).mappings()
                    for row in rows:
                        roots.setdefault((other.name, row["id"]), set()).update(
                            roots[(target, row[f.name])])
                        if row["id"] not in found.setdefault(other.name, {}):
                            found[other.name][row["id"]] = dict(row)
                            reached.setdefault(other.name, []).append(row["id"])
        frontier = reached
    counts: dict[str, dict[str, int]] = {}  # root id -> {referring module: how many}
    for target, held in found.items():
        by_module: dict[str, list[FieldDef]] = {}
        for other, f, action in service.registry.references(target):
            if action == "restrict":
                by_module.setdefault(other.name, []).append(f)
        for other_name, fields in by_module.items():
            for target_ids, how_many in _referring(
                    service, conn, service.registry.module(other_name), fields, target, list(held),
                    set(found.get(other_name, ()))):
                for root in set().union(*(roots[(target, t)] for t in target_ids)):
                    mine = counts.setdefault(root, {})
                    mine[other_name] = mine.get(other_name, 0) + how_many
    in_use = [_in_use(service, module, found[module.name][root], counts[root])
              for root in found[module.name] if root in counts]
    return Deletion(found, in_use, {name: service.registry.module(name) for name in found})


def _pointing(table: sa.Table, f: FieldDef, target: str, ids: list[str]) -> list:
    """Live rows whose related field ``f`` points at one of ``ids`` of ``target``."""
    where = [table.c[f.name].in_(ids), table.c.deleted.is_(False)]
    if "modules" in f.spec:  # a parent link: its type says which module
        where.append(table.c[f.spec["type_field"]] == target)
    return where


def _referring(service, conn, other: ModuleDef, fields: list[FieldDef], target: str,
               ids: list[str], leaving: set[str]):
    """(ids of ``target`` referred to, how many records) for the live records of
    ``other`` that refer to ``ids`` through ``fields`` and are not among ``leaving``
    (deleted in the same operation). Counted in the database when one field points
    there; read when several do, so a record using two of them counts once."""
    table = service.table(other)
    many = len(leaving) > 5_000  # too many to name in SQL: left out while reading
    for chunk in chunks(ids):
        pointing = [sa.and_(*_pointing(table, f, target, chunk)) for f in fields]
        where = [sa.or_(*pointing)]
        if leaving and not many:
            where.append(table.c.id.not_in(sorted(leaving)))
        if len(fields) == 1 and not many:
            column = table.c[fields[0].name]
            for target_id, how_many in conn.execute(
                    sa.select(column, sa.func.count()).where(*where).group_by(column)):
                yield (target_id,), how_many
            continue
        wanted = set(chunk)
        for row in conn.execute(sa.select(table.c.id, *(table.c[f.name] for f in fields))
                                .where(*where)):
            if row[0] in leaving:
                continue
            hit = {value for value in row[1:] if value in wanted}
            if hit:
                yield tuple(hit), 1


def _in_use(service, module: ModuleDef, record: dict, counts: dict[str, int]) -> InUse:
    dependents = tuple((name, str(service.registry.module(name).label), n)
                       for name, n in sorted(counts.items()))
    listed = ", ".join(
        f"{n} {m.label_singular if n == 1 else m.label}"
        for name, _, n in dependents for m in [service.registry.module(name)])
    name = record.get(module.name_field or "") or \
        record.get(sequence_field(module) or "") or record["id"]
    return InUse(record["id"], str(name), dependents, Message(
        N_("%(name)s cannot be deleted: other records refer to it (%(dependents)s)"),
        name=name, dependents=listed))


def clear_links(service, conn, deletion: Deletion, user, stamp: dt.datetime) -> None:
    """Empty the ``clear`` fields pointing at what was deleted: one UPDATE per field
    (a derived change: no save hooks; the version moves, so an edit form opened
    before says what changed; audited fields are logged)."""
    for target, held in deletion.records.items():
        for other, f, action in service.registry.references(target):
            if action != "clear":
                continue
            table = service.table(other)
            emptied = {f.name: None}
            if "modules" in f.spec:
                emptied[f.spec["type_field"]] = None
            logged = other.features.get("audited") and f.audited
            for ids in chunks(list(held)):
                where = _pointing(table, f, target, ids)
                before = conn.execute(sa.select(table.c.id, table.c[f.name])
                                      .where(*where)).all() if logged else []
                conn.execute(table.update().where(*where).values(
                    **emptied, modified_at=stamp, modified_by=user.id,
                    version=table.c.version + 1))
                service._log_changes(conn, other, [(row[0], {f.name: (row[1], None)})
                                                for row in before], user)
