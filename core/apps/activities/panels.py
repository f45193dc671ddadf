"""The **Activities** and **History** panels of a record (user guide §1.2), for every module
whose YAML says ``features: {activities: true}``.

Which modules are activities is metadata too: a module with ``features.activity`` is one
kind (the activities plugin's calls, meetings, tasks and notes; the emails plugin's emails).
Its options::

    activity:
      open: {field: status, values: [planned]}   # in Activities while it holds; else History
      when: date_start                           # the date the panels sort and show

A kind without ``open`` is always history (notes, emails). A kind's record belongs to a
record when one of its link fields names it: its "Related to" (``parent_id``, a parent link
whose ``modules`` include the record's module) or a plain related field to that module (a
call's ``account_id`` on an account's page, a task's ``contact_id`` on a contact's) — or
when one of the kind's many-to-many relationships to that module links them (an email
with every contact it is with: plugins/emails, the ``contacts`` relationship).

Why here and not as the kernel's subpanels: a subpanel is one module through one field;
these panels mix several modules, split by a status, through several fields. The rows are
read through the record service (each reader's access predicate in SQL, one statement per
kind and link field or relationship — never per row) and only when a panel is opened: the
detail page itself gains no statement.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel.database import link_columns
from core.kernel.records import Query, dicts
from core.kernel.registry import ModuleDef

ROWS = 50  # per kind and link field; the kind's own list shows the rest
PANELS = ("activities", "history")


@dataclass(frozen=True)
class Kind:
    module: ModuleDef
    link_fields: tuple[str, ...]  # its fields that may name the record
    open_field: str | None
    open_values: tuple[str, ...]
    when: str | None
    # its many-to-many relationships to the record's module (the link table names it)
    link_relationships: tuple[str, ...] = ()


def kinds(registry, module: ModuleDef) -> list[Kind]:
    """The activity kinds that may be about a record of ``module``, in registry order."""
    out = []
    for other in registry.modules.values():
        options = other.features.get("activity")
        if options is None or options is False:
            continue
        options = options if isinstance(options, dict) else {}
        links = tuple(f.name for f in other.fields.values() if f.type.name == "related" and (
            module.name in (f.spec.get("modules") or ()) or f.spec.get("module") == module.name))
        related = tuple(name for name, rel in other.relationships.items()
                        if rel["kind"] == "many_to_many" and rel["module"] == module.name)
        if links or related:
            opened = options.get("open") or {}
            out.append(Kind(other, links, opened.get("field"), tuple(opened.get("values", ())),
                            options.get("when"), related))
    return out


def sources(site, kind: Kind, user, query: Query, record_id) -> list[tuple[sa.Select, sa.Table]]:
    """(SELECT, kind's table) of ``query`` for each way the kind's records may name the
    record ``record_id`` (a value, or a bind parameter): each link field, each many-to-many
    relationship (joined through its link table). Each carries the reader's list predicate."""
    out = []
    for link in kind.link_fields:
        stmt, table = site.records.select(kind.module, user, query, "list")
        out.append((stmt.where(table.c[link] == record_id), table))
    for relationship in kind.link_relationships:
        stmt, table = site.records.select(kind.module, user, query, "list")
        link = site.tables.tables[kind.module.link_table(relationship)]
        mine, theirs = link_columns(kind.module, relationship)
        out.append((stmt.join(link, link.c[mine] == table.c.id)
                    .where(link.c[theirs] == record_id), table))
    return out


def _done_values(registry, kind: Kind) -> list[str]:
    field = kind.module.fields[kind.open_field]
    return [value for value, _ in registry.choices(field) if value not in kind.open_values]


def _sort_key(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime.combine(value, dt.time(), tzinfo=dt.UTC)
    return dt.datetime.min.replace(tzinfo=dt.UTC)


def _panel_kinds(site, module: ModuleDef, panel: str, user):
    """(kind, status filter) for each kind the panel shows to this reader: Activities the
    open ones of kinds that have a status, History the done ones and every kind without."""
    for kind in kinds(site.registry, module):
        if site.access.mode(user, kind.module) == "disabled":
            continue
        if kind.open_field is None:
            if panel != "activities":
                yield kind, []
            continue
        wanted = list(kind.open_values) if panel == "activities" else \
            _done_values(site.registry, kind)
        yield kind, [(kind.open_field, "in", wanted)]


def rows(site, module: ModuleDef, record_id: str, panel: str, user) -> list[dict]:
    """The panel's rows, each ``{"kind": Kind, "row": dict}``: Activities soonest first,
    History newest first. Records the user may not list are never read."""
    out: dict[tuple[str, str], dict] = {}
    with site.engine.connect() as conn:
        _read_rows(site, conn, module, record_id, panel, user, out)
    ordered = sorted(out.values(), key=lambda item: _sort_key(
        item["row"].get(item["kind"].when) if item["kind"].when else None))
    return ordered if panel == "activities" else ordered[::-1]


def _read_rows(site, conn, module: ModuleDef, record_id: str, panel: str, user,
               out: dict) -> None:
    """``rows``' reading, on one connection: each kind's sources, into ``out`` by (kind, id)
    (a record reached two ways is one row)."""
    for kind, status in _panel_kinds(site, module, panel, user):
        fields = ["id", kind.module.name_field or "id", *(
            [kind.open_field] if kind.open_field else []), *(
            [kind.when] if kind.when else []), *(
            ["assigned_user_id"] if "assigned_user_id" in kind.module.fields else [])]
        # the soonest open ones, the latest done ones: those the panel shows first
        order = None if not kind.when else kind.when if panel == "activities" else f"-{kind.when}"
        for stmt, _ in sources(site, kind, user, Query(
                filters=status, fields=list(dict.fromkeys(fields)), labels=True, sort=order,
                limit=ROWS), str(record_id)):
            for row in dicts(conn.execute(stmt)):
                out[(kind.module.name, row["id"])] = {"kind": kind, "row": row}


def create_links(site, module: ModuleDef, record_id: str, title: str, panel: str,
                 user) -> list[tuple[str, str]]:
    """(label, URL) of the quick creates in a panel: the kinds the user may create, their
    links prefilled with the record (and its status: "Log a call" is a held one)."""
    from urllib.parse import urlencode

    back = f"/m/{module.name}/{record_id}#sub-{panel}"
    out = []
    for kind in kinds(site.registry, module):
        if not site.access.can(user, kind.module, "edit"):
            continue
        if panel == "activities" and kind.open_field is None:
            continue  # a note is never open
        if not kind.link_fields:
            continue  # linked only through a relationship: nothing to prefill it with
        params: dict[str, str] = {}
        for link in kind.link_fields:
            params[link], params[f"{link}__label"] = record_id, title
            type_field = kind.module.fields[link].spec.get("type_field")
            if type_field:
                params[type_field] = module.name
        if kind.open_field and panel == "history":
            done = _done_values(site.registry, kind)
            if not done:
                continue
            params[kind.open_field] = done[0]  # held, completed: a record of what was done
        params["return"] = back
        out.append((kind.module.label_singular, f"/m/{kind.module.name}/new?{urlencode(params)}"))
    return out


def count_selects(site, module: ModuleDef, record_id, user) -> dict[str, sa.ScalarSelect]:
    """Per panel, a scalar SELECT of how many activities it holds for the record bound as
    ``record_id`` (a bind parameter: core/web/detail.py puts these in the detail page's one
    facts statement), each kind read with the reader's list predicate, a record reached
    through two link fields counted once."""
    out = {}
    for panel in PANELS:
        parts = []
        for kind, status in _panel_kinds(site, module, panel, user):
            for stmt, table in sources(site, kind, user, Query(
                    filters=status, fields=["id"], limit=None), record_id):
                parts.append(stmt.with_only_columns(
                    sa.literal(kind.module.name).label("kind"), table.c.id).order_by(None))
        if parts:
            rows = sa.union(*parts).subquery()
            out[panel] = sa.select(sa.func.count()).select_from(rows).scalar_subquery()
    return out
