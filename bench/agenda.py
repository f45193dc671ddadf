"""Benchmark: the calendar's events endpoint (core/apps/calendar/agenda_web.py, events.py)
against the raw range query it is built on, in the same run, on the same data.

    PYTHONPATH=<a CRBM tree> .venv/bin/python bench/agenda.py [--events N] [--users U]
        [--requests R] [--database-url URL]

The reader "tess" is Team-level on calls, meetings and tasks (a member of one team of
five), so the endpoint computes her access predicate per row: what she may see comes with
its title, the rest as "Busy" blocks. Data: N events of her own (2,000: meetings, calls and
tasks) in March 2027, and 40 events a week for eight weeks for each of U - 1 colleagues (50
users in all), their records spread over the teams.

Two requests, each timed (median of R, in-process TestClient, interleaved with its raw
twin so both see the same machine):

- month view: ``/calendar/events.json`` for the six weeks a month grid shows, tess's own;
- company week: the same for one week and all U users side by side (``resources=1``).

The raw side is the range query alone: per kind one SELECT of id, subject, times and owner
for the same users and range, no access predicate, no JSON. Ratio = endpoint / raw: what
access control, busy blocks, holidays, time zones, JSON and HTTP cost on top.
SQLite in a temp dir unless --database-url names an empty database (tables dropped after).
"""
from __future__ import annotations

import argparse
import datetime as dt
import random

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
from core.apps.calendar import events
from core.kernel import access
from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "bench-password-123"
MARCH = dt.datetime(2027, 3, 1, tzinfo=dt.UTC)
MONTH = ("2027-03-01", "2027-04-12")  # a month grid's six weeks (Monday weeks)
WEEK = ("2027-03-08", "2027-03-15")
RIGHTS = ("view", "list", "edit", "delete", "export", "report")


def rows_for(rng: random.Random, owner: str, n: int, first: dt.datetime, days: int):
    """n events of ``owner`` between ``first`` and ``days`` later: half meetings, three in
    ten calls, the rest tasks, in working hours."""
    out = {"meetings": [], "calls": [], "tasks": []}
    for i in range(n):
        day = first + dt.timedelta(days=rng.randrange(days))
        start = day.replace(hour=rng.randrange(8, 17), minute=rng.choice((0, 15, 30, 45)))
        pick = rng.random()
        if pick < .5:
            out["meetings"].append({"name": f"Meeting {i}", "status": "planned",
                                    "date_start": start, "assigned_user_id": owner,
                                    "date_end": start + dt.timedelta(minutes=rng.choice((30, 60, 90)))})
        elif pick < .8:
            out["calls"].append({"name": f"Call {i}", "status": "planned", "date_start": start,
                                 "duration_minutes": rng.choice((15, 30)), "assigned_user_id": owner})
        else:
            out["tasks"].append({"name": f"Task {i}", "status": "not_started",
                                 "date_due": start.date(), "assigned_user_id": owner})
    return out


def build(site, args) -> dict:
    admin = create_user(site, "bench-admin", PASSWORD, is_admin=True)
    tess = create_user(site, "tess", PASSWORD)
    others = [create_user(site, f"user{i:02d}", PASSWORD) for i in range(args.users - 1)]
    teams = [access_admin.create_team(site, f"Team {i}") for i in range(5)]
    access_admin.set_team_members(site, teams[0], add=[tess.id])
    role = access_admin.create_role(site, "Team activities")
    access_admin.set_role_rules(site, role, {m: ("enabled", {a: "team" for a in RIGHTS})
                                             for m in ("calls", "meetings", "tasks")})
    access_admin.set_role_users(site, role, add=[tess.id])
    rng = random.Random(args.seed)
    batches = [rows_for(rng, tess.id, args.events, MARCH, 31)]
    batches += [rows_for(rng, u.id, 40 * 8, MARCH, 56) for u in others]
    total = sum(len(r) for b in batches for r in b.values())
    progress(f"creating {total:,} events for {args.users} users")
    for batch in batches:
        for module, rows in batch.items():
            if not rows:
                continue
            ids = site.records.create_many(module, rows, admin)
            by_team: dict[str, list[str]] = {}
            for record_id in ids:
                by_team.setdefault(rng.choice(teams), []).append(record_id)
            with site.engine.begin() as conn:
                for team, members in by_team.items():
                    access.add_record_teams(conn, site.tables, module, members, [team])
    return {"tess": tess, "users": [tess] + others}


def raw(site, user_ids, first: str, last: str):
    """The range query alone (module docstring): rows per kind, no predicate, no JSON."""
    start = dt.datetime.fromisoformat(first).replace(tzinfo=dt.UTC)
    end = dt.datetime.fromisoformat(last).replace(tzinfo=dt.UTC)
    found = 0
    with site.engine.connect() as conn:
        for kind in events.kinds(site.registry):
            t = site.records.table(kind.module)
            when = t.c[kind.when]
            lo, hi = (start.date(), end.date()) if kind.dated else (start, end)
            cols = [t.c.id, t.c.name, when, t.c.assigned_user_id] + \
                ([t.c[kind.end]] if kind.end else []) + ([t.c[kind.duration]] if kind.duration else [])
            found += len(conn.execute(sa.select(*cols).where(
                t.c.deleted.is_(False), t.c.assigned_user_id.in_(user_ids),
                when >= lo, when < hi)).all())
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2_000, help="the reader's own events in the month (2,000)")
    parser.add_argument("--users", type=int, default=50, help="users side by side in the company week (50)")
    parser.add_argument("--requests", type=int, default=30, help="measured requests each (30)")
    parser.add_argument("--warmup", type=int, default=3, help="warm-up requests each (3)")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        progress("creating schema")
        site.sync_schema()
        people = build(site, args)
        ids = [u.id for u in people["users"]]
        client = TestClient(create_app(site)).__enter__()
        sign_in(client, "tess", PASSWORD)
        counted = Statements(site.engine)
        cases = {
            "month view": ({"start": MONTH[0], "end": MONTH[1]}, [people["tess"].id], MONTH),
            "company week": ({"start": WEEK[0], "end": WEEK[1], "users": ",".join(ids),
                              "resources": "1"}, ids, WEEK),
        }
        results = {}
        for label, (params, users, (first, last)) in cases.items():
            def endpoint(params=params):
                reply = client.get("/calendar/events.json", params=params)
                reply.raise_for_status()
                return reply.json()
            counted.reset()
            shown = endpoint()
            statements, _ = counted.reset()
            progress(f"measuring {label}: {args.requests} requests each, interleaved")
            times, answers = interleaved({"endpoint": endpoint,
                                          "raw": lambda u=users, f=first, la=last: raw(site, u, f, la)},
                                         args.requests, args.warmup)
            busy = sum(1 for e in shown if e.get("title") == "Busy")
            results[label] = (median_ms(times["endpoint"]), median_ms(times["raw"]),
                              len(shown), busy, answers["raw"], statements)
        client.__exit__(None, None, None)
        backend = backend_name(site)

    print(f"CRBM bench/agenda.py — events endpoint vs raw range query, {backend}, "
          f"Team-level reader, median of {args.requests} requests each")
    for label, (ms, raw_ms, shown, busy, raw_rows, statements) in results.items():
        print(f"{label:<13} endpoint {ms:7.2f} ms ({shown:,} events, {busy:,} busy, "
              f"{statements} statements)   raw {raw_ms:7.2f} ms ({raw_rows:,} rows)   "
              f"ratio {ms / raw_ms:.2f}")


if __name__ == "__main__":
    main()
