"""Benchmark: the detail page of an account with records in 10 related modules.

    PYTHONPATH=<a CRBM tree> .venv/bin/python bench/detail.py [--requests N] [--show-sql]

In-process (Starlette TestClient, signed in as an administrator, SQLite in a temp dir):
statements per GET (SQLAlchemy ``before_cursor_execute``) and how many of them write, then
the medians over N requests of the wall time, the process CPU and the handler's own CPU
(``time.thread_time`` around ``pages._run``, the thread that runs the view and renders).
Prints one JSON line. To compare two versions, run it with each tree on PYTHONPATH one after
the other on the same machine (issue 17: old = edceba1 in a ``git archive`` copy); the
figures are ratios between such runs, never absolute promises.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

from common import Statements, bench_site, sign_in  # bench/common.py, beside this file
from starlette.testclient import TestClient

from core.kernel.users import create_user
from core.web import pages
from core.web.app import create_app

PASSWORD = "correct horse battery"


def account_with_related(site, admin) -> str:
    r = site.records
    aid = r.create("accounts", {"name": "Acme"}, admin)["id"]
    r.create("accounts", {"name": "Acme Sub", "member_of_id": aid}, admin)
    for i in range(3):
        r.create("contacts", {"last_name": f"Doe{i}", "account_id": aid}, admin)
    r.create("emails", {"name": "Hello", "account_id": aid}, admin)
    r.create("quotes", {"name": "Q1", "stage": "draft", "account_id": aid}, admin)
    invoice = r.create("invoices", {"name": "I1", "account_id": aid}, admin)
    r.create("payments", {"account_id": aid, "amount": "10"}, admin)
    r.create("credit_notes", {"invoice_id": invoice["id"], "account_id": aid}, admin)
    r.create("purchase_orders", {"name": "P1", "status": "draft", "supplier_id": aid}, admin)
    r.create("bills", {"name": "B1", "supplier_id": aid}, admin)
    r.create("bill_payments", {"supplier_id": aid, "amount": "5"}, admin)
    r.create("sales_orders", {"name": "S1", "status": "ordered", "account_id": aid}, admin)
    return aid


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--show-sql", action="store_true")
    args = parser.parse_args()
    with bench_site(None) as site:
        site.sync_schema()
        admin = create_user(site, "admin", PASSWORD, is_admin=True)
        aid = account_with_related(site, admin)
        counted, total, writes, wall, cpu, handler_cpu = measure(site, aid, args.requests)
    if args.show_sql:
        for s in counted:
            print(" ".join(s.split())[:200], file=sys.stderr)
    ms = lambda values: round(statistics.median(values) * 1000, 2)
    print(json.dumps({
        "statements": total, "writes": writes,
        "wall_ms": ms(wall), "process_cpu_ms": ms(cpu), "handler_cpu_ms": ms(handler_cpu)}))


def measure(site, aid: str, requests: int):
    """The statements of one GET of the detail page, then the wall time, process CPU and
    handler CPU of ``requests`` more (after 20 to warm up)."""
    handler_cpu: list[float] = []
    run = pages._run

    def timed(*a, **k):
        start = time.thread_time()
        try:
            return run(*a, **k)
        finally:
            handler_cpu.append(time.thread_time() - start)

    pages._run = timed
    statements = Statements(site.engine, keep=True)
    with TestClient(create_app(site)) as client:
        sign_in(client, "admin", PASSWORD)
        url = f"/m/accounts/{aid}"
        for _ in range(20):  # warm: templates, grants, statement caches
            assert client.get(url).status_code == 200
        statements.reset()
        client.get(url)
        counted = statements.texts
        total, writes = statements.reset()
        handler_cpu.clear()
        wall, cpu = [], []
        for _ in range(requests):
            t0, c0 = time.perf_counter(), time.process_time()
            client.get(url)
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
    return counted, total, writes, wall, cpu, handler_cpu


if __name__ == "__main__":
    main()
