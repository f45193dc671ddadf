"""A record's **timeline**: its activities (every module with ``features.activity``: calls,
meetings, tasks, notes, the emails plugin's emails) and its change log, newest first, in
pages of ``PAGE``, filtered by kind.

Contract:

- An activity is placed at its kind's ``when`` if that is a date-and-time field (a call's
  start, an email's sending; its creation when empty), else at its creation (a task's due
  *date* says nothing of when it happened; a note has only its creation).
- Reading goes through ``records.select`` with the reader: every kind's rows carry the
  reader's access predicate in SQL, and the change log is read only for a record the
  reader may see (the route checks that first). A kind the reader's roles disable is gone.
- Paging is by key, not by OFFSET: the order is (time, kind, id) descending, the cursor
  the last entry shown, and each source (kind × link field or many-to-many relationship,
  ``panels.sources``; the log) answers only the rows beyond it, at most ``PAGE`` + 1 each:
  a page costs one statement per source whatever the page's depth, and an entry added
  meanwhile never shifts a page.

Why not one ``UNION``: the kinds' times differ in type (a date, a date-time) and their
cursor comparisons differ with the kind; a statement per source is as many as the History
panel reads, and only when the timeline is shown (the detail page itself reads none).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from core.apps.activities.panels import kinds as activity_kinds
from core.apps.activities.panels import sources as activity_sources
from core.kernel.errors import N_
from core.kernel.records import Query
from core.kernel.registry import ModuleDef

PAGE = 20
CHANGES = "changes"  # the change log's kind name in filters and cursors


@dataclass(frozen=True)
class Cursor:
    at: dt.datetime
    kind: str
    id: str

    def encode(self) -> str:
        return f"{self.at.isoformat()}|{self.kind}|{self.id}"

    @classmethod
    def decode(cls, text: str | None) -> Cursor | None:
        """The cursor in a "load more" link, or None (bad input is the first page)."""
        try:
            at, kind, key = (text or "").split("|", 2)
            when = dt.datetime.fromisoformat(at)
        except ValueError:
            return None
        return cls(when if when.tzinfo else when.replace(tzinfo=dt.UTC), kind, key)


def _aware(value) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    return dt.datetime.min.replace(tzinfo=dt.UTC)


def filters(site, module: ModuleDef, user) -> list[tuple[str, str]]:
    """(kind, label) of the timeline's filter: the activity kinds the user may list that
    may be about a record of ``module``, and the changes where it is audited (the template
    translates the labels)."""
    out = [(k.module.name, k.module.label) for k in activity_kinds(site.registry, module)
           if site.access.mode(user, k.module) != "disabled"]
    if module.features.get("audited"):
        out.append((CHANGES, N_("Changes")))
    return out


def _beyond(at_col, id_col, kind: str, cursor: Cursor | None, id_value):
    """Rows of one source (kind) strictly after ``cursor`` in (at, kind, id) descending."""
    if cursor is None:
        return sa.true()
    if kind < cursor.kind:  # same time, a smaller kind: after
        return at_col <= cursor.at
    if kind > cursor.kind:
        return at_col < cursor.at
    return sa.or_(at_col < cursor.at, sa.and_(at_col == cursor.at, id_col < id_value))


def page(site, module: ModuleDef, record: dict, user, kind: str | None = None,
         cursor: Cursor | None = None) -> tuple[list[dict], Cursor | None]:
    """(entries, next cursor or None): the timeline's next ``PAGE`` entries after
    ``cursor``, each ``{"kind", "at", "id", "module"|None, "row"|"change"}`` (a change's
    ``who``: the name of the user who made it). The caller has read ``record`` as ``user``,
    with labels (so may see it and its change log; its creator's name comes with it)."""
    record_id = str(record["id"])
    found: dict[tuple[str, str], dict] = {}
    with site.engine.connect() as conn:
        for k in activity_kinds(site.registry, module):
            other = k.module
            if kind not in (None, other.name) or site.access.mode(user, other) == "disabled":
                continue
            when = other.fields.get(k.when) if k.when else None
            fields = ["id", other.name_field or "id", *(
                [k.open_field] if k.open_field else []), *(
                ["assigned_user_id"] if "assigned_user_id" in other.fields else [])]
            for stmt, table in activity_sources(site, k, user, Query(
                    fields=list(dict.fromkeys(fields)), labels=True, limit=None), record_id):
                at = table.c.created_at
                if when is not None and when.stored and when.type.name == "datetime":
                    at = sa.func.coalesce(table.c[when.name], table.c.created_at)
                at = sa.type_coerce(at, table.c.created_at.type)
                stmt = stmt.add_columns(at.label("__at")).where(
                    _beyond(at, table.c.id, other.name, cursor, cursor and cursor.id)) \
                    .order_by(None).order_by(at.desc(), table.c.id.desc()).limit(PAGE + 1)
                for row in conn.execute(stmt).mappings():
                    row = dict(row)
                    found[(other.name, row["id"])] = {
                        "kind": other.name, "at": _aware(row.pop("__at")), "id": row["id"],
                        "module": other, "status_field": k.open_field, "row": row}
        if kind in (None, CHANGES) and module.features.get("audited"):
            log, users = site.tables.tables["crbm_change_log"], site.tables.tables["crbm_users"]
            try:
                last_id = int(cursor.id) if cursor and cursor.kind == CHANGES else 0
            except ValueError:
                last_id = 0
            who = sa.func.coalesce(users.c.display_name, users.c.username).label("who")
            stmt = sa.select(log, who).select_from(
                log.outerjoin(users, users.c.id == log.c.changed_by)).where(
                log.c.module == module.name, log.c.record_id == record_id,
                _beyond(log.c.changed_at, log.c.id, CHANGES, cursor, last_id)) \
                .order_by(log.c.changed_at.desc(), log.c.id.desc()).limit(PAGE + 1)
            for row in conn.execute(stmt).mappings():
                found[(CHANGES, str(row["id"]))] = {
                    "kind": CHANGES, "at": _aware(row["changed_at"]), "id": str(row["id"]),
                    "module": None, "change": dict(row)}
    if kind in (None, CHANGES) and module.features.get("audited") and record.get("created_at"):
        created = {"kind": CHANGES, "at": _aware(record["created_at"]), "id": "0",
                   "module": None, "change": {"field": "(created)",
                                              "changed_by": record.get("created_by"),
                                              "who": record.get("created_by__label"),
                                              "old_value": None, "new_value": None}}
        if cursor is None or _after(created, cursor):
            found[(CHANGES, "0")] = created
    entries = sorted(found.values(), key=_key, reverse=True)
    shown = entries[:PAGE]
    more = len(entries) > PAGE
    last = shown[-1] if shown else None
    return shown, (Cursor(last["at"], last["kind"], last["id"]) if more and last else None)


def _key(entry: dict):
    # change log ids are numbers: compared as such (id 10 after id 9)
    key = entry["id"].rjust(20, "0") if entry["kind"] == CHANGES else entry["id"]
    return entry["at"], entry["kind"], key


def _after(entry: dict, cursor: Cursor) -> bool:
    return _key(entry) < _key({"at": cursor.at, "kind": cursor.kind, "id": cursor.id})
