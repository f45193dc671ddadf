"""What a web worker notes in memory on a request and writes later, in batches.

Recent items (core/web/recent.py) and user activity (core/apps/activity_tracking) are
noted on page views: a write per view would cost a commit per page and, on SQLite, the
writers' lock for a mere read. So a view is noted in this worker's memory (a dict keyed
by what it is about) and written in one transaction by a background thread every
``interval`` seconds, by a reader that wants this worker's latest before it reads
(``flush``), and when the application shuts down (``close``). A subclass says what a
batch is: ``write(pending) -> rows``, one transaction.

- The thread is started by the first note, in the worker process (not a parent that
  forked); an interval of 0 starts none: written by ``flush`` and ``close`` only (the test
  suite, where no background statement may land in a test counting statements).
- A failed write puts the batch back, the notes made since winning, and the next round
  tries again; a page never fails for it. Past ``MAX_PENDING`` notes (the database has not
  answered for a long while) new ones are dropped rather than growing without end.
- Notes made by a worker killed before its next write are lost: these are conveniences
  and statistics, not a log.
"""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Hashable
from typing import Any

MAX_PENDING = 200_000
log = logging.getLogger(__name__)


class BatchedWrites:
    thread_name = "crbm-batched"
    what = "batched writes"  # for the log: "<what> could not be written"

    def __init__(self, site, interval: float):
        self.site = site
        self.interval = interval
        self._pending: dict[Hashable, Any] = {}
        self._lock = threading.Lock()  # guards _pending
        self._flushing = threading.Lock()  # one batch at a time: a reader's flush waits
        # for the thread's batch to be committed before it reads
        self._wake = threading.Event()
        self._stopped = False
        self._thread: threading.Thread | None = None

    def write(self, pending: dict) -> int:
        """Write ``pending`` in one transaction; how many rows that was."""
        raise NotImplementedError

    def _note(self, key: Hashable, value: Any, *, keep_first: bool = False) -> None:
        """Remember ``value`` under ``key`` (the latest, or with ``keep_first`` the first);
        no database work here."""
        with self._lock:
            if keep_first and key in self._pending:
                return
            if len(self._pending) >= MAX_PENDING and key not in self._pending:
                return
            self._pending[key] = value
            if self.interval > 0 and (self._thread is None or not self._thread.is_alive()) \
                    and not self._stopped:
                self._thread = threading.Thread(target=self._run, daemon=True,
                                                name=self.thread_name)
                self._thread.start()

    def flush(self) -> int:
        """Write what was noted so far; how many rows that was."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, {}
            if not pending:
                return 0
            try:
                return self.write(pending)
            except Exception:
                with self._lock:  # put them back; what was noted since wins
                    self._pending = {**pending, **self._pending}
                raise

    def _run(self) -> None:
        while not self._stopped:
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # the next round tries again; a page never fails for this
                log.exception("%s could not be written", self.what)
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
            log.exception("%s could not be written at shutdown", self.what)
