"""Benchmark: global full-text search (core.apps.search.fulltext.search) over a large
indexed module, for a restricted user, against a bare FTS query on the same index.

    PYTHONPATH=<a CRBM tree> .venv/bin/python bench/search.py --global [--rows N]
        [--requests R] [--database-url URL]        (or bench/fulltext.py directly)

N notes (1,000,000) are written with raw executemany inserts (not through the record
service), then indexed by the search app's backfill (``fulltext.backfill``: what a module
that just opted in gets after ``crbm db sync``); the time it takes is printed. Words come
from a 20,000-word vocabulary drawn on a Zipf-like curve, so the queries range from a word
in a third of the notes to a word in a few dozen. The notes belong to 10 users; "rita" (an
owner-level role on notes) sees a tenth of them.

Each query, timed R times interleaved (p50 and p95):
- ``search`` as rita, as the header box asks (what /search.json answers): the best 8 hits
  with their snippets and the per-module counts capped at 100, all through her access
  predicate; the same as an administrator (no predicate); and as the /search page asks
  (20 hits, counts capped at 1,000);
- bare: the engine's own top 20 by rank from the index alone (no join, no access, no
  count, no snippet). Ratio = rita / bare.
The plan of rita's query is printed (EXPLAIN): it must read the FTS index.
SQLite in a temp dir unless --database-url names an empty PostgreSQL/MariaDB database
(``--db postgresql`` is postgresql+psycopg://postgres@127.0.0.1/crbm_bench_fts, made and
dropped here).
"""
from __future__ import annotations

import argparse
import itertools
import random
import statistics
import sys
import time
import uuid

import sqlalchemy as sa
from common import (  # bench/common.py, beside this file
    backend_name,
    bench_site,
    interleaved,
    progress,
)

from core.apps.admin import access_admin as aa
from core.apps.search import fulltext, web
from core.kernel.fields import search_key
from core.kernel.records import now
from core.kernel.users import create_user

BATCH = 10_000
OWNER_LEVELS = {"view": "owner", "list": "owner", "edit": "owner", "delete": "owner",
                "export": "none", "report": "owner"}
SYLLABLES = ("ka", "lo", "mi", "re", "su", "ta", "vo", "ne", "pi", "da", "ru", "se", "go",
             "ba", "li", "to", "ma", "ve", "ko", "ni")


def vocabulary(rng: random.Random, size: int = 20_000) -> list[str]:
    words = set()
    while len(words) < size:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(words)


def build(site, args, users: list) -> list[str]:
    rng = random.Random(args.seed)
    vocab = vocabulary(rng)
    rng.shuffle(vocab)
    weights = list(itertools.accumulate(1 / (i + 1) for i in range(len(vocab))))  # Zipf
    module = site.registry.module("notes")
    table = site.records.table(module)
    columns = [c.name for c in table.columns]
    stamp = now()
    progress(f"writing {args.rows:,} notes (raw executemany inserts)")
    started = time.perf_counter()
    for start in range(0, args.rows, BATCH):
        rows = []
        for i in range(start, min(args.rows, start + BATCH)):
            title = " ".join(rng.choices(vocab, cum_weights=weights, k=4)).capitalize()
            body = " ".join(rng.choices(vocab, cum_weights=weights, k=rng.randint(15, 60))) + "."
            owner = users[i % len(users)]
            record = dict.fromkeys(columns)
            record.update(id=str(uuid.uuid4()), name=title, description=body,
                          assigned_user_id=owner, created_at=stamp, created_by=owner,
                          modified_at=stamp, modified_by=owner, deleted=False, version=1)
            record.update({f"_sk_{n}": search_key(record[n]) for n in module.search_fields})
            rows.append(record)
        with site.engine.begin() as conn:
            conn.execute(table.insert(), rows)
    progress(f"  {time.perf_counter() - started:.0f} s")
    return vocab


def bare(site, module, text):
    """The engine's own top 20 by rank, from the index alone."""
    terms = fulltext.terms_of(text)
    fts, _ = fulltext._names(module)
    dialect = site.engine.dialect.name
    if dialect == "sqlite":
        q = " ".join(f'"{w}"' for w in terms[:-1]) + f' "{terms[-1]}"*'
        sql = sa.text(f'SELECT rowid FROM "{fts}" WHERE "{fts}" MATCH :q '
                      f"ORDER BY bm25(\"{fts}\", 10.0, 1.0) LIMIT 20")
    elif dialect == "postgresql":
        q = " & ".join(f"'{w}'" for w in terms) + ":*"
        sql = sa.text(f"SELECT record_id FROM \"{fts}\" WHERE doc @@ to_tsquery('simple', :q) "
                      f"ORDER BY ts_rank(doc, to_tsquery('simple', :q)) DESC LIMIT 20")
    else:
        q = " ".join(f'+"{w}"' for w in terms[:-1]) + f" +{terms[-1]}*"
        sql = sa.text(f"SELECT record_id FROM `{fts}` WHERE MATCH (title, body) AGAINST "
                      f"(:q IN BOOLEAN MODE) ORDER BY MATCH (title, body) AGAINST "
                      f"(:q IN BOOLEAN MODE) DESC LIMIT 20")

    def run():
        with site.engine.connect() as conn:
            return conn.execute(sql, {"q": q}).all()
    return run


def explain(site, user, module, text) -> str:
    terms = fulltext.terms_of(text)
    with site.engine.connect() as conn, fulltext._index_first(conn):  # as search() does
        stmt = fulltext.ranked_select(module, *fulltext._statement(site, conn, user, module,
                                                                    terms), 20,
                                      fulltext.COUNT_CAP + 1)
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        prefix = {"sqlite": "EXPLAIN QUERY PLAN ", "postgresql": "EXPLAIN "}.get(
            conn.dialect.name, "EXPLAIN ")
        rows = conn.exec_driver_sql(prefix + sql).all()
    return "\n".join("    " + " | ".join(str(c) for c in r) for r in rows)


def p(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="notes (1,000,000)")
    parser.add_argument("--requests", type=int, default=40, help="timed runs per query (40)")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--database-url", help="an empty PostgreSQL/MariaDB database")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args([a for a in sys.argv[1:] if a != "--global"])
    url = args.database_url
    made = None
    if args.db == "postgresql" and not url:
        made = "postgresql+psycopg://postgres@127.0.0.1/crbm_bench_fts"
        admin_engine = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1/postgres",
                                        isolation_level="AUTOCOMMIT")
        with admin_engine.connect() as conn:
            conn.exec_driver_sql("DROP DATABASE IF EXISTS crbm_bench_fts")
            conn.exec_driver_sql("CREATE DATABASE crbm_bench_fts")
        url = made
    try:
        run(args, url)
    finally:
        if made:
            with admin_engine.connect() as conn:
                conn.exec_driver_sql("DROP DATABASE IF EXISTS crbm_bench_fts WITH (FORCE)")
            admin_engine.dispose()


def run(args, url) -> None:
    with bench_site(url) as site:
        progress("creating schema")
        site.sync_schema()
        admin = create_user(site, "bench-admin", "bench-password-123", is_admin=True)
        rita = create_user(site, "rita", "bench-password-123")
        others = [create_user(site, f"user{i}", "bench-password-123").id for i in range(9)]
        role = aa.create_role(site, "Own notes")
        aa.set_role_rules(site, role, {"notes": ("enabled", OWNER_LEVELS)})
        aa.set_role_users(site, role, add=[rita.id])
        vocab = build(site, args, [rita.id, *others])
        progress("indexing (fulltext.backfill)")
        started = time.perf_counter()
        indexed = fulltext.backfill(site, batch=5_000)
        took = time.perf_counter() - started
        if site.engine.dialect.name == "postgresql":
            with site.engine.begin() as conn:
                conn.exec_driver_sql("ANALYZE")  # as autovacuum soon would
        module = site.registry.module("notes")
        queries = {"common word": vocab[0], "medium word": vocab[40],
                   "rare word": vocab[3000], "two words": f"{vocab[1]} {vocab[7]}",
                   "prefix (type-ahead)": vocab[2][:3], "three words": " ".join(vocab[3:6]),
                   "miss": "zzzqqq"}
        calls = {}
        for label, text in queries.items():
            calls[f"{label}|rita"] = (lambda t=text: fulltext.search(
                site, rita, t, limit=web.TYPE_AHEAD, cap=web.TYPE_AHEAD_CAP))
            calls[f"{label}|admin"] = (lambda t=text: fulltext.search(
                site, admin, t, limit=web.TYPE_AHEAD, cap=web.TYPE_AHEAD_CAP))
            calls[f"{label}|page"] = (lambda t=text: fulltext.search(site, rita, t, limit=20))
            calls[f"{label}|bare"] = bare(site, module, text)
        progress(f"measuring: {args.requests} runs per query, interleaved")
        times, answers = interleaved(calls, args.requests, args.warmup)
        plan = explain(site, rita, module, queries["two words"])
        backend = backend_name(site)

    print(f"CRBM bench/search.py --global — full-text search, {args.rows:,} notes, {backend}; "
          f"indexed by the backfill in {took:.1f} s ({indexed / took:,.0f} rows/s)")
    print("type-ahead: the header box (/search.json: 8 hits, counts to \"100+\"); page: the "
          "/search page's ranking (20 hits, counts to \"1,000+\"), both as rita")
    print(f"{'query':<22}{'rita p50':>10}{'p95':>8}{'admin p50':>11}{'p95':>8}"
          f"{'page p50':>10}{'p95':>8}{'bare p50':>10}{'p95':>8}{'ratio':>7}  rita's hits (page count)")
    worst = 0.0
    for label in queries:
        r, a, g, b = (times[f"{label}|{who}"] for who in ("rita", "admin", "page", "bare"))
        worst = max(worst, p(r, .95))
        mine = answers[f"{label}|page"].counts.get("notes", 0)
        print(f"{label:<22}{p(r, .5):10.1f}{p(r, .95):8.1f}{p(a, .5):11.1f}{p(a, .95):8.1f}"
              f"{p(g, .5):10.1f}{p(g, .95):8.1f}"
              f"{p(b, .5):10.1f}{p(b, .95):8.1f}{statistics.median(r) / max(statistics.median(b), 1e-6):7.1f}"
              f"  {min(mine, fulltext.COUNT_CAP):,}{'+' if mine > fulltext.COUNT_CAP else ''}")
    print(f"worst type-ahead p95 for rita: {worst:.1f} ms (aim < 100 ms)")
    print("plan of rita's two-word query:")
    print(plan)


if __name__ == "__main__":
    main()
