"""Benchmark: what the everyday requests cost as a site grows from 10k to 1M accounts.

    .venv/bin/python bench/scale.py [--sizes 10000,100000,1000000] [--quick] [--repeat R]
                                    [--writers W] [--creates C] [--database-url URL]

One site grows through the sizes (sorted): N demo accounts and as many contacts (one per
account, its account's address), made with ``RecordService.create_many`` in batches of
5,000, the way imports and demo data write; the build rate is printed, it is what a
million rows costs. Before the first size, one account gets related records in the 10
modules its detail page lists (contacts, emails, quotes, sales orders, invoices, payments,
credit notes, purchase orders, bills, bill payments) and a member account.

At each size every request is measured three ways, interleaved, R times (30; p50 and p95):
- web: the page from ``core.web.app.create_app(site)`` in-process (Starlette's TestClient,
  signed in as an administrator), with the SQL statements it runs (SQLAlchemy's
  ``before_cursor_execute`` on the site's engine: the session check included), how many of
  them write, and the process CPU per request (the TestClient's own share included);
- service: the same data through ``site.records`` (``page`` with the list's Query and the
  capped "1,000+" count; for the detail ``get`` and one ``related`` per subpanel);
- raw: the same SELECT written in SQLAlchemy Core on the same engine — the list's columns,
  the assigned user's name, not deleted, the same order and capped count in one
  statement; for the detail the record and each subpanel's rows (no access predicate, no
  labels: what the page needs at least). Ratios are web/raw and service/raw.

The requests: list page 1; page 500 by OFFSET (the web UI's paging; ``keyset`` is the
service's ``Query.after`` — the API's cursors — for the same page against the same
"after this name and id" condition in Core, and the web UI's Next link there — its
``after`` cursor, core/web/paging.py); a filter + sort (customers by
city); quick search that hits (a company name's first word) and one that finds nothing;
the detail of the account with related records. Then W (4) threads create C (50) accounts
each with ``site.records.create`` (one account a call) against W threads inserting the same
rows with Core into a twin table: p50/p95 and how many failed with "database is locked".
At the end: the cost of each request at the largest size against the smallest (p50, and
the web page's CPU, steadier on a busy machine), and the worker's RSS (VmRSS, anonymous
and file-backed — SQLite's memory-mapped database — and VmHWM, its peak).

--quick: 2,000 and 10,000 accounts, 15 repeats — a minute or so on a laptop.
SQLite in a temp dir unless --database-url names an empty PostgreSQL/MariaDB database (its
tables are dropped afterwards).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from common import (  # bench/common.py, beside this file
    BATCH,
    ROW_LINK,
    Statements,
    backend_name,
    bench_site,
    progress,
    raw_records,
    sign_in,
    site_arguments,
    twin_table,
)
from faker import Faker
from starlette.testclient import TestClient

from core.api.listing import encode_cursor  # the list's Next link, as the page writes it
from core.api.schemas import shapes
from core.kernel.database import CaseFolded  # lists sort names regardless of case
from core.kernel.records import Query
from core.kernel.site import Site
from core.kernel.users import create_user
from core.web.app import create_app
from plugins.accounts.plugin import account_row, build_pools
from plugins.contacts.plugin import contact_row

USERNAME, PASSWORD = "bench", "bench-password-123"
SIZE = 20  # the list's default page size
CAP = 1_000  # core.web.views.COUNT_CAP: past it the list says "1,000+"
DEEP_PAGE = 500
MISS = "zqxwv"  # no demo name, email or phone starts so


def rss() -> str:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines()
                  if ":" in line)
    mb = lambda key: int(status[key].split()[0]) / 1024  # kB
    # file-backed pages are SQLite's memory-mapped database (PRAGMA mmap_size), shared
    return f"RSS {mb('VmRSS'):.0f} MB (anon {mb('RssAnon'):.0f}, file {mb('RssFile'):.0f}), " \
        f"peak {mb('VmHWM'):.0f} MB"


# -- the site ---------------------------------------------------------------------------------

@dataclass
class Bench:
    site: Site
    user: object
    rng: random.Random
    pools: dict
    descriptions: list[str]
    accounts: int = 0  # made so far (the build's and the creates')
    built: int = 0  # rows made by the build's create_many (accounts and contacts)
    deep: int = 0  # the deep page's number: 500, or the last page of a small site
    build_seconds: float = 0.0
    term: str = ""  # quick search that hits
    detail_id: str = ""


def new_bench(site: Site, seed: int) -> Bench:
    """The bench user (an administrator) and the seeded generators every build draws from."""
    user = create_user(site, USERNAME, PASSWORD, is_admin=True, must_change_password=False)
    rng = random.Random(seed)
    fake = Faker()
    fake.seed_instance(seed)
    return Bench(site, user, rng, build_pools(rng, scale=1000),
                 [fake.catch_phrase() + "." for _ in range(200)])


def build_to(bench: Bench, size: int) -> None:
    """Accounts (and one contact each) up to ``size``, 5,000 per create_many."""
    site, user = bench.site, bench.user
    fields = ["id", "website", "phone_office", "billing_address_street", "billing_address_city",
              "billing_address_state", "billing_address_postal_code", "billing_address_country"]
    while bench.accounts < size:
        count = min(BATCH, size - bench.accounts)
        rows = [account_row(bench.rng, bench.pools, bench.descriptions, user.id)
                for _ in range(count)]
        t0 = time.perf_counter()
        ids = site.records.create_many("accounts", rows, user)
        contacts = [contact_row(bench.rng, bench.pools,
                                {"id": i, **{k: row.get(k) for k in fields if k != "id"}}, user.id)
                    for i, row in zip(ids, rows, strict=True)]
        site.records.create_many("contacts", contacts, user)
        bench.build_seconds += time.perf_counter() - t0
        if not bench.term:
            bench.term = rows[len(rows) // 2]["name"].split()[0]
        bench.accounts += count
        bench.built += 2 * count
        if bench.built % 100_000 == 0 or bench.accounts >= size:
            progress(f"  {bench.accounts:,} accounts + contacts "
                     f"({bench.built / bench.build_seconds:,.0f} rows/s)")


def analyze(site) -> None:
    """Statistics, as autovacuum (PostgreSQL) or InnoDB's persistent statistics (MariaDB)
    would have them for a site that grew to this size; right after a bulk load they lag,
    and PostgreSQL then plans "customers by city" as a bitmap scan and a sort of every
    customer (66 ms at 100k instead of 0.2 ms). SQLite keeps none: nothing to do."""
    dialect = site.engine.dialect.name
    if dialect == "sqlite":
        return
    with site.engine.begin() as conn:
        for table in ("accounts", "contacts"):
            conn.exec_driver_sql(f"ANALYZE {'TABLE ' if dialect != 'postgresql' else ''}{table}")


def related_records(bench: Bench) -> str:
    """An account with a few records in each module its detail page lists."""
    site, user = bench.site, bench.user
    account = site.records.create("accounts", account_row(
        bench.rng, bench.pools, bench.descriptions, user.id), user)
    aid, today = account["id"], dt.date.today()
    lines = [{"name": None, "lines": [{"kind": "service", "name": "Consulting (hours)",
                                       "quantity": 2, "unit_price": Decimal("120.00")}]}]
    for i in range(3):
        site.records.create("contacts", contact_row(bench.rng, bench.pools, account, user.id), user)
        site.records.create("accounts", {**account_row(bench.rng, bench.pools, bench.descriptions,
                                                       user.id), "member_of_id": aid}, user)
        site.records.create("emails", {"name": f"Follow-up {i}", "account_id": aid}, user)
        site.records.create("quotes", {"name": f"Quote {i}", "account_id": aid,
                                       "line_items": lines}, user)
        site.records.create("sales_orders", {"name": f"Order {i}", "account_id": aid,
                                             "line_items": lines}, user)
        invoice = site.records.create("invoices", {"name": f"Invoice {i}", "account_id": aid,
                                                   "invoice_date": today, "line_items": lines}, user)
        site.records.create("payments", {"account_id": aid, "amount": Decimal("10.00"),
                                         "payment_method": "check"}, user)
        site.records.create("credit_notes", {"name": f"Credit {i}", "account_id": aid,
                                             "invoice_id": invoice["id"], "line_items": lines}, user)
        site.records.create("purchase_orders", {"name": f"PO {i}", "supplier_id": aid,
                                                "line_items": lines}, user)
        site.records.create("bills", {"name": f"Bill {i}", "supplier_id": aid,
                                      "line_items": lines}, user)
        site.records.create("bill_payments", {"supplier_id": aid, "amount": Decimal("10.00"),
                                              "payment_method": "check"}, user)
    bench.accounts += 4
    return aid


# -- the requests -----------------------------------------------------------------------------

@dataclass
class Request:
    """One request measured three ways; a side left None is not measured (printed as -)."""
    name: str
    web: str | None  # the path
    service: Callable[[], list] | None  # ids (or anything comparable with raw)
    raw: Callable[[], list] | None
    same: bool = True  # service and raw must return the same ids in order


def list_columns(module) -> list[str]:
    """The list layout's columns, composites expanded (core.web.views._list_columns)."""
    return [f.name for name in module.list_columns() for f in module.expand(name)
            if f.stored or f.type.derived][:12]


def requests_for(bench: Bench) -> list[Request]:
    site, user = bench.site, bench.user
    module = site.registry.module("accounts")
    accounts = site.tables.tables["accounts"]
    users = site.tables.tables["crbm_users"].alias("lbl_assigned_user_id")
    columns = list_columns(module)
    searched = [accounts.c[n] for n in module.search_fields]
    by_name = [CaseFolded(accounts.c.name), accounts.c.id]
    by_city = [CaseFolded(accounts.c.billing_address_city), accounts.c.id]
    total = site.records.count("accounts", user)
    deep = bench.deep = min(DEEP_PAGE, max(1, (total - 1) // SIZE + 1))  # or the last page
    offset = (deep - 1) * SIZE

    def raw_page(where=(), order=by_name, offset=0):
        counting = sa.select(accounts.c.id).where(accounts.c.deleted.is_(False), *where) \
            .limit(CAP + 1).subquery()
        stmt = (sa.select(accounts.c.id, *(accounts.c[c] for c in columns),
                          sa.func.coalesce(users.c.display_name, users.c.username)
                          .label("assigned_user_id__label"),
                          sa.select(sa.func.count()).select_from(counting).scalar_subquery()
                          .label("__total"))
                .select_from(accounts.outerjoin(users, users.c.id == accounts.c.assigned_user_id))
                .where(accounts.c.deleted.is_(False), *where)
                .order_by(*order).limit(SIZE).offset(offset))
        with site.engine.connect() as conn:
            return [row.id for row in conn.execute(stmt)]

    def service_page(offset=0, after=None, **query):
        rows, _ = site.records.page("accounts", user, Query(
            **query, limit=SIZE, offset=offset, after=after, fields=columns, labels=True), cap=CAP)
        return [row["id"] for row in rows]

    with site.engine.connect() as conn:  # the row before page 500, for its keyset
        before = conn.execute(sa.select(accounts.c.id, accounts.c.name)
                              .where(accounts.c.deleted.is_(False)).order_by(*by_name)
                              .limit(1).offset(max(0, offset - 1))).one()
    after = {"name": before.name, "id": before.id} if offset else None
    name = CaseFolded(sa.literal(before.name, accounts.c.name.type))
    beyond = [by_name[0] >= name,  # the name's range first: the index is sought, not walked
              sa.or_(by_name[0] > name, sa.and_(by_name[0] == name, accounts.c.id > before.id))
              ] if offset else []
    keys = site.records.sort_keys(module, None)  # the list's Next link, as the page writes it
    cursor = encode_cursor({"name": before.name, "id": before.id}, keys,
                           shapes(site.registry, module))
    keyset = f"/m/accounts?size={SIZE}" + (f"&after={cursor}" if offset else "")
    customers = [accounts.c.account_type == "customer"]

    def starts(text):
        return [sa.or_(*(c.ilike(text.replace("%", r"\%").replace("_", r"\_") + "%", escape="\\")
                         for c in searched))]

    detail_service, detail_raw = detail_reads(bench)
    return [
        Request("list page 1", f"/m/accounts?size={SIZE}",
                lambda: service_page(), lambda: raw_page()),
        Request("deep page offset", f"/m/accounts?size={SIZE}&page={deep}",
                lambda: service_page(offset), lambda: raw_page(offset=offset)),
        Request("deep page keyset", keyset,
                lambda: service_page(after=after), lambda: raw_page(beyond)),
        Request("filter + sort",
                f"/m/accounts?size={SIZE}&f_account_type=customer&sort=billing_address_city",
                lambda: service_page(filters=[("account_type", "eq", "customer")],
                                     sort="billing_address_city"),
                lambda: raw_page(customers, by_city)),
        Request("search hit", f"/m/accounts?size={SIZE}&q={quote(bench.term)}",
                lambda: service_page(search=bench.term), lambda: raw_page(starts(bench.term))),
        Request("search miss", f"/m/accounts?size={SIZE}&q={MISS}",
                lambda: service_page(search=MISS), lambda: raw_page(starts(MISS))),
        Request("account detail", f"/m/accounts/{bench.detail_id}",
                detail_service, detail_raw, same=False),
    ]


def detail_reads(bench: Bench) -> tuple[Callable, Callable]:
    """What the detail page reads: the record and each subpanel's rows (50 at most)."""
    site, user, record_id = bench.site, bench.user, bench.detail_id
    module = site.registry.module("accounts")
    panels = []
    for name in module.layouts.get("subpanels") or list(module.relationships):
        rel = module.relationships[name]
        other = site.registry.module(rel["module"])
        columns = module.layouts.get("subpanel_columns", {}).get(name) or list_columns(other)[:4]
        wanted = list(dict.fromkeys(f.name for c in columns for f in other.expand(c)
                                    if f.stored or f.type.derived))
        panels.append((name, rel, other, wanted))

    def service():
        record = site.records.get("accounts", record_id, user, labels=True)
        return [record["id"], *(len(site.records.related(
            "accounts", record_id, name, user, Query(fields=wanted, labels=True, limit=50)))
            for name, _, _, wanted in panels)]

    accounts = site.tables.tables["accounts"]

    def raw():
        with site.engine.connect() as conn:
            record = conn.execute(sa.select(accounts).where(accounts.c.id == record_id)).one()
            counts = []
            for _, rel, other, wanted in panels:
                table = site.tables.tables[other.name]
                stored = [table.c[n] for n in wanted if n in table.c]
                counts.append(len(conn.execute(
                    sa.select(table.c.id, *stored)
                    .where(table.c[rel["field"]] == record_id, table.c.deleted.is_(False))
                    .order_by(table.c.id).limit(50)).all()))
        return [record.id, *counts]

    return service, raw


# -- measuring ------------------------------------------------------------------------------

@dataclass
class Figures:
    times: list[float] = field(default_factory=list)  # ms
    cpu: list[float] = field(default_factory=list)  # ms
    statements: int = 0
    writes: int = 0

    def p(self, cut: int) -> float:
        return statistics.quantiles(self.times, n=100, method="inclusive")[cut - 1]


def measure(bench: Bench, client: TestClient, counter: Statements, repeat: int) -> dict:
    results = {}
    for request in requests_for(bench):
        def web(path=request.web):
            reply = client.get(path)
            if reply.status_code != 200:
                raise RuntimeError(f"{path} answered {reply.status_code}")
            return ROW_LINK.findall(reply.text)

        sides = {"web": web if request.web else None, "service": request.service,
                 "raw": request.raw}
        sides = {k: fn for k, fn in sides.items() if fn is not None}
        seen = {k: fn() for k, fn in sides.items()}  # warm-up, and the answers compared
        if request.same and "service" in seen and seen["service"] != seen["raw"]:
            sys.exit(f"{request.name}: the service and raw SQL returned different rows")
        if request.same and "web" in seen and seen["web"] != seen["service"]:
            sys.exit(f"{request.name}: the page shows other rows than the service returns")
        figures = {k: Figures() for k in sides}
        for _ in range(repeat):
            for kind, fn in sides.items():  # interleaved, so all see the same machine
                counter.reset()
                c0, t0 = time.process_time(), time.perf_counter()
                fn()
                t1, c1 = time.perf_counter(), time.process_time()
                f = figures[kind]
                f.times.append((t1 - t0) * 1000)
                f.cpu.append((c1 - c0) * 1000)
                f.statements, f.writes = counter.reset()
        results[request.name] = figures
    return results


def concurrent_creates(bench: Bench, raw_table: sa.Table, writers: int, creates: int,
                       counter: Statements) -> dict:
    """W threads, each C creates one after another: ours (site.records.create), then raw."""
    site, user = bench.site, bench.user
    rng = random.Random(bench.accounts)
    rows = [account_row(rng, bench.pools, bench.descriptions, user.id)
            for _ in range(writers * creates + 1)]
    raws = raw_records(site, rows, user.id)
    counter.reset()
    site.records.create("accounts", rows.pop(), user)
    statements, _ = counter.reset()
    raws.pop()

    def ours(row):
        site.records.create("accounts", row, user)

    def raw(row):
        with site.engine.begin() as conn:
            conn.execute(raw_table.insert(), row)

    out = {"service": writing(ours, rows, writers), "raw": writing(raw, raws, writers)}
    out["statements"] = statements
    bench.accounts += len(rows) + 1
    return out


def writing(fn: Callable, rows: list, writers: int) -> tuple[Figures, int, float]:
    """Latencies, "database is locked" failures and rows/s of ``writers`` threads calling
    ``fn`` on their share of ``rows``, one after another."""
    times: list[float] = []
    locked = [0]
    lock = threading.Lock()

    def writer(share):
        for row in share:
            t0 = time.perf_counter()
            try:
                fn(row)
            except sa.exc.OperationalError as exc:
                if "locked" not in str(exc):
                    raise
                with lock:
                    locked[0] += 1
                continue
            with lock:
                times.append((time.perf_counter() - t0) * 1000)

    threads = [threading.Thread(target=writer, args=(rows[i::writers],)) for i in range(writers)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - t0
    return Figures(times=times or [0.0, 0.0]), locked[0], len(times) / elapsed


# -- printing -----------------------------------------------------------------------------------

def cell(f: Figures | None, width: int = 6) -> str:
    if f is None:
        return f"{'-':>{width}} {'-':>{width}} {'-':>3}"
    return f"{f.p(50):{width}.1f} {f.p(95):{width}.1f} {f.statements:>3}"


def report(backend: str, size: int, bench: Bench, results: dict, creates: dict, args) -> None:
    print(f"\n{backend}, {size:,} accounts + {bench.built // 2 + 3:,} contacts — p50/p95 ms of "
          f"{args.repeat}, st = SQL statements per request, deep page = page {bench.deep}")
    print(f"{'request':<18} {'web p50':>7} {'p95':>6} {'st':>3} {'wr':>2} {'cpu':>5} | "
          f"{'svc p50':>7} {'p95':>6} {'st':>3} | {'raw p50':>7} {'p95':>6} {'st':>3} | "
          f"{'web/raw':>7} {'svc/raw':>7}")
    for name, fig in results.items():
        web, svc, raw = fig.get("web"), fig.get("service"), fig["raw"]
        web_extra = f"{web.writes:>2} {statistics.median(web.cpu):5.1f}" if web else \
            f"{'-':>2} {'-':>5}"
        ratios = [f"{s.p(50) / raw.p(50):7.2f}" if s else f"{'-':>7}" for s in (web, svc)]
        print(f"{name:<18} {cell(web, 7)} {web_extra} | {cell(svc, 7)} | {cell(raw, 7)} | "
              f"{' '.join(ratios)}")
    (ours, locked, rate), (raw, raw_locked, raw_rate) = creates["service"], creates["raw"]
    print(f"{'create x' + str(args.writers):<18} {'':>7} {'':>6} {'':>3} {'':>2} {'':>5} | "
          f"{ours.p(50):7.1f} {ours.p(95):6.1f} {creates['statements']:>3} | "
          f"{raw.p(50):7.1f} {raw.p(95):6.1f} {1:>3} | {'':>7} {ours.p(50) / raw.p(50):7.2f}")
    print(f"  {args.writers} writers x {args.creates} creates: {rate:,.0f}/s, p99 "
          f"{ours.p(99):.1f} ms, {locked} 'database is locked'; raw inserts {raw_rate:,.0f}/s, "
          f"{raw_locked} locked")
    print(f"  detail statements: web {results['account detail']['web'].statements} "
          f"({results['account detail']['web'].writes} writes), service "
          f"{results['account detail']['service'].statements}; {rss()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000",
                        help="accounts at each step, comma separated (10000,100000,1000000)")
    parser.add_argument("--quick", action="store_true", help="2,000 and 10,000 accounts, 15 repeats")
    parser.add_argument("--repeat", type=int, default=30, help="measured calls per request and side (30)")
    parser.add_argument("--writers", type=int, default=4, help="concurrent creating threads (4)")
    parser.add_argument("--creates", type=int, default=50, help="creates per writer thread (50)")
    site_arguments(parser)
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.repeat = "2000,10000", min(args.repeat, 15)
    sizes = sorted({int(s.replace("_", "")) for s in args.sizes.split(",") if s.strip()})

    done = []
    with bench_site(args.database_url) as site:
        backend = backend_name(site)
        raw_table = twin_table(site.tables.tables["accounts"], "bench_raw_accounts")
        progress("creating schema")
        site.sync_schema()
        raw_table.create(site.engine)
        bench = new_bench(site, args.seed)
        bench.detail_id = related_records(bench)
        counter = Statements(site.engine)
        with TestClient(create_app(site)) as client:
            sign_in(client, USERNAME, PASSWORD)
            for size in sizes:
                progress(f"building to {size:,} accounts + contacts, {BATCH:,} per create_many")
                build_to(bench, size)
                analyze(site)
                progress(f"{size:,}: measuring {args.repeat} calls per request and side")
                results = measure(bench, client, counter, args.repeat)
                progress(f"{size:,}: {args.writers} writers x {args.creates} creates")
                creates = concurrent_creates(bench, raw_table, args.writers, args.creates,
                                             counter)
                rate = bench.built / bench.build_seconds
                if not done:
                    print(f"CRBM bench/scale.py — {backend}; build: create_many "
                          f"{rate:,.0f} rows/s (accounts + contacts)")
                report(backend, size, bench, results, creates, args)
                done.append((size, results, creates))

    if len(done) > 1:
        (small, first, first_creates), (large, last, last_creates) = done[0], done[-1]
        print(f"\ncost at {large:,} / cost at {small:,} (p50; aim <= 1.5)")
        for name in first:
            line = [f"{kind} {last[name][kind].p(50) / first[name][kind].p(50):5.2f}"
                    if kind in first[name] else f"{kind}     -" for kind in ("web", "service", "raw")]
            if "web" in first[name]:  # CPU: steadier than wall time on a busy machine
                cpu = [statistics.median(done_[name]["web"].cpu) for done_ in (first, last)]
                line.append(f"web cpu {cpu[1] / cpu[0]:5.2f}")
            print(f"  {name:<18} " + "   ".join(line))
        print(f"  {'create x' + str(args.writers):<18} service "
              f"{last_creates['service'][0].p(50) / first_creates['service'][0].p(50):5.2f}")
    print(f"worker after the run: {rss()}")
    print(f"build: {bench.built:,} rows (accounts + as many contacts) in "
          f"{bench.build_seconds:,.0f} s through create_many ({bench.built / bench.build_seconds:,.0f} rows/s)")


if __name__ == "__main__":
    main()
