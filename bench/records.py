"""Benchmark: RecordService against hand-written SQLAlchemy Core on the same database.

    .venv/bin/python bench/records.py [--rows N] [--batch B] [--database-url URL]

1. create: N demo accounts through ``RecordService.create_many`` (validation, hooks,
   reference checks) and the same N rows, fully built up front, through a raw Core
   ``executemany`` into an identical second table (same columns, same indexes). Batches
   of B rows (default 1,000, the demo-data and import batch size), one transaction per
   batch, the two sides interleaved batch by batch so both see the same table growth.
2. list: one page (50 customers sorted by name, the list layout's columns) through
   ``RecordService.list`` and the same SELECT written in Core, built and run per call,
   rows fetched into dicts; interleaved, median of --repeat. Twice: the first page (where
   our own overhead shows) and a page in the middle (where the database's skipping
   dominates both sides).

Ratios compare the two sides in this process. Without --database-url a fresh SQLite
file in a temp dir is used; with one, the database must be empty of CRBM tables and the
tables made here are dropped afterwards.
"""
from __future__ import annotations

import argparse
import time

import sqlalchemy as sa

# bench/common.py, beside this file; web.py, api.py and acl.py import these from here
from common import (
    backend_name,
    bench_site,
    demo_rows,
    interleaved,
    median_ms,
    progress,
    raw_records,
    site_arguments,
    twin_table,
)

from core.kernel.database import CaseFolded  # lists sort names regardless of case
from core.kernel.records import Query
from core.kernel.users import create_user

FILTERS = {"account_type": "customer"}


def bench_create(site, user, rows, raw, raw_table, batch) -> tuple[float, float]:
    ours = base = 0.0
    for start in range(0, len(rows), batch):
        t0 = time.perf_counter()
        with site.engine.begin() as conn:
            conn.execute(raw_table.insert(), raw[start:start + batch])
        t1 = time.perf_counter()
        site.records.create_many("accounts", rows[start:start + batch], user)
        t2 = time.perf_counter()
        base, ours = base + t1 - t0, ours + t2 - t1
    return len(rows) / ours, len(rows) / base


def bench_list(site, user, repeat: int, offset: int) -> tuple[float, float]:
    table = site.tables.tables["accounts"]
    columns = site.registry.module("accounts").layouts["list"]["columns"]
    query = Query(filters=FILTERS, sort="name", limit=50, offset=offset, fields=columns)

    def ours():
        return site.records.list("accounts", user, query)

    def raw():
        stmt = (sa.select(table.c.id, *(table.c[c] for c in columns))
                .where(table.c.deleted.is_(False), table.c.account_type == "customer")
                .order_by(CaseFolded(table.c.name), table.c.id).limit(50).offset(offset))
        with site.engine.connect() as conn:
            return [dict(row) for row in conn.execute(stmt).mappings()]

    assert ours() == raw() and len(raw()) == 50, "the two sides must return the same page"
    times, _ = interleaved({"ours": ours, "raw": raw}, repeat)
    return median_ms(times["ours"]), median_ms(times["raw"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="accounts to create (100,000)")
    parser.add_argument("--batch", type=int, default=1_000, help="rows per transaction (1,000)")
    parser.add_argument("--repeat", type=int, default=200, help="list calls per side (200)")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        raw_table = twin_table(site.tables.tables["accounts"], "bench_raw_accounts")
        progress("creating schema")
        site.sync_schema()
        raw_table.create(site.engine)
        user = create_user(site, "bench", "bench-password", is_admin=True)
        progress(f"generating {args.rows:,} demo accounts")
        rows = demo_rows(args.rows, user.id, args.seed)
        raw = raw_records(site, rows, user.id)
        progress(f"create: {args.rows:,} rows each way, {args.batch:,} per transaction")
        ours_create, raw_create = bench_create(site, user, rows, raw, raw_table, args.batch)
        matching = site.records.count("accounts", user, Query(filters=FILTERS))
        offsets = (0, max(0, matching // 2 - 25))
        lists = []
        for offset in offsets:
            progress(f"list: {args.repeat} pages each way at offset {offset:,}")
            lists.append((offset, *bench_list(site, user, args.repeat, offset)))

    backend = backend_name(site)
    print(f"CRBM bench/records.py — {args.rows:,} accounts on {backend}, "
          f"{args.batch:,} rows per create_many / executemany")
    print(f"create  RecordService.create_many  {ours_create:>10,.0f} rows/s")
    print(f"create  raw Core executemany       {raw_create:>10,.0f} rows/s   "
          f"ratio {ours_create / raw_create:.2f} (aim >= 0.25)")
    for offset, ours_list, raw_list in lists:
        print(f"list    RecordService.list         {ours_list:>10.2f} ms (median of {args.repeat}, "
              f"50 of {matching:,} customers by name, offset {offset:,})")
        print(f"list    raw Core select            {raw_list:>10.2f} ms       "
              f"ratio {ours_list / raw_list:.2f} (aim <= 1.5)")


if __name__ == "__main__":
    main()
