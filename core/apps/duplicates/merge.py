"""Merging two to five records of one module into one (the survivor).

In one transaction, through the record service:

1. the records are locked and read as the user sees them; every one must be live and
   visible, editable, and each loser deletable — else nothing changes and the refusal
   says which record and why;
2. the survivor takes the chosen values (a field's value from the record the user picked;
   a composite field such as an address goes whole) — the record service validates,
   logs the audited changes and runs the save hooks;
3. every record pointing at a loser through a ``related`` field of any module (parent
   links too: their type says which module) is moved to the survivor with one
   ``update_many`` per referencing field — set-based, logged, hooked. The moves are made
   with the user's id but past their row rights: a loser's quote the user cannot see still
   belongs to whoever the loser was, and leaving it on a deleted record would lose it;
4. every many-to-many link of a loser (on either side) moves to the survivor, dropping
   the ones the survivor already has;
5. the losers are deleted (soft, with the delete hooks), and the change log says what
   happened: "Merged from ..." on the survivor, "Merged into ..." on each loser, and the
   moved records' changed field on each of them.

Every step is given the merge's connection, so they all join the one transaction (a
rollback undoes them all).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from core.kernel import i18n
from core.kernel.database import link_columns
from core.kernel.errors import N_, Message, NotFoundError, ValidationError, VetoError
from core.kernel.records import Query, User, now

MIN_RECORDS, MAX_RECORDS = 2, 5
MERGED = "(merged)"  # the change log's field for a merge's own entries


class MergeRefused(VetoError):
    """The user may not merge these records (a right is missing): nothing was changed."""


@dataclass
class Merged:
    survivor: dict  # as stored after the merge
    losers: list[str]
    moved: dict[str, int] = field(default_factory=dict)  # module label -> records moved
    links: int = 0  # many-to-many links moved


def merge_rows(module) -> list[tuple[str, str, list[str]]]:
    """(key, label, fields) of what a merge chooses: the flagged fields first (a composed
    name by its parts), then every other field a form writes; a composite (address,
    currency) is one row of its parts."""
    rows: dict[str, tuple[str, str, list[str]]] = {}
    writable = [f for f in module.fields.values()
                if not f.system and f.stored and f.type.writable(f.spec)
                and "computed_by" not in f.spec and f.name != "assigned_user_id"]

    def add(f):
        key = f.group or f.name
        if key in rows:
            if f.name not in rows[key][2]:
                rows[key][2].append(f.name)
            return
        # a composite's row is named after it ("Primary address"), not its first part
        label = module.fields[key].label if key in module.fields else \
            i18n.label(f.spec["label_of"]) if "label_of" in f.spec else f.label
        rows[key] = (key, label, [f.name])

    by_name = {f.name: f for f in writable}
    for f in module.fields.values():
        if f.spec.get("merge_duplicates"):
            for part in f.spec.get("parts") or [f.name]:
                if part in by_name:
                    add(by_name[part])
    for f in writable:
        add(f)
    if "assigned_user_id" in module.fields:
        rows["assigned_user_id"] = ("assigned_user_id", module.fields["assigned_user_id"].label,
                                    ["assigned_user_id"])
    return list(rows.values())


def _name(module, record: dict) -> str:
    return str(record.get(module.name_field or "") or record["id"])


def merge(site, module, record_ids, user, *, survivor: str | None = None,
          choices: dict[str, str] | None = None) -> Merged:
    """Merge ``record_ids`` (2 to 5, of ``module``) into ``survivor`` (default: the
    first). ``choices``: a merge row's key (``merge_rows``) -> the id of the record whose
    value the survivor takes (default: the survivor's own). Raises ``ValidationError``
    (bad input), ``NotFoundError`` (a record deleted or not visible), ``MergeRefused``
    (a right missing); nothing is changed then."""
    module = site.registry.module(module) if isinstance(module, str) else module
    ids = list(dict.fromkeys(str(i).strip() for i in record_ids if str(i).strip()))
    survivor = str(survivor) if survivor else (ids[0] if ids else None)
    if survivor and survivor not in ids:
        ids.insert(0, survivor)
    if not MIN_RECORDS <= len(ids) <= MAX_RECORDS:
        raise ValidationError({"records": Message(
            N_("Choose two to five records to merge (%(count)s given)."), count=len(ids))})
    losers = [i for i in ids if i != survivor]
    rows = {key: names for key, _, names in merge_rows(module)}
    choices = dict(choices or {})
    bad = {key: Message(N_("%(value)s is not one of the records merged"), value=repr(src))
           for key, src in choices.items() if key in rows and src not in ids}
    bad |= {key: Message(N_("is not a field of %(module)s that a merge sets"),
                         module=module.label) for key in choices if key not in rows}
    if bad:
        raise ValidationError(bad)

    with site.engine.begin() as conn:
        records = site.records
        records.lock(module.name, ids, connection=conn)
        found = {r["id"]: r for r in records.list(
            module.name, user, Query(filters=[("id", "in", ids)], limit=None), connection=conn)}
        missing = [i for i in ids if i not in found]
        if missing:
            raise NotFoundError(Message(
                N_("%(module)s not found (deleted, or you may not see it): %(ids)s"),
                module=module.label_singular, ids=", ".join(missing)))
        names = {i: _name(module, found[i]) for i in ids}
        editable = records.allowed(module.name, ids, user, "edit", connection=conn)
        refused = [names[i] for i in ids if i not in editable]
        if refused:
            raise MergeRefused(Message(N_("You may not edit %(names)s: nothing was merged."),
                                       names=", ".join(refused)))
        deletable = records.allowed(module.name, losers, user, "delete", connection=conn)
        refused = [names[i] for i in losers if i not in deletable]
        if refused:
            raise MergeRefused(Message(N_("You may not delete %(names)s: nothing was merged."),
                                       names=", ".join(refused)))

        kept = found[survivor]
        values = {}
        for key, source in choices.items():
            if source != survivor:
                for name in rows[key]:
                    if found[source].get(name) != kept.get(name):
                        values[name] = found[source].get(name)
        # a link of the survivor to a loser (an account "member of" its duplicate) would
        # point at itself once moved: it is cleared instead
        for other, f, _ in site.registry.references(module.name):
            if other.name == module.name and values.get(f.name, kept.get(f.name)) in losers:
                values[f.name] = None
        if values:
            records.update(module.name, survivor, values, user, connection=conn)

        mover = User(user.id, user.username, is_admin=True)  # the module docstring, step 3
        moved = _move_references(site, records, conn, module, survivor, ids, losers, user, mover)
        links = _move_links(site, conn, module, survivor, losers)
        deleted = records.delete_many(module.name, losers, user, connection=conn)
        if deleted != len(losers):  # someone else deleted one meanwhile: all or nothing
            raise NotFoundError(Message(N_("A record to merge was deleted meanwhile: "
                                           "nothing was merged.")))
        _log(site, conn, module, survivor, losers, names, moved, links, user)
        result = Merged(records.get(module.name, survivor, user, connection=conn), losers,
                        {site.registry.module(m).label: n for m, n in moved.items()}, links)
    return result


def _move_references(site, records, conn, module, survivor, ids, losers, user, mover) -> dict:
    """Every live record pointing at a loser now points at the survivor: one read and one
    ``update_many`` per referencing field. Returns module name -> records moved."""
    moved: dict[str, int] = {}
    log = site.tables.tables["crbm_change_log"]
    for other, f, _ in site.registry.references(module.name):
        table = records.table(other)
        where = [table.c[f.name].in_(losers), table.c.deleted.is_(False)]
        if "modules" in f.spec:  # a parent link: its type says which module
            where.append(table.c[f.spec["type_field"]] == module.name)
        if other.name == module.name:
            where.append(table.c.id.not_in(ids))  # the merged records themselves: above
        pointing = dict(conn.execute(sa.select(table.c.id, table.c[f.name]).where(*where)).all())
        if not pointing:
            continue
        records.update_many(other.name, list(pointing), {f.name: survivor}, mover,
                            connection=conn)
        moved[other.name] = moved.get(other.name, 0) + len(pointing)
        if other.features.get("audited") and not f.audited:
            # the record service logs audited fields only; a move is worth a line anyway
            stamp = now()
            conn.execute(log.insert(), [
                {"module": other.name, "record_id": i, "field": f.name, "old_value": loser,
                 "new_value": survivor, "changed_at": stamp, "changed_by": user.id}
                for i, loser in pointing.items()])
    return moved


def _link_sides(site, module) -> list[tuple[sa.Table, str, str]]:
    """(link table, this module's column, the other column) of every many-to-many
    relationship either side of which is ``module``."""
    sides: dict[tuple[str, str], tuple[sa.Table, str, str]] = {}
    for other in site.registry.modules.values():
        for name, rel in other.relationships.items():
            if rel.get("kind") != "many_to_many":
                continue
            table = site.tables.tables.get(other.link_table(name))
            if table is None:
                continue
            first, second = link_columns(other, name)
            if other.name == module.name:
                sides[(table.name, first)] = (table, first, second)
            if rel["module"] == module.name:
                sides[(table.name, second)] = (table, second, first)
    return list(sides.values())


def _move_links(site, conn, module, survivor: str, losers: list[str]) -> int:
    """A loser's links become the survivor's, less the ones it has: per link column, the
    survivor's partners read once, then per loser a DELETE of the doubles and an UPDATE."""
    count = 0
    for table, mine, theirs in _link_sides(site, module):
        for loser in losers:
            has = set(conn.execute(sa.select(table.c[theirs]).where(
                table.c[mine] == survivor)).scalars()) | {survivor}
            has_list = sorted(has)
            for start in range(0, len(has_list), 500):
                conn.execute(table.delete().where(
                    table.c[mine] == loser, table.c[theirs].in_(has_list[start:start + 500])))
            count += conn.execute(table.update().where(table.c[mine] == loser)
                                  .values({mine: survivor})).rowcount or 0
    return count


def _log(site, conn, module, survivor, losers, names, moved, links, user) -> None:
    log = site.tables.tables["crbm_change_log"]
    stamp = now()
    described = ", ".join(f"{names[i]} ({i})" for i in losers)
    summary = [f"{n} {site.registry.module(m).label_singular if n == 1 else site.registry.module(m).label}"
               for m, n in sorted(moved.items())]
    if links:
        summary.append(f"{links} link{'s' if links != 1 else ''}")
    text = f"Merged from {described}" + (f"; moved {', '.join(summary)}" if summary else "")
    conn.execute(log.insert(), [
        {"module": module.name, "record_id": survivor, "field": MERGED, "old_value": None,
         "new_value": text, "changed_at": stamp, "changed_by": user.id},
        *({"module": module.name, "record_id": loser, "field": MERGED, "old_value": None,
           "new_value": f"Merged into {names[survivor]} ({survivor})", "changed_at": stamp,
           "changed_by": user.id} for loser in losers)])

