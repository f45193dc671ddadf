"""Benchmark: a support agent's Cases list page (``GET /m/cases``) against the raw query it
is built on, in the same run, on the same data.

    PYTHONPATH=<a CRBM tree> .venv/bin/python bench/cases.py [--cases N] [--others M]
        [--requests R] [--database-url URL]

The agent "sam" has a team-restricted role on cases (Team level for every action) and is a
member of the Support team, which holds N cases (100,000); M more (20,000) belong to
another team and are not hers. Cases are written with raw inserts as the record service
would store them (numbers from 1001, search keys, the team rows). Two requests, each timed
(median of R, in-process TestClient, interleaved with its raw twin):

- first page: ``/m/cases`` — the newest 20 by number, with their account and user names,
  the capped count;
- search: ``/m/cases?q=10`` — a quick search on the number and subject.

The raw side is the list's query alone: one SELECT of the list's columns for the cases of
the agent's team (``EXISTS`` a team row of the case, along the number's index: the
plainest fast form), newest first, 20 rows, no count, no page. Ratio = page / raw: what access control's full
predicate, the count, paging, the template and HTTP cost on top.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import uuid

import sqlalchemy as sa
from common import (  # bench/common.py, beside this file
    Statements,
    backend_name,
    bench_site,
    interleaved,
    median_ms,
    progress,
    sign_in,
    site_arguments,
)
from starlette.testclient import TestClient

from core.apps.admin import access_admin
from core.kernel import access
from core.kernel.fields import search_key
from core.kernel.records import now
from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "bench-password-123"
BATCH = 5_000
PAGE = 20
SUBJECTS = ("Printer jams", "Cannot connect to the VPN", "Invoice shows the wrong tax",
            "Password reset does not arrive", "Scanner is slow", "Licence key rejected")
STATUSES = ("new", "assigned", "in_progress", "pending", "closed")
ROW = '<a href="/m/cases/'


def build(site, args):
    admin = create_user(site, "bench-admin", PASSWORD, is_admin=True)
    sam = create_user(site, "sam", PASSWORD)
    others = [create_user(site, f"agent{i}", PASSWORD) for i in range(10)]
    support = access_admin.create_team(site, "Support")
    elsewhere = access_admin.create_team(site, "Elsewhere")
    access_admin.set_team_members(site, support, add=[sam.id])
    role = access_admin.create_role(site, "Support agents")
    access_admin.set_role_rules(site, role, {m: ("enabled", {
        a: "team" for a in ("view", "list", "edit", "delete", "export", "report")})
        for m in ("cases", "accounts")})
    access_admin.set_role_users(site, role, add=[sam.id])
    module = site.registry.module("cases")
    table = site.records.table(module)
    columns = [c.name for c in table.columns]
    rng = random.Random(args.seed)
    accounts = site.records.create_many("accounts", [{"name": f"Customer {i:04d}"}
                                                     for i in range(500)], admin)
    total = args.cases + args.others
    progress(f"writing {total:,} cases (raw inserts, as the service would store them)")
    stamp = now()
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)

    def row(number: int) -> dict:
        record = dict.fromkeys(columns)
        record.update(
            id=str(uuid.uuid4()), number=str(number), name=rng.choice(SUBJECTS),
            status=rng.choice(STATUSES), priority=rng.choice(("p1", "p2", "p3")),
            account_id=rng.choice(accounts), assigned_user_id=rng.choice(others).id,
            created_at=stamp, created_by=admin.id, deleted=False, version=1,
            modified_at=start + dt.timedelta(minutes=rng.randrange(500_000)),
            modified_by=admin.id)
        record.update({f"_sk_{n}": search_key(record[n]) for n in module.search_fields})
        return record

    numbers = list(range(1001, 1001 + total))
    rng.shuffle(numbers)  # the agent's cases among the others
    for at in range(0, total, BATCH):
        rows = [row(n) for n in numbers[at:at + BATCH]]
        with site.engine.begin() as conn:
            conn.execute(table.insert(), rows)
            mine = [r["id"] for i, r in enumerate(rows) if at + i < args.cases]
            theirs = [r["id"] for i, r in enumerate(rows) if at + i >= args.cases]
            access.add_record_teams(conn, site.tables, "cases", mine, [support])
            access.add_record_teams(conn, site.tables, "cases", theirs, [elsewhere])
    dialect = site.engine.dialect.name
    if dialect != "sqlite":
        with site.engine.begin() as conn:
            for name in ("cases", "crbm_record_teams"):
                conn.exec_driver_sql(f"ANALYZE {'TABLE ' if dialect != 'postgresql' else ''}{name}")
    return support


def raw(site, team_id: str, search: str | None = None) -> int:
    """The list's query alone (module docstring)."""
    table = site.records.table(site.registry.module("cases"))
    links = site.tables.tables["crbm_record_teams"]
    cols = [table.c[n] for n in ("id", "number", "name", "account_id", "status", "priority",
                                 "assigned_user_id", "modified_at")]
    team = sa.exists().where(links.c.module == "cases", links.c.team_id == team_id,
                             links.c.record_id == table.c.id)
    where = [table.c.deleted.is_(False), team]
    if search:
        key = search_key(search)
        where.append(sa.or_(*(sa.and_(table.c[f"_sk_{n}"] >= key,
                                      table.c[f"_sk_{n}"] < key + "\U0010ffff")
                              for n in ("name", "number"))))
    with site.engine.connect() as conn:
        return len(conn.execute(sa.select(*cols).where(*where)
                                .order_by(table.c.number.desc(), table.c.id.desc())
                                .limit(PAGE)).all())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=100_000, help="the agent's cases (100,000)")
    parser.add_argument("--others", type=int, default=20_000,
                        help="cases of another team (20,000)")
    parser.add_argument("--requests", type=int, default=30, help="measured requests each (30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests each (3)")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        progress("creating schema")
        site.sync_schema()
        support = build(site, args)
        client = TestClient(create_app(site)).__enter__()
        sign_in(client, "sam", PASSWORD)
        counted = Statements(site.engine)
        pages = {"first page": ("/m/cases", None), "search '10'": ("/m/cases?q=10", "10")}
        results = {}
        for label, (url, search) in pages.items():
            def page(url=url):
                reply = client.get(url)
                reply.raise_for_status()
                return reply.text.count(ROW)
            counted.reset()
            shown = page()
            statements, _ = counted.reset()
            progress(f"measuring {label}: {args.requests} requests each, interleaved")
            times, answers = interleaved({"page": page, "raw": lambda s=search: raw(
                site, support, s)}, args.requests, args.warmup)
            results[label] = (median_ms(times["page"]), median_ms(times["raw"]), shown,
                              answers["raw"], statements)
        client.__exit__(None, None, None)
        backend = backend_name(site)

    print(f"CRBM bench/cases.py — a Team-level agent's Cases list vs the raw list query, "
          f"{backend}, {args.cases:,} cases of her team (+{args.others:,} others), "
          f"median of {args.requests} requests each")
    for label, (ms, raw_ms, shown, raw_rows, statements) in results.items():
        print(f"{label:<14} page {ms:7.2f} ms ({shown} links, {statements} statements)   "
              f"raw {raw_ms:7.2f} ms ({raw_rows} rows)   ratio {ms / raw_ms:.2f}")


if __name__ == "__main__":
    sys.exit(main())
