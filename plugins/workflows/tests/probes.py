"""A test module with a field of every condition family (two date fields to compare), a
site that has it, and records whose values sit on the edges conditions care about: empty
values, month ends, the leap day, the days Paris changes its clocks, week and fiscal year
boundaries, text that differs only by case."""
from __future__ import annotations

import datetime as dt
import random
import textwrap
import types
from decimal import Decimal
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from core.kernel.records import Query
from core.kernel.site import Site, create_site
from core.kernel.users import create_user

PROBES = textwrap.dedent("""\
    name: wf_probes
    label: Probes
    label_singular: Probe
    fields:
      name: {type: name, required: true}
      summary: {type: text}
      notes: {type: textarea}
      quantity: {type: integer}
      amount: {type: currency, currency: EUR}
      rate: {type: percentage}
      active: {type: checkbox}
      kind: {type: dropdown, options: wf_kind_dom}
      tags: {type: multiselect, options: wf_tag_dom}
      start_on: {type: date}
      end_on: {type: date}
      seen_at: {type: datetime}
      account_id: {type: related, module: accounts}
      owner_id: {type: user}
      account_name: {type: related_value, related_field: account_id, source_field: name}
    """)
DROPDOWNS = textwrap.dedent("""\
    wf_kind_dom:
      - {value: lead, label: Lead}
      - {value: customer, label: Customer}
      - {value: partner, label: Partner}
    wf_tag_dom:
      - {value: red, label: Red}
      - {value: green, label: Green}
      - {value: blue, label: Blue}
    """)
PARIS = ZoneInfo("Europe/Paris")
MODULE = "wf_probes"


def probe_plugin(folder):
    """A plugin module whose folder holds the probes module (a test-only plugin)."""
    (folder / "modules").mkdir(parents=True, exist_ok=True)
    (folder / "dropdowns").mkdir(exist_ok=True)
    (folder / "modules" / "wf_probes.yaml").write_text(PROBES)
    (folder / "dropdowns" / "wf_probes.yaml").write_text(DROPDOWNS)
    plugin = types.ModuleType(f"wf_probes_{folder.name}")
    plugin.__file__ = str(folder / "plugin.py")
    return plugin


def probe_site(tmp_path, database_url):
    site = Site(create_site(tmp_path / "site", database_url),
                extra_plugins=[probe_plugin(tmp_path / "probes")])
    site.sync_schema()
    return site, create_user(site, "admin", "correct horse battery", is_admin=True)


def interesting_days(today: dt.date) -> list[dt.date]:
    """Days around ``today`` and the calendar's edges."""
    days = {today + dt.timedelta(days=n) for n in (
        0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 7, -7, 8, -8, 13, -13, 14, -14, 15, -15, 27, -27,
        28, -28, 29, -29, 30, -30, 31, -31, 32, -32, 45, -45, 59, -59, 60, -60, 61, -61, 62,
        -62, 89, -89, 90, -90, 91, -91, 92, -92, 120, -120, 180, -180, 270, -270, 364, -364,
        365, -365, 366, -366, 367, -367, 500, -500)}
    for year in (today.year - 1, today.year, today.year + 1):
        for month, day in ((1, 1), (1, 31), (2, 28), (3, 1), (3, 31), (4, 1), (4, 30),
                           (6, 30), (7, 1), (9, 30), (10, 1), (10, 27), (12, 31)):
            days.add(dt.date(year, month, day))
    days.add(dt.date(2024, 2, 29))
    return sorted(days)


def interesting_instants(today: dt.date) -> list[dt.datetime]:
    """Instants just around the Paris midnights of interesting days, and the clock changes
    of 2024 (Mar 31 02:00 -> 03:00, Oct 27 03:00 -> 02:00), in UTC."""
    found = []
    for day in interesting_days(today)[::2]:
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=PARIS).astimezone(dt.UTC)
        found += [midnight, midnight - dt.timedelta(seconds=1), midnight + dt.timedelta(hours=1),
                  midnight - dt.timedelta(minutes=90)]
    found += [dt.datetime(2024, 3, 31, 0, 59, 59, tzinfo=dt.UTC),
              dt.datetime(2024, 3, 31, 1, 0, tzinfo=dt.UTC),
              dt.datetime(2024, 3, 30, 23, 0, tzinfo=dt.UTC),
              dt.datetime(2024, 10, 26, 22, 0, tzinfo=dt.UTC),
              dt.datetime(2024, 10, 26, 21, 59, 59, 999999, tzinfo=dt.UTC),
              dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC),
              dt.datetime(2024, 10, 27, 1, 30, tzinfo=dt.UTC),
              dt.datetime(2024, 10, 27, 22, 59, 59, tzinfo=dt.UTC),
              dt.datetime(2024, 10, 27, 23, 0, tzinfo=dt.UTC)]
    return found


TEXTS = [None, "Acme", "acme", "ACME Corp", "Zebra", "Éloïse", "café", "a%b_c", "back\\slash",
         "  padded", "multi word text"]
NOTES = [None, "Call back\nabout the contract", "acme notes", "", "Zebra crossing"]


def fill(site, admin, today: dt.date, count: int = 90, seed: int = 7) -> list[dict]:
    """``count`` probes with values drawn from the edges (and empty ones), as the record
    service stores them; returns them as it reads them back."""
    rng = random.Random(seed)
    accounts = [site.records.create("accounts", {"name": n}, admin)["id"]
                for n in ("Acme", "Globex")]
    days = interesting_days(today)
    instants = interesting_instants(today)

    def maybe(values, empty=0.15):
        return None if rng.random() < empty else rng.choice(values)

    rows = []
    for n in range(count):
        start = maybe(days)
        rows.append({
            "name": f"Probe {n}",
            "summary": maybe(TEXTS[1:], 0.2),
            "notes": maybe(NOTES[1:], 0.3),
            "quantity": maybe([0, 1, 5, 10, 999, -3]),
            "amount": maybe([Decimal(0), Decimal("12.5"), Decimal(100),
                             Decimal("99.999999"), Decimal("-4.25")]),
            "rate": maybe([Decimal(0), Decimal("7.5"), Decimal(100)]),
            "active": rng.choice([True, False, None]),
            "kind": maybe(["lead", "customer", "partner"]),
            "tags": maybe([["red"], ["green", "blue"], ["red", "green", "blue"], ["blue"]], 0.3),
            "start_on": start,
            # sometimes the day after, the same day, or well apart: field comparisons
            "end_on": rng.choice([None, start, maybe(days)] +
                                 ([start + dt.timedelta(days=1)] if start else [])),
            "seen_at": maybe(instants),
            "account_id": maybe(accounts, 0.3),
            "owner_id": maybe([admin.id], 0.5),
        })
    site.records.create_many(MODULE, rows, admin)
    return site.records.list(MODULE, admin, Query(limit=None))


def selected(site, clause) -> set[str]:
    """The ids of the probes a SQL clause selects (live ones)."""
    table = site.records.table(site.registry.modules[MODULE])
    with site.engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.id).where(table.c.deleted.is_(False), clause))
                   .scalars())
