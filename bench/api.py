"""Benchmark: the REST API against a bare Starlette endpoint, in the same process.

    .venv/bin/python bench/api.py [--rows N] [--requests R] [--database-url URL]

list:   GET /api/v1/accounts?limit=50 from ``core.web.app.create_app(site)`` with a real bearer
        token (an administrator, and a non-administrator whose role gives All on accounts),
        vs a bare Starlette route (sync, thread pool, like ours) running the same SELECT of
        the same columns (not deleted, the module's default order + id, 50 rows) and
        JSON-encoding the rows. Both must return the same 50 ids in the same order.
        Ours reads 51 rows (the 51st says whether there is a next page) and gives the
        next cursor; it counts only when asked (count=1), which the "list + count" row
        measures.
create: POST /api/v1/accounts (one account a request) vs a bare route that parses the JSON
        and INSERTs the row.
One httpx.AsyncClient over ASGITransport per side, sequential requests, a warm-up first;
the sides of a comparison take turns (--rounds of them), so that a machine whose load
changes during the run weighs on each alike. Besides the rates: the process CPU time per
request (client and server, both in this process), which load changes far less.
SQLite in a temp dir unless --database-url names an empty PostgreSQL/MariaDB database (its
tables are dropped afterwards).
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import sqlalchemy as sa
from records import demo_rows, progress, raw_records  # bench/records.py, beside this file
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from core.api.schemas import shapes
from core.apps.admin import access_admin
from core.apps.oauth import oauth
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from core.web.app import create_app

BATCH = 5_000
LIMIT = 50


def _plain(value):
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return str(value)


def bare_app(site: Site, columns: list[str], order: list) -> Starlette:
    """The same rows with nothing else: what a list or an insert costs at the very least."""
    accounts = site.tables.tables["accounts"]
    select = sa.select(*(accounts.c[c] for c in columns)) \
        .where(accounts.c.deleted.is_(False)).order_by(*order).limit(LIMIT)

    def listing(request: Request):  # sync, so Starlette runs it in the thread pool too
        with site.engine.connect() as conn:
            rows = [dict(row) for row in conn.execute(select).mappings()]
        body = json.dumps({"data": rows}, default=_plain, separators=(",", ":"))
        return Response(body, media_type="application/json")

    async def create(request: Request):
        values = json.loads(await request.body())

        def insert():
            stamp = dt.datetime.now(dt.UTC)
            row = {**values, "id": str(uuid.uuid4()), "created_at": stamp,
                   "modified_at": stamp, "deleted": False, "version": 1}
            with site.engine.begin() as conn:
                conn.execute(accounts.insert().values(**row))
            return row

        from starlette.concurrency import run_in_threadpool
        row = await run_in_threadpool(insert)
        return JSONResponse(json.loads(json.dumps(row, default=_plain)), status_code=201)

    return Starlette(routes=[Route("/accounts", listing),
                             Route("/accounts", create, methods=["POST"])])


async def measure(sides: dict[str, tuple], requests: int, warmup: int, rounds: int) -> dict:
    """label -> (requests/s, p50 ms, p95 ms, CPU ms per request, the last answer's JSON);
    ``sides``: label -> (app, method, path, headers, body or body(i)). Sequential requests,
    the sides taking turns."""
    clients = {label: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                        base_url="https://bench")
               for label, (app, *_) in sides.items()}
    latencies: dict[str, list[float]] = {label: [] for label in sides}
    elapsed, cpu, last = dict.fromkeys(sides, 0.0), dict.fromkeys(sides, 0.0), {}

    async def once(label: str, i: int):
        _, method, path, headers, body = sides[label]
        payload = body(i) if callable(body) else body
        reply = await clients[label].request(method, path, headers=headers, json=payload)
        if reply.status_code not in (200, 201):
            sys.exit(f"{method} {path} answered {reply.status_code}: {reply.text[:300]}")
        return reply

    try:
        for label in sides:
            for i in range(warmup):
                await once(label, -i - 1)
        done = 0
        for round_ in range(rounds):
            share = requests // rounds + (round_ < requests % rounds)
            for label in sides:
                start, started = time.perf_counter(), time.process_time()
                for i in range(done, done + share):
                    t0 = time.perf_counter()
                    last[label] = await once(label, i)
                    latencies[label].append(time.perf_counter() - t0)
                elapsed[label] += time.perf_counter() - start
                cpu[label] += time.process_time() - started
            done += share
    finally:
        for client in clients.values():
            await client.aclose()
    out = {}
    for label, times in latencies.items():
        cuts = statistics.quantiles(times, n=100)
        out[label] = (len(times) / elapsed[label], cuts[49] * 1000, cuts[94] * 1000,
                      cpu[label] / len(times) * 1000, last[label].json())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="accounts (100,000)")
    parser.add_argument("--requests", type=int, default=400, help="measured requests (400)")
    parser.add_argument("--warmup", type=int, default=40, help="warm-up requests (40)")
    parser.add_argument("--database-url", "--url", dest="url",
                        help="an empty PostgreSQL/MariaDB database (default: SQLite)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=10, help="turns per side (10)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crbm-bench-") as tmp:
        folder = create_site(Path(tmp) / "site", args.url)
        site = Site(folder)
        if sa.inspect(site.engine).get_table_names():
            sys.exit(f"{site.database_url} is not empty: give the benchmark a database of its own")
        try:
            results = run(site, args)
        finally:
            if args.url:
                site.tables.drop_all(site.engine, checkfirst=True)
            site.close()
    dialect = site.engine.dialect
    backend = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
    print(f"CRBM bench/api.py — {args.rows:,} accounts, {backend}, {args.requests} sequential "
          f"requests after {args.warmup} warm-up, httpx over ASGI")
    print(f"{'':34} {'req/s':>7} {'p50 ms':>7} {'p95 ms':>7} {'ours/bare':>9} "
          f"{'cpu ms':>7} {'bare/ours cpu':>13}")
    for group in (("list", "bare list"), ("create", "bare create")):
        bare_rate, bare_cpu = results[group[1]][0], results[group[1]][3]
        for label, (rate, p50, p95, cpu) in results.items():
            if label.split(" (")[0] in group or label.startswith(group[0] + " ("):
                ours = not label.startswith("bare")
                ratio = f"{rate / bare_rate:9.2f}" if ours else " " * 9
                cpu_ratio = f"{bare_cpu / cpu:13.2f}" if ours else ""
                print(f"{label:34} {rate:7.0f} {p50:7.2f} {p95:7.2f} {ratio} {cpu:7.2f} {cpu_ratio}")
    print("aim: list ratio >= 0.7")


def run(site: Site, args) -> dict:
    progress("creating schema")
    site.sync_schema()
    admin = create_user(site, "bench-admin", "bench-password-123", is_admin=True)
    clerk = create_user(site, "bench-clerk", "bench-password-123")
    role = access_admin.create_role(site, "Accounts, all of them")
    access_admin.set_role_rules(site, role, {"accounts": ("enabled", {
        a: "all" for a in ("view", "list", "edit", "delete", "export", "report")})})
    access_admin.set_role_users(site, role, add=[clerk.id])
    for key, value in (("api_rate_limit_user", 10**9), ("api_rate_limit_client", 10**9),
                       ("api_allow_http", True)):
        site.set_setting(key, value)
    progress(f"inserting {args.rows:,} accounts, {BATCH:,} per INSERT")
    rows = raw_records(site, demo_rows(args.rows, admin.id, args.seed), admin.id)
    accounts = site.tables.tables["accounts"]
    with site.engine.begin() as conn:
        for start in range(0, len(rows), BATCH):
            conn.execute(accounts.insert(), rows[start:start + BATCH])

    module = site.registry.module("accounts")
    shape = shapes(site.registry, module)
    stored = [n for n in shape.readable if module.fields[n].stored]
    path = "/api/v1/accounts?limit=50"
    if len(stored) != len(shape.readable):  # related values: a join the bare app has not
        path += "&fields=" + ",".join(stored)
    order = site.records._order(module, accounts, None)
    ours, bare = create_app(site), bare_app(site, stored, order)
    tokens = {who: {"Authorization": "Bearer " + oauth.issue_access_token(site, u.id)
                    ["access_token"]} for who, u in (("admin", admin), ("clerk", clerk))}
    n, w = args.requests, args.warmup

    def account(i):
        return {"name": f"Bench account {i}", "industry": "banking", "employees": 12}

    loop = asyncio.new_event_loop()
    try:
        progress(f"list: ours (admin, non-admin with All on accounts, admin count=1) and bare, "
                 f"{args.rounds} turns each")
        lists = loop.run_until_complete(measure({
            "list (admin)": (ours, "GET", path, tokens["admin"], None),
            "list (non-admin)": (ours, "GET", path, tokens["clerk"], None),
            "list (admin, count=1)": (ours, "GET", path + "&count=1", tokens["admin"], None),
            "bare list": (bare, "GET", "/accounts", {}, None)}, n, w, args.rounds))
        ours_ids = [r["id"] for r in lists["list (admin)"][4]["data"]]
        if [r["id"] for r in lists["bare list"][4]["data"]] != ours_ids or len(ours_ids) != LIMIT:
            sys.exit("the bare list did not return the same 50 accounts in the same order")
        progress("create: ours (admin) and bare")
        creates = loop.run_until_complete(measure({
            "create (admin)": (ours, "POST", "/api/v1/accounts", tokens["admin"], account),
            "bare create": (bare, "POST", "/accounts", {}, account)}, n, w, args.rounds))
    finally:
        loop.close()
    results = {label: figures[:4] for label, figures in {**lists, **creates}.items()}
    return results


if __name__ == "__main__":
    main()
