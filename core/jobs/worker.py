"""A job worker: runs queued jobs and, on a short tick, the scheduler's ``run_due``.

``crbm worker`` runs one in the foreground (``run``); ``crbm serve`` runs one embedded, in a
background thread of the process that starts the web server (``start``/``stop``). Any number
may run at once, on any number of machines: the engines hand each job to one worker and
``run_due`` claims each due time once.

On SQLite the tick also copies the write-ahead log into the database file (``checkpoint``)
every few seconds. That stays a timer of the worker rather than a scheduled task: it is
about this machine's file, not the site's business, it must not wait in a queue behind
other jobs, and as a task it would write a run to the history (more WAL) every 5 seconds.
"""
from __future__ import annotations

import logging
import threading
import time

from core import jobs
from core.jobs import scheduler
from core.site_restart import RestartWatch

log = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 5.0
SEEN_SECONDS = 60.0  # how often a worker writes that it checked (the Scheduler page shows it)


def checkpoint(site) -> None:
    """SQLite's WAL checkpoint, in the background rather than in the commit that fills the
    log (SQLite's automatic one, at 1,000 pages, stays the backstop for a site that runs no
    worker). PASSIVE: it waits for no reader and no writer."""
    try:
        with site.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception:  # a busy or full disk: the next tick tries again
        log.exception("the SQLite checkpoint failed")


class Worker:
    def __init__(self, site, concurrency: int = 2, scheduler_tick: bool = True):
        self.site, self.concurrency, self.scheduler_tick = site, concurrency, scheduler_tick
        self.stop_event = threading.Event()
        self._last_checkpoint = self._last_seen = -SEEN_SECONDS
        self.thread: threading.Thread | None = None
        self.restart = RestartWatch(site.folder)

    def tick(self) -> None:
        if self.restart.needed():  # restored under us: stop, to be started on the new site
            log.error("the site was restored after this worker started: stopping; restart it")
            self.stop_event.set()
            return
        if self.scheduler_tick:
            try:
                scheduler.run_due(self.site)
                if time.monotonic() - self._last_seen >= SEEN_SECONDS:  # not a write a tick
                    self._last_seen = time.monotonic()
                    scheduler.record_trigger(self.site, "worker")
            except Exception:
                log.exception("the scheduler's run_due failed")
        if self.site.engine.dialect.name == "sqlite" and \
                time.monotonic() - self._last_checkpoint >= CHECKPOINT_SECONDS:
            self._last_checkpoint = time.monotonic()
            checkpoint(self.site)

    def run(self) -> None:
        """Run jobs in this thread until ``stop``."""
        jobs.engine(self.site).serve(self.stop_event, self.concurrency, self.tick)

    def start(self) -> Worker:
        self.thread = threading.Thread(target=self.run, daemon=True, name="crbm-jobs")
        self.thread.start()
        return self

    def stop(self, wait: bool = True) -> None:
        self.stop_event.set()
        if wait and self.thread is not None:
            self.thread.join(timeout=60)
