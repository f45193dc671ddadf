"""Benchmark: the home dashboard (issue 25) — one GET / drawing 8 dashlets on a site with
demo-sized data — against the raw SQL it runs.

    .venv/bin/python bench/dashboards.py [--opportunities N] [--quick] [--database-url URL]

The site: N opportunities (10,000) over every sales stage, 12 months of close dates and the
lead sources, on N / 10 demo accounts; N / 10 tasks, leads and cases, N / 50 calls; the
bench's administrator's home dashboard holds the 8 standard dashlets of the other plugins
(upcoming activities, my pipeline by stage, pipeline by month, by lead source, top open
opportunities, my open tasks, my open cases, leads by status).

Measured, the sides taking turns:

- the page: GET / through the app in this process (Starlette's TestClient, signed in) —
  every SQL statement it runs counted (``before_cursor_execute``: the session's user, the
  dashboards row, each dashlet's), and the same count checked on every round (no N+1:
  the number does not move with the data);
- the baseline: the very statements that GET ran, with their parameters as sent, replayed
  directly on a DBAPI cursor of the same pool (each fetched whole) — what the database
  costs, without CRBM's Python around it.

Printed: statements per page, median ms of each side, the ratio page / raw, and the process
CPU ms per page (client and server both run here).
--quick: 1,000 opportunities, few rounds (seconds). SQLite in a temp dir unless
--database-url names an empty database (tables dropped after).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import time
from decimal import Decimal

import sqlalchemy as sa
from common import (  # bench/common.py, beside this file
    backend_name,
    bench_site,
    create_in_batches,
    demo_rows,
    progress,
    sign_in,
    site_arguments,
)
from starlette.testclient import TestClient

from core.kernel.users import create_user
from core.web.app import create_app
from plugins.dashboards import store

PASSWORD = "bench-password-123"
EIGHT = ["activities.upcoming", "opportunities.pipeline_by_stage",
         "opportunities.pipeline_by_month", "opportunities.pipeline_by_source",
         "opportunities.top_open", "activities.my_open_tasks", "cases.my_open",
         "leads.by_status"]
SOURCES = ["web_site", "cold_call", "partner", "email", "trade_show", None]


def build(site, n: int, rng: random.Random):
    admin = create_user(site, "bench-admin", PASSWORD, is_admin=True)
    progress(f"creating {max(n // 10, 10):,} accounts")
    accounts = create_in_batches(site, "accounts", demo_rows(max(n // 10, 10), admin.id, 1),
                                 admin)
    stages = [v for v, _ in site.registry.choices(
        site.registry.module("opportunities").fields["sales_stage"])]
    today = dt.date.today()
    progress(f"creating {n:,} opportunities")
    create_in_batches(site, "opportunities", [
        {"name": f"Deal {i:06d}", "account_id": accounts[i % len(accounts)],
         "sales_stage": stages[i % len(stages)], "lead_source": SOURCES[i % len(SOURCES)],
         "amount": Decimal(rng.choice((5, 8, 12, 20, 40, 120)) * 1000 + rng.randrange(20) * 250),
         "date_closed": today + dt.timedelta(days=rng.randint(-30, 380))} for i in range(n)],
        admin)
    m = max(n // 10, 10)
    progress(f"creating {m:,} tasks, leads and cases, {max(n // 50, 5):,} calls")
    create_in_batches(site, "tasks", [
        {"name": f"Task {i}", "status": ("not_started", "in_progress", "completed")[i % 3],
         "date_due": today + dt.timedelta(days=rng.randint(-10, 30))} for i in range(m)], admin)
    create_in_batches(site, "leads", [
        {"last_name": f"Lead {i}", "status": ("new", "assigned", "in_process", "dead")[i % 4]}
        for i in range(m)], admin)
    create_in_batches(site, "cases", [
        {"name": f"Case {i}", "account_id": accounts[i % len(accounts)],
         "status": ("new", "assigned", "pending", "closed")[i % 4]} for i in range(m)], admin)
    now = dt.datetime.now(dt.UTC)
    create_in_batches(site, "calls", [
        {"name": f"Call {i}", "status": "planned", "direction": "outbound",
         "date_start": now + dt.timedelta(hours=rng.randint(1, 24 * 10))}
        for i in range(max(n // 50, 5))], admin)
    if site.engine.dialect.name == "postgresql":
        with site.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    with site.engine.begin() as conn:
        tab = store.own(site, admin, store.STARTING, conn)
    store.change(site, admin, tab, lambda d: d.dashlets.__setitem__(slice(None), [
        {"id": f"d{i}", "type": name, "width": 1, "options": {}}
        for i, name in enumerate(EIGHT)]))
    return admin


class Recorder:
    """Every statement run on the engine while ``on``, with its parameters as sent."""

    def __init__(self, engine):
        self.on, self.seen = False, []
        sa.event.listen(engine, "before_cursor_execute", self.note)

    def note(self, conn, cursor, statement, parameters, context, executemany):
        if self.on:
            self.seen.append((statement, parameters, executemany))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    site_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.opportunities, args.rounds, args.warmup = 1_000, 5, 1
    rng = random.Random(args.seed)
    with bench_site(args.database_url) as site:
        site.sync_schema()
        build(site, args.opportunities, rng)
        recorder = Recorder(site.engine)
        with TestClient(create_app(site)) as client:
            sign_in(client, "bench-admin", PASSWORD)

            def page():
                recorder.seen = []
                recorder.on = True
                try:
                    reply = client.get("/")
                finally:
                    recorder.on = False
                reply.raise_for_status()
                if reply.text.count('class="dashlet ') != len(EIGHT):
                    sys.exit("the home page did not draw the 8 dashlets")
                return list(recorder.seen)

            for _ in range(args.warmup):
                page()
            ran = page()
            reads = [(s, p) for s, p, many in ran if not many and
                     s.lstrip()[:6].upper() not in ("INSERT", "UPDATE", "DELETE")]

            def raw():
                raw_conn = site.engine.raw_connection()
                try:
                    cursor = raw_conn.cursor()
                    for statement, parameters in reads:
                        cursor.execute(statement, parameters)
                        cursor.fetchall()
                    cursor.close()
                    raw_conn.rollback()
                finally:
                    raw_conn.close()

            wall = {"page": [], "raw": []}
            cpu = 0.0
            counts, extra = set(), set()
            progress(f"{args.rounds} turns of each side")
            for _ in range(args.rounds):
                t0, c0 = time.perf_counter(), time.process_time()
                seen = page()
                counts.add(len(seen))
                if len(seen) != len(ran):  # what else ran (the session's periodic touch...)
                    extra |= {" ".join(s.split())[:70] for s, _, _ in seen} - \
                        {" ".join(s.split())[:70] for s, _, _ in ran}
                wall["page"].append(time.perf_counter() - t0)
                cpu += time.process_time() - c0
                t0 = time.perf_counter()
                raw()
                wall["raw"].append(time.perf_counter() - t0)
        page_ms = statistics.median(wall["page"]) * 1000
        raw_ms = statistics.median(wall["raw"]) * 1000
        print(f"\nhome dashboard, 8 dashlets — {backend_name(site)}, "
              f"{args.opportunities:,} opportunities")
        print(f"  SQL statements per GET /: {len(ran)} "
              f"({len(reads)} reads replayed; the same count every round: "
              f"{'yes' if counts == {len(ran)} else f'no: {sorted(counts)}'})")
        if extra:
            print(f"  (rounds with other statements ran as well: {sorted(extra)})")
        print(f"  GET / (whole request, in-process): {page_ms:8.1f} ms median, "
              f"{cpu / args.rounds * 1000:.1f} ms CPU")
        print(f"  its statements replayed raw:       {raw_ms:8.1f} ms median")
        print(f"  ratio page / raw: {page_ms / raw_ms:.2f}")


if __name__ == "__main__":
    main()
