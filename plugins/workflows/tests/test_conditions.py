"""Workflow conditions beyond the SQL agreement: the five "when" options on a save, the
explanation the editor shows, the calendar (weeks, fiscal years, month ends), what a scan
compiles to, and bad input — every problem named with where it is, a field the Studio
removed included."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import time_machine

from plugins.workflows import dates
from plugins.workflows.conditions import ConditionError, compile_condition, validate
from plugins.workflows.dates import DateSettings
from plugins.workflows.tests.probes import MODULE, probe_site, selected


@pytest.fixture
def probes(tmp_path, database_url):
    site, admin = probe_site(tmp_path, database_url)
    yield site, admin
    site.close()


def root(*items, group="all_of") -> dict:
    return {"group": group, "conditions": list(items)}


# -- when: a save's before and after ------------------------------------------------------

def test_the_five_when_options_on_a_save(probes):
    site, _admin = probes

    def holds(when, record, previous, **operator):
        spec = {"field": "kind", "when": when, **operator}
        return compile_condition(site, MODULE, root(spec)).evaluate(record, previous)

    lead, customer, blank = {"kind": "lead"}, {"kind": "customer"}, {"kind": None}
    to_customer = {"operator": "is", "value": "customer"}
    # value changed to
    assert holds("changed_to", customer, lead, **to_customer)
    assert not holds("changed_to", customer, customer, **to_customer)  # no change
    assert not holds("changed_to", lead, customer, **to_customer)  # changed, to another
    assert holds("changed_to", customer, None, **to_customer)  # a new record created so
    # check current / previous value
    assert holds("current", customer, lead, **to_customer)
    assert not holds("previous", customer, lead, **to_customer)
    assert holds("previous", lead, customer, **to_customer)
    assert holds("previous", customer, None, operator="empty")  # nothing before a creation
    assert not holds("previous", customer, None, **to_customer)
    # value is changed / unchanged (no operator)
    assert holds("changed", customer, lead) and not holds("unchanged", customer, lead)
    assert holds("unchanged", lead, lead) and not holds("changed", lead, lead)
    assert holds("changed", lead, None) and holds("unchanged", blank, None)
    assert holds("unchanged", {"kind": ""}, {"kind": None})  # blank is blank


def test_a_change_is_judged_on_what_the_value_means(probes):
    site, _ = probes
    changed = {name: compile_condition(site, MODULE, root({"field": name, "when": "changed"}))
               for name in ("tags", "amount", "seen_at")}
    assert not changed["tags"].evaluate({"tags": ["red", "blue"]}, {"tags": ["blue", "red"]})
    assert changed["tags"].evaluate({"tags": ["red"]}, {"tags": ["blue", "red"]})
    assert not changed["tags"].evaluate({"tags": []}, {"tags": None})
    assert not changed["amount"].evaluate({"amount": Decimal("12.50")},
                                          {"amount": Decimal("12.5")})
    instant = dt.datetime(2024, 3, 31, 1, 0, tzinfo=dt.UTC)
    assert not changed["seen_at"].evaluate({"seen_at": instant},
                                           {"seen_at": instant.astimezone(dates.ZoneInfo("Europe/Paris"))})


def test_the_guides_temperature_example_on_real_saves(probes):
    """"Assigned leads with a promising temperature": kind changed to customer, assigned,
    amount at least 100 — evaluated on what the record service returns before and after."""
    site, admin = probes
    condition = root({"field": "kind", "when": "changed_to", "operator": "one_of",
                      "value": ["customer", "partner"]},
                     {"field": "owner_id", "when": "current", "operator": "not_empty"},
                     {"group": "any_of", "conditions": [
                         {"field": "amount", "when": "current", "operator": "gte",
                          "value": "100"},
                         {"field": "tags", "when": "current", "operator": "is",
                          "value": "red"}]})
    assert validate(site, MODULE, condition) == []
    compiled = compile_condition(site, MODULE, condition)
    created = site.records.create(MODULE, {"name": "P", "kind": "lead", "amount": "250"}, admin)
    assert not compiled.evaluate(created, None)  # a lead, and nobody's
    updated = site.records.update(MODULE, created["id"], {"kind": "customer",
                                                          "owner_id": admin.id}, admin,
                                  base=created)
    assert compiled.evaluate(updated, created)
    again = site.records.update(MODULE, created["id"], {"name": "P2"}, admin, base=updated)
    assert not compiled.evaluate(again, updated)  # no longer "changed to"


def test_explain_says_which_parts_held(probes):
    site, _ = probes
    compiled = compile_condition(site, MODULE, root(
        {"field": "kind", "when": "current", "operator": "is", "value": "lead"},
        {"group": "none_of", "conditions": [
            {"field": "quantity", "when": "current", "operator": "gt", "value": 3},
            {"field": "summary", "when": "current", "operator": "contains", "value": "acme"}]}))
    tree = compiled.explain({"kind": "lead", "quantity": 5, "summary": "Other"})
    assert tree["held"] is False
    assert [(c["where"], c["held"]) for c in tree["children"]] == [
        ("condition 1", True), ("group 2", False)]
    assert [(c["where"], c["held"]) for c in tree["children"][1]["children"]] == [
        ("group 2 › condition 1", True), ("group 2 › condition 2", False)]
    assert tree["children"][1]["children"][0]["spec"]["field"] == "quantity"


# -- the calendar --------------------------------------------------------------------------

def test_periods_weeks_and_fiscal_years():
    april = DateSettings(fiscal_year_start=4)
    day = dt.date(2024, 3, 31)  # a Sunday, the last day of an April fiscal year
    assert dates.period("week", day, DateSettings(week_start=0)) == \
        (dt.date(2024, 3, 25), dt.date(2024, 3, 31))
    assert dates.period("week", day, DateSettings(week_start=6)) == \
        (dt.date(2024, 3, 31), dt.date(2024, 4, 6))
    assert dates.period("fiscal_year", day, april) == (dt.date(2023, 4, 1), dt.date(2024, 3, 31))
    assert dates.period("fiscal_year", dt.date(2024, 4, 1), april) == \
        (dt.date(2024, 4, 1), dt.date(2025, 3, 31))
    assert dates.period("fiscal_quarter", day, april) == (dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert dates.period("fiscal_quarter", dt.date(2024, 5, 15), april) == \
        (dt.date(2024, 4, 1), dt.date(2024, 6, 30))
    assert dates.period("fiscal_quarter", dt.date(2024, 2, 1), DateSettings(fiscal_year_start=11)) \
        == (dt.date(2024, 2, 1), dt.date(2024, 4, 30))
    assert dates.period("quarter", dt.date(2024, 2, 29), april) == \
        (dt.date(2024, 1, 1), dt.date(2024, 3, 31))
    assert dates.period("month", dt.date(2024, 2, 10), april) == \
        (dt.date(2024, 2, 1), dt.date(2024, 2, 29))
    assert dates.add_months(dt.date(2024, 1, 31), 1) == dt.date(2024, 2, 29)
    assert dates.add_months(dt.date(2024, 2, 29), 12) == dt.date(2025, 2, 28)
    assert dates.add_months(dt.date(2024, 3, 31), -1) == dt.date(2024, 2, 29)
    assert dates.shift(dt.date(2024, 5, 31), -1, "fiscal_quarters") == dt.date(2024, 2, 29)


def test_paris_days_start_at_its_midnights_across_clock_changes():
    paris = dates.ZoneInfo("Europe/Paris")
    assert dates.day_start(dt.date(2024, 3, 31), paris) == dt.datetime(2024, 3, 30, 23, 0,
                                                                      tzinfo=dt.UTC)
    assert dates.day_start(dt.date(2024, 4, 1), paris) == dt.datetime(2024, 3, 31, 22, 0,
                                                                     tzinfo=dt.UTC)
    assert dates.day_start(dt.date(2024, 10, 28), paris) == dt.datetime(2024, 10, 27, 23, 0,
                                                                       tzinfo=dt.UTC)


def test_the_company_calendar_gives_the_dates(probes):
    site, _admin = probes
    assert dates.date_settings(site) == DateSettings()
    # a site whose workflows setting predates the company calendar still counts by it
    with site.engine.begin() as conn:
        table = site.tables.tables["crbm_settings"]
        conn.execute(table.insert().values(key="workflows", value='{"timezone": "Europe/Paris", '
                                           '"week_start": 6, "fiscal_year_start": 4}'))
        site.settings_changed(conn)
    assert dates.date_settings(site) == DateSettings("Europe/Paris", 6, 4)
    # once Admin -> Company calendar is saved, it alone counts
    site.set_setting("calendar", {"time_zone": "America/Toronto", "week_start": 0,
                                  "fiscal_year_start": 7, "work_day_start": "09:00",
                                  "work_day_end": "17:00"})
    assert dates.date_settings(site) == DateSettings("America/Toronto", 0, 7)


def test_today_is_the_current_day_unless_a_clock_is_given(probes):
    site, admin = probes
    compiled = compile_condition(site, MODULE, root(
        {"field": "start_on", "when": "current", "operator": "on", "date": {"kind": "today"}}))
    record = {"start_on": dt.date(2024, 2, 29)}
    with time_machine.travel(dt.datetime(2024, 2, 29, 23, 30, tzinfo=dt.UTC), tick=False):
        assert compiled.evaluate(record)  # UTC by default
        assert not compiled.evaluate(record, tz="Europe/Paris")  # already March 1st there
    with time_machine.travel(dt.datetime(2024, 3, 1, 9, 0, tzinfo=dt.UTC), tick=False):
        assert not compiled.evaluate(record)
        table = site.records.table(site.registry.modules[MODULE])
        created = site.records.create(MODULE, {"name": "Leap", "start_on": "2024-02-29"}, admin)
        assert selected(site, compiled.to_sql(table)) == set()
        assert selected(site, compiled.to_sql(table, now=dt.datetime(2024, 2, 29, 9, 0,
                                                                     tzinfo=dt.UTC))) \
            == {created["id"]}


# -- SQL for scans --------------------------------------------------------------------------

def test_a_scan_compares_columns_with_computed_bounds(probes):
    """Date filters compile to ranges on the bare column (an index serves them)."""
    site, _ = probes
    table = site.records.table(site.registry.modules[MODULE])
    compiled = compile_condition(site, MODULE, root(
        {"field": "seen_at", "when": "current", "operator": "current", "period": "month"},
        {"field": "start_on", "when": "current", "operator": "before",
         "date": {"kind": "offset", "amount": -2, "unit": "weeks"}}))
    clause = compiled.to_sql(table, now=dt.datetime(2024, 3, 15, tzinfo=dt.UTC),
                             settings=DateSettings("Europe/Paris"))
    sql = str(clause.compile(site.engine, compile_kwargs={"literal_binds": True}))
    assert "wf_probes.seen_at >= '2024-02-29 23:00:00" in sql
    assert "wf_probes.seen_at < '2024-03-31 22:00:00" in sql  # April starts in summer time
    assert "wf_probes.start_on <= '2024-02-29'" in sql  # 2 weeks before, "before": the day before


def test_a_scan_refuses_what_only_a_save_can_tell(probes):
    site, _ = probes
    condition = root({"field": "kind", "when": "changed_to", "operator": "is", "value": "lead"},
                     {"field": "seen_at", "when": "current", "operator": "month", "value": 3})
    assert validate(site, MODULE, condition) == []  # fine for a save-triggered workflow
    problems = [str(p) for p in validate(site, MODULE, condition, scan=True)]
    assert problems == [
        ('Condition 1: "Value changed to" needs the value before a save: a scheduled scan '
        'sees only current values'),
        ('Condition 2: "select month" on Seen at, a date and time, works on saves only: a '
        "scan cannot tell the month in the site's time zone")]
    compiled = compile_condition(site, MODULE, condition)
    with pytest.raises(ConditionError) as caught:
        compiled.to_sql(site.records.table(site.registry.modules[MODULE]))
    assert "Condition 1" in str(caught.value)


# -- bad input --------------------------------------------------------------------------

def problems_of(site, condition, **kw) -> list[str]:
    return [str(p) for p in validate(site, MODULE, condition, **kw)]


def test_every_problem_is_named_with_where_it_is(probes):
    site, _ = probes
    condition = root(
        {"field": "kind", "when": "current", "operator": "is", "value": "lead"},
        {"group": "any_of", "conditions": [
            {"field": "quantity", "when": "current", "operator": "gt", "value": 1},
            {"field": "amount", "when": "current", "operator": "contains", "value": "1"},
            {"field": "temperature", "when": "current", "operator": "is", "value": "hot"},
            {"field": "quantity", "when": "current", "operator": "gt", "value": "many"},
            {"field": "kind", "when": "current", "operator": "is", "value": "vip"},
            {"field": "kind", "when": "sometimes", "operator": "is", "value": "lead"},
            {"field": "kind", "when": "changed", "operator": "is"},
            {"field": "account_name", "when": "current", "operator": "empty"},
            {"group": "maybe_of", "conditions": []},
            {"group": "all_of", "conditions": []}]},
        {"field": "start_on", "when": "current", "operator": "before",
         "date": {"kind": "field", "field": "seen_at"}},
        {"field": "start_on", "when": "current", "operator": "within", "amount": -1,
         "unit": "fortnights", "direction": "around"},
        {"field": "start_on", "when": "current", "operator": "on",
         "date": {"kind": "date", "date": "2024-02-30"}},
        {"field": "quantity", "when": "current", "operator": "between", "value": [5, 1]},
        {"field": "summary", "when": "current", "operator": "is", "value": ""},
        "oops")
    assert problems_of(site, condition) == [
        ("Group 2 › condition 2: 'contains' is not an operator for Amount (a number): use one "
        "of is, is_not, lt, lte, gt, gte, between, empty, not_empty"),
        "Group 2 › condition 3: field 'temperature' no longer exists in Probes",
        "Group 2 › condition 4: the value for Quantity: 'many' is not a whole number",
        "Group 2 › condition 5: the value for Kind: 'vip' is not an option of Kind",
        ("Group 2 › condition 6: unknown \"when\" 'sometimes': use one of changed_to, "
        "current, previous, changed, unchanged"),
        'Group 2 › condition 7: "Value is changed" takes no operator',
        ("Group 2 › condition 8: Account name is shown from another record: conditions cannot "
        "test it"),
        ("Group 2 › group 9: unknown group 'maybe_of': use one of all_of, any_of, none_of, "
        "not_all_of"),
        "Group 2 › group 9: the group has no conditions",
        "Group 2 › group 10: the group has no conditions",
        ("Condition 3: date: comparing with another field works between date fields only "
        "(Start on and Seen at)"),
        "Condition 4: the amount must be a whole number from 0 to 1000",
        ("Condition 4: unknown unit 'fortnights': use one of days, weeks, months, quarters, "
        "years, fiscal_quarters, fiscal_years"),
        "Condition 4: unknown direction 'around': use one of range, next, previous",
        "Condition 5: date: '2024-02-30' is not a date (YYYY-MM-DD)",
        "Condition 6: the value for Quantity: the range starts after it ends",
        'Condition 7: the value for Summary: a value is needed (use "empty" for none)',
        'Condition 8: must be a filter (with a "field") or a group (with a "group")',
    ]
    with pytest.raises(ConditionError):
        compile_condition(site, MODULE, condition)


def test_the_whole_condition_must_be_a_group_of_json(probes):
    site, _ = probes
    assert problems_of(site, "{not json") == \
        [("Conditions: not valid JSON: Expecting property name enclosed in double quotes: "
         "line 1 column 2 (char 1)")]
    assert problems_of(site, [{"field": "kind"}]) == \
        ['Conditions: must be a group: {"group": "all_of", "conditions": [...]}']
    assert [str(p) for p in validate(site, "nowhere", root())] == \
        ["Conditions: module 'nowhere' does not exist"]
    deep = root()
    for _ in range(25):
        deep = root(deep)
    assert problems_of(site, deep)[0].endswith("groups are nested more than 20 deep")
    assert problems_of(site, None) == [] and problems_of(site, {}) == []  # no condition: always
    assert compile_condition(site, MODULE, None).evaluate({})


def test_a_field_removed_in_the_studio_is_a_clear_failure(site, admin):
    """Saved while the field existed; after the Studio removed it the workflow's save is
    refused and running it fails with the field named — no error from inside a save."""
    site.studio.save_field(admin, "accounts", "temperature", {"type": "text"}, new=True)
    condition = root({"group": "any_of", "conditions": [
        {"field": "name", "when": "current", "operator": "starts_with", "value": "A"},
        {"field": "temperature", "when": "changed_to", "operator": "is", "value": "hot"}]})
    assert validate(site, "accounts", condition) == []
    compiled = compile_condition(site, "accounts", condition)
    assert compiled.evaluate({"name": "Zed", "temperature": "Hot"}, {"temperature": "cold"})
    site.studio.remove_field(admin, "accounts", "temperature")
    assert [str(p) for p in validate(site, "accounts", condition)] == \
        ["Group 1 › condition 2: field 'temperature' no longer exists in Accounts"]
    with pytest.raises(ConditionError) as caught:
        compile_condition(site, "accounts", condition)
    assert [p.path for p in caught.value.problems] == [(0, 1)]
    assert str(caught.value) == \
        "Group 1 › condition 2: field 'temperature' no longer exists in Accounts"


def test_problems_speak_french(probes):
    from core.kernel import i18n
    from tests.pack_util import SHIPPED

    site, _ = probes
    catalog = i18n.translations("fr", [SHIPPED / "lang_fr" / "locale"])
    [problem] = validate(site, MODULE, root(root({"field": "gone", "when": "current",
                                                  "operator": "empty"})))
    assert problem.text(catalog.gettext) == \
        "Groupe 1 › condition 1\xa0: le champ 'gone' n'existe plus dans Probes"


def test_a_compiled_condition_is_made_once_per_registry(probes):
    site, admin = probes
    text = '{"group": "all_of", "conditions": [{"field": "kind", "operator": "empty"}]}'
    first = compile_condition(site, MODULE, text)
    assert compile_condition(site, MODULE, text) is first
    assert compile_condition(site.registry, MODULE, text) is first
    site.studio.save_field(admin, MODULE, "mood", {"type": "text"}, new=True)
    assert compile_condition(site, MODULE, text) is not first  # a new registry
