"""Running one job in a worker: the engine's task ``crbm.job`` calls ``run(site, envelope)``.

Whatever happens, ``run`` returns: a missing handler or a handler's exception is written
on the job's row of ``crbm_jobs`` (status ``failed``, the message), never raised into the
engine's worker. Retries are CRBM's, the same on both engines: the job is deferred again
with ``attempt`` + 1 after ``jobs_retry_seconds`` × 2^attempt, keeping its id. A job
already finished or cancelled (a redelivery, a replaced key) is skipped.
"""
from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa

from core import jobs
from core.log_context import correlated

log = logging.getLogger(__name__)

FINISHED = ("done", "failed", "cancelled")


def _mark(site, job_id: str, **values) -> None:
    table = jobs._table(site)
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == job_id)
                     .values(updated_at=jobs._now(), **values))


def run(site, envelope: dict) -> None:
    if site is None:  # the site was closed while its worker still ran
        return
    with correlated(f"job-{envelope['id']}"):  # its log lines carry the job's id
        _run(site, envelope)


def _run(site, envelope: dict) -> None:
    job_id, name, attempt = envelope["id"], envelope["name"], envelope.get("attempt", 0)
    table = jobs._table(site)
    with site.engine.connect() as conn:
        state = conn.execute(sa.select(table.c.status).where(table.c.id == job_id)).scalar()
    if state in FINISHED:
        return
    handler = jobs.handlers(site).get(name)
    if handler is None:
        _mark(site, job_id, status="failed", attempts=attempt + 1,
              message=f"no handler for job {name!r} (is its plugin installed and enabled?)")
        log.error("job %s: no handler for %r", job_id, name)
        return
    try:
        handler.run(site, envelope.get("payload") or {})
    except Exception as exc:
        message = f"{type(exc).__name__}: {exc}"[:2000]
        if attempt < handler.retries:
            delay = float(site.settings.get("jobs_retry_seconds", jobs.RETRY_SECONDS)) * 2 ** attempt
            log.warning("job %s (%s) failed, retrying in %.1fs: %s", job_id, name, delay, message)
            _mark(site, job_id, attempts=attempt + 1, message=message)
            jobs.defer(site, {**envelope, "attempt": attempt + 1},
                       jobs._now() + dt.timedelta(seconds=delay))
        else:
            log.exception("job %s (%s) failed for good", job_id, name)
            _mark(site, job_id, status="failed", attempts=attempt + 1, message=message)
        return
    _mark(site, job_id, status="done", attempts=attempt + 1, message=None)
