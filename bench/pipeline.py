"""Benchmark: the sales pipeline (issue 19) — the opportunities' kanban board, the duplicate
check on create, and converting a lead — each against a raw baseline in the same run.

    .venv/bin/python bench/pipeline.py [--opportunities N] [--quick] [--database-url URL]

1. board: N opportunities (100,000) spread over 6 open sales stages, on N / 2 demo
   accounts (written with the contacts of 2., through ``site.records.create_many``), in 10
   teams. Measured, the sides taking turns: the board's data functions
   (core/apps/board/board.py: ``totals`` — one GROUP BY under the reader's access
   predicate — and ``cards``, the first 50 of each column shown, largest amount first)
   for an administrator and for "tess", a non-admin with a Team-level role on
   opportunities in one team (she sees about N / 10); the full page GET
   /m/opportunities/board through the app in this process (Starlette's TestClient),
   both users; against the baseline: ONE raw GROUP BY (count, sum amount, sum
   amount × probability / 100 per sales stage, not deleted) plus the raw SELECT of the
   first 50 cards of each stage (the card's columns and its account's name), SQLAlchemy
   Core on the same connection pool — with no access predicate, so the Team-level rows
   weigh a filtered board against the unfiltered statements. The admin's board must
   match the baseline (same counts, same cards in the same order) or the bench stops.
   Printed: median ms, the ratio to the baseline and
   the process CPU ms per call (client and server both run here; CPU is what the
   machine's load changes least).
2. duplicate check on create against N contacts: bench/duplicates.py's ``build``,
   ``measure`` and ``report`` (aim < 20 ms a check).
3. lead conversion: ``plugins.leads.convert.convert`` (new account + contact +
   opportunity per lead, one transaction) against creating the same three records with
   ``RecordService.create`` in one transaction; conversions per second, the sides taking
   turns lead by lead, CPU ms per conversion.

--quick: 2,000 opportunities and contacts, few rounds: a smoke run (seconds).
SQLite in a temp dir unless --database-url names an empty database (tables dropped after).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import time
from collections.abc import Callable, Mapping
from decimal import Decimal

import duplicates  # bench/duplicates.py, beside this file
import sqlalchemy as sa
from common import (  # bench/common.py, beside this file
    BATCH,
    backend_name,
    bench_site,
    create_in_batches,
    progress,
    sign_in,
)
from starlette.testclient import TestClient

from core.apps import conversion
from core.apps.admin import access_admin
from core.apps.board import board
from core.kernel import access
from core.kernel.records import Query
from core.kernel.users import create_user
from core.web.app import create_app
from plugins.accounts.plugin import build_pools
from plugins.leads import convert
from plugins.leads.demo import lead_row

PASSWORD = "bench-password-123"
# the 6 stages the opportunities are spread over (of sales_stage_dom's 10; the board shows 9)
STAGES = ("prospecting", "qualification", "needs_analysis", "value_proposition",
          "proposal_price_quote", "negotiation_review")
TEAMS = 10
TEAM = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}
ALL = {a: "all" for a in ("view", "list", "edit", "delete", "export", "report")}
CARD = re.compile(r'class="board-card-title"')


def turns(calls: Mapping[str, Callable[[], object]], rounds: int, warmup: int) -> dict:
    """label -> (median ms, CPU ms per call, last answer): the calls take turns each round
    (so all see the same machine); wall time per call, process CPU time summed per side."""
    wall: dict[str, list[float]] = {label: [] for label in calls}
    cpu = dict.fromkeys(calls, 0.0)
    last = {}
    for round_ in range(warmup + rounds):
        for label, call in calls.items():
            t0, c0 = time.perf_counter(), time.process_time()
            last[label] = call()
            if round_ >= warmup:
                wall[label].append(time.perf_counter() - t0)
                cpu[label] += time.process_time() - c0
    return {label: (statistics.median(wall[label]) * 1000, cpu[label] / rounds * 1000,
                    last[label]) for label in calls}


# -- the site -----------------------------------------------------------------------------

def users(site):
    admin = create_user(site, "bench-admin", PASSWORD, is_admin=True)
    tess = create_user(site, "tess", PASSWORD)
    teams = [access_admin.create_team(site, f"Team {i:02d}") for i in range(TEAMS)]
    access_admin.set_team_members(site, teams[0], add=[tess.id])
    role = access_admin.create_role(site, "Sales rep, Team level")
    access_admin.set_role_rules(site, role, {"opportunities": ("enabled", TEAM),
                                             "accounts": ("enabled", ALL)})
    access_admin.set_role_users(site, role, add=[tess.id])
    return admin, tess, teams


def opportunities(site, admin, tess, teams, n: int, rng: random.Random) -> float:
    """N opportunities over STAGES on the site's accounts, each in one team (tess's team's
    assigned to her); the seconds create_many took."""
    table = site.tables.tables["accounts"]
    with site.engine.connect() as conn:
        accounts = [r[0] for r in conn.execute(sa.select(table.c.id).where(
            table.c.deleted.is_(False)).order_by(table.c.id))]
    today = dt.date.today()
    spent = 0.0
    progress(f"creating {n:,} opportunities over {len(STAGES)} stages, {BATCH:,} per batch")
    for start in range(0, n, BATCH):
        chunk = range(start, min(n, start + BATCH))
        in_team = [rng.randrange(TEAMS) for _ in chunk]
        rows = [{"name": f"Deal {i:06d}", "account_id": accounts[i % len(accounts)],
                 "sales_stage": STAGES[i % len(STAGES)],
                 "amount": Decimal(rng.choice((5, 8, 12, 20, 40, 120)) * 1000
                                   + rng.randrange(20) * 250),
                 "date_closed": today + dt.timedelta(days=rng.randint(7, 180)),
                 "assigned_user_id": tess.id if team == 0 else admin.id}
                for i, team in zip(chunk, in_team)]
        t0 = time.perf_counter()
        ids = create_in_batches(site, "opportunities", rows, admin)
        spent += time.perf_counter() - t0
        with site.engine.begin() as conn:
            for t in range(TEAMS):
                members = [i for i, team in zip(ids, in_team) if team == t]
                if members:
                    access.add_record_teams(conn, site.tables, "opportunities", members,
                                            [teams[t]])
    if site.engine.dialect.name == "postgresql":
        with site.engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE opportunities")
            conn.exec_driver_sql("ANALYZE crbm_record_teams")
    return spent


# -- 1. the board -------------------------------------------------------------------------

def board_data(site, module, spec, user):
    """What the board page reads: every column's totals, the first cards of each."""
    query = Query()
    columns = board.totals(site, module, spec, user, query, board.columns(site, module, spec))
    for column in columns:
        column.cards, column.more = board.cards(site, module, spec, user, query, column.value) \
            if column.count else ([], None)
    return columns


def raw_board(site):
    """The baseline: one GROUP BY and the first 50 cards of each stage, in Core."""
    opps, accounts = site.tables.tables["opportunities"], site.tables.tables["accounts"]
    live = opps.c.deleted.is_(False)
    amount = sa.func.coalesce(opps.c.amount, 0)
    totals = sa.select(opps.c.sales_stage, sa.func.count(), sa.func.sum(amount),
                       sa.func.sum(amount * sa.func.coalesce(opps.c.probability, 0) / 100)) \
        .where(live).group_by(opps.c.sales_stage)
    card = sa.select(opps.c.id, opps.c.name, opps.c.sales_stage, opps.c.version, opps.c.amount,
                     opps.c.amount_currency, opps.c.probability, opps.c.assigned_user_id,
                     opps.c.account_id, accounts.c.name.label("account_name"),
                     opps.c.date_closed) \
        .select_from(opps.outerjoin(accounts, accounts.c.id == opps.c.account_id)) \
        .where(live).order_by(opps.c.amount.desc(), opps.c.id.desc()).limit(board.PAGE)
    # (the board's order: id goes the last sort key's way)

    def run():
        with site.engine.connect() as conn:
            sums = conn.execute(totals).all()
            cards = {stage: conn.execute(card.where(opps.c.sales_stage == stage)).all()
                     for stage, n, *_ in sums if n}
        return sums, cards
    return run


def bench_board(site, admin, tess, args) -> dict:
    module = site.registry.module("opportunities")
    spec = board.BoardSpec.of(module)
    if spec is None:
        sys.exit("the opportunities module declares no board (features.board)")
    app = create_app(site)
    clients = {}
    for who in ("bench-admin", "tess"):
        clients[who] = TestClient(app).__enter__()
        sign_in(clients[who], who, PASSWORD)

    def page(who):
        def get():
            reply = clients[who].get("/m/opportunities/board")
            reply.raise_for_status()
            return reply.text
        return get

    calls = {"baseline: raw GROUP BY + 50 cards/stage": raw_board(site),
             "board.py totals + cards (admin)": lambda: board_data(site, module, spec, admin),
             "board.py totals + cards (Team-level)": lambda: board_data(site, module, spec, tess),
             "GET /m/opportunities/board (admin)": page("bench-admin"),
             "GET /m/opportunities/board (Team-level)": page("tess")}
    progress(f"board: {args.rounds} turns of each side")
    try:
        results = turns(calls, args.rounds, args.warmup)
    finally:
        for client in clients.values():
            client.__exit__(None, None, None)
    # the sides must agree: the admin's columns hold the raw totals and the same cards
    sums, cards = results["baseline: raw GROUP BY + 50 cards/stage"][2]
    columns = {c.value: c for c in results["board.py totals + cards (admin)"][2]}
    for stage, n, *_ in sums:
        shown = columns[stage]
        if shown.count != n or [c["id"] for c in shown.cards] != [r.id for r in cards[stage]]:
            sys.exit(f"the board and the raw baseline disagree on {stage}: {shown.count} / {n}, "
                     f"{[(c['amount'], c['id']) for c in shown.cards[:3]]} / "
                     f"{[(r.amount, r.id) for r in cards[stage][:3]]}")
    return results


# -- 3. lead conversion -------------------------------------------------------------------

def bench_convert(site, admin, args, rng) -> dict:
    pools = build_pools(rng, scale=200)
    n = args.conversions
    progress(f"conversion: {n} leads per side, taking turns lead by lead")
    ids = site.records.create_many("leads", [{**lead_row(rng, pools, admin.id), "status": "new"}
                                             for _ in range(2 * n)], admin)
    leads = site.registry.module("leads")
    contacts = site.registry.module("contacts")
    stage_of = iter(STAGES * (2 * n))

    def deal(i):
        return {"name": f"Converted deal {i}", "amount": "25000",
                "date_closed": dt.date.today() + dt.timedelta(days=60),
                "sales_stage": next(stage_of)}

    def ours(lead_id, i):
        convert.convert(site, admin, lead_id, opportunity=deal(i))

    def baseline(lead, i):  # the same three records, create() in one transaction
        name = convert.suggested_account_name(site, lead) or f"Company {i}"
        with site.engine.begin() as conn:
            account = site.records.create("accounts", convert._account_values(
                site, lead, name, False), admin, connection=conn)
            site.records.create("contacts", {**conversion.smart_copy(leads, contacts, lead),
                                             "account_id": account["id"]}, admin,
                                connection=conn)
            site.records.create("opportunities", {**deal(i), "account_id": account["id"]},
                                admin, connection=conn)

    mine, theirs = ids[:n], [site.records.get("leads", i, admin) for i in ids[n:]]
    wall, cpu = {"convert()": 0.0, "baseline": 0.0}, {"convert()": 0.0, "baseline": 0.0}
    for i in range(n):
        for label, call, lead in (("convert()", ours, mine[i]), ("baseline", baseline, theirs[i])):
            t0, c0 = time.perf_counter(), time.process_time()
            call(lead, i)
            wall[label] += time.perf_counter() - t0
            cpu[label] += time.process_time() - c0
    made = site.records.count("leads", admin, Query(filters={"status": "converted"}))
    if made != n:
        sys.exit(f"{made} leads converted, not {n}")
    return {label: (n / wall[label], cpu[label] / n * 1000) for label in wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--opportunities", type=int, default=100_000,
                        help="opportunities, and contacts (100,000)")
    parser.add_argument("--rounds", type=int, default=30, help="board turns per side (30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up board turns (3)")
    parser.add_argument("--checks", type=int, default=200,
                        help="duplicate checks of each kind (200)")
    parser.add_argument("--conversions", type=int, default=200,
                        help="leads converted per side (200)")
    parser.add_argument("--quick", action="store_true",
                        help="2,000 records, few rounds: a smoke run")
    parser.add_argument("--database-url", help="an empty PostgreSQL/MariaDB database "
                        "(default: SQLite in a temp dir)")
    parser.add_argument("--seed", type=int, default=1, help="demo data seed (1)")
    args = parser.parse_args()
    if args.quick:
        args.opportunities, args.rounds, args.warmup = 2_000, 3, 1
        args.checks, args.conversions = 5, 5
    rng = random.Random(args.seed)

    with bench_site(args.database_url) as site:
        progress("creating schema")
        site.sync_schema()
        admin, tess, teams = users(site)
        built = duplicates.build(site, admin, args.opportunities, args.seed, rng)
        written = opportunities(site, admin, tess, teams, args.opportunities, rng)
        boards = bench_board(site, admin, tess, args)
        times, answers = duplicates.measure(site, admin, rng, args.checks, args.warmup * 5)
        converts = bench_convert(site, admin, args, rng)
        tess_sees = site.records.count("opportunities", tess, cap=None)

    n = args.opportunities
    print(f"CRBM bench/pipeline.py — {n:,} opportunities ({len(STAGES)} stages) on "
          f"{built['accounts']:,} accounts, {n:,} contacts, {backend_name(site)}")
    print(f"writing the opportunities: {written:.1f} s through create_many "
          f"({n / written:,.0f} rows/s)")
    print(f"\n1. kanban board: totals over all, {board.PAGE} cards per column shown; median of "
          f"{args.rounds} turns each; Team-level user sees {tess_sees:,} of {n:,}")
    base_ms, base_cpu, _ = boards["baseline: raw GROUP BY + 50 cards/stage"]
    print(f"{'':42} {'ms':>8} {'ratio':>7} {'cpu ms':>8} {'cpu ratio':>9}")
    for label, (ms, cpu, answer) in boards.items():
        cards = len(CARD.findall(answer)) if isinstance(answer, str) else None
        note = f"  {cards} cards" if cards is not None else ""
        print(f"{label:42} {ms:8.1f} {ms / base_ms:7.2f} {cpu:8.1f} {cpu / base_cpu:9.2f}{note}")
    print(f"\n2. duplicate check on create, {n:,} contacts, median of {args.checks} checks "
          f"each (aim < 20 ms)")
    print("\n".join(duplicates.report(built, times, answers)))
    print(f"\n3. lead conversion (account + contact + opportunity), {args.conversions} per "
          f"side, taking turns")
    base_rate = converts["baseline"][0]
    for label, (rate, cpu) in (("convert()", converts["convert()"]),
                               ("baseline: 3 x create() in one transaction",
                                converts["baseline"])):
        print(f"{label:42} {rate:8.1f}/s  ratio {rate / base_rate:5.2f}  cpu {cpu:6.1f} ms "
              f"per conversion")


if __name__ == "__main__":
    main()
