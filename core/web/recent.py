"""Recent items without a write on every page view.

A detail page used to update ``crbm_recent_items`` in a transaction of its own: a commit per
view, and on SQLite the writer lock taken by a mere read. Now a view is noted in this
worker's memory (a dict: the latest time per user and record) and written in one batch
— one transaction, two statements whatever the number of views — by a background thread
every ``FLUSH_SECONDS``, by the home page (the only reader) before it reads, and when the
application shuts down (core/web/batched.py, shared with user activity). So the home page
shows the record just viewed in this worker at once, and one viewed in another worker (each
flushes its own) within ``FLUSH_SECONDS``.
A record deleted since is never shown: the home page reads the names through the record
service, which leaves deleted records out. Views noted by a worker that is killed before
its next flush are lost: recent items are a convenience, not a log.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from core.kernel.records import now
from core.web.batched import BatchedWrites

FLUSH_SECONDS = 5.0


class RecentItems(BatchedWrites):
    thread_name, what = "crbm-recent-items", "recent items"

    def __init__(self, site, interval: float = FLUSH_SECONDS):
        super().__init__(site, interval)

    def note(self, user_id: str, module: str, record_id: str) -> None:
        """Remember a view (no database work here): the latest time per user and record."""
        self._note((user_id, module, str(record_id)), now())

    def write(self, pending: dict) -> int:
        rows = [{"user_id": u, "module": m, "record_id": r, "viewed_at": at}
                for (u, m, r), at in pending.items()]
        # an upsert: another worker may write the same view at the same moment
        with self.site.engine.begin() as conn:
            conn.execute(_upsert(conn, self.site.tables.tables["crbm_recent_items"]), rows)
        return len(rows)


def _upsert(conn, table: sa.Table):
    """INSERT, or on the same (user, module, record) the newer ``viewed_at``: each
    database's own upsert (a delete then an insert races between workers)."""
    def later(given):
        return sa.case((given.viewed_at > table.c.viewed_at, given.viewed_at),
                       else_=table.c.viewed_at)
    if conn.dialect.name in ("mysql", "mariadb"):
        stmt = mysql.insert(table)
        return stmt.on_duplicate_key_update(viewed_at=later(stmt.inserted))
    stmt = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
    return stmt.on_conflict_do_update(index_elements=[c.name for c in table.primary_key],
                                      set_={"viewed_at": later(stmt.excluded)})
