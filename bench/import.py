"""Benchmark: importing N accounts and N contacts (contacts linked to their accounts by
name) from CSV files through the wizard's job, against an SQLAlchemy Core executemany of
the same rows, in the same run.

    PYTHONPATH=<a CRBM tree> .venv/bin/python bench/import.py [--rows N] [--database-url URL]

The import side is what a user's import costs: ``run.start`` (the file checked and kept,
an import session) and ``run.run_session`` (the job: the file streamed, cells parsed,
accounts resolved by name one query per batch of ``run.BATCH`` rows, ``create_many`` with
validation, access, hooks, the change log and the session's records). The raw side
inserts the same rows, ids and search keys made in Python, with one executemany per 5,000
rows: what writing them costs with no checks at all. Ratio = import / raw. The import's
CPU seconds (user + system, of this process) are printed beside its wall time: on a
shared machine they move far less than the wall time does.

Memory: tracemalloc's peak for imports of N/10 and N/4 rows (a streamed import's peak
stays flat as the file grows: one batch of ``run.BATCH`` rows is held), and the process's
peak RSS before and after the import of N (which includes the pages of SQLite's
memory-mapped database file the import touched, not only Python's). The timed import of N
runs without tracemalloc, which makes this code ~5x slower.
"""
from __future__ import annotations

import argparse
import csv
import resource
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

from common import backend_name, bench_site, progress, site_arguments  # bench/common.py

from core.apps.imports import files, mapping, run
from core.kernel.records import now
from core.kernel.users import create_user

CITIES = ("München", "Zürich", "Kraków", "São Paulo", "Lyon", "Leeds")


def write_files(folder: Path, n: int) -> tuple[Path, Path]:
    accounts, contacts = folder / f"accounts-{n}.csv", folder / f"contacts-{n}.csv"
    with open(accounts, "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["Account name", "Billing address: city", "Office phone", "Type"])
        for i in range(n):
            w.writerow([f"Company {i:07d}", CITIES[i % 6], f"+1 212 555 {i % 10000:04d}",
                        "customer"])
    with open(contacts, "w", newline="", encoding="utf-8") as out:
        w = csv.writer(out)
        w.writerow(["First name", "Last name", "Email", "Account name"])
        for i in range(n):
            w.writerow([f"Ann{i % 997}", f"Lee{i:07d}", f"ann{i}@example.com",
                        f"Company {i:07d}"])
    return accounts, contacts


def timed_import(site, user, module: str, path: Path, traced: bool = False
                 ) -> tuple[float, int, float]:
    """Seconds, tracemalloc's peak if ``traced`` (0 otherwise), and CPU seconds."""
    table = files.open_table(path, max_bytes=2**40)
    columns = mapping.automatic(site, site.registry.module(module), table.header)
    copy = path.with_suffix(".tmp.csv")
    copy.write_bytes(path.read_bytes())
    if traced:
        tracemalloc.start()
    started, cpu = time.perf_counter(), cpu_seconds()
    session_id = run.start(site, user, module, copy, path.name, columns, run.Options(),
                           queue=False)
    summary = run.run_session(site, session_id)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu
    peak = tracemalloc.get_traced_memory()[1] if traced else 0
    tracemalloc.stop()
    if summary.created != summary.processed:
        sys.exit(f"{module}: {summary.skipped} rows skipped")
    return seconds, peak, cpu


def raw_insert(site, module: str, path: Path, user_id: str) -> float:
    """The same rows with one executemany per 5,000: no parsing, checks, hooks or log."""
    table = site.records.table(site.registry.module(module))
    started = time.perf_counter()
    with open(path, newline="", encoding="utf-8") as source, site.engine.begin() as conn:
        reader = csv.reader(source)
        next(reader)
        batch = []
        stamp = now()
        for cells in reader:
            row = {"id": str(uuid.uuid4()), "created_at": stamp, "modified_at": stamp,
                   "created_by": user_id, "modified_by": user_id,
                   "assigned_user_id": user_id, "deleted": False, "version": 1}
            if module == "accounts":
                row.update(name=cells[0], billing_address_city=cells[1],
                           phone_office=cells[2], account_type=cells[3])
            else:
                row.update(first_name=cells[0], last_name=cells[1], email1=cells[2],
                           name=f"{cells[0]} {cells[1]}")
            batch.append({k: v for k, v in row.items() if k in table.c})
            if len(batch) == 5000:
                conn.execute(table.insert(), batch)
                batch = []
        if batch:
            conn.execute(table.insert(), batch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="accounts, and contacts (100,000)")
    site_arguments(parser)
    args = parser.parse_args()
    with bench_site(args.database_url) as site:
        site.sync_schema()
        admin = create_user(site, "bench-admin", "bench-password-123", is_admin=True)
        folder = site.folder
        peaks = {}
        for size in (args.rows // 10, args.rows // 4):
            progress(f"{backend_name(site)}: importing {size:,} + {size:,} (tracemalloc)")
            peaks[size] = max(timed_import(site, admin, m, p, traced=True)[1] for m, p in
                              zip(("accounts", "contacts"), write_files(folder, size),
                                  strict=True))
        big = write_files(folder, args.rows)
        rss_before = peak_rss()
        progress(f"importing {args.rows:,} accounts + {args.rows:,} contacts")
        accounts_s, _, accounts_cpu = timed_import(site, admin, "accounts", big[0])
        contacts_s, _, contacts_cpu = timed_import(site, admin, "contacts", big[1])
        rss_after = peak_rss()
        progress("raw executemany of the same rows")
        raw_s = sum(raw_insert(site, m, p, admin.id)
                    for m, p in zip(("accounts", "contacts"), big, strict=True))
    total = accounts_s + contacts_s
    print(f"{backend_name(site)}: {args.rows:,} accounts + {args.rows:,} contacts")
    print(f"  import (the job):   {total:6.1f} s  (accounts {accounts_s:.1f} s, "
          f"contacts {contacts_s:.1f} s; {2 * args.rows / total:,.0f} rows/s; "
          f"CPU {accounts_cpu + contacts_cpu:.1f} s)")
    print(f"  raw executemany:    {raw_s:6.1f} s")
    print(f"  ratio import / raw: {total / raw_s:6.1f}")
    print("  peak memory (tracemalloc): " + ", ".join(
        f"{peak / 2**20:.1f} MB for {size:,} rows" for size, peak in peaks.items()))
    print(f"  peak RSS of the process: {rss_before:.0f} MB before the import of {args.rows:,}, "
          f"{rss_after:.0f} MB after")


def cpu_seconds() -> float:
    """User + system CPU time of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss() -> float:
    """The process's peak resident memory so far, in MB (Linux reports KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
