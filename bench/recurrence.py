"""Benchmark: materialising a year of a daily meeting series against bulk-inserting the same
rows with SQLAlchemy Core.

    .venv/bin/python bench/recurrence.py [--series N] [--days D] [--database-url URL]

For each of N series (default 5) of a daily 10:00 Europe/Paris meeting: the series is saved
through RecordService, then ``recurrence.materialise`` makes its D-1 occurrences (default
365 days ahead: a year; the rule is expanded by dateutil, every occurrence saved through the
save pipeline, keyed for idempotency) — and the same rows, fully built up front, go through
one raw Core ``executemany`` into an identical second table. The two sides are interleaved
series by series. A second ``materialise`` of everything (which must create nothing) is timed
too: the cost of the hourly scheduled task on a site whose series are all made.

Ratios compare the two sides in this process. Without --database-url a fresh SQLite file in
a temp dir is used; with one, the database must be empty and is left empty.
"""
from __future__ import annotations

import argparse
import datetime as dt
import time
import uuid
from zoneinfo import ZoneInfo

from common import backend_name, bench_site, progress, site_arguments, twin_table

from core.kernel.records import now
from core.kernel.users import create_user
from plugins.activities import recurrence

PARIS = ZoneInfo("Europe/Paris")


def raw_rows(site, series: dict, user_id: str, until: dt.datetime) -> list[dict]:
    """What the materialiser writes, built by hand: every column of every occurrence."""
    table = site.tables.tables["meetings"]
    stamp = now()
    out = []
    for start in recurrence.occurrences("meetings", series, until=until)[1:]:
        row = dict.fromkeys(c.name for c in table.columns)
        row.update(id=str(uuid.uuid4()), name=series["name"], status="planned",
                   location=series["location"], all_day=False, date_start=start,
                   date_end=start + dt.timedelta(hours=1), assigned_user_id=user_id,
                   recurrence_series_id=series["id"], recurrence_start=start,
                   recurrence_key=f"{series['id']}@{start:%Y-%m-%dT%H:%M:%SZ}",
                   recurrence_detached=False, reminder_popup=False, reminder_email=False,
                   created_at=stamp, created_by=user_id, modified_at=stamp,
                   modified_by=user_id, deleted=False, version=1)
        row.update({c: None for c in row if c.startswith("_sk_")})
        out.append(row)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--series", type=int, default=5, help="daily series (5)")
    parser.add_argument("--days", type=int, default=365, help="days materialised (365)")
    site_arguments(parser)
    args = parser.parse_args()

    with bench_site(args.database_url) as site:
        raw_table = twin_table(site.tables.tables["meetings"], "bench_raw_meetings")
        progress("creating schema")
        site.sync_schema()
        raw_table.create(site.engine)
        user = create_user(site, "bench", "bench-password", is_admin=True)
        moment = dt.datetime.now(dt.UTC)
        first = moment.astimezone(PARIS).replace(hour=10, minute=0, second=0, microsecond=0)
        ours = base = 0.0
        made = 0
        progress(f"materialising {args.series} daily series of {args.days} days each way")
        for n in range(args.series):
            with recurrence_paused():
                series = site.records.create("meetings", {
                    "name": f"Daily stand-up {n}", "location": "Room 1",
                    "date_start": first, "date_end": first + dt.timedelta(hours=1),
                    "recurrence_rule": "FREQ=DAILY", "recurrence_tz": "Europe/Paris",
                    "assigned_user_id": user.id}, user)
            rows = raw_rows(site, series, user.id, moment + dt.timedelta(days=args.days))
            t0 = time.perf_counter()
            with site.engine.begin() as conn:
                conn.execute(raw_table.insert(), rows)
            t1 = time.perf_counter()
            made += recurrence.materialise(site, "meetings", [series["id"]], user=user,
                                           now=moment, days_ahead=args.days, budget=10 ** 6)
            t2 = time.perf_counter()
            base, ours = base + t1 - t0, ours + t2 - t1
        assert made == len(rows) * args.series, (made, len(rows))
        t0 = time.perf_counter()
        again = recurrence.materialise(site, "meetings", now=moment, days_ahead=args.days,
                                       budget=10 ** 9)
        rerun = time.perf_counter() - t0
        assert again == 0, "a second run must create nothing"

    print(f"CRBM bench/recurrence.py — {args.series} daily series x {args.days} days on "
          f"{backend_name(site)}")
    print(f"materialise  recurrence.materialise  {made / ours:>10,.0f} occurrences/s")
    print(f"materialise  raw Core executemany    {made / base:>10,.0f} rows/s   "
          f"ratio {(made / ours) / (made / base):.2f} (aim >= 0.2)")
    print(f"re-run       nothing to create       {rerun * 1000:>10,.0f} ms for {made:,} "
          f"occurrences ({args.series} series)")


class recurrence_paused:
    """Save a series without materialising it on save: the bench times that part alone."""

    def __enter__(self):
        self.token = recurrence._MATERIALISING.set(True)

    def __exit__(self, *exc):
        recurrence._MATERIALISING.reset(self.token)


if __name__ == "__main__":
    main()
