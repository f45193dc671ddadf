"""User activity tracking (guide §7.1.2): the middleware records, at each level, exactly
what the level says and nothing for the requests that are not activity; the reporting task
gives the guide's worked example, is idempotent and prunes by the retention; the two User
Time Sheet reports show the figures to administrators only, in the reader's locale and as
CSV; bad settings and filters are refused with a message at their field."""
from __future__ import annotations

import csv
import datetime as dt
import io
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
import time_machine

from core.apps.activity_tracking import recorder, tables, timesheet
from core.apps.activity_tracking import settings as activity
from core.apps.activity_tracking.settings import ActivitySettings
from core.jobs import scheduler
from core.kernel.users import create_user, save_preferences
from core.testing import api_client, bearer, signed_in

PARIS = ZoneInfo("Europe/Paris")
DAY = dt.date(2026, 3, 2)  # a Monday


@pytest.fixture(autouse=True)
def company_calendar(site):
    site.set_setting("calendar", {"time_zone": "Europe/Paris"})


@pytest.fixture
def client(site, admin, monkeypatch):
    """The admin signed in, with the recorder's thread too slow to flush during the test:
    what is written is what the test flushes."""
    monkeypatch.setattr(recorder, "FLUSH_SECONDS", 3600.0)
    with signed_in(site, "admin") as web:
        web.app.state.activity.flush()  # the sign-in itself
        yield web


def events(site) -> set:
    table = site.tables.tables[tables.EVENTS]
    with site.engine.connect() as conn:
        return {(r.kind, r.module, r.record_id) for r in conn.execute(sa.select(table))}


def clear(site) -> None:
    with site.engine.begin() as conn:
        for name in (tables.EVENTS, tables.DAYS, tables.MODULES):
            conn.execute(site.tables.tables[name].delete())


def test_each_level_records_what_it_says(site, admin, client):
    first = site.records.create("accounts", {"name": "Acme"}, admin)["id"]
    other = site.records.create("accounts", {"name": "Globex"}, admin)["id"]
    api = api_client(site)
    token = bearer(site, admin)
    stranger = api_client(site)  # signed out
    moment = dt.datetime.now(dt.UTC)
    seen = {}
    with time_machine.travel(moment, tick=False):  # one minute: duplicates collapse
        for level in activity.LEVELS:
            activity.save(site, ActivitySettings(level))
            clear(site)
            assert client.get("/").status_code == 200
            assert client.get("/m/accounts").status_code == 200
            assert client.get(f"/m/accounts/{first}").status_code == 200
            saved = client.post(f"/m/accounts/{first}/edit",
                                data={"_csrf": client.csrf, "name": "Acme Corp"})
            assert saved.status_code == 200  # 303 to the detail page (read again: collapsed)
            made = client.post("/m/accounts/new", data={"_csrf": client.csrf,
                                                         "name": f"Initech {level}"})
            new = str(made.url).rsplit("/", 1)[1]
            assert made.status_code == 200 and new != "new"
            refused = client.post(f"/m/accounts/{first}/edit", data={"name": "No token"})
            assert refused.status_code == 403  # activity, neither read nor written
            for quiet in ("/static/crbm.css", "/health", "/ready", "/notifications/live.json"):
                client.get(quiet)
            assert api.get(f"/api/v1/accounts/{other}", headers=token).status_code == 200
            assert stranger.get(f"/m/accounts/{first}").status_code == 200  # the login page
            assert events(site) == set()  # nothing written on the request path
            client.app.state.activity.flush()
            api.app.state.activity.flush()
            stranger.app.state.activity.flush()
            seen[level] = events(site)
    assert seen["off"] == set()
    assert seen["login"] == {("r", "", ""), ("w", "", ""), ("o", "", "")}
    assert seen["modules"] == {("r", "", ""), ("o", "", ""), ("r", "accounts", ""),
                               ("w", "accounts", "")}
    assert seen["records"] == {
        ("r", "", ""), ("o", "", ""),
        ("r", "accounts", ""),  # the list
        ("r", "accounts", first), ("w", "accounts", first),  # viewed, edited
        ("w", "accounts", new), ("r", "accounts", new),  # created (from its Location), shown
        ("r", "accounts", other),  # through the API
    }
    table = site.tables.tables[tables.EVENTS]
    with site.engine.connect() as conn:
        kept = conn.execute(sa.select(table.c.user_id, table.c.at, table.c.day).distinct()).all()
    assert kept == [(admin.id, int(moment.timestamp()), moment.astimezone(PARIS).date())]


def test_an_event_counts_on_the_company_calendars_day(site, admin):
    site.set_setting("calendar", {"time_zone": "Pacific/Auckland"})
    late = int(dt.datetime(2026, 3, 2, 23, 30, tzinfo=dt.UTC).timestamp())  # 12:30 on the 3rd
    recorder.write(site, {(admin.id, late // 60, "r", "", ""): late})
    table = site.tables.tables[tables.EVENTS]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(table.c.day)).scalar() == dt.date(2026, 3, 3)


def at(day: dt.date, hour: int, minute: int) -> int:
    return int(dt.datetime.combine(day, dt.time(hour, minute), PARIS).timestamp())


def note(site, user_id: str, times, kind="r", module="", record="") -> None:
    recorder.write(site, {(user_id, t // 60, kind, module, record): t for t in times})


def every_five_minutes(day, start: tuple, end: tuple):
    t, last = at(day, *start), at(day, *end)
    while t <= last:
        yield t
        t += 300


def day_row(site, user_id, day):
    table = site.tables.tables[tables.DAYS]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.user_id == user_id,
                                                   table.c.day == day)).one()


def test_the_guides_worked_example(site, admin):
    """Guide §7.1.2: in at 9:00, away from the CRM for 35 minutes before 11:45, lunch 12-13
    without logging off, out at 18:00. Events every five minutes: 9:00-11:10, 11:45-12:00,
    13:00-18:00 (gaps of 35 and 60 minutes). The guide's figures are approximate and leave
    the grace out: "approx 7h25" is exactly the time in the CRM here (9 h - 35 min - 1 h);
    our rule adds the grace period to every session."""
    activity.save(site, ActivitySettings("login", 15, 5))
    note(site, admin.id, [*every_five_minutes(DAY, (9, 0), (11, 10)),
                          *every_five_minutes(DAY, (11, 45), (12, 0)),
                          *every_five_minutes(DAY, (13, 0), (18, 0))])
    after = DAY + dt.timedelta(days=1)
    for timeout, expected in (
            (15, "7:40"),  # three sessions: 2h10 + 0h15 + 5h00 = 7h25, + 3 x 5 min grace
            (50, "8:10"),  # the 35 minutes counted, lunch not: 3h00 + 5h00, + 2 x 5 min
            (300, "9:05")):  # one session 9:00-18:00, + 5 min: the guide's "approx 9h"
        activity.save(site, ActivitySettings("login", timeout, 5))
        timesheet.report(site, after)  # the last reported day is reported again
        row = day_row(site, admin.id, DAY)
        assert timesheet.hours_minutes(row.seconds) == expected, timeout
        assert (row.first_at, row.last_at) == (at(DAY, 9, 0), at(DAY, 18, 0))
        assert row.actions == 27 + 4 + 61


def snapshot(site) -> dict:
    out = {}
    with site.engine.connect() as conn:
        for name in (tables.EVENTS, tables.DAYS, tables.MODULES):
            out[name] = sorted(tuple(r) for r in conn.execute(sa.select(site.tables.tables[name])))
    return out


def test_the_task_is_idempotent_and_prunes_by_the_retention(site, admin):
    clerk = create_user(site, "clerk", "correct horse battery")
    activity.save(site, ActivitySettings("records", 15, 5, keep_days=3))
    days = [DAY + dt.timedelta(days=n) for n in range(6)]  # Mar 2 .. Mar 7
    for day in days:
        note(site, admin.id, every_five_minutes(day, (0, 0), (0, 30)))  # 7 reads, no module
        note(site, clerk.id, [at(day, 10, 0)], "r", "accounts", "a1")
        note(site, clerk.id, [at(day, 10, 1)], "r", "accounts", "a2")
        note(site, clerk.id, [at(day, 10, 2)], "w", "accounts", "a1")
        note(site, clerk.id, [at(day, 10, 40)], "w", "contacts", "")  # a mass update
        note(site, clerk.id, [at(day, 10, 41)], "r", "accounts", "a1")  # again
    today = days[5]  # Mar 7: its events are not reported yet
    due = dt.datetime.combine(today, dt.time(0, 20), dt.UTC)
    assert scheduler.run_task(site, timesheet.TASK, due).startswith("10 user days reported")
    first = snapshot(site)
    timesheet.report(site, today)  # again: nothing changes
    assert snapshot(site) == first
    assert {r[1] for r in first[tables.DAYS]} == set(days[:5])
    # raw events older than 3 days before Mar 7 (Mar 2, Mar 3) are gone, their rows stay
    assert {r[6] for r in first[tables.EVENTS]} == set(days[2:])

    clerks = day_row(site, clerk.id, days[1])
    assert clerks.first_at == at(days[1], 10, 0) and clerks.last_at == at(days[1], 10, 41)
    # 10:00-10:02 and 10:40-10:41 (the 38 minutes > 15 end a session): 2 + 1 min + 2 x 5
    assert clerks.seconds == (3 + 10) * 60
    assert (clerks.actions, clerks.records_read, clerks.records_written) == (5, 2, 2)
    admins = day_row(site, admin.id, days[1])
    assert (admins.seconds, admins.actions, admins.records_read) == (35 * 60, 7, 0)
    modules = site.tables.tables[tables.MODULES]
    with site.engine.connect() as conn:
        per_module = {(r.module, r.actions, r.records_read, r.records_written) for r in
                      conn.execute(sa.select(modules).where(modules.c.day == days[1]))}
    assert per_module == {("accounts", 4, 2, 1), ("contacts", 1, 0, 1)}

    # an event of the last reported day written after the run: the next run adds it
    note(site, clerk.id, [at(days[4], 11, 0)], "w", "accounts", "a9")
    timesheet.report(site, today + dt.timedelta(days=1))
    late = day_row(site, clerk.id, days[4])
    assert (late.actions, late.records_written, late.last_at) == (6, 3, at(days[4], 11, 0))
    assert day_row(site, clerk.id, days[0]).actions == 5  # pruned long ago, kept


def test_off_records_nothing_and_old_events_still_age_out(site, admin):
    note(site, admin.id, [at(DAY, 9, 0)])
    activity.save(site, ActivitySettings("off", keep_days=1))
    note(site, admin.id, [at(DAY, 10, 0)])  # not written at "off"
    timesheet.report(site, DAY + dt.timedelta(days=5))
    assert snapshot(site)[tables.EVENTS] == []
    assert day_row(site, admin.id, DAY).actions == 1


def reported_site(site, admin):
    activity.save(site, ActivitySettings("records"))
    bob = create_user(site, "bob", "correct horse battery", display_name="=Bob Builder")
    for day in (DAY, DAY + dt.timedelta(days=1)):
        note(site, bob.id, every_five_minutes(day, (9, 0), (10, 0)), "r", "accounts", "a1")
        note(site, bob.id, [at(day, 10, 3)], "w", "accounts", "a1")
        note(site, bob.id, [at(day, 10, 4)], "w", "contacts", "c1")
    note(site, admin.id, [at(DAY, 14, 0)])
    timesheet.report(site, DAY + dt.timedelta(days=2))
    return bob


def test_the_time_sheets_show_the_figures_to_administrators_only(site, admin):
    bob = reported_site(site, admin)
    save_preferences(site, admin.id, {"language": "en", "date_format": "short",
                                      "time_format": "short"})
    query = "?start=2026-03-02&end=2026-03-03"
    with signed_in(site, "admin") as web:
        assert "User activity" in web.get("/admin").text
        page = web.get("/admin/activity/days" + query)
        assert page.status_code == 200
        rows = page.text.split(f'data-user="{bob.id}"')[1:]
        assert len(rows) == 2
        # Monday: 9:00-10:04 in one session (the 5-minute gaps), + 5 min grace = 1:09
        assert "3/2/26" in rows[0] and "9:00\u202fAM" in rows[0] and "10:04\u202fAM" in rows[0]
        assert "1:09" in rows[0]
        total = page.text.split(f'data-total="{bob.id}"')[1].split("</tr>")[0]
        assert "2:18" in total and ">30<" in total  # two days: 2 x (13 reads + 2 writes)
        assert "Days: 2" in total
        assert f'data-total="{admin.id}"' in page.text
        only_bob = web.get("/admin/activity/days" + query + f"&user={bob.id}")
        assert f'data-total="{admin.id}"' not in only_bob.text

        modules = web.get("/admin/activity/modules" + query + f"&user={bob.id}")
        [monday] = [r for r in modules.text.split("<tr")[1:] if "3/2/26" in r and "Contacts" in r]
        assert ">1<" in monday  # one action, one record written

        exported = web.get("/admin/activity/days" + query + "&format=csv")
        assert exported.headers["content-type"].startswith("text/csv")
        lines = list(csv.reader(io.StringIO(exported.text)))
        assert lines[0] == ["User", "Date", "First activity", "Last activity", "Duration",
                            "Actions", "Read", "Written"]
        assert ["'=Bob Builder", "3/2/26", "9:00\u202fAM", "10:04\u202fAM", "1:09", "15",
                "1", "2"] in lines  # the name that looks like a formula is escaped

        for bad, field in (("start=yesterday", "start"),
                           ("start=2026-03-05&end=2026-03-01", "end"),
                           ("start=2024-01-01&end=2026-03-01", "end")):
            refused = web.get("/admin/activity/days?" + bad)
            assert refused.status_code == 422, bad
            assert f'id="ua-{field}-error"' in refused.text, bad
    with signed_in(site, "bob", "correct horse battery") as clerk:
        for url in ("/admin/activity", "/admin/activity/days", "/admin/activity/modules",
                    "/admin/activity/days?format=csv"):
            assert clerk.get(url).status_code == 403, url


def test_the_reports_follow_the_readers_number_format(site, admin):
    activity.save(site, ActivitySettings("login"))
    note(site, admin.id, [at(DAY, 0, 0) + 60 * n for n in range(1200)])  # 20 hours of minutes
    timesheet.report(site, DAY + dt.timedelta(days=1))
    save_preferences(site, admin.id, {"language": "en", "number_locale": "de"})
    with signed_in(site, "admin") as web:
        page = web.get("/admin/activity/days?start=2026-03-02&end=2026-03-02")
        assert ">1.200<" in page.text and "Mar 2, 2026" in page.text
        assert "20:04" in page.text  # 19h59 of gaps, + 5 min grace


def settings_form(web, **values) -> dict:
    return {"_csrf": web.csrf, "action": "save", "level": "records", "timeout_minutes": "15",
            "grace_minutes": "5", "keep_days": "90", **values}


def test_bad_settings_are_refused_with_a_clear_message(site, admin, client):
    page = client.get("/admin/activity")
    assert page.status_code == 200 and 'value="login" selected' in page.text
    for values, field, message in (
            ({"level": "everything"}, "level", "Choose one of the levels."),
            ({"timeout_minutes": "0"}, "timeout_minutes",
             "&#39;0&#39; is not a whole number from 1 to 1440"),
            ({"timeout_minutes": "ten"}, "timeout_minutes", "is not a whole number"),
            ({"grace_minutes": "-1"}, "grace_minutes", "is not a whole number from 0 to 240"),
            ({"timeout_minutes": "10", "grace_minutes": "20"}, "grace_minutes",
             "must not be longer than the timeout period (10 minutes)"),
            ({"keep_days": "0"}, "keep_days", "from 1 to 3650")):
        refused = client.post("/admin/activity", data=settings_form(client, **values))
        assert refused.status_code == 422, values
        error = refused.text.split(f'id="ua-{field}-error"')[1].split("</p>")[0]
        assert message in error, (values, error)
        assert site.settings.get(activity.SETTING) is None  # nothing saved
    saved = client.post("/admin/activity", data=settings_form(client, timeout_minutes="50",
                                                              keep_days="30"))
    assert "were saved" in saved.text
    assert activity.activity_settings(site) == ActivitySettings("records", 50, 5, 30)
    reported = client.post("/admin/activity", data={"_csrf": client.csrf, "action": "report"})
    assert "User activity was reported" in reported.text
    create_user(site, "clerk", "correct horse battery")
    with signed_in(site, "clerk", "correct horse battery") as clerk:
        refused = clerk.post("/admin/activity", data=settings_form(clerk, level="off"))
        assert refused.status_code == 403
    assert activity.activity_settings(site).level == "records"
