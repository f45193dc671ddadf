"""Filling a record's empty fields from the record one of its related fields names.

A related field may declare ``fill: {<this module's field>: <the target's field>}`` — a
quote's ``account_id`` fills the quote's billing and shipping addresses and terms from the
account, as 1CRM does when a document is made for an account. Composite fields (an
address) are named by their group and filled whole, and only when every part is empty:
an address the user started typing is theirs, never mixed with another.

One rule, used in three places so a form, the API and an import agree:

- this module's ``crbm_before_save``, which the kernel registers (core.kernel.plugins: KERNEL_HOOKS) and
  pluggy calls before any plugin's (``tryfirst``: a plugin's own defaults, such as an
  invoice's due date from its terms, see the filled values): a new record, or one whose
  link changed, gets the linked record's values in its empty fields. Set-based: one access
  check and one read per linked module for the whole write, on the write's connection. The
  user must be allowed to see the linked record; if not, nothing is filled.
- the create form, opened with the link given ("Create" in an account's Quotes subpanel);
- ``GET /m/<module>/fill/<field>?id=...``: what to fill, for the picker's script when the
  user chooses a record (core/web/static/crbm.js).

The registry checks the pairs (core.kernel.registry): both sides exist, with the same types and
the same dropdown lists, so a filled value is always one the field accepts; values are
still normalized here and left out when they do not fit (a longer text limit).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping

import sqlalchemy as sa

from core.kernel.fields import FieldError
from core.kernel.hookspecs import hookimpl
from core.kernel.registry import FieldDef, ModuleDef, Registry


def groups(registry: Registry, module: ModuleDef, link: FieldDef
           ) -> list[tuple[str, list[tuple[str, str]]]]:
    """The link's ``fill`` as (entry, pairs of this module's field and the target's): a
    composite's parts paired by their suffix ("_city")."""
    target = registry.modules.get(link.spec.get("module", ""))
    if target is None:
        return []
    out = []
    for mine, theirs in (link.spec.get("fill") or {}).items():
        pairs = []
        for f in module.expand(mine):
            other = theirs + f.name[len(mine):]
            if other in target.fields and f.stored:
                pairs.append((f.name, other))
        if pairs:
            out.append((mine, pairs))
    return out


def fill_links(module: ModuleDef) -> list[FieldDef]:
    return [f for f in module.fields.values() if f.type.is_link and "fill" in f.spec]


def _empty(value) -> bool:
    return value is None or value == "" or value == []


def _blank(values: Mapping, pairs: list[tuple[str, str]]) -> bool:
    return all(_empty(values.get(mine)) for mine, _ in pairs)


def linked_values(site, target: ModuleDef, ids: Iterable[str], columns: Iterable[str], user,
                  connection) -> dict[str, dict]:
    """Id -> the ``columns`` of the target records ``user`` may see: one access check
    (RecordService.allowed) and one read per 500 ids, on the caller's connection."""
    visible = sorted(site.records.allowed(target.name, sorted(set(ids)), user, "view",
                                          connection=connection))
    table = site.tables.tables[target.table]
    names = sorted(set(columns))
    out = {}
    for start in range(0, len(visible), 500):
        rows = connection.execute(sa.select(table.c.id, *(table.c[n] for n in names))
                                  .where(table.c.id.in_(visible[start:start + 500])))
        out.update({row.id: dict(row._mapping) for row in rows})
    return out


def _filled(module: ModuleDef, pairs, source: Mapping) -> dict | None:
    """This group's values taken from ``source``, normalized; None when the source has
    nothing for it or a value does not fit."""
    values = {}
    for mine, theirs in pairs:
        value = source.get(theirs)
        if not _empty(value):
            f = module.fields[mine]
            try:
                value = f.type.normalize(value, f.spec)
            except FieldError:
                return None
        values[mine] = None if _empty(value) else value
    return values if any(v is not None for v in values.values()) else None


def values_for(site, module: ModuleDef, link: FieldDef, record_id: str, user, connection,
               current: Mapping | None = None) -> dict[str, dict]:
    """Group name -> {field: value} to fill from the record ``record_id`` (the groups whose
    fields are all empty in ``current``, or every group when it is None)."""
    target = site.registry.modules.get(link.spec.get("module", ""))
    if target is None or not record_id:
        return {}
    wanted = [(name, pairs) for name, pairs in groups(site.registry, module, link)
              if current is None or _blank(current, pairs)]
    if not wanted:
        return {}
    source = linked_values(site, target, [record_id], [t for _, pairs in wanted
                                                       for _, t in pairs], user,
                           connection).get(record_id)
    out = {}
    for name, pairs in wanted:
        values = _filled(module, pairs, source or {})
        if values is not None:
            out[name] = values
    return out


@hookimpl(tryfirst=True)
def crbm_before_save(site, module, batch, user, connection):
    for link in fill_links(module):
        changed = [c for c in batch if c.record.get(link.name)
                   and (c.is_new or link.name in c.changes)]
        pairs_of = [pairs for _, pairs in groups(site.registry, module, link)]
        needing = [(c, [p for p in pairs_of if _blank(c.record, p)]) for c in changed]
        needing = [(c, ps) for c, ps in needing if ps]
        if not needing:
            continue
        target = site.registry.module(link.spec["module"])
        columns = {theirs for _, ps in needing for pairs in ps for _, theirs in pairs}
        sources = linked_values(site, target, {c.record[link.name] for c, _ in needing},
                                columns, user, connection)
        for change, wanted in needing:
            source = sources.get(change.record[link.name])
            for pairs in wanted if source else ():
                values = _filled(module, pairs, source)
                if values is not None:
                    change.record.update(values)
