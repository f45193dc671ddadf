"""Background jobs: the public API plugins use (docs/plugins.md, "Background jobs").

    from core import jobs
    jobs.enqueue(site, "invoices.send", {"invoice_id": 42})            # as soon as a worker can
    jobs.enqueue(site, "workflows.action", {...}, at=when, key="wf7:r9")  # later; replaces the
    jobs.cancel(site, "wf7:r9")                                        #   pending one of its key

A job's kind is a ``JobHandler`` from the ``crbm_job_handlers`` hook; its ``run(site,
payload)`` runs in a worker — ``crbm serve``'s embedded one or any number of ``crbm worker``
processes — on an existing engine (``engines``: procrastinate on PostgreSQL, Huey
elsewhere). A handler that raises is retried with exponential backoff (site setting
``jobs_retry_seconds``, default 10: 10 s, 20 s, 40 s...) up to its ``retries``, then the job is
marked failed with the message; a job whose handler is missing fails at once. No job ever
stops a worker. ``crbm_jobs`` keeps each job's id (the same across retries: key what the
handler sends on the payload), status and last message: ``status(site, job_id)``.

``run_due_jobs(site, now)`` runs, in the calling thread and through the site's engine, every
job whose time has come at ``now`` (default: the current time, which a test fixes with
time-machine): tests of delayed work ("remind after 2 days") and an operator draining a
queue by hand without a worker.
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
import weakref

import sqlalchemy as sa

from core.kernel.hooktypes import JobHandler

__all__ = ["JobHandler", "after_commit", "cancel", "enqueue", "handlers", "run_due_jobs",
           "status"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 10.0
_ENGINES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_ENGINES_LOCK = threading.Lock()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def engine(site):
    """The site's queue engine (one per ``Site`` object)."""
    with _ENGINES_LOCK:
        found = _ENGINES.get(site)
        if found is None:
            from core.jobs import engines, runner
            kind = (engines.ProcrastinateEngine if site.engine.dialect.name == "postgresql"
                    else engines.HueyEngine)
            ref = weakref.ref(site)
            found = _ENGINES[site] = kind(site, lambda envelope: runner.run(ref(), envelope))
        return found


def close(site) -> None:
    with _ENGINES_LOCK:
        found = _ENGINES.pop(site, None)
    if found is not None:
        found.close()


def handlers(site) -> dict[str, JobHandler]:
    """Every plugin's ``crbm_job_handlers``, by name."""
    return {h.name: h for found in site.hook.crbm_job_handlers(site=site) for h in found or ()}


def _table(site) -> sa.Table:
    return site.tables.tables["crbm_jobs"]


def enqueue(site, name: str, payload: dict | None = None, *, at: dt.datetime | None = None,
            key: str | None = None) -> str:
    """Queue job ``name`` (a ``JobHandler``'s) with ``payload`` (a JSON-ready dict), to run
    at once or not before ``at`` (an aware datetime). With ``key``, a pending job of the
    same key is cancelled first: one pending job per key. Returns the job's id."""
    if at is not None and at.tzinfo is None:
        raise ValueError("enqueue: 'at' must be an aware datetime")
    if key is not None:
        cancel(site, key)
    job_id = uuid.uuid4().hex
    now = _now()
    envelope = {"id": job_id, "name": name, "payload": payload or {}, "attempt": 0}
    table = _table(site)
    with site.engine.begin() as conn:
        conn.execute(table.insert().values(
            id=job_id, name=name, job_key=key, status="pending", attempts=0, run_at=at or now,
            engine_ref=engine(site).ref_of(envelope), created_at=now, updated_at=now))
    defer(site, envelope, at)
    return job_id


# -- enqueueing once a transaction has committed ---------------------------------------------
# A save hook that wants work done after the save (mail the new assignee) must not enqueue
# inside the transaction: a rollback would leave the job, and the job could run before the
# commit and not find what it is about. The job waits on the connection until its commit.

_PENDING, _COMMITTED = "crbm_jobs_pending", "crbm_jobs_committed"
_LISTENING: weakref.WeakSet = weakref.WeakSet()


def after_commit(site, connection, name: str, payload: dict | None = None, *,
                 at: dt.datetime | None = None, key: str | None = None) -> None:
    """``enqueue(site, name, payload, at=, key=)`` once ``connection``'s transaction has
    committed; nothing if it rolls back. The engine's ``commit`` event marks the job
    committed, the pool's ``checkin`` (the connection given back, after the commit)
    enqueues it; a queue that refuses is logged (the save stands)."""
    engine_ = connection.engine
    if engine_ not in _LISTENING:
        _listen(site, engine_)
    connection.info.setdefault(_PENDING, []).append((name, payload, at, key))


def _listen(site, engine_) -> None:
    site_ref = weakref.ref(site)

    def committed(conn):
        pending = conn.info.pop(_PENDING, None)
        if pending:
            conn.info.setdefault(_COMMITTED, []).extend(pending)

    def rolled_back(conn):
        conn.info.pop(_PENDING, None)

    def checked_in(dbapi_connection, record):
        found, waiting = site_ref(), record.info.pop(_COMMITTED, None)
        record.info.pop(_PENDING, None)  # never committed: dropped
        for name, payload, at, key in waiting or () if found is not None else ():
            try:
                enqueue(found, name, payload, at=at, key=key)
            except Exception:
                log.exception("could not enqueue %s after commit", name)

    sa.event.listen(engine_, "commit", committed)
    sa.event.listen(engine_, "rollback", rolled_back)
    sa.event.listen(engine_.pool, "checkin", checked_in)
    _LISTENING.add(engine_)


def defer(site, envelope: dict, at: dt.datetime | None) -> None:
    """Hand ``envelope`` to the engine; its reference (for ``cancel``) is known before,
    ``ref_of``, so that is no second write. A retry (``attempt`` + 1) records its own."""
    queue = engine(site)
    queue.defer(envelope, at)
    if envelope["attempt"]:
        table = _table(site)
        with site.engine.begin() as conn:
            conn.execute(table.update().where(table.c.id == envelope["id"])
                         .values(engine_ref=queue.ref_of(envelope)))


def cancel(site, key: str) -> int:
    """Cancel the pending jobs of ``key``; how many there were (0: nothing to cancel —
    a job already running finishes)."""
    table = _table(site)
    with site.engine.begin() as conn:
        pending = conn.execute(sa.select(table.c.id, table.c.engine_ref).where(
            table.c.job_key == key, table.c.status == "pending")).all()
        for job_id, ref in pending:
            conn.execute(table.update().where(table.c.id == job_id, table.c.status == "pending")
                         .values(status="cancelled", updated_at=_now()))
    for _job_id, ref in pending:
        if ref:
            try:
                engine(site).cancel(ref)
            except Exception:  # already taken by a worker: runner.run sees "cancelled"
                log.warning("job %s: the engine could not cancel it; it will be skipped", ref,
                            exc_info=True)
    return len(pending)


def status(site, job_id: str) -> dict | None:
    """The job's row of ``crbm_jobs`` (status, attempts, message...), or ``None``."""
    table = _table(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == job_id)).mappings().first()
    return dict(row) if row else None


def run_due_jobs(site, now: dt.datetime | None = None) -> int:
    """Run every job due at ``now`` (an aware datetime; default: now, as a fixed clock
    says) in this thread, through the real engine — Huey's schedule and queue, or
    procrastinate's worker — including what those jobs enqueue for at once; a job due
    later (a delay, a retry's backoff) stays queued. Returns how many jobs were due."""
    if now is not None and now.tzinfo is None:
        raise ValueError("run_due_jobs: 'now' must be an aware datetime")
    return engine(site).run_due(now or _now())
