"""Benchmark: what access control costs a list page — a Team-level user against an
All-level user, in the same run, on the same data.

    .venv/bin/python bench/acl.py [--rows N] [--teams T] [--requests R] [--database-url URL]

N demo accounts (100,000) are spread over T teams (50), one team each, and assigned to
20 users. Two non-admin users sign in to the same app: "allie" holds a role with All for
every action on accounts (her predicate compiles to nothing), "tess" a role with Team for
every action and is a member of one team (she sees about N / T accounts: her team's plus
her own). Each asks for the Accounts list page (20 rows sorted by name, with the capped
"1,000+" count) and, second, a quick search; requests alternate between the two users and
the median latency of R each is compared. Ratio = tess / allie (aim <= 1.2, issue 17).

SQLite in a temp dir unless --database-url names an empty database (tables dropped after).
"""
from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa
from records import demo_rows, progress  # bench/records.py, beside this file
from starlette.testclient import TestClient

from core.apps.admin import access_admin
from core.kernel import access
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "bench-password-123"
BATCH = 5_000
PAGES = {"list page": "/m/accounts?size=20&sort=name",
         "quick search": "/m/accounts?size=20&q=b"}
ROW_LINK = re.compile(r'<td data-label="[^"]*"><a href="/m/accounts/([0-9a-f-]{36})">')


def sign_in(client: TestClient, username: str) -> None:
    token = re.search(r'name="_csrf" value="([^"]+)"', client.get("/login").text).group(1)
    reply = client.post("/login", data={"_csrf": token, "username": username,
                                        "password": PASSWORD}, follow_redirects=False)
    if reply.status_code != 303:
        sys.exit(f"{username}: sign-in failed ({reply.status_code})")


def build(site: Site, args) -> dict:
    admin = create_user(site, "bench-admin", PASSWORD, is_admin=True)
    owners = [create_user(site, f"owner{i}", PASSWORD) for i in range(18)]
    allie, tess = create_user(site, "allie", PASSWORD), create_user(site, "tess", PASSWORD)
    owners += [allie, tess]
    teams = [access_admin.create_team(site, f"Team {i:02d}") for i in range(args.teams)]
    access_admin.set_team_members(site, teams[0], add=[tess.id])
    everything = access_admin.create_role(site, "Everything")
    access_admin.set_role_rules(site, everything, {"accounts": ("enabled", {
        a: "all" for a in ("view", "list", "edit", "delete", "export", "report")})})
    access_admin.set_role_users(site, everything, add=[allie.id])
    team_level = access_admin.create_role(site, "Team level")
    access_admin.set_role_rules(site, team_level, {"accounts": ("enabled", {
        a: "team" for a in ("view", "list", "edit", "delete", "export", "report")})})
    access_admin.set_role_users(site, team_level, add=[tess.id])

    rng = random.Random(args.seed)
    progress(f"creating {args.rows:,} accounts over {args.teams} teams, {BATCH:,} per batch")
    rows = demo_rows(args.rows, admin.id, args.seed)
    for row in rows:
        row["assigned_user_id"] = rng.choice(owners).id
    for start in range(0, len(rows), BATCH):
        ids = site.records.create_many("accounts", rows[start:start + BATCH], admin)
        by_team: dict[str, list[str]] = {}
        for record_id in ids:
            by_team.setdefault(rng.choice(teams), []).append(record_id)
        with site.engine.begin() as conn:
            for team, members in by_team.items():
                access.add_record_teams(conn, site.tables, "accounts", members, [team])
    return {"allie": allie, "tess": tess}


def measure(site: Site, args) -> dict:
    app = create_app(site)
    clients = {}
    for name in ("allie", "tess"):
        clients[name] = TestClient(app).__enter__()
        sign_in(clients[name], name)
    results = {}
    for label, path in PAGES.items():
        for client in clients.values():  # warm-up: caches, grants, the database's pages
            for _ in range(args.warmup):
                client.get(path).raise_for_status()
        times = {name: [] for name in clients}
        rows = {}
        for _ in range(args.requests):
            for name, client in clients.items():  # interleaved, so both see the same machine
                t0 = time.perf_counter()
                reply = client.get(path)
                times[name].append(time.perf_counter() - t0)
                reply.raise_for_status()
                rows[name] = ROW_LINK.findall(reply.text)
        results[label] = {name: (statistics.median(t) * 1000, len(rows[name]))
                          for name, t in times.items()}
    for client in clients.values():
        client.__exit__(None, None, None)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="accounts (100,000)")
    parser.add_argument("--teams", type=int, default=50, help="teams the accounts spread over (50)")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per user and page (200)")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up requests per user and page (20)")
    parser.add_argument("--database-url", help="an empty PostgreSQL/MariaDB database "
                        "(default: SQLite in a temp dir)")
    parser.add_argument("--seed", type=int, default=1, help="demo data seed (1)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="crbm-bench-") as tmp:
        folder = create_site(Path(tmp) / "site", args.database_url)
        site = Site(folder)
        if sa.inspect(site.engine).get_table_names():
            sys.exit(f"{site.database_url} is not empty: give the benchmark a database of its own")
        try:
            progress("creating schema")
            site.sync_schema()
            build(site, args)
            progress(f"measuring: {args.requests} requests per user and page, interleaved")
            results = measure(site, args)
        finally:
            if args.database_url:
                site.tables.drop_all(site.engine, checkfirst=True)
            site.close()

    dialect = site.engine.dialect
    backend = "mariadb" if getattr(dialect, "is_mariadb", False) else dialect.name
    print(f"CRBM bench/acl.py — Accounts list, {args.rows:,} accounts over {args.teams} teams, "
          f"{backend}, median of {args.requests} requests each")
    for label, by_user in results.items():
        (all_ms, all_rows), (team_ms, team_rows) = by_user["allie"], by_user["tess"]
        print(f"{label:<13} All-level {all_ms:6.2f} ms ({all_rows} rows)   "
              f"Team-level {team_ms:6.2f} ms ({team_rows} rows)   "
              f"ratio {team_ms / all_ms:.2f} (aim <= 1.2)")


if __name__ == "__main__":
    main()
