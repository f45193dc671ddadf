"""A user's notifications: reading them (newest first, a page at a time), marking them
read, and pruning old read ones (the scheduler task ``notifications.prune``).

Everything here is about one user's own rows: every statement says ``user_id = <them>``,
so a notification id of someone else's is simply not found (the page and the API answer
as for one that does not exist). Whether a notification about a record still links to it
is decided in SQL with the reader's rights (``RecordService.allowed``: the access
predicate every other read uses), one statement per module on the page; a record the
reader may no longer view, deleted, or of a module since removed, shows without its link.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from core.apps.notifications.tables import TABLE
from core.kernel.errors import N_, Message
from core.kernel.records import now

PAGE_SIZE = 25
SETTING = "notifications"  # {"retention_days": N}
DEFAULT_RETENTION = 30
MAX_RETENTION = 36_500
PRUNE_BATCH = 1000


@dataclass(frozen=True)
class Notification:
    id: int
    message: str
    module: str | None
    record_id: str | None
    link: str | None  # where it leads, when the reader may follow it (None: no link)
    created_at: dt.datetime
    read_at: dt.datetime | None

    @property
    def unread(self) -> bool:
        return self.read_at is None


@dataclass(frozen=True)
class Page:
    items: list[Notification]
    older: int | None  # the cursor of the next (older) page, None on the last one
    unread: int  # the reader's unread notifications, all pages


def _table(site) -> sa.Table:
    return site.tables.tables[TABLE]


def unread_count(site, user, *, connection=None) -> int:
    table = _table(site)
    stmt = sa.select(sa.func.count()).where(table.c.user_id == user.id,
                                            table.c.read_at.is_(None))
    if connection is not None:
        return connection.execute(stmt).scalar_one()
    with site.engine.connect() as conn:
        return conn.execute(stmt).scalar_one()


def page(site, user, *, before: int | None = None, unread_only: bool = False,
         size: int = PAGE_SIZE) -> Page:
    """The user's notifications newest first, ``size`` of them older than ``before``."""
    table = _table(site)
    stmt = sa.select(table).where(table.c.user_id == user.id)
    if unread_only:
        stmt = stmt.where(table.c.read_at.is_(None))
    if before is not None:
        stmt = stmt.where(table.c.id < before)
    with site.engine.connect() as conn:
        rows = conn.execute(stmt.order_by(table.c.id.desc()).limit(size + 1)).all()
        unread = unread_count(site, user, connection=conn)
    more = len(rows) > size
    rows = rows[:size]
    links = _links(site, user, rows)
    items = [Notification(r.id, r.message, r.module, r.record_id, links.get(r.id), r.created_at,
                          r.read_at) for r in rows]
    return Page(items, rows[-1].id if more and rows else None, unread)


def _links(site, user, rows) -> dict[int, str]:
    """notification id -> its link, for those the reader may follow."""
    about: dict[str, set[str]] = {}
    for r in rows:
        if r.module is not None and r.record_id is not None:
            about.setdefault(r.module, set()).add(r.record_id)
    visible: dict[str, set[str]] = {}
    for name, ids in about.items():
        module = site.registry.modules.get(name)
        if module is None or site.access.mode(user, module) == "disabled":
            continue
        visible[name] = site.records.allowed(name, sorted(ids), user, "view")
    links = {}
    for r in rows:
        if r.module is None or r.record_id is None:
            if r.url:
                links[r.id] = r.url
        elif r.record_id in visible.get(r.module, ()):
            links[r.id] = r.url or f"/m/{r.module}/{r.record_id}"
    return links


def mark_read(site, user, ids=None, *, upto: int | None = None) -> int:
    """Mark the user's notifications read: those of ``ids``, or every unread one (up to
    the id ``upto``, the newest the reader had seen, when given). Returns how many were
    unread; ids of other users' notifications are ignored."""
    table = _table(site)
    stmt = table.update().where(table.c.user_id == user.id, table.c.read_at.is_(None))
    if ids is not None:
        ids = [int(i) for i in ids]
        if not ids:
            return 0
        stmt = stmt.where(table.c.id.in_(ids))
    if upto is not None:
        stmt = stmt.where(table.c.id <= upto)
    with site.engine.begin() as conn:
        return conn.execute(stmt.values(read_at=now())).rowcount


def owns(site, user, notification_id: int) -> bool:
    table = _table(site)
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table.c.id).where(
            table.c.id == notification_id, table.c.user_id == user.id)).first() is not None


def retention_days(site) -> int:
    """Days a read notification is kept (0: for ever); a bad stored value counts as unset."""
    stored = site.settings.get(SETTING)
    days = stored.get("retention_days") if isinstance(stored, dict) else None
    return days if isinstance(days, int) and not isinstance(days, bool) and \
        0 <= days <= MAX_RETENTION else DEFAULT_RETENTION


def prune(site, at: dt.datetime | None = None) -> int:
    """Remove the notifications read more than the retention before ``at`` (now); unread
    ones stay whatever their age. Batches of ``PRUNE_BATCH``, each its own short
    transaction (SQLite's one write lock is never held long). Returns how many went."""
    days = retention_days(site)
    if days == 0:
        return 0
    cutoff = (at or now()) - dt.timedelta(days=days)
    table, removed = _table(site), 0
    while True:
        with site.engine.begin() as conn:
            ids = conn.execute(sa.select(table.c.id).where(table.c.read_at < cutoff)
                               .limit(PRUNE_BATCH)).scalars().all()
            if ids:
                removed += conn.execute(table.delete().where(table.c.id.in_(ids))).rowcount
        if len(ids) < PRUNE_BATCH:
            return removed


def run_prune(site, due: dt.datetime | None = None) -> Message:
    """The scheduler's run for ``due``."""
    if retention_days(site) == 0:
        return Message(N_("Read notifications are kept for ever."))
    return Message(N_("Removed %(count)s read notifications"), count=prune(site, at=due))
