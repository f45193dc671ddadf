"""Benchmark: SQLite writers at once — concurrent creates, the engine before issue 17 vs now.

    .venv/bin/python bench/writers.py [--writers 4 8] [--creates N] [--rounds R] [--threads]

W writers each create N accounts through ``site.records.create`` (one transaction per
create, as a form or an API call makes it), all starting together. Each writer is a
process of its own with its own engine and pool, as server workers are (``--threads``:
threads of this process instead, as one worker's request threads are). Each round runs
both sides on fresh SQLite sites, one after the other, so they see the same machine load:

- old: the engine ``engine_for`` made at edceba1 — deferred write transactions (the
  driver's BEGIN before the first write, reads before it outside the transaction), a
  fsync per commit, the WAL checkpointed by whichever commit fills it;
- new: ``engine_for`` today — BEGIN IMMEDIATE, synchronous=NORMAL, and the site's
  scheduled checkpoint job (``admin.checkpoint``) running beside, as ``crbm serve`` runs it.

Printed per side and writer count: p50/p95/p99 of one create (ms), creates per second,
and how many creates failed with "database is locked"; then new/old ratios.
"""
from __future__ import annotations

import argparse
import multiprocessing
import tempfile
import threading
import time
from pathlib import Path

import sqlalchemy as sa
from common import progress  # bench/common.py, beside this file

from core.jobs import worker as job_worker
from core.kernel.database import engine_for
from core.kernel.site import Site, create_site
from core.kernel.users import create_user


def old_engine(url: str) -> sa.Engine:
    """The SQLite engine as ``engine_for`` made it at edceba1 (the baseline)."""
    engine = sa.create_engine(url)

    @sa.event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.execute("PRAGMA mmap_size=1073741824")
        cursor.execute("PRAGMA cache_size=-16384")
        cursor.close()

    return engine


SIDES = {"old": old_engine, "new": engine_for}


def open_site(side: str, folder: Path) -> Site:
    return Site(folder, engine=SIDES[side](f"sqlite:///{folder / 'crbm.db'}"))


def create_accounts(site: Site, user, writer: int, creates: int) -> tuple[list[float], int]:
    """One writer's creates: the seconds each successful one took, and how many were
    refused with "database is locked"."""
    latencies, locked = [], 0
    for n in range(creates):
        t0 = time.perf_counter()
        try:
            site.records.create("accounts", {"name": f"Writer {writer} account {n}",
                                             "account_type": "customer"}, user)
        except sa.exc.OperationalError as exc:
            if "database is locked" not in str(exc):
                raise
            locked += 1
            continue
        latencies.append(time.perf_counter() - t0)
    return latencies, locked


def writer_process(side, folder, user, writer, creates, barrier, queue) -> None:
    site = open_site(side, folder)
    site.records.create("accounts", {"name": f"Warm {writer}"}, user)  # pool and caches
    barrier.wait()
    queue.put(create_accounts(site, user, writer, creates))
    site.close()


def run(side: str, folder: Path, site: Site, user, writers: int, creates: int,
        threads: bool) -> tuple[list[float], int, float]:
    """Every successful create's seconds, the "database is locked" count, the wall time
    from the common start to the last writer's end."""
    if threads:
        barrier, results = threading.Barrier(writers + 1), [None] * writers

        def writer(i):
            barrier.wait()
            results[i] = create_accounts(site, user, i, creates)

        workers = [threading.Thread(target=writer, args=(i,)) for i in range(writers)]
    else:
        site.engine.dispose()  # no SQLite connection crosses a fork
        context = multiprocessing.get_context("fork")
        barrier, queue = context.Barrier(writers + 1), context.Queue()
        workers = [context.Process(target=writer_process,
                                   args=(side, folder, user, i, creates, barrier, queue))
                   for i in range(writers)]
    for worker in workers:
        worker.start()
    barrier.wait()
    t0 = time.perf_counter()
    if not threads:
        results = [queue.get() for _ in workers]
    for worker in workers:
        worker.join()
    wall = time.perf_counter() - t0
    return [t for times, _ in results for t in times], sum(n for _, n in results), wall


class Jobs(threading.Thread):
    """The SQLite checkpoint at its interval, as ``crbm serve``'s embedded job worker runs
    it (the old engine had none)."""

    def __init__(self, site: Site):
        super().__init__(daemon=True)
        self.site, self.stop = site, threading.Event()

    def run(self):
        while not self.stop.wait(job_worker.CHECKPOINT_SECONDS):
            job_worker.checkpoint(self.site)


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000 if ordered else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--writers", type=int, nargs="+", default=[4, 8],
                        help="concurrent creators (4 8)")
    parser.add_argument("--creates", type=int, default=50, help="creates per writer (50)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, both sides each (3)")
    parser.add_argument("--threads", action="store_true",
                        help="writers are threads of one process, not processes")
    args = parser.parse_args()

    results = {(side, w): ([], 0, 0.0) for side in SIDES for w in args.writers}
    with tempfile.TemporaryDirectory(prefix="crbm-bench-") as tmp:
        for round_ in range(args.rounds):
            for writers in args.writers:
                for side in SIDES:
                    folder = create_site(Path(tmp) / f"{side}-{writers}-{round_}")
                    site = open_site(side, folder)
                    site.sync_schema()
                    user = create_user(site, "bench", "bench-password", is_admin=True)
                    for n in range(20):  # statements compiled, connections pooled
                        site.records.create("accounts", {"name": f"Warm {n}"}, user)
                    progress(f"round {round_ + 1}: {side}, {writers} writers x {args.creates}")
                    jobs = Jobs(site) if side == "new" else None
                    if jobs:
                        jobs.start()
                    latencies, locked, wall = run(side, folder, site, user, writers,
                                                  args.creates, args.threads)
                    if jobs:
                        jobs.stop.set()
                        jobs.join()
                    site.close()
                    before = results[side, writers]
                    results[side, writers] = (before[0] + latencies, before[1] + locked,
                                              before[2] + wall)

    kind = "threads of one process" if args.threads else "processes"
    print(f"CRBM bench/writers.py — SQLite, accounts created through site.records.create by "
          f"{kind}, {args.creates} each, {args.rounds} rounds per side")
    for writers in args.writers:
        figures = {}
        for side in SIDES:
            latencies, locked, wall = results[side, writers]
            figures[side] = [quantile(latencies, q) for q in (.5, .95, .99)] + \
                [len(latencies) / wall]
            p50, p95, p99, rate = figures[side]
            print(f"{writers} writers  {side}  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  "
                  f"p99 {p99:7.1f} ms  {rate:6.0f} creates/s  {locked} \"database is locked\"")
        r50, r95, r99, rate = (n / o if o else float("nan")
                               for n, o in zip(figures["new"], figures["old"], strict=True))
        print(f"{writers} writers  new/old  p50 {r50:.2f}  p95 {r95:.2f}  p99 {r99:.2f}  "
              f"throughput {rate:.2f}   (aim at 4 writers: p95 <= 60 ms, none locked)")


if __name__ == "__main__":
    main()
