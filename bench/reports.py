"""Reports: the grouped report of issue 25 — accounts with their opportunities and
contacts, grouped by industry, the sum of the amounts and the count of the contacts —
against the SQL a person would write for the same figures, in the same process.

    python bench/reports.py [--accounts 100000] [--opportunities 1000000] [--database-url URL]

Prints, median of N turns each side taking turns: the report as the Reports page runs it
(run(): compile, the one statement, labels, formatting), the statement alone, and the
hand-written SQL (both relationships summed per account in derived tables, joined and
grouped — what avoids the fan-out by hand); the ratio against it (aim ≤ 1.3); and the
same for a Team-level user, whose report carries the access predicate of each module it
reads, against the hand-written SQL with the same restriction spelled out. The figures of
both sides are checked equal before anything is timed.

The rows are written with executemany INSERTs (every column the record service would
write): the bench measures reading, and a million records through the service would take
most of its time.
"""
from __future__ import annotations

import argparse
import datetime as dt
import random
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import backend_name, bench_site, interleaved, median_ms, progress  # noqa: E402

from core.apps.admin import access_admin  # noqa: E402
from core.kernel import access, i18n  # noqa: E402
from core.kernel.fields import search_key  # noqa: E402
from core.kernel.records import now  # noqa: E402
from core.kernel.users import create_user  # noqa: E402
from plugins.reports.compiler import check, compile_report  # noqa: E402
from plugins.reports.run import run  # noqa: E402

BATCH = 10_000
REPORT = {"module": "accounts",
          "columns": [{"via": "opportunities", "field": "amount", "aggregate": "sum"},
                      {"via": "contacts", "field": "id", "aggregate": "count"},
                      {"field": "id", "aggregate": "count"}],
          "group_by": [{"field": "industry"}]}
HAND = """
SELECT a.industry, SUM(o.total), SUM(c.n), COUNT(*)
FROM accounts a
LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM opportunities
           WHERE deleted = :no AND {o} GROUP BY account_id) o ON o.account_id = a.id
LEFT JOIN (SELECT account_id, COUNT(id) AS n FROM contacts
           WHERE deleted = :no AND {c} GROUP BY account_id) c ON c.account_id = a.id
WHERE a.deleted = :no AND {a}
GROUP BY a.industry
"""


def raw_rows(site, module_name: str, rows: list[dict], user_id: str) -> list[dict]:
    """Every column the record service writes: values normalized, defaults, stamps, keys."""
    module = site.registry.module(module_name)
    table = site.tables.tables[module.table]
    stamp = now()
    out = []
    for row in rows:
        record = dict.fromkeys(c.name for c in table.columns)
        for f in module.fields.values():
            if f.stored and "default" in f.spec:
                record[f.name] = f.type.normalize(f.spec["default"], f.spec)
            elif f.stored and f.type.name == "checkbox":
                record[f.name] = False
        for name, value in row.items():
            f = module.fields[name]
            record[name] = f.type.normalize(value, f.spec)
        record.update(id=row.get("id") or str(uuid.uuid4()), created_at=stamp,
                      created_by=user_id, modified_at=stamp, modified_by=user_id,
                      deleted=False, version=1)
        record.update({f"_sk_{n}": search_key(record[n]) for n in module.search_fields
                       if f"_sk_{n}" in record})
        out.append(record)
    return out


def load(site, admin, tess, team, args, rng) -> None:
    industries = [v for v, _ in site.registry.choices(
        site.registry.module("accounts").fields["industry"])] + [None]
    tables = site.tables.tables
    account_ids = [str(uuid.uuid4()) for _ in range(args.accounts)]
    mine = set(rng.sample(account_ids, len(account_ids) // 10))  # Tess's team sees a tenth

    def write(module, rows):
        with site.engine.begin() as conn:
            conn.execute(tables[module].insert(), raw_rows(site, module, rows, admin.id))

    progress(f"writing {args.accounts:,} accounts")
    for start in range(0, args.accounts, BATCH):
        write("accounts", [{"id": i, "name": f"Account {n:07d}",
                            "industry": rng.choice(industries), "assigned_user_id": admin.id}
                           for n, i in enumerate(account_ids[start:start + BATCH], start)])
    progress(f"writing {args.opportunities:,} opportunities, {args.contacts:,} contacts")
    today = dt.date(2026, 12, 1)
    for start in range(0, args.opportunities, BATCH):
        write("opportunities", [{
            "name": f"Deal {n:07d}", "account_id": rng.choice(account_ids),
            "amount": Decimal(rng.randrange(1, 400) * 250), "sales_stage": "prospecting",
            "date_closed": today + dt.timedelta(days=rng.randrange(365)),
            "assigned_user_id": tess.id if rng.random() < 0.1 else admin.id}
            for n in range(start, min(args.opportunities, start + BATCH))])
    for start in range(0, args.contacts, BATCH):
        write("contacts", [{"last_name": f"Person {n:07d}", "account_id": rng.choice(account_ids),
                            "assigned_user_id": admin.id}
                           for n in range(start, min(args.contacts, start + BATCH))])
    with site.engine.begin() as conn:
        for start in range(0, len(mine), BATCH):
            access.add_record_teams(conn, site.tables, "accounts",
                                    sorted(mine)[start:start + BATCH], [team])
        # fresh statistics on every backend, so both sides are planned on the loaded rows
        # (MariaDB recomputes InnoDB's in the background, late and at random after a load)
        if site.engine.dialect.name in ("postgresql", "sqlite"):
            conn.exec_driver_sql("ANALYZE")
        else:
            conn.exec_driver_sql("ANALYZE TABLE accounts, opportunities, contacts, "
                                 "crbm_record_teams").all()


def hand_written(site, restricted_to=None):
    """The SQL by hand; ``restricted_to`` (user id, team id): the Team level spelled out."""
    def seen(module):
        if restricted_to is None:
            return "1 = 1"
        user_id, team_id = restricted_to
        return (f"(assigned_user_id = '{user_id}' OR id IN (SELECT record_id FROM "
                f"crbm_record_teams WHERE module = '{module}' AND team_id = '{team_id}'))")
    text = sa.text(HAND.format(o=seen("opportunities"), c=seen("contacts"),
                               a=seen("accounts").replace("assigned_user_id", "a.assigned_user_id")
                               .replace(" id IN", " a.id IN")))

    def call():
        with site.engine.connect() as conn:
            return {r[0]: (r[1], r[2], r[3]) for r in conn.execute(text, {"no": False})}
    return call


def figures_of(result) -> dict:
    return {g.keys[0]: (g.cells[0].value, g.cells[1].value, g.cells[2].value)
            for g in result.groups}


def same(ours: dict, theirs: dict) -> bool:
    def norm(t):
        return tuple(round(Decimal(str(v or 0)), 2) for v in t)
    return {k: norm(v) for k, v in ours.items()} == {k: norm(v) for k, v in theirs.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--opportunities", type=int, default=1_000_000)
    parser.add_argument("--contacts", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--quick", action="store_true", help="a tenth of the rows, 3 rounds")
    parser.add_argument("--database-url", help="an empty PostgreSQL/MariaDB database "
                        "(default: SQLite in a temp dir)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.quick:
        args.accounts, args.opportunities, args.contacts, args.rounds = 10_000, 100_000, \
            20_000, 3
    rng = random.Random(args.seed)
    fmt = i18n.Formatter(i18n.Preferences())
    with bench_site(args.database_url) as site:
        progress("creating schema")
        site.sync_schema()
        admin = create_user(site, "bench-admin", "correct horse battery", is_admin=True)
        tess = create_user(site, "tess", "correct horse battery")
        team = access_admin.create_team(site, "East")
        access_admin.set_team_members(site, team, add=[tess.id])
        role = access_admin.create_role(site, "Team reports")
        access_admin.set_role_rules(site, role, {m: ("enabled", {a: "team" for a in (
            "view", "list", "report")}) for m in ("accounts", "opportunities", "contacts")})
        access_admin.set_user_roles(site, tess.id, [role])
        load(site, admin, tess, team, args, rng)
        definition = check(site.registry, REPORT)
        lines = []
        for who, user, restriction in (("administrator", admin, None),
                                       ("Team-level user", tess, (tess.id, team))):
            compiled = compile_report(site, definition, user)

            def statement(compiled=compiled):
                with site.engine.connect() as conn:
                    return conn.execute(compiled.groups).all()
            calls = {"hand-written SQL (baseline)": hand_written(site, restriction),
                     "the report's statement": statement,
                     "run(): statement, labels, formatting":
                         lambda user=user: run(site, definition, user, fmt)}
            progress(f"timing the report as the {who}")
            times, answers = interleaved(calls, args.rounds, warmup=1)
            if not same(figures_of(answers["run(): statement, labels, formatting"]),
                        answers["hand-written SQL (baseline)"]):
                sys.exit(f"the figures differ for the {who}: the bench stops")
            base = median_ms(times["hand-written SQL (baseline)"])
            lines.append(f"\n{who} ({len(answers['hand-written SQL (baseline)'])} groups), "
                         f"median of {args.rounds}:")
            for label, seconds in times.items():
                ms = median_ms(seconds)
                lines.append(f"  {label:40} {ms:9.1f} ms   ratio {ms / base:5.2f}")
    print(f"CRBM bench/reports.py — accounts by industry: sum of opportunity amounts, count "
          f"of contacts; {args.accounts:,} accounts, {args.opportunities:,} opportunities, "
          f"{args.contacts:,} contacts, {backend_name(site)} (aim: ratio ≤ 1.3)")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
