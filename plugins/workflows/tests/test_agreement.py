"""Conditions give the same answer in memory and in SQL (issue 18, item 5): every operator of
every field family, every group type, every date filter and point, under fixed clocks on
the edges (Paris's clock-change days, a leap day, New Year's Eve in UTC that is already New
Year in Paris), weeks from Monday or Sunday, fiscal years from January or April — checked on
real rows of a real table, on whichever database the suite runs on; and a property test over
random condition trees."""
from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from plugins.workflows import conditions
from plugins.workflows.dates import DateSettings
from plugins.workflows.tests.probes import MODULE, PARIS, fill, probe_site, selected

# (now, settings): the clocks every case runs under
CLOCKS = [
    (dt.datetime(2024, 3, 31, 8, 0, tzinfo=dt.UTC),  # Paris springs forward this day
     DateSettings("Europe/Paris", week_start=0, fiscal_year_start=4)),
    (dt.datetime(2024, 10, 27, 0, 30, tzinfo=dt.UTC),  # Paris falls back this day
     DateSettings("Europe/Paris", week_start=6, fiscal_year_start=1)),
    (dt.datetime(2024, 2, 29, 12, 0, tzinfo=dt.UTC),  # leap day
     DateSettings("Europe/Paris", week_start=0, fiscal_year_start=4)),
    (dt.datetime(2024, 12, 31, 23, 30, tzinfo=dt.UTC),  # already 2025 in Paris
     DateSettings("Europe/Paris", week_start=0, fiscal_year_start=10)),
    (dt.datetime(2024, 12, 31, 23, 30, tzinfo=dt.UTC),  # still 2024 in UTC
     DateSettings("UTC", week_start=6, fiscal_year_start=1)),
]

PERIODS = ("day", "week", "month", "quarter", "year", "fiscal_quarter", "fiscal_year")
UNITS = ("days", "weeks", "months", "quarters", "years", "fiscal_quarters", "fiscal_years")


def value_filters() -> list[dict]:
    """One filter per operator of every family but dates (checking current values)."""
    f = []
    for name in ("summary", "notes"):
        f += [{"field": name, "operator": op, "value": v}
              for op in ("is", "is_not", "contains", "not_contains", "starts_with", "ends_with")
              for v in ("acme", "ZEBRA", "a%b", "\\", "é", "e")]
        f += [{"field": name, "operator": op} for op in ("empty", "not_empty")]
    for name, values in (("quantity", [0, 5, "10", -3]),
                         ("amount", ["12.5", 0, "99.999999", "-4.25"]),
                         ("rate", ["7.5", 100])):
        f += [{"field": name, "operator": op, "value": v} for v in values
              for op in ("is", "is_not", "lt", "lte", "gt", "gte")]
        f += [{"field": name, "operator": "between", "value": [values[1], values[2]]}
              if name != "rate" else {"field": name, "operator": "between", "value": values}]
        f += [{"field": name, "operator": op} for op in ("empty", "not_empty")]
    f += [{"field": "active", "operator": op} for op in ("checked", "not_checked")]
    f += [{"field": "kind", "operator": op, "value": "lead"} for op in ("is", "is_not")]
    f += [{"field": "kind", "operator": op, "value": ["lead", "partner"]}
          for op in ("one_of", "none_of")]
    f += [{"field": "kind", "operator": op} for op in ("any", "empty", "not_empty")]
    f += [{"field": "tags", "operator": op, "value": "red"} for op in ("is", "is_not")]
    f += [{"field": "tags", "operator": op, "value": ["green", "red"]}
          for op in ("one_of", "all_of", "none_of")]
    f += [{"field": "tags", "operator": op} for op in ("any", "empty", "not_empty")]
    for name in ("account_id", "owner_id"):
        f += [{"field": name, "operator": op} for op in ("empty", "not_empty")]
    return f


def date_points(with_field: bool) -> list[dict]:
    points = [{"kind": "today"}, {"kind": "date", "date": "2024-02-29"},
              {"kind": "date", "date": "2024-12-31"}]
    points += [{"kind": side, "period": p} for side in ("start_of", "end_of") for p in PERIODS]
    points += [{"kind": "offset", "amount": a, "unit": u} for u in UNITS for a in (-2, 1)]
    if with_field:
        points.append({"kind": "field", "field": "end_on"})
    return points


def date_filters(name: str) -> list[dict]:
    """Every date filter of §7.5.5 on ``name`` (a date or a date-and-time field)."""
    is_date = name != "seen_at"
    f = [{"field": name, "operator": op} for op in ("any", "empty", "not_empty")]
    if is_date:
        f += [{"field": name, "operator": "month", "value": m} for m in (2, 3, 10, 12)]
    f += [{"field": name, "operator": "current", "period": p} for p in PERIODS]
    for point in date_points(is_date):
        f += [{"field": name, "operator": op, "date": point} for op in ("before", "after", "on")]
    firsts = [{"kind": "date", "date": "2024-01-31"}, {"kind": "start_of", "period": "month"},
              {"kind": "end_of", "period": "fiscal_quarter"},
              {"kind": "offset", "amount": -1, "unit": "months"}]
    if is_date:
        firsts.append({"kind": "field", "field": "end_on"})
    for first in firsts:
        for second in date_points(is_date)[::3] + [first]:
            f.append({"field": name, "operator": "between", "from": first, "to": second})
    anchors = [None, {"kind": "date", "date": "2024-03-31"}, {"kind": "end_of", "period": "week"}]
    if is_date:
        anchors.append({"kind": "field", "field": "end_on"})
    for anchor in anchors:
        for unit in UNITS:
            for direction in ("range", "next", "previous"):
                spec = {"field": name, "operator": "within", "amount": 2, "unit": unit,
                        "direction": direction}
                if anchor is not None:
                    spec["anchor"] = anchor
                f.append(spec)
    f.append({"field": name, "operator": "within", "amount": 0, "unit": "days"})
    return f


def groups(filters: list[dict]) -> list[dict]:
    """Whole conditions: every group type over a few filters, groups nested in groups, and
    each group type empty at the root (all of nothing holds, any of nothing does not)."""
    picked = [filters[i] for i in (0, 7, 20, 40, 60) if i < len(filters)]
    made = [{"group": g, "conditions": picked[:n]} for g in conditions.GROUPS for n in (1, 2, 3)]
    made.append({"group": "none_of", "conditions": [
        {"group": "any_of", "conditions": picked[:2]},
        {"group": "not_all_of", "conditions": [picked[2], {"group": "all_of",
                                                           "conditions": picked[3:]}]}]})
    return [root(g) for g in made] + [{"group": g, "conditions": []} for g in conditions.GROUPS]


@pytest.fixture
def probes(tmp_path, database_url):
    site, admin = probe_site(tmp_path, database_url)
    yield site, admin
    site.close()


def disagreements(site, records, condition, now, date_settings) -> str | None:
    compiled = conditions.compile_condition(site, MODULE, condition)
    table = site.records.table(site.registry.modules[MODULE])
    in_sql = selected(site, compiled.to_sql(table, now=now, settings=date_settings))
    in_memory = {r["id"] for r in records
                 if compiled.evaluate(r, None, now=now, settings=date_settings)}
    if in_sql == in_memory:
        return None
    by_id = {r["id"]: r for r in records}
    field = condition.get("field")

    def show(ids):
        return sorted(repr(by_id[i].get(field)) if field else by_id[i]["name"] for i in ids)[:5]
    return (f"{condition} at {now} {date_settings}: SQL only {show(in_sql - in_memory)}, "
            f"memory only {show(in_memory - in_sql)}")


def root(*filters) -> dict:
    return {"group": "all_of", "conditions": list(filters)}


def test_every_operator_and_group_agrees_in_memory_and_in_sql(probes):
    site, admin = probes
    now, date_settings = CLOCKS[0]
    records = fill(site, admin, now.date())
    filters = [dict(f, when="current") for f in value_filters()]
    for name in ("account_id", "owner_id"):  # links: the ids the probes point to
        ids = sorted({r[name] for r in records if r[name]})
        filters += [{"field": name, "when": "current", "operator": op, "value": ids[0]}
                    for op in ("is", "is_not")]
        filters += [{"field": name, "when": "current", "operator": op, "value": ids}
                    for op in ("one_of", "none_of")]
    problems = [d for f in filters
                if (d := disagreements(site, records, root(f), now, date_settings))]
    problems += [d for g in groups(filters)
                 if (d := disagreements(site, records, g, now, date_settings))]
    assert problems == []
    # and the cases are not all trivially empty or full: most select some but not all
    table = site.records.table(site.registry.modules[MODULE])
    sizes = [len(selected(site, conditions.compile_condition(site, MODULE, root(f))
                          .to_sql(table, now=now))) for f in filters]
    assert sum(0 < size < len(records) for size in sizes) > len(filters) * 0.7


@pytest.mark.parametrize("clock", range(len(CLOCKS)))
def test_every_date_filter_agrees_in_memory_and_in_sql(probes, clock):
    site, admin = probes
    now, date_settings = CLOCKS[clock]
    records = fill(site, admin, now.date())
    cases = [dict(f, when="current") for name in ("start_on", "seen_at")
             for f in date_filters(name)]
    problems = [d for f in cases
                if (d := disagreements(site, records, root(f), now, date_settings))]
    assert problems == []
    table = site.records.table(site.registry.modules[MODULE])
    sizes = [len(selected(site, conditions.compile_condition(site, MODULE, root(f))
                          .to_sql(table, now=now, settings=date_settings))) for f in cases]
    assert sum(0 < size < len(records) for size in sizes) > len(cases) * 0.6


ALL_FILTERS = [dict(f, when="current") for f in value_filters()] + \
    [dict(f, when="current") for name in ("start_on", "seen_at") for f in date_filters(name)
     if f["operator"] != "within" or f["unit"] in ("days", "months")]


def trees(depth: int = 3):
    leaf = st.sampled_from(ALL_FILTERS)
    return st.recursive(leaf, lambda children: st.builds(
        lambda g, cs: {"group": g, "conditions": cs}, st.sampled_from(list(conditions.GROUPS)),
        st.lists(children, min_size=1, max_size=4)), max_leaves=8)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=trees(), clock=st.sampled_from(CLOCKS))
def test_random_condition_trees_agree(probes_filled, tree, clock):
    site, records = probes_filled
    now, date_settings = clock
    assert disagreements(site, records, root(tree), now, date_settings) is None


@pytest.fixture
def probes_filled(probes):
    site, admin = probes
    return site, fill(site, admin, dt.date(2024, 3, 31))


def test_dates_count_in_the_sites_time_zone(probes):
    """A date-and-time is on the day it is in Paris: 23:30 UTC on New Year's Eve is already
    "today" on Jan 1 there, and not yet in UTC."""
    site, admin = probes
    eve = dt.datetime(2024, 12, 31, 23, 30, tzinfo=dt.UTC)
    record = site.records.create(MODULE, {"name": "Late", "seen_at": eve}, admin)
    today = conditions.compile_condition(site, MODULE, root(
        {"field": "seen_at", "operator": "current", "period": "day"}))
    new_year = dt.datetime(2025, 1, 1, 10, 0, tzinfo=dt.UTC)
    paris = DateSettings("Europe/Paris")
    assert today.evaluate(record, now=new_year, settings=paris)
    assert not today.evaluate(record, now=new_year, settings=DateSettings("UTC"))
    table = site.records.table(site.registry.modules[MODULE])
    assert selected(site, today.to_sql(table, now=new_year, settings=paris)) == {record["id"]}
    assert selected(site, today.to_sql(table, now=new_year, tz=PARIS)) == {record["id"]}
    assert selected(site, today.to_sql(table, now=new_year)) == set()  # UTC by default
