"""Recurring meetings, calls and tasks as an organizer meets them: a "Repeat" rule (RFC 5545
RRULE) on the series, its occurrences as ordinary records made ahead of time, the
organizer's local time kept across DST, editing one occurrence or "this and following",
and a rule that asks for too much refused or capped with the cap named."""
import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from dateutil import rrule as du

from core.kernel.errors import ValidationError
from core.kernel.records import SYSTEM_USER
from plugins.activities import recurrence
from tests.pack_util import install_folder

PARIS = ZoneInfo("Europe/Paris")
NOW = dt.datetime(2027, 2, 22, 8, 0, tzinfo=dt.UTC)  # a Monday; 90 days ahead: late May


@pytest.fixture(autouse=True)
def early_2027(time_machine):
    time_machine.move_to(NOW)


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS).astimezone(dt.UTC)


def series_of(site, admin, module, series_id, *, deleted=False):
    table = site.records.table(site.registry.module(module))
    with site.engine.connect() as conn:
        stmt = sa.select(table).where(table.c.recurrence_series_id == series_id)
        if not deleted:
            stmt = stmt.where(table.c.deleted.is_(False))
        order = [table.c.date_start] + ([table.c.date_due] if "date_due" in table.c else [])
        return [dict(r) for r in conn.execute(stmt.order_by(*order)).mappings()]


def starts(rows):
    return [r["date_start"].replace(tzinfo=dt.UTC) if r["date_start"].tzinfo is None
            else r["date_start"] for r in rows]


def weekly_meeting(site, admin, rule="FREQ=WEEKLY;BYDAY=MO;COUNT=12", **more):
    return site.records.create("meetings", {
        "name": "Weekly sales meeting", "location": "Room 2",
        "date_start": paris(2027, 3, 1, 10, 0), "date_end": paris(2027, 3, 1, 11, 0),
        "recurrence_rule": rule, "recurrence_tz": "Europe/Paris", **more}, admin)


def test_weekly_meeting_stays_at_ten_paris_time_across_the_march_dst_change(site, admin):
    series = weekly_meeting(site, admin)
    assert series["recurrence_rule"] == "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=12"
    rows = series_of(site, admin, "meetings", series["id"])
    assert len(rows) == 11  # the series itself is the first of 12
    local = [s.astimezone(PARIS) for s in starts(rows)]
    assert {(t.hour, t.minute) for t in local} == {(10, 0)}
    assert all(t.weekday() == 0 for t in local)
    utc_hours = [s.astimezone(dt.UTC).hour for s in starts(rows)]
    assert utc_hours[:3] == [9, 9, 9] and utc_hours[-1] == 8  # CET, then CEST from 28 March
    assert all(r["name"] == "Weekly sales meeting" and r["location"] == "Room 2"
               and r["recurrence_detached"] is False for r in rows)
    first = rows[0]  # an hour long like the series
    assert first["date_end"] - first["date_start"] == dt.timedelta(hours=1)
    # ordinary records: the list (with access control) sees them
    assert site.records.count("meetings", admin) == 12


def test_two_hundred_occurrences_equal_dateutils_own_expansion(site, admin):
    series = site.records.create("calls", {
        "name": "Stand-up", "date_start": paris(2027, 1, 4, 9, 30),
        "recurrence_rule": "FREQ=DAILY;COUNT=200", "recurrence_tz": "Europe/Paris"}, admin)
    recurrence.materialise(site, "calls", [series["id"]], now=NOW, days_ahead=400)
    rows = series_of(site, admin, "calls", series["id"])
    expected = list(du.rrulestr("FREQ=DAILY;COUNT=200",
                                dtstart=dt.datetime(2027, 1, 4, 9, 30, tzinfo=PARIS)))
    assert len(expected) == 200
    got = [series["date_start"], *starts(rows)]
    assert got == [e.astimezone(dt.UTC) for e in expected]  # across March and October
    assert {g.astimezone(PARIS).hour for g in got} == {9}
    assert {g.hour for g in got} == {7, 8}


def test_materialising_twice_creates_nothing_twice(site, admin):
    series = weekly_meeting(site, admin, "FREQ=DAILY")  # endless: up to the horizon
    first = series_of(site, admin, "meetings", series["id"])
    assert recurrence.materialise(site, "meetings", now=NOW, days_ahead=90) == 0
    assert len(series_of(site, admin, "meetings", series["id"])) == len(first)
    # the unique key refuses a second copy even behind the function's back
    table = site.records.table(site.registry.module("meetings"))
    with pytest.raises(sa.exc.IntegrityError), site.engine.begin() as conn:
        conn.execute(table.insert().values({**first[0], "id": "x" * 36}))


def test_the_scheduled_task_works_within_the_admin_limits(site, admin, time_machine):
    time_machine.move_to(dt.datetime(2027, 1, 4, 8, tzinfo=dt.UTC))
    site.set_setting("recurrence", {"days_ahead": 10, "per_run": 3})
    series = site.records.create("tasks", {"name": "Daily check", "date_due": "2027-01-04",
                                           "recurrence_rule": "FREQ=DAILY"}, admin)
    # on save: the next 10 days at once
    assert [r["date_due"] for r in series_of(site, admin, "tasks", series["id"])] == \
        [dt.date(2027, 1, d) for d in range(5, 15)]
    later = dt.datetime(2027, 1, 10, 8, tzinfo=dt.UTC)  # the horizon is now the 20th
    assert recurrence.run_task(site, later) == "created 3 occurrences"
    assert recurrence.run_task(site, later) == "created 3 occurrences"
    assert recurrence.run_task(site, later) == "created 0 occurrences"
    rows = series_of(site, admin, "tasks", series["id"])
    assert [r["date_due"] for r in rows] == [dt.date(2027, 1, d) for d in range(5, 21)]


def test_an_endless_or_huge_rule_is_capped_and_says_the_cap(site, admin):
    with pytest.raises(ValidationError) as caught:
        weekly_meeting(site, admin, "FREQ=DAILY;COUNT=1000000")
    message = str(caught.value.errors["recurrence_rule"])
    assert "1000" in message and "1000000" in message
    assert site.records.count("meetings", admin) == 0
    series = weekly_meeting(site, admin, "FREQ=DAILY")
    made = recurrence.materialise(site, "meetings", now=NOW, days_ahead=100_000,
                                  budget=100_000)
    assert made + len(series_of(site, admin, "meetings", series["id"])) <= 1000 * 2
    assert len(series_of(site, admin, "meetings", series["id"])) == 999  # 1000 with the series


@pytest.mark.parametrize("bad", ["FREQ=SOMETIMES", "FREQ=WEEKLY;BYDAY=XX", "hello",
                                 "FREQ=MINUTELY"])
def test_a_bad_rule_is_refused_naming_the_field_and_nothing_stored(site, admin, bad):
    with pytest.raises(ValidationError) as caught:
        weekly_meeting(site, admin, bad)
    assert set(caught.value.errors) == {"recurrence_rule"}
    assert site.records.count("meetings", admin) == 0


def test_exdate_leaves_out_an_occurrence(site, admin):
    series = weekly_meeting(site, admin, "RRULE:FREQ=WEEKLY;COUNT=4\nEXDATE:20270308T090000Z")
    assert [s.date() for s in starts(series_of(site, admin, "meetings", series["id"]))] == \
        [dt.date(2027, 3, 15), dt.date(2027, 3, 22)]


def test_editing_one_occurrence_detaches_it_and_the_series_leaves_it_alone(site, admin):
    series = weekly_meeting(site, admin)
    one = series_of(site, admin, "meetings", series["id"])[2]
    # the calendar's drag: an ordinary update through RecordService
    moved = site.records.update("meetings", one["id"], {
        "date_start": one["date_start"] + dt.timedelta(hours=2),
        "date_end": one["date_end"] + dt.timedelta(hours=2)}, admin)
    assert moved["recurrence_detached"] is True
    # marking another held does not detach it
    other = series_of(site, admin, "meetings", series["id"])[0]
    assert site.records.update("meetings", other["id"], {"status": "held"},
                               admin)["recurrence_detached"] is False
    # the series is renamed: the others follow, the detached one does not move back
    site.records.update("meetings", series["id"], {"name": "Sales weekly"}, admin)
    rows = {r["id"]: r for r in series_of(site, admin, "meetings", series["id"])}
    assert len(rows) == 11
    assert rows[one["id"]]["name"] == "Weekly sales meeting"
    assert rows[one["id"]]["date_start"] == moved["date_start"].replace(tzinfo=None) or \
        rows[one["id"]]["date_start"] == moved["date_start"]
    assert {r["name"] for i, r in rows.items() if i != one["id"]} == {"Sales weekly"}


def test_this_and_following_splits_the_series(site, admin):
    series = weekly_meeting(site, admin, "FREQ=WEEKLY;BYDAY=MO")  # endless
    rows = series_of(site, admin, "meetings", series["id"])
    pivot = rows[4]  # 5 April
    new = recurrence.split(site, "meetings", pivot["id"], {
        "date_start": pivot["date_start"].replace(tzinfo=dt.UTC) + dt.timedelta(hours=4),
        "date_end": pivot["date_end"].replace(tzinfo=dt.UTC) + dt.timedelta(hours=4),
        "location": "Room 9"}, admin, rule="FREQ=WEEKLY;BYDAY=MO;COUNT=5")
    assert new["recurrence_series_id"] is None and new["recurrence_rule"].endswith("COUNT=5")
    old = site.records.get("meetings", series["id"], admin)
    assert "UNTIL=20270405T" in old["recurrence_rule"]
    kept = series_of(site, admin, "meetings", series["id"])
    assert [s.astimezone(PARIS).date() for s in starts(kept)] == \
        [dt.date(2027, 3, d) for d in (8, 15, 22, 29)]
    after = series_of(site, admin, "meetings", new["id"])
    assert len(after) == 4
    assert {(s.astimezone(PARIS).hour, r["location"]) for s, r in zip(starts(after), after,
                                                                       strict=True)} == \
        {(14, "Room 9")}


def test_the_rule_in_words_english_and_french(site, admin):
    from core.kernel import i18n

    install_folder(site, "lang_fr")
    en = i18n.formatter(i18n.Preferences(language="en"), site.locale_dirs)
    fr = i18n.formatter(i18n.Preferences(language="fr"), site.locale_dirs)
    rule = "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=MO,WE;COUNT=10"
    assert recurrence.describe(en, rule) == "Every 2 weeks on Monday, Wednesday, 10 times"
    assert recurrence.describe(fr, rule) == "Toutes les 2 semaines le Lundi, Mercredi, 10 fois"
    assert "1000" in recurrence.describe(en, "RRULE:FREQ=DAILY")
    assert recurrence.describe(en, "RRULE:FREQ=MONTHLY;BYDAY=2TU") == \
        "Every month on the second Tuesday — occurrences are created ahead of time, at most " \
        "1000 in all"


def test_the_edit_form_repeat_section_builds_the_rule_and_the_detail_says_it(site, web):
    page = web.get("/m/meetings/new")
    assert page.status_code == 200
    assert 'name="recurrence_rule__freq"' in page.text
    form = {"_csrf": web.csrf, "name": "Board review",
            "status": "planned", "date_start": "2027-03-02T10:00",
            "date_end": "2027-03-02T11:00", "recurrence_rule__freq": "MONTHLY",
            "recurrence_rule__interval": "1", "recurrence_rule__monthly": "weekday",
            "recurrence_rule__end": "count", "recurrence_rule__count": "6"}
    saved = web.post("/m/meetings/new", data=form, follow_redirects=True)
    assert saved.status_code == 200, saved.text[:2000]
    assert "Every month on the first Tuesday, 6 times" in saved.text
    record_id = re.search(r"/m/meetings/([0-9a-f-]{36})", str(saved.url)).group(1)
    record = site.records.get("meetings", record_id, SYSTEM_USER)
    assert record["recurrence_rule"] == "RRULE:FREQ=MONTHLY;INTERVAL=1;BYDAY=1TU;COUNT=6"
    # a bad count: the field named, nothing stored
    bad = web.post("/m/meetings/new", data={**form, "recurrence_rule__count": "0"})
    assert bad.status_code in (200, 400, 422)
    assert "the number of times must be at least 1" in bad.text



def test_deleting_a_series_takes_its_future_occurrences_but_not_edited_ones(site, admin,
                                                                           time_machine):
    series = weekly_meeting(site, admin)  # 1 March to 17 May
    rows = series_of(site, admin, "meetings", series["id"])
    edited = rows[-1]
    site.records.update("meetings", edited["id"], {"location": "Rooftop"}, admin)
    time_machine.move_to(dt.datetime(2027, 3, 20, tzinfo=dt.UTC))
    site.records.delete("meetings", series["id"], admin)
    meetings = site.registry.module("meetings")
    table = site.records.table(meetings)
    with site.engine.connect() as conn:
        left = conn.execute(sa.select(table.c.date_start, table.c.location).where(
            table.c.deleted.is_(False)).order_by(table.c.date_start)).all()
    assert [r.date_start.date() for r in left] == [dt.date(2027, 3, 8), dt.date(2027, 3, 15),
                                                   dt.date(2027, 5, 17)]
    assert left[-1].location == "Rooftop"


def test_this_and_following_keeps_what_is_left_of_a_count(site, admin):
    series = weekly_meeting(site, admin, "FREQ=WEEKLY;COUNT=10")
    pivot = series_of(site, admin, "meetings", series["id"])[3]  # the 5th of 10
    new = recurrence.split(site, "meetings", pivot["id"], {"name": "Renamed"}, admin)
    assert new["recurrence_rule"] == "RRULE:FREQ=WEEKLY;COUNT=6"
    assert len(series_of(site, admin, "meetings", new["id"])) == 5
    assert len(series_of(site, admin, "meetings", series["id"])) == 3


@pytest.mark.parametrize("rule, words", [
    ("FREQ=WEEKLY", "Every week"),  # no day named: the start's, unsaid
    ("FREQ=MONTHLY;COUNT=3", "Every month, 3 times"),
    ("FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=6", "Every month on the last day of the month, 6 times"),
    ("FREQ=MONTHLY;BYMONTHDAY=15;COUNT=1", "Every month on day 15, once"),
    ("FREQ=YEARLY;UNTIL=20301231T230000Z", "Every year, until Dec 31, 2030"),
])
def test_more_rules_in_words(site, rule, words):
    from core.kernel import i18n

    en = i18n.formatter(i18n.Preferences(language="en"), site.locale_dirs)
    assert recurrence.describe(en, rule).split(" — ")[0] == words


def test_the_admin_sets_the_limits_and_a_bad_value_is_refused(site, web):
    page = web.get("/admin")
    assert "/admin/recurring-activities" in page.text
    page = web.get("/admin/recurring-activities")
    assert page.status_code == 200 and 'value="90"' in page.text and 'value="500"' in page.text
    bad = web.post("/admin/recurring-activities",
                   data={"_csrf": web.csrf, "days_ahead": "-3", "per_run": "20"})
    assert bad.status_code == 400 and "&#39;-3&#39; is not a whole number from 1 to 3660" in \
        bad.text
    assert recurrence.limits(site) == (90, 500)  # nothing saved
    saved = web.post("/admin/recurring-activities",
                     data={"_csrf": web.csrf, "days_ahead": "30", "per_run": "20"},
                     follow_redirects=True)
    assert saved.status_code == 200 and "The setting was saved." in saved.text
    assert recurrence.limits(site) == (30, 20)


def test_a_repeating_task_needs_a_due_date_and_a_series_a_real_time_zone(site, admin):
    with pytest.raises(ValidationError) as caught:
        site.records.create("tasks", {"name": "Someday", "recurrence_rule": "FREQ=DAILY"},
                            admin)
    assert set(caught.value.errors) == {"date_due"}
    with pytest.raises(ValidationError) as caught:
        weekly_meeting(site, admin, recurrence_tz="Mars/Olympus_Mons")
    assert set(caught.value.errors) == {"recurrence_tz"}
    assert site.records.count("tasks", admin) == site.records.count("meetings", admin) == 0


def test_the_scheduler_knows_both_tasks(site):
    from core.jobs import scheduler

    tasks = scheduler.tasks(site)
    assert tasks[recurrence.TASK].schedule == "@every 1h"
    assert tasks["activities.reminders"].schedule == "@every 1m"


def test_the_api_writes_a_series_refuses_a_bad_rule_and_detaches_an_edited_occurrence(
        site, admin):
    from core.testing import api_client, bearer

    api, headers = api_client(site), bearer(site, admin)
    made = api.post("/api/v1/meetings", headers=headers, json={
        "name": "API weekly", "date_start": "2027-03-01T09:00:00Z",
        "date_end": "2027-03-01T10:00:00Z", "recurrence_rule": "FREQ=WEEKLY;COUNT=3",
        "recurrence_tz": "Europe/Paris"})
    assert made.status_code == 201, made.text
    series_id = made.json()["id"]
    rows = series_of(site, admin, "meetings", series_id)
    assert len(rows) == 2
    bad = api.post("/api/v1/meetings", headers=headers, json={
        "name": "Bad", "date_start": "2027-03-01T09:00:00Z",
        "date_end": "2027-03-01T10:00:00Z", "recurrence_rule": "FREQ=DAILY;COUNT=5000"})
    assert bad.status_code == 422 and "recurrence_rule" in bad.text and "1000" in bad.text
    moved = api.patch(f"/api/v1/meetings/{rows[0]['id']}", headers=headers,
                      json={"location": "Lisbon"})
    assert moved.status_code == 200, moved.text
    assert moved.json()["recurrence_detached"] is True
