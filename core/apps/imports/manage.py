"""Manage Imported Data (implementation guide §7.2.6): accept or reject an import.

- **Accept** forgets what the session did (the records stay; the session's list of them
  goes), for the whole session or the records ticked.
- **Reject and delete** deletes exactly the records the session created (the empty
  accounts it made for unknown names included) and puts back the values it replaced in
  the records it updated — only those fields, so what anyone changed since in other
  fields, or in other records, stays. One transaction: all of it or none.

Both are for the user who ran the import or an administrator; deleting also needs the
module's Delete right (the record service checks it in SQL, as everywhere).
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from core.apps.imports.run import ImportRefused
from core.kernel.errors import N_, Message, NotFoundError
from core.kernel.records import Query, User


def _tables(site):
    t = site.tables.tables
    return t["crbm_import_sessions"], t["crbm_import_records"], t["crbm_import_skipped"]


def sessions(site, user: User, limit: int = 200) -> list[dict]:
    """Import sessions, newest first: everyone's for an administrator, else the user's."""
    t, r, _ = _tables(site)
    pending = sa.select(sa.func.count()).where(r.c.session_id == t.c.id).scalar_subquery()
    query = sa.select(t, pending.label("pending")).order_by(t.c.created_at.desc()).limit(limit)
    if not user.is_admin:
        query = query.where(t.c.user_id == user.id)
    with site.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def session(site, user: User, session_id: str) -> dict:
    t, _, _ = _tables(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(t).where(t.c.id == session_id)).first()
    if row is None or not (user.is_admin or row.user_id == user.id):
        raise NotFoundError(f"no import {session_id}")
    return dict(row._mapping)


def records(site, user: User, session_id: str, limit: int = 500) -> dict[str, list[dict]]:
    """module -> the session's records the user may view (with their names), per module."""
    session(site, user, session_id)
    _, r, _ = _tables(site)
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(r.c.module, r.c.record_id, r.c.action)
                            .where(r.c.session_id == session_id)
                            .order_by(r.c.module, r.c.record_id).limit(limit)).all()
    by_module: dict[str, dict[str, str]] = {}
    for row in rows:
        by_module.setdefault(row.module, {})[row.record_id] = row.action
    out = {}
    for module_name, actions in by_module.items():
        if module_name not in site.registry.modules:
            continue
        module = site.registry.module(module_name)
        fields = ["id"] + ([module.name_field] if module.name_field else [])
        found = site.records.list(module_name, user, Query(
            filters=[("id", "in", list(actions))], fields=fields, limit=None))
        out[module_name] = [{"id": x["id"], "name": x.get(module.name_field) or x["id"],
                             "action": actions[x["id"]]} for x in found]
    return out


def skipped(site, user: User, session_id: str) -> list[dict]:
    session(site, user, session_id)
    _, _, s = _tables(site)
    with site.engine.connect() as conn:
        return [dict(x._mapping) for x in conn.execute(
            sa.select(s).where(s.c.session_id == session_id).order_by(s.c.line_no))]


def _chosen(conn, r, session_id: str, record_ids: Sequence[str] | None):
    query = sa.select(r).where(r.c.session_id == session_id)
    if record_ids is not None:
        query = query.where(r.c.record_id.in_([str(i) for i in record_ids]))
    return conn.execute(query).all()


def accept(site, user: User, session_id: str, record_ids: Sequence[str] | None = None) -> int:
    """Keep the records, forget the history; returns how many records were accepted."""
    found = session(site, user, session_id)
    t, r, _ = _tables(site)
    with site.engine.begin() as conn:
        rows = _chosen(conn, r, session_id, record_ids)
        _forget(conn, r, session_id, [x.record_id for x in rows])
        _settle(conn, t, r, found, "accepted")
    return len(rows)


def reject(site, user: User, session_id: str, record_ids: Sequence[str] | None = None) -> int:
    """Delete what the session created and restore what it updated (all or nothing);
    returns how many records were deleted or restored."""
    found = session(site, user, session_id)
    if found["status"] in ("queued", "running"):
        raise ImportRefused(Message(N_("The import is still running.")))
    t, r, _ = _tables(site)
    service = site.records
    with site.engine.begin() as conn:
        rows = _chosen(conn, r, session_id, record_ids)
        for row in rows:
            if row.action == "updated" and row.module in site.registry.modules:
                service.update(row.module, row.record_id, row.previous or {}, user,
                               connection=conn)
        created: dict[str, list[str]] = {}
        for row in rows:
            if row.action == "created":
                created.setdefault(row.module, []).append(row.record_id)
        # the imported module's records before the empty ones made for them (an account
        # made for a contact's unknown name goes after the contact)
        order = sorted(created, key=lambda m: m != found["module"])
        for module_name in order:
            if module_name in site.registry.modules:
                service.delete_many(module_name, created[module_name], user, connection=conn)
        _forget(conn, r, session_id, [x.record_id for x in rows])
        _settle(conn, t, r, found, "rejected")
    return len(rows)


def _forget(conn, r, session_id: str, record_ids: list[str]) -> None:
    for start in range(0, len(record_ids), 500):
        conn.execute(r.delete().where(r.c.session_id == session_id,
                                      r.c.record_id.in_(record_ids[start:start + 500])))


def _settle(conn, t, r, found: dict, status: str) -> None:
    """The session's status once none of its records is left to decide on."""
    left = conn.execute(sa.select(sa.func.count()).where(r.c.session_id == found["id"])).scalar()
    if not left:
        conn.execute(t.update().where(t.c.id == found["id"]).values(status=status))
