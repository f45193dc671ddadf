"""Benchmark: backup and restore of N records (MB/s) against the database's own dump tool
on the same data, in the same run.

    .venv/bin/python bench/backup.py [--records N] [--repeat R] [--profile]
                                     [--database-url URL]

The site holds N records (1,000,000): N/2 demo accounts and as many contacts (one per
account), made as bench/scale.py makes them (``RecordService.create_many``, 5,000 a batch;
its ``build_to``), with what their saves write beside them (the duplicate-check keys: 5
rows a record, the largest table). The database's size is what the MB/s are of, for both
sides: on SQLite the file's size (after a WAL checkpoint), on PostgreSQL
``pg_database_size``, on MariaDB information_schema's data + index length of its tables
(after ANALYZE TABLE); the header says which.

Measured, R times (1), the sides taking turns (the order flipped each round, so a busy
machine weighs on both alike; medians printed, every round's load average beside them):
- ours, backup: ``core.apps.backup.backup.make_backup(site, folder, files="none")`` — the
  database read in one snapshot, every table dumped as JSON Lines into a zip; its seconds,
  MB/s and the archive's size;
- ours, restore: ``core.apps.backup.restore.restore`` of that archive into a new site (a
  new folder; on a server, a second empty database made beside the site's and dropped
  afterwards): archive checked, schema made, rows loaded, indexes derived, schema checked;
- for each of ours, where the seconds went: those in ``snapshot.dump_table`` /
  ``load_table`` (wrapped while it runs: per table, the three slowest named — a dump's
  include compressing, a load's decompressing), and the rest;
- theirs, on the same data: SQLite — the ``sqlite3`` module's online backup API
  (``Connection.backup``) into a new file, and for the restore a copy back with the same
  API into a new file (page copies: no SQL, no index built — a floor, not a like-for-like);
  PostgreSQL — ``pg_dump -Fc`` and ``pg_restore`` into an empty database; MariaDB —
  ``mariadb-dump --single-transaction`` and ``mariadb < dump`` into an empty database.
Each as seconds, MB/s and the ratio ours/theirs (seconds: above 1, ours is slower). Each
restore is checked: ours loaded every row the archive holds, theirs holds as many accounts
and contacts as the site.

Memory: the process's peak RSS (``resource.getrusage``) over each of our runs, against its
RSS when the run began — the high-water mark is reset before each run
(``/proc/self/clear_refs``; where that is refused, the peaks are cumulative and the output
says so); a streamed backup and restore stay flat as N grows. On SQLite the RSS includes
the database file's pages the engine maps into memory (``PRAGMA mmap_size``, shared with
the OS cache), which grow with the file: so the anonymous part (RssAnon, the heap: rows
held, batches) is printed too, its peak sampled every 20 ms. (The dump tools' own memory
is not measured: a child forked from this process inherits its high-water mark.)

--profile: afterwards, one more backup and restore of ours under cProfile (top 15 by
cumulative time each; not in the figures above).
SQLite in a temp dir unless --database-url names an empty PostgreSQL/MariaDB database (its
tables are dropped afterwards; the restores' databases are made and dropped beside it).
1 MB = 2**20 bytes.
"""
from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import resource
import shutil
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from common import backend_name, bench_site, progress, site_arguments  # bench/common.py
from scale import Bench, analyze, build_to, new_bench  # bench/scale.py

from core.apps.backup import snapshot
from core.apps.backup.backup import make_backup
from core.apps.backup.restore import restore
from core.kernel.site import Site

MB = 2**20
BIG = ("accounts", "contacts")  # the tables the records are in: counted after restores
TOOLS = {"sqlite": ("SQLite backup API", "SQLite backup API, back"),  # backup, restore
         "postgresql": ("pg_dump -Fc", "pg_restore"),
         "mariadb": ("mariadb-dump", "mariadb < dump")}


# -- the data -----------------------------------------------------------------------------------

def build(site: Site, records: int, seed: int) -> Bench:
    """N/2 accounts and as many contacts, as bench/scale.py builds them."""
    bench = new_bench(site, seed)
    build_to(bench, records // 2)
    analyze(site)  # MariaDB's table sizes come from its statistics
    return bench


def database_size(site: Site) -> tuple[int, str]:
    """The database's size in bytes, and how it was measured."""
    backend = backend_name(site)
    with site.engine.connect() as conn:
        if backend == "sqlite":
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")  # every page in the file
            path = Path(site.engine.url.database)
            return path.stat().st_size, "SQLite file size, after a WAL checkpoint"
        if backend == "postgresql":
            return conn.exec_driver_sql("SELECT pg_database_size(current_database())"
                                        ).scalar(), "pg_database_size"
        return int(conn.exec_driver_sql(
            "SELECT SUM(data_length + index_length) FROM information_schema.tables "
            "WHERE table_schema = DATABASE()").scalar()), \
            "information_schema data_length + index_length, after ANALYZE TABLE"


def counts(engine: sa.Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.exec_driver_sql(f"SELECT COUNT(*) FROM {t}").scalar() for t in BIG}


@contextlib.contextmanager
def spare_database(site: Site, name: str) -> Iterator[str | None]:
    """On a server, a new empty database beside the site's (its URL), dropped afterwards;
    on SQLite None (the restores make their own files)."""
    url = site.engine.url
    if url.get_backend_name() == "sqlite":
        yield None
        return
    name = f"{url.database}_{name}"[:63]
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    postgresql = url.get_backend_name() == "postgresql"
    with admin.connect() as conn:
        quoted = conn.dialect.identifier_preparer.quote(name)
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}")
        conn.exec_driver_sql(f"CREATE DATABASE {quoted}" + (
            "" if postgresql else " CHARACTER SET utf8mb4"))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quoted}"
                                 + (" WITH (FORCE)" if postgresql else ""))
        admin.dispose()


# -- memory ---------------------------------------------------------------------------------

def status_mb(key: str) -> float:
    """A /proc/self/status memory figure (VmRSS, RssAnon...) in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # kB
    return 0.0


class AnonPeak(threading.Thread):
    """RssAnon's peak while running, sampled every 20 ms."""

    def __init__(self):
        super().__init__(daemon=True)
        self.peak, self.done = status_mb("RssAnon"), threading.Event()

    def run(self) -> None:
        while not self.done.wait(0.02):
            self.peak = max(self.peak, status_mb("RssAnon"))

    def stop(self) -> float:
        self.done.set()
        self.join()
        return max(self.peak, status_mb("RssAnon"))


def reset_peak() -> bool:
    """Reset the process's RSS high-water mark (getrusage's ru_maxrss too); False if the
    kernel refuses, then the peaks read are the process's since it began."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports kB


# -- timing ---------------------------------------------------------------------------------

@dataclass
class Run:
    seconds: float
    size: int = 0  # bytes written: the archive, the dump
    load: float = 0.0  # 1-minute load average when it ended
    rss_before: float = 0.0
    peak: float = 0.0
    anon_before: float = 0.0
    anon_peak: float = 0.0
    phases: dict[str, float] = field(default_factory=dict)


@contextlib.contextmanager
def table_times() -> Iterator[dict[str, float]]:
    """Seconds spent in ``snapshot.dump_table``/``load_table`` per table while in the block
    (the module's functions wrapped: backup.py and restore.py call them through it). A
    dump's seconds include compressing into the zip, a load's reading it back."""
    spent: dict[str, float] = {}
    originals = snapshot.dump_table, snapshot.load_table

    def wrap(fn):
        def timed_table(conn, table, stream):
            t0 = time.perf_counter()
            try:
                return fn(conn, table, stream)
            finally:
                spent[table.name] = spent.get(table.name, 0.0) + time.perf_counter() - t0
        return timed_table

    snapshot.dump_table, snapshot.load_table = wrap(originals[0]), wrap(originals[1])
    try:
        yield spent
    finally:
        snapshot.dump_table, snapshot.load_table = originals


def timed(call: Callable[[], int | None]) -> Run:
    """``call`` timed, with the process's memory around it; it returns the bytes it wrote."""
    rss, anon = status_mb("VmRSS"), status_mb("RssAnon")
    reset_peak()
    sampler = AnonPeak()
    sampler.start()
    t0 = time.perf_counter()
    try:
        size = call() or 0
    finally:
        seconds = time.perf_counter() - t0
        anon_peak = sampler.stop()
    return Run(seconds, size, os.getloadavg()[0], rss, peak_mb(), anon, anon_peak)


# -- ours -----------------------------------------------------------------------------------

def our_backup(site: Site, folder: Path) -> tuple[Run, Path]:
    made: list[Path] = []

    def call():
        made.append(make_backup(site, folder, files="none"))
        return made[0].stat().st_size

    with table_times() as spent:
        run = timed(call)
    run.phases = spent
    return run, made[0]


def our_restore(site: Site, archive: Path, work: Path, number: int, rows: int) -> Run:
    target = work / f"restored-{number}"
    try:
        with spare_database(site, f"r{number}") as url:
            def call():
                done = restore(archive, target, database_url=url)
                if done.rows != rows or done.left_out:
                    sys.exit(f"our restore loaded {done.rows:,} rows of {rows:,} "
                             f"(left out: {done.left_out})")
            with table_times() as spent:
                run = timed(call)
            run.phases = spent
    finally:
        shutil.rmtree(target, ignore_errors=True)
    return run


def archive_rows(archive: Path) -> dict[str, int]:
    """Rows per table, as the archive's manifest lists them."""
    with zipfile.ZipFile(archive) as z:
        return {t["name"]: t["rows"] for t in json.loads(z.read("manifest.json"))["tables"]}


# -- theirs ---------------------------------------------------------------------------------

def tool(args: list[str], url: sa.URL, stdin: Path | None = None) -> None:
    """A dump tool, with the URL's host, port and user (and its password in the
    environment); it must succeed."""
    env = dict(os.environ)
    if url.get_backend_name() == "postgresql":
        args += ["-h", url.host or "127.0.0.1", "-p", str(url.port or 5432),
                 "-U", url.username or "postgres"]
        if url.password:
            env["PGPASSWORD"] = url.password
    else:
        args[1:1] = ["-h", url.host or "127.0.0.1", "-P", str(url.port or 3306),
                     "-u", url.username or "root"]
        if url.password:
            env["MYSQL_PWD"] = url.password
    with open(stdin, "rb") if stdin else contextlib.nullcontext() as given:
        done = subprocess.run(args, stdin=given, env=env, capture_output=True, text=True,
                              check=False)
    if done.returncode:
        sys.exit(f"{args[0]} failed ({done.returncode}): {done.stderr.strip()[:2000]}")


def their_backup(site: Site, work: Path) -> tuple[Run, Path]:
    backend, url = backend_name(site), site.engine.url
    if backend == "sqlite":
        out = work / "copy.db"

        def call():
            source, target = sqlite3.connect(url.database), sqlite3.connect(out)
            try:
                source.backup(target)
            finally:
                target.close()
                source.close()
            return out.stat().st_size
    elif backend == "postgresql":
        out = work / "dump.pgc"

        def call():
            tool(["pg_dump", "-Fc", "-f", str(out), "-d", url.database], url)
            return out.stat().st_size
    else:
        out = work / "dump.sql"

        def call():
            tool(["mariadb-dump", "--single-transaction", f"--result-file={out}",
                  url.database], url)
            return out.stat().st_size
    out.unlink(missing_ok=True)
    return timed(call), out


def their_restore(site: Site, dump: Path, work: Path, number: int, expected: dict) -> Run:
    backend = backend_name(site)
    target = work / f"copied-{number}.db"
    with spare_database(site, f"t{number}") as url:
        if backend == "sqlite":
            url = f"sqlite:///{target}"

            def call():
                source, copy = sqlite3.connect(dump), sqlite3.connect(target)
                try:
                    source.backup(copy)
                finally:
                    copy.close()
                    source.close()
        elif backend == "postgresql":
            def call():
                tool(["pg_restore", "--no-owner", "-d", sa.make_url(url).database,
                      str(dump)], sa.make_url(url))
        else:
            def call():
                tool(["mariadb", sa.make_url(url).database], sa.make_url(url), stdin=dump)
        try:
            run = timed(call)
            engine = sa.create_engine(url)
            try:
                found = counts(engine)
            finally:
                engine.dispose()
            if found != expected:
                sys.exit(f"{TOOLS[backend][1]}: the restored database holds {found}, "
                         f"not {expected}")
        finally:
            target.unlink(missing_ok=True)
    return run


# -- profile --------------------------------------------------------------------------------

def profiled(label: str, call: Callable[[], object], top: int = 15) -> None:
    profile = cProfile.Profile()
    t0 = time.perf_counter()
    profile.runcall(call)
    seconds = time.perf_counter() - t0
    text = io.StringIO()
    pstats.Stats(profile, stream=text).sort_stats("cumulative").print_stats(top)
    body = text.getvalue()
    body = body[body.find("   ncalls"):] if "   ncalls" in body else body
    print(f"\n{label} under cProfile: {seconds:.1f} s (load {os.getloadavg()[0]:.2f}); "
          f"top {top} by cumulative time")
    print(body.rstrip())


# -- printing -------------------------------------------------------------------------------

def median(runs: list[Run], key: str = "seconds") -> float:
    return statistics.median(getattr(r, key) for r in runs)


def loads(runs: list[Run]) -> str:
    return ", ".join(f"{r.load:.1f}" for r in runs)


def line(label: str, runs: list[Run], size: int, ours: bool) -> str:
    seconds = median(runs)
    spread = f" ({min(r.seconds for r in runs):.1f}-{max(r.seconds for r in runs):.1f})" \
        if len(runs) > 1 else ""
    written = f"{median(runs, 'size') / MB:9.1f}" if median(runs, "size") else f"{'-':>9}"
    memory = " ".join(f"{median(runs, key):6.0f}" for key in (
        "rss_before", "peak", "anon_before", "anon_peak")) if ours else \
        " ".join(f"{'-':>6}" for _ in range(4))
    return (f"  {label:<32} {seconds:8.2f}{spread:<12} {size / MB / seconds:8.1f} {written} "
            f"{memory}   {loads(runs)}")


def phases(runs: list[Run], verb: str, rest: str, top: int = 3) -> str:
    """Where our run's seconds went (medians): the rows of the slowest tables, of the
    others, and the rest."""
    total = statistics.median(sum(r.phases.values()) for r in runs)
    each = {name: statistics.median(r.phases.get(name, 0.0) for r in runs)
            for name in runs[-1].phases}
    slowest = sorted(each, key=each.get, reverse=True)[:top]
    return (f"{total:.1f} s {verb} rows ({', '.join(f'{n} {each[n]:.1f}' for n in slowest)}, "
            f"the other {len(each) - len(slowest)} tables "
            f"{total - sum(each[n] for n in slowest):.1f}), "
            f"{median(runs) - total:.1f} s the rest ({rest})")


def drop_derived(site: Site) -> None:
    """MariaDB: the tables the schema sync's hooks make beside a module's (full-text
    search's ``<table>__fts``), which bench_site's drop of the site's tables leaves (on
    PostgreSQL it drops the whole schema; SQLite's file goes with its folder)."""
    if backend_name(site) != "mariadb":
        return
    with site.engine.begin() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name not in site.tables.tables and "__" in name:
                conn.exec_driver_sql(f"DROP TABLE {conn.dialect.identifier_preparer.quote(name)}")


def measure(site: Site, args) -> None:
    backend = backend_name(site)
    work = site.folder.parent  # the temp dir: removed with the site
    progress(f"{backend}: creating schema, then {args.records // 2:,} accounts + "
             f"{args.records // 2:,} contacts")
    site.sync_schema()
    bench = build(site, args.records, args.seed)
    expected = counts(site.engine)
    size, measured = database_size(site)
    resettable = reset_peak()
    ours_b: list[Run] = []
    ours_r: list[Run] = []
    theirs_b: list[Run] = []
    theirs_r: list[Run] = []
    archive = work / "backups"
    for number in range(args.repeat):
        sides = [("ours", "theirs"), ("theirs", "ours")][number % 2]
        for side in sides:
            progress(f"round {number + 1}: backup, {side}")
            if side == "ours":
                shutil.rmtree(archive, ignore_errors=True)
                run, made = our_backup(site, archive)
                tables = archive_rows(made)
                rows = sum(tables.values())
                ours_b.append(run)
            else:
                run, dump = their_backup(site, work)
                theirs_b.append(run)
        for side in sides:
            progress(f"round {number + 1}: restore, {side}")
            if side == "ours":
                ours_r.append(our_restore(site, made, work, number, rows))
            else:
                theirs_r.append(their_restore(site, dump, work, number, expected))

    print(f"CRBM bench/backup.py — {backend}, {args.records // 2:,} accounts + "
          f"{args.records // 2:,} contacts ({rows:,} rows in all tables); build "
          f"{bench.build_seconds:,.0f} s through create_many "
          f"({bench.built / bench.build_seconds:,.0f} rows/s)")
    most = sorted(tables.items(), key=lambda kv: -kv[1])[:4]
    print(f"{len(tables)} tables; the most rows: "
          + ", ".join(f"{name} {count:,}" for name, count in most))
    print(f"database size {size / MB:,.1f} MB ({measured}); median of {args.repeat} "
          f"round{'s' if args.repeat > 1 else ''}; load = 1-minute load average as each "
          f"ended ({os.cpu_count()} CPUs)")
    print(f"  {'':<32} {'seconds':>8}{'':<12} {'MB/s':>8} {'out MB':>9} "
          f"{'RSS':>6} {'peak':>6} {'anon':>6} {'peak':>6}   load")
    print("backup")
    print(line("ours: make_backup(files=none)", ours_b, size, True))
    print(line(f"theirs: {TOOLS[backend][0]}", theirs_b, size, False))
    print(f"  ratio ours/theirs (seconds): {median(ours_b) / median(theirs_b):.2f}")
    print("  ours: " + phases(ours_b, "dumping", "snapshot, reflection, manifest"))
    print("restore")
    print(line("ours: restore(), a new site", ours_r, size, True))
    print(line(f"theirs: {TOOLS[backend][1]}", theirs_r, size, False))
    print(f"  ratio ours/theirs (seconds): {median(ours_r) / median(theirs_r):.2f}")
    print("  ours: " + phases(ours_r, "loading", "archive checked, schema synced twice, "
                             "indexes derived, schema checked, switch"))
    print("memory (MB): RSS = the process's when our run began, peak = getrusage's during "
          "the run " + ("(high-water mark reset before each run)" if resettable else
                        "(cumulative: /proc/self/clear_refs refused, the build's included)")
          + "; anon = RssAnon when it began, and its peak (sampled every 20 ms)"
          + ("; RSS includes SQLite's memory-mapped database pages" if backend == "sqlite"
             else ""))

    if args.profile:
        progress("profiling a backup and a restore of ours")
        shutil.rmtree(archive, ignore_errors=True)
        made_now: list[Path] = []
        profiled("backup (make_backup)", lambda: made_now.append(
            make_backup(site, archive, files="none")))
        target = work / "restored-profiled"
        with spare_database(site, "rp") as url:
            profiled("restore", lambda: restore(made_now[0], target, database_url=url))
        shutil.rmtree(target, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000,
                        help="accounts + contacts, half each (1,000,000)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds of each measurement (1); medians printed")
    parser.add_argument("--profile", action="store_true",
                        help="then one backup and restore of ours under cProfile")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        try:
            measure(site, args)
        finally:
            drop_derived(site)


if __name__ == "__main__":
    main()
