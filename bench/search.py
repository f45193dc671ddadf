"""Benchmark: quick search on a large Accounts module — a hit, a broad hit, two words and a
miss — against the plain list page (no search), in the same run, on the same data.

    .venv/bin/python bench/search.py [--rows N] [--requests R] [--database-url URL]

N demo accounts (100,000) are made with the record service's batch path. An administrator
asks for the first list page (20 rows sorted by name, with the capped "1,000+" count, as the
web list does: ``RecordService.page``) for each search, R times, interleaved; the median of
each and its ratio to the plain list page are printed. A search "finds from an index" when
its cost stays near the plain page's as N grows (the aim: flat from 10k to 1M, well under
20 ms). Runs against the code on PYTHONPATH: point it at an older checkout to compare.

SQLite in a temp dir unless --database-url names an empty database (tables dropped after).

``--global [--rows N] [--db postgresql]``: the global full-text search instead
(bench/fulltext.py: 1,000,000 indexed notes, a restricted user vs a bare FTS query).
"""
from __future__ import annotations

import argparse
import random
import sys

from common import (  # bench/common.py, beside this file
    BATCH,
    backend_name,
    bench_site,
    create_in_batches,
    demo_rows,
    interleaved,
    median_ms,
    progress,
    site_arguments,
)

from core.kernel.records import Query
from core.kernel.site import Site
from core.kernel.users import create_user


def searches(site: Site, user, rng: random.Random) -> dict[str, str | None]:
    """The texts searched: taken from the data, so a hit is a hit at every size."""
    names = [r["name"] for r in site.records.list("accounts", user, Query(
        fields=["name"], limit=200, sort="-created_at"))]
    two = next(n for n in names if len(n.split()) > 1 and len(n.split()[1]) > 2).split()
    return {"list page (no search)": None,
            "hit (4 letters)": rng.choice(names)[:4],
            "broad hit (1 letter)": "b",
            "two words": f"{two[1][:3]} {two[0][:3]}",
            "miss": "zqxj"}


def measure(site: Site, user, texts: dict, requests: int, warmup: int) -> dict:
    def first_page(text):
        return lambda: site.records.page("accounts", user, Query(
            search=text, limit=20, fields=["name", "email1", "phone_office"]), cap=1000)

    times, pages = interleaved({label: first_page(text) for label, text in texts.items()},
                               requests, warmup)
    return {label: (median_ms(t), (len(pages[label][0]), pages[label][1]))
            for label, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="accounts (100,000)")
    parser.add_argument("--requests", type=int, default=100, help="measured pages per search (100)")
    parser.add_argument("--warmup", type=int, default=10, help="warm-up pages per search (10)")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        progress("creating schema")
        site.sync_schema()
        admin = create_user(site, "bench-admin", "bench-password-123", is_admin=True)
        progress(f"creating {args.rows:,} accounts, {BATCH:,} per batch")
        create_in_batches(site, "accounts", demo_rows(args.rows, admin.id, args.seed), admin)
        if site.engine.dialect.name == "postgresql":
            with site.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE accounts")  # as autovacuum soon would
        texts = searches(site, admin, random.Random(args.seed))
        progress(f"measuring: {args.requests} pages per search, interleaved")
        results = measure(site, admin, texts, args.requests, args.warmup)

    backend = backend_name(site)
    print(f"CRBM bench/search.py — Accounts quick search, {args.rows:,} accounts, {backend}, "
          f"median of {args.requests} first pages each")
    base = results["list page (no search)"][0]
    for label, (ms, (shown, total)) in results.items():
        text = texts[label]
        print(f"{label:<22} {text or '':<10} {ms:8.2f} ms  ratio {ms / base:6.2f}  "
              f"({shown} rows of {total if total <= 1000 else '1,000+'})")


if __name__ == "__main__":
    if "--global" in sys.argv:  # the global full-text search: bench/fulltext.py
        import fulltext
        fulltext.main()
    else:
        main()
