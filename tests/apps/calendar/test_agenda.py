"""The calendar's agenda (core/apps/calendar/agenda_web.py, events.py) through real HTTP
requests: the events of a range, busy blocks for what the reader may not see, holidays,
moves through the record service (refused ones say why, nothing stored), the company view,
the task list, and one statement per kind."""
from __future__ import annotations

import datetime as dt
import html

import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.apps.calendar import events
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import signed_in
from tests.apps.calendar.test_browser_holidays import choose_holidays
from tests.pack_util import install_folder

PASSWORD = "correct horse battery"
MON = dt.datetime(2027, 3, 8, 9, 0, tzinfo=dt.UTC)  # a Monday


def meeting(site, name, start, owner, hours=1, teams=(), **extra):
    return site.records.create("meetings", {
        "name": name, "status": "planned", "date_start": start,
        "date_end": start + dt.timedelta(hours=hours), "assigned_user_id": owner.id, **extra},
        SYSTEM_USER, teams=list(teams))


def week(client, **params):
    response = client.get("/calendar/events.json", params={
        "start": "2027-03-08T00:00:00", "end": "2027-03-15T00:00:00", **params})
    assert response.status_code == 200, response.text
    return response.json()


def test_my_week_shows_meetings_calls_tasks_and_holidays(site, admin):
    install_folder(site, "holidays_ca")
    choose_holidays(site, admin, "holidays_ca")
    meeting(site, "Pipeline review", MON, admin)
    site.records.create("calls", {"name": "Call Jane", "status": "planned",
                                  "date_start": MON + dt.timedelta(days=1),
                                  "duration_minutes": 45, "assigned_user_id": admin.id}, admin)
    site.records.create("tasks", {"name": "Send the quote", "status": "not_started",
                                  "date_due": dt.date(2027, 3, 10),
                                  "assigned_user_id": admin.id}, admin)
    meeting(site, "Last month", MON - dt.timedelta(days=30), admin)
    with signed_in(site, "admin") as web:
        page = web.get("/calendar/agenda")
        assert page.status_code == 200
        assert "/static/vendor/event-calendar/event-calendar.min.js" in page.text
        found = {e["title"]: e for e in week(web)}
        assert found["Pipeline review"]["start"] == "2027-03-08T09:00:00"  # UTC reader
        assert found["Pipeline review"]["end"] == "2027-03-08T10:00:00"
        assert found["Call Jane"]["end"] == "2027-03-09T09:45:00"
        assert found["Send the quote"]["allDay"] and found["Send the quote"]["start"] == "2027-03-10"
        assert "Last month" not in found
        holidays = [e for e in web.get("/calendar/events.json", params={
            "start": "2027-06-28", "end": "2027-07-05"}).json() if e.get("display") == "background"]
        assert [(h["title"], h["start"]) for h in holidays] == [("Canada Day", "2027-07-01")]


def test_a_reader_sees_times_on_their_own_clock(site, admin):
    from core.kernel import users
    users.save_preferences(site, admin.id, {"timezone": "Europe/Paris"})
    meeting(site, "Paris", MON, admin)
    with signed_in(site, "admin") as web:
        (event,) = week(web)
    assert event["start"] == "2027-03-08T10:00:00"  # 09:00 UTC is 10:00 in Paris in March


def test_a_team_level_user_sees_busy_blocks_not_titles(site, admin):
    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    boss = create_user(site, "boss", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team meetings")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"meetings": ("enabled", {a: "team" for a in rights})})
    aa.set_user_roles(site, tess.id, [role])
    meeting(site, "Team standup", MON, boss, teams=[east])
    meeting(site, "Board dinner with the bank", MON + dt.timedelta(days=1), boss)
    with signed_in(site, "tess", PASSWORD) as web:
        shown = week(web, users=f"{boss.id},{tess.id}", resources="1")
    titles = sorted(e["title"] for e in shown)
    assert titles == ["Busy", "Team standup"]
    busy = next(e for e in shown if e["title"] == "Busy")
    assert busy["editable"] is False and busy["resourceIds"] == [boss.id]
    assert "Board dinner" not in str(shown) and "record" not in busy.get("extendedProps", {})
    assert busy["start"] == "2027-03-09T09:00:00"


def test_drag_saves_through_the_record_service_and_a_refusal_says_why(site, admin):
    record = meeting(site, "Review", MON, admin)
    with signed_in(site, "admin") as web:
        moved = web.post("/calendar/events/move", data={
            "_csrf": web.csrf, "module": "meetings", "id": record["id"],
            "start": "2027-03-10T14:00", "end": "2027-03-10T15:30", "all_day": "0",
            "version": record["version"]}, headers={"Accept": "application/json"})
        assert moved.status_code == 200 and moved.json()["ok"], moved.text
        stored = site.records.get("meetings", record["id"], admin)
        assert stored["date_start"].replace(tzinfo=dt.UTC) == dt.datetime(2027, 3, 10, 14, 0, tzinfo=dt.UTC)
        assert stored["date_end"].replace(tzinfo=dt.UTC) == dt.datetime(2027, 3, 10, 15, 30, tzinfo=dt.UTC)
        refused = web.post("/calendar/events/move", data={
            "_csrf": web.csrf, "module": "meetings", "id": record["id"],
            "start": "2027-03-10T14:00", "end": "2027-03-10T13:00", "all_day": "0"},
            headers={"Accept": "application/json"})
        assert refused.status_code == 422
        assert refused.json()["error"] == "Not moved: End: must be after the start"
        stale = web.post("/calendar/events/move", data={
            "_csrf": web.csrf, "module": "meetings", "id": record["id"],
            "start": "2027-03-11T14:00", "end": "2027-03-11T15:00", "version": record["version"]},
            headers={"Accept": "application/json"})
        assert stale.status_code == 409
        bad = web.post("/calendar/events/move", data={
            "_csrf": web.csrf, "module": "meetings", "id": record["id"], "start": "soon"},
            headers={"Accept": "application/json"})
        assert bad.status_code == 422 and "soon" in bad.json()["error"]
        nocsrf = web.post("/calendar/events/move", data={"module": "meetings", "id": record["id"],
                                                         "start": "2027-03-12T10:00"})
        assert nocsrf.status_code in (400, 403)
    stored = site.records.get("meetings", record["id"], admin)
    assert stored["date_start"].replace(tzinfo=dt.UTC) == dt.datetime(2027, 3, 10, 14, 0, tzinfo=dt.UTC)


def test_a_reader_cannot_move_what_they_may_not_see(site, admin):
    tess = create_user(site, "tess", PASSWORD)
    role = aa.create_role(site, "Own meetings")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"meetings": ("enabled", {a: "owner" for a in rights})})
    aa.set_user_roles(site, tess.id, [role])
    record = meeting(site, "Secret", MON, admin)
    with signed_in(site, "tess", PASSWORD) as web:
        refused = web.post("/calendar/events/move", data={
            "_csrf": web.csrf, "module": "meetings", "id": record["id"],
            "start": "2027-03-10T14:00", "end": "2027-03-10T15:00"},
            headers={"Accept": "application/json"})
    assert refused.status_code == 404
    assert site.records.get("meetings", record["id"], admin)["date_start"].day == 8


def test_bad_ranges_are_refused_with_a_reason(site, admin):
    with signed_in(site, "admin") as web:
        for params in ({"start": "x", "end": "2027-03-01"},
                       {"start": "2027-03-08", "end": "2027-03-01"},
                       {"start": "2027-01-01", "end": "2027-12-31"}):
            response = web.get("/calendar/events.json", params=params)
            assert response.status_code == 400
            assert "at most 62 days" in response.json()["error"]


def test_company_view_puts_users_side_by_side(site, admin):
    ann = create_user(site, "ann", PASSWORD)
    east = aa.create_team(site, "East")
    aa.set_team_members(site, east, add=[ann.id])
    meeting(site, "Ann's demo", MON, ann)
    meeting(site, "Admin's review", MON, admin)
    with signed_in(site, "admin") as web:
        page = web.get("/calendar/agenda", params={"view": "company"})
        assert page.status_code == 200 and "resources" in page.text
        both = week(web, users=f"{ann.id},{admin.id}", resources="1")
        assert {e["title"]: e["resourceIds"] for e in both} == {
            "Ann's demo": [ann.id], "Admin's review": [admin.id]}
        team = week(web, team=east, resources="1")
        assert [e["title"] for e in team] == ["Ann's demo"]
        assert web.get("/calendar/agenda", params={"view": "company", "team": "nope"}).status_code == 404


def test_task_list_shows_my_open_tasks_by_due_date(site, admin):
    for name, due, status in (("Later", dt.date(2031, 5, 2), "not_started"),
                              ("Sooner", dt.date(2031, 5, 1), "in_progress"),
                              ("Done already", dt.date(2031, 4, 1), "completed")):
        site.records.create("tasks", {"name": name, "date_due": due, "status": status,
                                      "assigned_user_id": admin.id}, admin)
    with signed_in(site, "admin") as web:
        text = web.get("/calendar/tasks").text
    assert text.index("Sooner") < text.index("Later") and "Done already" not in text


def test_one_statement_per_kind_whatever_the_number_of_events(site, admin):
    for i in range(30):
        meeting(site, f"M{i}", MON + dt.timedelta(hours=i), admin)
    statements = []

    def count(conn, cursor, statement, *rest):
        statements.append(statement)
    sa.event.listen(site.engine, "before_cursor_execute", count)
    try:
        found = events.read(site, admin, [admin.id], MON - dt.timedelta(days=1),
                            MON + dt.timedelta(days=7), dt.UTC, str)
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", count)
    assert len(found) == 30
    assert len([s for s in statements if "meetings" in s]) == 1
    assert len(statements) == len(events.kinds(site.registry))


def test_a_french_reader_gets_french_words_and_the_company_week(site, admin):
    from core.kernel import i18n, users
    install_folder(site, "lang_fr")
    marie = create_user(site, "marie", PASSWORD)
    users.save_preferences(site, marie.id, i18n.Preferences(language="fr").to_dict())
    role = aa.create_role(site, "Own meetings")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"meetings": ("enabled", {a: "owner" for a in rights})})
    aa.set_user_roles(site, marie.id, [role])
    site.set_setting("calendar", {"week_start": 6})  # the company's weeks start on Sunday
    meeting(site, "Secret", MON, admin)
    with signed_in(site, "marie", PASSWORD) as web:
        page = html.unescape(web.get("/calendar/agenda", params={"view": "company"}).text)
        assert "Calendrier de l’entreprise" in page and "Tous les employés" in page
        assert '"firstDay": 0' in page and '"today": "Aujourd' in page
        assert "Mon agenda" in web.get("/calendar/agenda").text
        shown = week(web, users=admin.id, resources="1")
    assert [e["title"] for e in shown] == ["Occupé"]


def test_the_agenda_stands_without_the_activities_plugin(make_site):
    site = make_site()
    site.disable_plugin("activities", with_dependents=True)
    assert events.kinds(site.registry) == []
    create_user(site, "admin", PASSWORD, is_admin=True)
    with signed_in(site, "admin") as web:
        assert web.get("/calendar/agenda").status_code == 200
        assert web.get("/calendar/agenda", params={"view": "company"}).status_code == 200
        assert web.get("/calendar/tasks").status_code == 200
        assert week(web) == []
        refused = web.post("/calendar/events/move", data={
            "_csrf": web.csrf, "module": "meetings", "id": "x", "start": "2027-03-08T10:00"})
        assert refused.status_code == 422 and "meetings" in refused.json()["error"]


def test_a_meeting_dropped_on_the_all_day_row_becomes_that_day(site, admin):
    record = meeting(site, "Offsite", MON, admin)
    with signed_in(site, "admin") as web:
        moved = web.post("/calendar/events/move", data={
            "_csrf": web.csrf, "module": "meetings", "id": record["id"],
            "start": "2027-03-12", "end": "", "all_day": "1"})
        assert moved.status_code == 200, moved.text
        (event,) = week(web)
    assert (event["allDay"], event["start"], event["end"]) == (True, "2027-03-12", "2027-03-13")


def test_an_invited_user_sees_the_meeting_in_their_calendar_and_column(site, admin):
    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    ann = create_user(site, "ann", PASSWORD)
    boss = create_user(site, "boss", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team meetings")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"meetings": ("enabled", {a: "team" for a in rights})})
    aa.set_user_roles(site, tess.id, [role])
    kickoff = meeting(site, "Kickoff", MON, boss, teams=[east])
    board = meeting(site, "Board dinner with the bank", MON + dt.timedelta(days=1), boss)
    dropped = meeting(site, "Declined lunch", MON + dt.timedelta(days=2), boss, teams=[east])
    for record, answer in ((kickoff, "accepted"), (board, "none"), (dropped, "declined")):
        site.records.create("invitees", {"meeting_id": record["id"], "user_id": tess.id,
                                         "accept_status": answer}, SYSTEM_USER)
    site.records.create("invitees", {"meeting_id": kickoff["id"], "user_id": ann.id},
                        SYSTEM_USER)
    with signed_in(site, "tess", PASSWORD) as web:
        mine = week(web)
        # her own calendar: the one she may see by title, the other as Busy; not the declined
        assert sorted(e["title"] for e in mine) == ["Busy", "Kickoff"]
        assert "Board dinner" not in str(mine) and "Declined" not in str(mine)
        company = week(web, users=f"{tess.id},{ann.id}", resources="1")
    by_title = {e["title"]: e for e in company}
    assert sorted(by_title["Kickoff"]["resourceIds"]) == sorted([tess.id, ann.id])
    assert by_title["Busy"]["resourceIds"] == [tess.id]
    assert len(company) == 2  # the meeting once, in both columns
    with signed_in(site, "admin") as web:  # the owner's column too when boss is shown
        shown = week(web, users=f"{boss.id},{tess.id}", resources="1")
    columns = {e["title"]: sorted(e["resourceIds"]) for e in shown}
    assert columns["Kickoff"] == sorted([boss.id, tess.id])
    assert columns["Declined lunch"] == [boss.id]


def test_invited_meetings_cost_no_extra_statement(site, admin):
    ann = create_user(site, "ann", PASSWORD)
    for i in range(20):
        record = meeting(site, f"M{i}", MON + dt.timedelta(hours=i), admin)
        site.records.create("invitees", {"meeting_id": record["id"], "user_id": ann.id},
                            SYSTEM_USER)
    statements = []

    def count(conn, cursor, statement, *rest):
        statements.append(statement)
    sa.event.listen(site.engine, "before_cursor_execute", count)
    try:
        found = events.read(site, admin, [ann.id], MON - dt.timedelta(days=1),
                            MON + dt.timedelta(days=7), dt.UTC, str)
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", count)
    assert len(found) == 20
    assert len(statements) == len(events.kinds(site.registry))


def test_the_resource_view_shows_bookings_by_resource(site, admin):
    tess = create_user(site, "tess", PASSWORD)
    role = aa.create_role(site, "Own meetings")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"meetings": ("enabled", {a: "owner" for a in rights})})
    aa.set_user_roles(site, tess.id, [role])
    room = site.records.create("resources", {"name": "Salle Lumière"}, admin)
    beamer = site.records.create("resources", {"name": "Beamer"}, admin)
    mine = meeting(site, "Tess's demo", MON, tess)
    secret = meeting(site, "Secret board", MON + dt.timedelta(days=1), admin)
    meeting(site, "Not booked", MON, tess)
    for record, resource in ((mine, room), (mine, beamer), (secret, room)):
        site.records.create("invitees", {"meeting_id": record["id"], "invitee_id": resource["id"],
                                         "invitee_type": "resources"}, SYSTEM_USER)
    with signed_in(site, "tess", PASSWORD) as web:
        page = html.unescape(web.get("/calendar/agenda", params={"view": "resources"}).text)
        assert "Resource calendar" in page and "Beamer" in page
        assert '"of": "resources"' in page
        shown = week(web, users=f"{room['id']},{beamer['id']}", resources="1", of="resources")
    columns = {e["title"]: sorted(e["resourceIds"]) for e in shown}
    assert columns == {"Tess's demo": sorted([room["id"], beamer["id"]]),
                       "Busy": [room["id"]]}
    assert "Secret board" not in str(shown)
    with signed_in(site, "tess", PASSWORD) as web:  # a made-up id is no column
        assert week(web, users="nope", resources="1", of="resources") == []


def test_a_french_reader_gets_the_resource_calendar_in_french(site, admin):
    from core.kernel import i18n, users
    install_folder(site, "lang_fr")
    users.save_preferences(site, admin.id, i18n.Preferences(language="fr").to_dict())
    with signed_in(site, "admin") as web:
        page = html.unescape(web.get("/calendar/agenda", params={"view": "resources"}).text)
    assert "Calendrier des ressources" in page and "Aucune ressource" in page


def config_of(page: str) -> dict:
    import json
    import re
    return json.loads(html.unescape(re.search(r'data-config="([^"]*)"', page).group(1)))


def test_company_view_shows_one_department(site, admin):
    ann, bob = create_user(site, "ann", PASSWORD), create_user(site, "bob", PASSWORD)
    with signed_in(site, "admin") as web:
        for person, department in ((ann, "Sales"), (bob, "Support"), (admin, "sales")):
            saved = web.post(f"/admin/users/{person.id}/profile", data={
                "_csrf": web.csrf, "display_name": person.username, "email": "",
                "is_admin": "1" if person is admin else "", "department": department},
                follow_redirects=False)
            assert saved.status_code == 303, saved.text
        page = web.get("/calendar/agenda", params={"view": "company"}).text
        assert '<option value="">All departments</option>' in page
        assert "<option>Sales</option>" in page and "<option>Support</option>" in page
        everyone = config_of(page)["users"].split(",")
        assert set(everyone) == {ann.id, bob.id, admin.id}
        # the department's name in any case: Sales is ann's and the admin's "sales"
        sales = web.get("/calendar/agenda", params={"view": "company", "department": "SALES"})
        assert set(config_of(sales.text)["users"].split(",")) == {ann.id, admin.id}
        assert "<option selected>Sales</option>" in sales.text
        # narrowed by the people chosen too; nobody left says so
        one = web.get("/calendar/agenda", params={"view": "company", "department": "Sales",
                                                  "u": ann.id})
        assert config_of(one.text)["users"] == ann.id
        none = web.get("/calendar/agenda", params={"view": "company", "department": "Sales",
                                                   "u": bob.id})
        assert config_of(none.text)["users"] == ""
        assert "Nobody matches this choice of team, department and people." in none.text


def test_a_user_may_start_their_week_on_another_day(site, admin):
    site.set_setting("calendar", {"week_start": 0})  # the company's weeks start on Monday
    with signed_in(site, "admin") as web:
        assert config_of(web.get("/calendar/agenda").text)["firstDay"] == 1
        form = {"_csrf": web.csrf, "language": "en", "timezone": "UTC",
                "date_format": "medium", "time_format": "short", "number_locale": ""}
        refused = web.post("/preferences", data={**form, "week_start": "9"})
        assert refused.status_code == 400 and "Not a day of the week" in refused.text
        assert config_of(web.get("/calendar/agenda").text)["firstDay"] == 1  # unchanged
        saved = web.post("/preferences", data={**form, "week_start": "6"},
                         follow_redirects=False)
        assert saved.status_code == 303
        assert config_of(web.get("/calendar/agenda").text)["firstDay"] == 0  # Sunday
        month = web.get("/calendar", params={"year": 2027, "month": 7}).text
        assert month.index('<abbr title="Sunday">') < month.index('<abbr title="Monday">')
        # back to the company's
        web.post("/preferences", data={**form, "week_start": ""})
        assert config_of(web.get("/calendar/agenda").text)["firstDay"] == 1
