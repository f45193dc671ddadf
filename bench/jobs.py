"""Benchmark: jobs per second through the queue (enqueue → done) vs a bare loop.

    .venv/bin/python bench/jobs.py [--jobs N] [--database-url postgresql+psycopg://.../empty_db]

The job is one small write (a row into a table of its own), the kind of work a reminder or a
webhook job does. Three ways of doing the same N of them, in the same process and on the same
site so they see the same machine:

- bare: a loop calling the handler's function N times (the floor: no queue at all);
- embedded: ``core.jobs.enqueue`` N times on SQLite while ``crbm serve``'s embedded worker
  (core.jobs.worker.Worker, 2 threads, Huey's SqliteHuey beside the site) runs them;
- PostgreSQL (with --database-url, an empty database): the same with two ``crbm worker``
  processes of 2 threads each (procrastinate), this script started again as ``--worker``.

Timed from the first enqueue until the last job is done (its row of ``crbm_jobs`` says so).
Printed: jobs per second and the ratio to the bare loop on the same database.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa
from common import bench_site, progress  # bench/common.py, beside this file

from core import jobs
from core.jobs.worker import Worker
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import JobHandler
from core.kernel.site import Site

PLUGIN_NAME = "bench_jobs"
THIS = sys.modules[__name__]


@hookimpl
def crbm_tables(metadata):
    sa.Table("bench_jobs_done", metadata, sa.Column("n", sa.Integer, primary_key=True))


def work(site, payload: dict) -> None:
    table = site.tables.tables["bench_jobs_done"]
    with site.engine.begin() as conn:
        conn.execute(table.insert().values(n=payload["n"]))


@hookimpl
def crbm_job_handlers(site):
    return [JobHandler("bench.work", work)]


def reset(site) -> None:
    with site.engine.begin() as conn:
        conn.execute(site.tables.tables["bench_jobs_done"].delete())


def done(site) -> int:
    table = site.tables.tables["crbm_jobs"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).where(table.c.status == "done")).scalar()


def bare(site, n: int) -> float:
    reset(site)
    start = time.perf_counter()
    for i in range(n):
        work(site, {"n": i})
    return n / (time.perf_counter() - start)


def through_the_queue(site, n: int) -> float:
    reset(site)
    before = done(site)
    start = time.perf_counter()
    for i in range(n):
        jobs.enqueue(site, "bench.work", {"n": i})
    while done(site) < before + n:
        time.sleep(0.01)
    return n / (time.perf_counter() - start)


def worker_process(folder: str) -> None:
    """``--worker``: a ``crbm worker`` that knows this bench's job."""
    site = Site(Path(folder), extra_plugins=[THIS])
    Worker(site, concurrency=2, scheduler_tick=False).run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=500, help="jobs per measure (500)")
    parser.add_argument("--database-url", help="an empty PostgreSQL database")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker_process(args.worker)
    os.environ.setdefault("CRBM_JOBS_POLL", "0.05")
    results = []
    with bench_site(None) as plain:
        site = Site(plain.folder, extra_plugins=[THIS])
        site.sync_schema()
        progress(f"SQLite, {args.jobs} jobs")
        floor = bare(site, args.jobs)
        worker = Worker(site, concurrency=2, scheduler_tick=False).start()
        try:
            queued = through_the_queue(site, args.jobs)
        finally:
            worker.stop()
            jobs.close(site)
            site.close()
        results.append(("SQLite, embedded worker (2 threads)", floor, queued))
    if args.database_url:
        with bench_site(args.database_url) as plain:
            site = Site(plain.folder, extra_plugins=[THIS])
            site.sync_schema()
            progress(f"PostgreSQL, {args.jobs} jobs")
            floor = bare(site, args.jobs)
            env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
            workers = [subprocess.Popen([sys.executable, __file__, "--worker", str(site.folder)],
                                        env=env) for _ in range(2)]
            try:
                time.sleep(2)  # the workers start (not timed)
                queued = through_the_queue(site, args.jobs)
            finally:
                for process in workers:
                    process.terminate()
                for process in workers:
                    process.wait(30)
                jobs.close(site)
                with site.engine.begin() as conn:  # procrastinate's schema too: left empty
                    conn.exec_driver_sql("DROP SCHEMA public CASCADE")
                    conn.exec_driver_sql("CREATE SCHEMA public")
                site.close()
            results.append(("PostgreSQL, 2 crbm worker processes (2 threads each)", floor,
                            queued))
    print(f"\n{'':56} {'bare loop':>10} {'queue':>10} {'ratio':>7}")
    for label, floor, queued in results:
        print(f"{label:56} {floor:8.0f}/s {queued:8.0f}/s {queued / floor:7.2f}")


if __name__ == "__main__":
    main()
