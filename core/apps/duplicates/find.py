"""Finding likely duplicates from the keys (core.apps.duplicates.keys).

``find_duplicates`` answers "who is this new record likely to be": one statement reads the
live records sharing an email or phone key, and the names of the record's bucket (its
company), along the key index; rapidfuzz keeps the names scoring at least ``NAME_SCORE``;
one more statement reads the survivors through the record service, so only records the
user may view are offered (the access predicate is SQL, as on every read).

``find_groups`` does the same for many records at once (the list action): one self-join
per chunk of 500 records, grouped with a union-find.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from rapidfuzz import fuzz

from core.apps.duplicates import keys as dk
from core.kernel.records import Query

NAME_SCORE = 90  # token_sort_ratio, 0-100: "Jon Smith" ~ "John Smith" (95)
MAX_CANDIDATES = 500  # rows read per check: a bucket bigger than that is read in part
MAX_OFFERED = 10
MAX_SELECTION = 1_000  # records the list action groups at once


@dataclass
class Duplicate:
    """A likely duplicate the user may view: why it matched, best first."""
    id: str
    name: str
    reasons: list[str] = field(default_factory=list)  # "email", "phone", "name"
    score: int = 0
    record: dict = field(default_factory=dict)

    def as_json(self) -> dict:
        return {"id": self.id, "name": self.name, "reasons": self.reasons, "score": self.score}


def _live(site, module, keys_table):
    """The key rows of live records of ``module`` (deleted ones keep their keys)."""
    table = site.records.table(module)
    return keys_table.join(table, sa.and_(table.c.id == keys_table.c.record_id,
                                          table.c.deleted.is_(False)))


def find_duplicates(site, module, values, user, *, exclude_id: str | None = None) -> list[Duplicate]:
    """The records of ``module`` (its name or definition) that ``values`` (a record being
    created or edited, as field values) likely duplicates, that ``user`` may view, best
    first; [] for a module that flags no field ``merge_duplicates``."""
    module = site.registry.module(module) if isinstance(module, str) else module
    plan = dk.plan_of(module)
    if plan is None:
        return []
    mine = dk.keys_of(plan, values, dk.default_region(site))
    k = site.tables.tables[dk.TABLE]
    joined = _live(site, module, k)
    parts = []
    for kind in (dk.EMAIL, dk.PHONE):
        if mine.get(kind):
            parts.append(sa.select(k.c.record_id, k.c.kind, sa.literal("").label("name"))
                         .select_from(joined)
                         .where(k.c.module == plan.module, k.c.kind == kind, k.c.key.in_(mine[kind])))
    if mine.get(dk.BUCKET):
        # the bucket's live records first (a derived table: no planner starts from every
        # name of the module instead — SQLite's did, having no statistics), then their
        # names by primary key
        bucket = sa.select(k.c.record_id).select_from(joined).where(
            k.c.module == plan.module, k.c.kind == dk.BUCKET, k.c.key == mine[dk.BUCKET][0]) \
            .limit(MAX_CANDIDATES).subquery("bucket")
        names = k.alias("names")
        parts.append(sa.select(names.c.record_id, sa.literal(dk.BUCKET).label("kind"),
                               names.c.key.label("name"))
                     .where(names.c.module == plan.module, names.c.kind == dk.NAME,
                            names.c.record_id.in_(sa.select(bucket.c.record_id))))
    if not parts:
        return []
    found: dict[str, Duplicate] = {}
    name = mine[dk.NAME][0] if mine.get(dk.NAME) else ""
    with site.engine.connect() as conn:
        rows = conn.execute(sa.union_all(*parts).limit(MAX_CANDIDATES)).all()
    for record_id, kind, other_name in rows:
        if record_id == exclude_id:
            continue
        if kind == dk.BUCKET:
            score = int(fuzz.token_sort_ratio(name, other_name))
            if score < NAME_SCORE:
                continue
            hit = found.setdefault(record_id, Duplicate(record_id, ""))
            hit.reasons.append(dk.NAME)
            hit.score = max(hit.score, score)
        else:
            hit = found.setdefault(record_id, Duplicate(record_id, ""))
            if kind not in hit.reasons:
                hit.reasons.append(kind)
            hit.score = 100
    return _visible(site, module, user, found)[:MAX_OFFERED]


def _visible(site, module, user, found: dict[str, Duplicate]) -> list[Duplicate]:
    """The hits ``user`` may view, with their names, best first (one read, by id)."""
    if not found:
        return []
    shown = [n for n in dict.fromkeys(["id", module.name_field, "created_at",
                                        *_summary_fields(module)]) if n]
    visible = []
    ids = list(found)
    for start in range(0, len(ids), 500):
        visible += site.records.list(module.name, user, Query(
            filters=[("id", "in", ids[start:start + 500])], fields=shown, limit=None))
    out = []
    for record in visible:
        hit = found[record["id"]]
        hit.record = record
        hit.name = str(record.get(module.name_field) or record["id"]) if module.name_field \
            else record["id"]
        out.append(hit)
    out.sort(key=lambda d: (-len(d.reasons), -d.score, d.name.casefold(), d.id))
    return out


def _summary_fields(module) -> list[str]:
    """The flagged fields a warning shows beside a name (stored ones)."""
    plan = dk.plan_of(module)
    return [n for n in (*plan.emails, *plan.phones, *plan.buckets)
            if module.fields[n].stored] if plan else []


def _name_of(names, module: str, record_id):
    """The join to a record's name key (by primary key)."""
    return sa.and_(names.c.module == module, names.c.record_id == record_id,
                   names.c.kind == dk.NAME)


def find_groups(site, module, record_ids, user) -> list[list[Duplicate]]:
    """Groups of likely duplicates among ``record_ids`` and the records they duplicate
    (the list action): each group two or more records ``user`` may view, biggest first."""
    module = site.registry.module(module) if isinstance(module, str) else module
    plan = dk.plan_of(module)
    if plan is None:
        return []
    k = site.tables.tables[dk.TABLE]
    other = k.alias("other")
    a_names, b_names = k.alias("a_names"), k.alias("b_names")
    table = site.records.table(module)
    live, mine = table.alias("live"), table.alias("mine")
    reasons: dict[tuple[str, str], set[str]] = {}
    ids = list(dict.fromkeys(str(i) for i in record_ids))[:MAX_SELECTION]
    with site.engine.connect() as conn:
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            stmt = (sa.select(k.c.record_id, other.c.record_id, k.c.kind, a_names.c.key,
                              b_names.c.key)
                    .select_from(k.join(mine, sa.and_(mine.c.id == k.c.record_id,
                                                      mine.c.deleted.is_(False)))
                        .join(other, sa.and_(
                        other.c.module == k.c.module, other.c.kind == k.c.kind,
                        other.c.key == k.c.key, other.c.record_id != k.c.record_id))
                        .join(live, sa.and_(live.c.id == other.c.record_id,
                                            live.c.deleted.is_(False)))
                        .outerjoin(a_names, _name_of(a_names, plan.module, k.c.record_id))
                        .outerjoin(b_names, _name_of(b_names, plan.module, other.c.record_id)))
                    .where(k.c.module == plan.module, k.c.record_id.in_(chunk),
                           k.c.kind.in_([dk.EMAIL, dk.PHONE, dk.BUCKET]))
                    .limit(MAX_CANDIDATES * 20))
            for a, b, kind, a_name, b_name in conn.execute(stmt):
                if kind == dk.BUCKET:
                    if fuzz.token_sort_ratio(a_name or "", b_name or "") < NAME_SCORE:
                        continue
                    kind = dk.NAME
                reasons.setdefault(tuple(sorted((a, b))), set()).add(kind)
    if not reasons:
        return []
    # records the user may not view drop out before grouping: no group is joined through one
    visible = {d.id: d for d in _visible(site, module, user,
                                         {i: Duplicate(i, "") for pair in reasons for i in pair})}
    parent: dict[str, str] = {}

    def root(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for (a, b), why in reasons.items():
        if a in visible and b in visible:
            parent[root(a)] = root(b)
            for x in (a, b):
                visible[x].reasons = sorted(set(visible[x].reasons) | why)
    groups: dict[str, list[Duplicate]] = {}
    for record_id in parent:
        groups.setdefault(root(record_id), []).append(visible[record_id])
    # oldest first: the record a merge keeps unless the user picks another
    out = [sorted(g, key=lambda d: (d.record.get("created_at"), d.id)) for g in groups.values()
           if len(g) > 1]
    out.sort(key=lambda g: (-len(g), g[0].name.casefold()))
    return out
