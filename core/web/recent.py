"""Recent items without a write on every page view.

A detail page used to update ``crbm_recent_items`` in a transaction of its own: a commit per
view, and on SQLite the writer lock taken by a mere read. Now a view is noted in this
worker's memory (a dict: the latest time per user and record) and written in one batch
— one transaction, two statements whatever the number of views — by a background thread
every ``FLUSH_SECONDS``, by the home page (the only reader) before it reads, and when the
application shuts down. So the home page shows the record just viewed in this worker at
once, and one viewed in another worker (each flushes its own) within ``FLUSH_SECONDS``.
A record deleted since is never shown: the home page reads the names through the record
service, which leaves deleted records out. Views noted by a worker that is killed before
its next flush are lost: recent items are a convenience, not a log.
"""
from __future__ import annotations

import logging
import threading
import time

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from core.kernel.records import now

FLUSH_SECONDS = 5.0
log = logging.getLogger(__name__)


class RecentItems:
    def __init__(self, site, interval: float = FLUSH_SECONDS):
        self.site = site
        self.interval = interval
        self._pending: dict[tuple[str, str, str], object] = {}
        self._lock = threading.Lock()  # guards _pending
        self._flushing = threading.Lock()  # one flush at a time: the home page waits for
        # the thread's batch to be committed before it reads
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def note(self, user_id: str, module: str, record_id: str) -> None:
        """Remember a view (no database work here)."""
        with self._lock:
            self._pending[(user_id, module, str(record_id))] = now()
            # started by the first view, in the worker process (not a parent that forked)
            if (self._thread is None or not self._thread.is_alive()) and not self._stopped:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name="crbm-recent-items")
                self._thread.start()

    def flush(self) -> int:
        """Write the views noted so far in one transaction; how many rows that was."""
        with self._flushing:
            return self._flush()

    def _flush(self) -> int:
        with self._lock:
            pending, self._pending = self._pending, {}
        if not pending:
            return 0
        rows = [{"user_id": u, "module": m, "record_id": r, "viewed_at": at}
                for (u, m, r), at in pending.items()]
        try:  # an upsert: another worker may write the same view at the same moment
            with self.site.engine.begin() as conn:
                conn.execute(_upsert(conn, self.site.tables.tables["crbm_recent_items"]), rows)
        except Exception:
            with self._lock:  # put them back (newer views of the same record win)
                self._pending = {**pending, **self._pending}
            raise
        return len(rows)

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the next round tries again; a page never fails for this
                log.exception("recent items could not be written")
                time.sleep(self.interval)

    def close(self) -> None:
        """Stop the thread and write what is left (the application shuts down)."""
        self._stopped = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        try:
            self.flush()
        except Exception:
            log.exception("recent items could not be written at shutdown")


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
