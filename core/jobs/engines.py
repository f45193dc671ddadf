"""The two queue engines behind ``core.jobs``, one per kind of site; nothing here is a queue
of CRBM's own.

- PostgreSQL: procrastinate (its tables in the site's database, applied by ``crbm db sync``).
  Jobs survive restarts; a job whose worker died (kill -9) is put back by procrastinate's
  stalled-jobs mechanism — workers send heartbeats, and every worker periodically retries
  the jobs of workers whose heartbeat stopped (``recover_stalled``).
- SQLite (the embedded default) and MariaDB: Huey's SqliteHuey in ``<site>/jobs.db``, or
  RedisHuey when the site setting ``jobs_redis_url`` is set (several machines). Queued and
  scheduled jobs survive restarts; a job killed mid-run is not run again (Huey takes a job
  off the queue before running it): at most once for that one run.

Each engine knows one task, ``crbm.job``, whose argument is the envelope of a CRBM job
(``runner.run`` does the rest), and offers: ``defer(envelope, at) -> ref``,
``cancel(ref)``, ``serve(stop, concurrency, tick)`` (run jobs until ``stop`` is set),
``run_due(now) -> int`` (run, in this thread and through the engine, every job due at
``now``; for tests under a fixed clock and for operators: ``core.jobs.run_due_jobs``).
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import threading
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

TASK = "crbm.job"


def _seconds(env: str, default: float) -> float:
    return float(os.environ.get(env, default))


class HueyEngine:
    def __init__(self, site, run: Callable[[dict], None]):
        import huey

        redis_url = site.settings.get("jobs_redis_url")
        if redis_url:
            self.huey = huey.RedisHuey("crbm", url=redis_url, utc=True)
        else:
            self.huey = huey.SqliteHuey("crbm", filename=str(site.folder / "jobs.db"), utc=True)
        self.task = self.huey.task(name=TASK)(run)

    @staticmethod
    def ref_of(envelope: dict) -> str | None:
        """The id ``defer`` will give the job (Huey lets us choose it): known before."""
        return f"{envelope['id']}-{envelope['attempt']}"

    def defer(self, envelope: dict, at: dt.datetime | None) -> str:
        task = self.task.s(envelope)
        task.id = self.ref_of(envelope)
        if at is not None and at > dt.datetime.now(dt.UTC):
            task.eta = at.astimezone(dt.UTC).replace(tzinfo=None)
            self.huey.add_schedule(task)
        else:
            self.huey.enqueue(task)
        return task.id

    def cancel(self, ref: str) -> None:
        self.huey.revoke_by_id(ref, revoke_once=True)

    def run_due(self, now: dt.datetime) -> int:
        """Huey's own steps, as its consumer takes them: scheduled tasks whose eta has come
        at ``now`` to the queue (``read_schedule``), then ``dequeue``/``execute`` until the
        queue is empty — a job that enqueues another at once sees it run too; a retry or a
        later job (eta after ``now``) goes back to the schedule. How many ran."""
        stamp = now.astimezone(dt.UTC).replace(tzinfo=None)
        for task in self.huey.read_schedule(stamp):
            self.huey.enqueue(task)
        ran = 0
        while (task := self.huey.dequeue()) is not None:
            if self.huey.ready_to_run(task, stamp) and not self.huey.is_revoked(task, stamp, peek=True):
                ran += 1
            self.huey.execute(task, stamp)
        return ran

    def serve(self, stop: threading.Event, concurrency: int, tick: Callable[[], None]) -> None:
        """Run jobs in ``concurrency`` threads (Huey's dequeue/execute), moving due scheduled
        jobs to the queue and calling ``tick`` about every second, until ``stop``."""
        def work():
            while not stop.is_set():
                try:
                    task = self.huey.dequeue()
                    if task is None:
                        stop.wait(_seconds("CRBM_JOBS_POLL", 0.1))
                    else:
                        self.huey.execute(task)
                except Exception:  # storage hiccup: log, go on
                    log.exception("job worker: reading or running a job failed")
                    stop.wait(1)

        threads = [threading.Thread(target=work, daemon=True, name=f"crbm-job-{i}")
                   for i in range(concurrency)]
        for thread in threads:
            thread.start()
        while not stop.is_set():
            try:
                for task in self.huey.read_schedule():
                    self.huey.enqueue(task)
                tick()
            except Exception:
                log.exception("job worker: the scheduler tick failed")
            stop.wait(_seconds("CRBM_JOBS_TICK", 1.0))
        for thread in threads:
            thread.join(timeout=30)

    def close(self) -> None:
        pass


def conninfo(site) -> str:
    url = site.engine.url.set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


class ProcrastinateEngine:
    def __init__(self, site, run: Callable[[dict], None]):
        self.site, self.run = site, run
        self.app = self._app()
        self._opened = False
        self._lock = threading.Lock()

    def _app(self):
        import procrastinate

        app = procrastinate.App(connector=procrastinate.PsycopgConnector(
            conninfo=conninfo(self.site)))
        app.task(name=TASK)(self.run)
        return app

    def _open(self):
        with self._lock:
            if not self._opened:
                self.app.open()
                self._opened = True
        return self.app

    ref_of = staticmethod(HueyEngine.ref_of)  # found again in the job's arguments

    def defer(self, envelope: dict, at: dt.datetime | None) -> str:
        self._open().tasks[TASK].configure(schedule_at=at).defer(envelope=envelope)
        return self.ref_of(envelope)

    def cancel(self, ref: str) -> None:
        """Cancel the waiting procrastinate job of ``ref`` (looked up by its arguments:
        rarer than an enqueue, which then needs no second write)."""
        import sqlalchemy as sa

        job_id, attempt = ref.rsplit("-", 1)
        with self.site.engine.connect() as conn:
            found = conn.execute(sa.text(
                "SELECT id FROM procrastinate_jobs WHERE status = 'todo' AND task_name = :task "
                "AND args -> 'envelope' ->> 'id' = :id "
                "AND args -> 'envelope' ->> 'attempt' = :attempt"),
                {"task": TASK, "id": job_id, "attempt": attempt}).scalars().all()
        for procrastinate_id in found:
            self._open().job_manager.cancel_job_by_id(procrastinate_id)

    def run_due(self, now: dt.datetime) -> int:
        """The waiting jobs due at ``now`` (procrastinate's job manager: ``list_jobs``) are
        made due for the database's clock too — their ``scheduled_at`` cleared, the one
        write outside procrastinate's API: its fetch compares with the server's ``now()``,
        which no fixed clock in Python reaches — then procrastinate's worker runs until
        the queue has caught up (``wait=False``). How many were due."""
        import sqlalchemy as sa

        due = [job.id for job in self._open().job_manager.list_jobs(task=TASK, status="todo")
               if job.scheduled_at is None or job.scheduled_at <= now]
        if not due:
            return 0
        with self.site.engine.begin() as conn:
            conn.execute(sa.text("UPDATE procrastinate_jobs SET scheduled_at = NULL "
                                 "WHERE status = 'todo' AND id = ANY(:ids)"), {"ids": due})
        self._app().run_worker(wait=False, concurrency=1, install_signal_handlers=False,
                               delete_jobs="successful", listen_notify=False)
        return len(due)

    def serve(self, stop: threading.Event, concurrency: int, tick: Callable[[], None]) -> None:
        """procrastinate's worker (another App: its async pool) in an event loop here, with
        the stalled-jobs recovery beside it, and ``tick`` in a thread, until ``stop``."""
        heartbeat = _seconds("CRBM_JOBS_HEARTBEAT", 10.0)

        def ticking():
            while not stop.is_set():
                try:
                    tick()
                except Exception:
                    log.exception("job worker: the scheduler tick failed")
                stop.wait(_seconds("CRBM_JOBS_TICK", 1.0))

        ticker = threading.Thread(target=ticking, daemon=True, name="crbm-job-tick")
        ticker.start()
        while not stop.is_set():  # a lost database connection ends a session: start again
            try:
                asyncio.run(self._serve(stop, concurrency, heartbeat))
            except Exception:
                log.exception("job worker: procrastinate's worker stopped; restarting")
            stop.wait(1)
        ticker.join(timeout=30)

    async def _serve(self, stop, concurrency, heartbeat):
        app = self._app()
        async with app.open_async():
            worker = asyncio.create_task(app.run_worker_async(
                concurrency=concurrency, install_signal_handlers=False,
                update_heartbeat_interval=heartbeat, stalled_worker_timeout=3 * heartbeat,
                fetch_job_polling_interval=_seconds("CRBM_JOBS_POLL", 5.0),
                delete_jobs="successful"))
            recovered = 0.0
            while not stop.is_set() and not worker.done():
                if time.monotonic() - recovered >= heartbeat:
                    recovered = time.monotonic()
                    await recover_stalled(app, 3 * heartbeat)
                await asyncio.sleep(0.1)
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    def close(self) -> None:
        if self._opened:
            self.app.close()
            self._opened = False


async def recover_stalled(app, seconds: float) -> None:
    """procrastinate's recipe for jobs whose worker died: those of workers whose heartbeat
    is older than ``seconds`` go back to the queue (any worker may run this; retrying a job
    twice puts it back once)."""
    try:
        for job in await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds):
            log.warning("job %s: its worker stopped answering; running it again", job.id)
            await app.job_manager.retry_job(job)
    except Exception:
        log.exception("job worker: recovering stalled jobs failed")


def apply_schema(site) -> None:
    """procrastinate's tables in a PostgreSQL site's database, once (``crbm db sync``)."""
    import sqlalchemy as sa
    from procrastinate.schema import SchemaManager

    with site.engine.begin() as conn:
        if conn.execute(sa.text("SELECT to_regclass('procrastinate_jobs')")).scalar():
            return
        with conn.connection.dbapi_connection.cursor() as cursor:  # no parameters: "%" as is
            cursor.execute(SchemaManager.get_schema())
