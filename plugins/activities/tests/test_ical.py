"""iCalendar as a user meets it: a meeting exported and opened by two parsers (icalendar and
vobject) with its start in the organizer's zone, a month exported and imported into a fresh
site giving the same events, re-importing updating rather than duplicating, bad files
refused with their line and nothing written, a secret subscription feed that shows only
what its owner may see and stops when revoked, and free/busy (§7.13) by token and email."""
import datetime as dt
import re
import zoneinfo

import icalendar
import pytest
import sqlalchemy as sa
import vobject

from core.kernel.records import Query
from core.kernel.users import create_user, save_preferences
from core.testing import signed_in
from plugins.activities import ical

PASSWORD = "correct horse battery"
PARIS = zoneinfo.ZoneInfo("Europe/Paris")


def paris(*args) -> dt.datetime:
    return dt.datetime(*args, tzinfo=PARIS)


@pytest.fixture
def meetings(site, admin):
    save_preferences(site, admin.id, {"timezone": "Europe/Paris"})
    made = [
        site.records.create("meetings", {
            "name": "Kick-off with Acme", "location": "Salle Lumière",
            "description": "Agenda:\nscope, budget; dates", "status": "planned",
            "date_start": paris(2027, 3, 24, 10), "date_end": paris(2027, 3, 24, 11, 30)},
            admin),
        site.records.create("meetings", {
            "name": "Offsite", "all_day": True, "status": "planned",
            "date_start": paris(2027, 4, 2), "date_end": paris(2027, 4, 3)}, admin),
        site.records.create("calls", {"name": "Call Wile", "status": "planned",
                                      "date_start": paris(2027, 4, 5, 15),
                                      "duration_minutes": 20}, admin),
        site.records.create("tasks", {"name": "Send the proposal", "priority": "high",
                                      "date_start": "2027-03-20", "date_due": "2027-04-01"},
                            admin),
    ]
    return made


@pytest.fixture
def fresh_site(tmp_path, synced_sqlite, crbm_extra_plugins):
    """Another site with a database of its own (a SQLite file, whatever the test database):
    where an exported calendar is imported, as someone moving to a new CRBM would."""
    import shutil

    from core.kernel.site import Site, create_site

    folder = create_site(tmp_path / "fresh", f"sqlite:///{tmp_path / 'fresh.db'}")
    shutil.copyfile(synced_sqlite[0], tmp_path / "fresh.db")
    site = Site(folder, extra_plugins=list(crbm_extra_plugins))
    yield site
    site.close()


def events_of(site, user):
    out = []
    for r in site.records.list("meetings", user, Query(limit=None, sort="date_start")):
        out.append(("meetings", r["name"], ical._utc(r["date_start"]), ical._utc(r["date_end"]),
                    bool(r["all_day"]), r["location"], r["description"], r.get("rrule")))
    for r in site.records.list("calls", user, Query(limit=None)):
        out.append(("calls", r["name"], ical._utc(r["date_start"]), r["duration_minutes"]))
    for r in site.records.list("tasks", user, Query(limit=None)):
        out.append(("tasks", r["name"], str(r["date_start"]), str(r["date_due"]),
                    r["priority"], r["status"]))
    return sorted(out, key=repr)


def test_one_meeting_parses_in_icalendar_and_vobject_in_the_organizers_zone(web, meetings):
    meeting = meetings[0]
    detail = web.get(f"/m/meetings/{meeting['id']}").text
    assert f"/ical/export/meetings/{meeting['id']}.ics" in detail
    response = web.get(f"/ical/export/meetings/{meeting['id']}.ics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/calendar")
    assert "attachment" in response.headers["content-disposition"]
    cal = icalendar.Calendar.from_ical(response.content)
    [event] = cal.walk("VEVENT")
    assert str(event["UID"]) == f"{meeting['id']}@crbm"
    assert str(event["SUMMARY"]) == "Kick-off with Acme"
    assert str(event["LOCATION"]) == "Salle Lumière"
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert event.decoded("DTSTART") == paris(2027, 3, 24, 10)
    assert [str(z["TZID"]) for z in cal.walk("VTIMEZONE")] == ["Europe/Paris"]
    parsed = vobject.readOne(response.text)
    assert parsed.vevent.uid.value == f"{meeting['id']}@crbm"
    assert parsed.vevent.dtstart.value.utcoffset() == dt.timedelta(hours=1)
    assert parsed.vevent.dtstart.value.replace(tzinfo=None) == dt.datetime(2027, 3, 24, 10)
    assert parsed.vevent.dtend.value.astimezone(dt.UTC) == paris(2027, 3, 24, 11, 30)
    assert parsed.vevent.description.value == "Agenda:\nscope, budget; dates"


def test_a_task_is_a_vtodo_and_an_all_day_meeting_a_date_range(web, meetings):
    task, offsite = meetings[3], meetings[1]
    todo = icalendar.Calendar.from_ical(
        web.get(f"/ical/export/tasks/{task['id']}.ics").content).walk("VTODO")[0]
    assert todo.decoded("DUE") == dt.date(2027, 4, 1) and todo["PRIORITY"] == 1
    assert str(todo["STATUS"]) == "NEEDS-ACTION"
    event = vobject.readOne(web.get(f"/ical/export/meetings/{offsite['id']}.ics").text).vevent
    assert event.dtstart.value == dt.date(2027, 4, 2)
    assert event.dtend.value == dt.date(2027, 4, 4)  # exclusive: the 2nd and the 3rd


def test_a_range_exported_and_imported_into_a_fresh_site_gives_the_same_events(
        site, admin, web, meetings, fresh_site):
    response = web.get("/ical/export.ics?start=2027-03-01&end=2027-05-01")
    assert response.status_code == 200
    cal = icalendar.Calendar.from_ical(response.content)
    assert len(cal.walk("VEVENT")) == 3 and len(cal.walk("VTODO")) == 1
    assert vobject.readOne(response.text).vevent.summary.value
    other = fresh_site
    boss = create_user(other, "boss", PASSWORD, is_admin=True)
    save_preferences(other, boss.id, {"timezone": "Europe/Paris"})
    result = ical.import_ics(other, boss, response.content, PARIS)
    assert result.created == {"meetings": 2, "calls": 1, "tasks": 1} and not result.updated
    assert events_of(other, boss) == events_of(site, admin)
    # the same file again: the same records updated, none created
    again = ical.import_ics(other, boss, response.content, PARIS)
    assert again.updated == {"meetings": 2, "calls": 1, "tasks": 1} and not again.created
    assert other.records.count("meetings", boss) == 2
    # and back home: the UIDs are ours (<id>@crbm), so the originals are updated
    home = ical.import_ics(site, admin, response.content, PARIS)
    assert not home.created and site.records.count("meetings", admin) == 2


def test_a_range_outside_the_events_is_empty_and_a_bad_range_is_refused(web, meetings):
    empty = icalendar.Calendar.from_ical(web.get("/ical/export.ics?start=2030-01-01"
                                                 "&end=2030-02-01").content)
    assert not empty.walk("VEVENT")
    assert web.get("/ical/export.ics?start=2027-05-01&end=2027-03-01").status_code == 400
    assert web.get("/ical/export.ics?start=tomorrow").status_code == 400


def test_a_record_with_an_rrule_exports_it_as_is():
    """Whatever the recurrence plugin stores in ``rrule`` is the VEVENT's RRULE."""
    record = {"id": "m1", "name": "Weekly", "date_start": paris(2027, 3, 1, 10),
              "date_end": paris(2027, 3, 1, 11), "rrule": "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO"}
    event = ical.vevent(None, "meetings", record, PARIS)
    cal = ical.new_calendar()
    cal.add_component(event)
    cal.add_missing_timezones()
    text = cal.to_ical().decode()
    assert "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO" in text
    parsed = vobject.readOne(text).vevent
    assert [d.day for d in list(parsed.getrruleset())[:3]] == [1, 8, 15]


def test_the_rrule_text_travels_when_the_record_has_one(site, admin, fresh_site):
    field = next((f for f in ical.RULE_FIELDS if f in site.registry.module("meetings").fields),
                 None)
    if field is None:
        pytest.skip("recurrence (plugins/activities/recurrence.py) adds the rule field")
    save_preferences(site, admin.id, {"timezone": "Europe/Paris"})
    meeting = site.records.create("meetings", {
        "name": "Weekly", "date_start": paris(2027, 3, 1, 10), "date_end": paris(2027, 3, 1, 11),
        field: "RRULE:FREQ=WEEKLY;COUNT=10;BYDAY=MO"}, admin)
    items = [("meetings", r) for r in site.records.list("meetings", admin, Query(limit=None))]
    body = ical.calendar(site, items).to_ical()
    [event] = icalendar.Calendar.from_ical(body).walk("VEVENT")  # occurrences: the RRULE
    assert "FREQ=WEEKLY;COUNT=10;BYDAY=MO" in body.decode()
    assert event.decoded("DTSTART") == paris(2027, 3, 1, 10)
    boss = create_user(fresh_site, "boss", PASSWORD, is_admin=True)
    save_preferences(fresh_site, boss.id, {"timezone": "Europe/Paris"})
    ical.import_ics(fresh_site, boss, body, PARIS)
    copies = fresh_site.records.list("meetings", boss, Query(limit=None, sort="date_start"))
    [copy] = [c for c in copies if not c.get("recurrence_series_id")]
    assert "FREQ=WEEKLY" in copy[field] and "COUNT=10" in copy[field]
    assert sorted(ical._utc(c["date_start"]) for c in copies) == sorted(
        ical._utc(c["date_start"]) for _, c in items)
    assert meeting["id"] in {c["id"] for _, c in items}


CALENDAR = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Test//EN
{body}END:VCALENDAR
"""
GOOD_EVENT = """BEGIN:VEVENT
UID:good-1@example.com
DTSTAMP:20270101T000000Z
DTSTART;TZID=Europe/Paris:20270310T090000
DTEND;TZID=Europe/Paris:20270310T100000
SUMMARY:Fine meeting
END:VEVENT
"""
BROKEN_VTIMEZONE = """BEGIN:VTIMEZONE
TZID:Office Time
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+99xx
END:STANDARD
END:VTIMEZONE
"""


def upload(web, content: bytes, name="calendar.ics"):
    return web.post("/ical/import", data={"_csrf": web.csrf},
                    files={"file": (name, content, "text/calendar")})


@pytest.mark.parametrize("body, line, reason", [
    (GOOD_EVENT + BROKEN_VTIMEZONE, 16, "TZOFFSETTO"),
    (GOOD_EVENT + BROKEN_VTIMEZONE.replace("TZID:Office Time\n", ""), 11,
     "without its TZID"),
    (GOOD_EVENT + "BEGIN:VTIMEZONE\nTZID:Office Time\nEND:VTIMEZONE\n", 11,
     "neither STANDARD nor DAYLIGHT"),
    (GOOD_EVENT.replace("Europe/Paris:20270310T090000", "Mars/Olympus:20270310T090000"), 7,
     "Mars/Olympus"),
    (GOOD_EVENT + GOOD_EVENT.replace("good-1", "bad-2").replace("T100000", "T080000"), 11,
     "after the start"),
    (GOOD_EVENT + GOOD_EVENT.replace("SUMMARY:Fine meeting\n", ""), 11, "SUMMARY"),
    (GOOD_EVENT + GOOD_EVENT.replace("END:VEVENT", "END:VTODO"), 17, "END:VEVENT"),
    (GOOD_EVENT.replace("DTSTART;TZID=Europe/Paris:20270310T090000",
                        "DTSTART:2027-03-10 9h"), 7, "DTSTART"),
])
def test_bad_calendars_are_refused_with_their_line_and_nothing_is_stored(
        site, admin, web, body, line, reason):
    response = upload(web, CALENDAR.format(body=body).encode())
    assert response.status_code == 422
    error = re.search(r'id="ical-error">(.*?)</p>', response.text, re.DOTALL).group(1)
    assert f"Line {line}:" in error and reason in error.replace("&#39;", "'"), error
    assert site.records.count("meetings", admin) == 0


def test_what_is_not_a_calendar_or_too_big_is_refused(site, admin, web):
    not_ical = upload(web, b"Name,Email\nWile,wile@acme.test\n", "contacts.csv")
    assert not_ical.status_code == 422 and "not an iCalendar file" in not_ical.text
    binary = upload(web, b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "picture.ics")
    assert binary.status_code == 422 and "not text" in binary.text
    huge = CALENDAR.format(body=GOOD_EVENT + "X-PADDING:" + "x" * ical.MAX_BYTES + "\n")
    too_big = upload(web, huge.encode())
    assert too_big.status_code == 422 and "too large" in too_big.text
    assert site.records.count("meetings", admin) == 0


def test_a_good_file_imports_through_the_page(site, admin, web):
    assert "Import a calendar" in web.get("/ical/import").text
    response = upload(web, CALENDAR.format(body=GOOD_EVENT).encode())
    assert response.status_code == 200 and 'id="ical-result"' in response.text
    [meeting] = site.records.list("meetings", admin, Query(limit=None))
    assert meeting["ical_uid"] == "good-1@example.com"
    assert ical._utc(meeting["date_start"]) == paris(2027, 3, 10, 9)
    assert meeting["assigned_user_id"] == admin.id


def test_the_list_mass_action_exports_the_ticked_meetings(site, web, meetings):
    listing = web.get("/m/meetings").text
    assert 'formaction="/ical/export/meetings"' in listing or "/ical/export/meetings" in listing
    response = web.post("/ical/export/meetings", data={"_csrf": web.csrf,
                                                        "ids": [meetings[0]["id"]]})
    assert response.status_code == 200
    [event] = icalendar.Calendar.from_ical(response.content).walk("VEVENT")
    assert str(event["SUMMARY"]) == "Kick-off with Acme"
    # "all": every meeting the list's search matches
    everything = web.post("/ical/export/meetings", data={"_csrf": web.csrf, "all": "1",
                                                         "q": "Offsite"})
    assert [str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(
        everything.content).walk("VEVENT")] == ["Offsite"]


def team_user(site):
    """A Team-level user of team East for meetings (tess) and the meetings around them."""
    from core.apps.admin import access_admin as aa
    from core.kernel.records import SYSTEM_USER

    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team activities")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"meetings": ("enabled", {a: "team" for a in rights}),
                                   "tasks": ("enabled", {a: "team" for a in rights}),
                                   "calls": ("disabled", {})})
    aa.set_user_roles(site, tess.id, [role])
    save_preferences(site, tess.id, {"timezone": "America/New_York"})
    soon = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=3)
    common = {"date_start": soon, "date_end": soon + dt.timedelta(hours=1),
              "assigned_user_id": tess.id}
    site.records.create("meetings", {**common, "name": "Team East review"}, SYSTEM_USER,
                        teams=[east])
    # assigned to tess, but her role does not let her see calls
    site.records.create("calls", {"name": "Board call", "date_start": soon,
                                  "assigned_user_id": tess.id}, SYSTEM_USER)
    # not hers: on her feed only when a selector (invitees) picks it, and only if visible
    site.records.create("meetings", {**common, "name": "East all-hands",
                                     "assigned_user_id": None}, SYSTEM_USER, teams=[east])
    site.records.create("meetings", {**common, "name": "West secret",
                                     "assigned_user_id": None}, SYSTEM_USER)
    return tess, soon


def test_the_subscription_feed_shows_only_what_its_owner_may_see_and_can_be_revoked(
        site, admin, monkeypatch):
    _tess, soon = team_user(site)
    with signed_in(site, "tess", PASSWORD) as web:
        prefs = web.get("/preferences").text
        assert "You have no calendar address." in prefs
        page = web.post("/ical/feed", data={"_csrf": web.csrf, "do": "regenerate"}).text
        url = re.search(r'id="ical-feed-url" readonly value="([^"]+)"', page).group(1)
        fb_url = re.search(r'id="ical-fb-url" readonly value="([^"]+)"', page).group(1)
        path = url.split("://", 1)[1].split("/", 1)[1]
        token = path.split("/")[-1].removesuffix(".ics")
        assert "Your address was made on" in web.get("/preferences").text
        # stored hashed only
        table = site.tables.tables[ical.FEEDS]
        with site.engine.connect() as conn:
            stored = conn.execute(sa.select(table.c.token_hash)).scalars().all()
        assert stored == [ical.sha256(token)] and token not in stored
        response = web.get("/" + path)
        cal = icalendar.Calendar.from_ical(response.content)
        assert [str(e["SUMMARY"]) for e in cal.walk("VEVENT")] == ["Team East review"]
        event = vobject.readOne(response.text).vevent
        assert str(event.dtstart.value.tzinfo) and \
            icalendar.Calendar.from_ical(response.content).walk("VEVENT")[0][
                "DTSTART"].params["TZID"] == "America/New_York"
        # a selector the invitees' plugin would add ("invited"): still read as tess
        monkeypatch.setattr(ical, "FEED_SELECTORS", [
            *ical.FEED_SELECTORS, lambda site, module, user: [("name", "contains", "a")]])
        names = {str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(
            web.get("/" + path).content).walk("VEVENT")}
        assert names == {"Team East review", "East all-hands"}
        # free/busy: busy blocks with no titles
        fb_path = "/" + fb_url.split("://", 1)[1].split("/", 1)[1]
        fb = web.get(fb_path).text
        assert "Team East review" not in fb and "FREEBUSY" in fb
        # regenerate: the old address stops
        again = web.post("/ical/feed", data={"_csrf": web.csrf, "do": "regenerate"}).text
        assert web.get("/" + path).status_code == 404
        new_path = re.search(r'id="ical-feed-url" readonly value="[^"]+?(/ical/feed/[^"]+)"',
                             again).group(1)
        assert web.get(new_path).status_code == 200
        web.post("/ical/feed", data={"_csrf": web.csrf, "do": "revoke"})
        assert web.get(new_path).status_code == 404
        assert "You have no calendar address." in web.get("/preferences").text
        assert web.get("/ical/feed/not-a-token.ics").status_code == 404
        # her role disables calls: a calendar with a call is refused, nothing stored
        call = ical.calendar(site, [("calls", {"id": "x", "name": "A call", "date_start":
                                               soon, "duration_minutes": 5})]).to_ical()
        refused = web.post("/ical/import", data={"_csrf": web.csrf},
                           files={"file": ("c.ics", call, "text/calendar")})
        assert refused.status_code == 422 and "may not create" in refused.text


def test_free_busy_by_token_and_by_email_and_published_from_outlook(site, admin):
    from starlette.testclient import TestClient

    from core.web.app import create_app

    users = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == admin.id).values(
            email="boss@example.com"))
    bob = create_user(site, "bob", PASSWORD)
    start = dt.datetime(2027, 6, 7, 8, tzinfo=dt.UTC)
    for hours, name, status in ((0, "Standup", "planned"), (0.5, "Overlap", "planned"),
                                (3, "Cancelled", "not_held")):
        site.records.create("meetings", {
            "name": name, "status": status, "date_start": start + dt.timedelta(hours=hours),
            "date_end": start + dt.timedelta(hours=hours + 1)}, admin)
    site.records.create("calls", {"name": "Quick call", "date_start": start + dt.timedelta(
        hours=5), "duration_minutes": 30}, admin)
    token = ical.new_feed_token(site, bob.id)
    client = TestClient(create_app(site))
    answer = client.get(f"/ical/freebusy/{token}.vfb?email=BOSS@example.com"
                        "&start=2027-06-07&end=2027-06-08")
    assert answer.status_code == 200, answer.text
    fb = icalendar.Calendar.from_ical(answer.content).walk("VFREEBUSY")[0]
    periods = [p.dt for p in fb["FREEBUSY"]]
    assert periods == [
        (start, start + dt.timedelta(hours=1, minutes=30)),
        (start + dt.timedelta(hours=5), start + dt.timedelta(hours=5, minutes=30))]
    assert "Standup" not in answer.text
    assert vobject.readOne(answer.text).vfreebusy.organizer.value == "mailto:boss@example.com"
    # bob's Outlook publishes his free/busy at his URL: it is in what the URL answers
    published = ("BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//Microsoft//Outlook//EN\n"
                 "BEGIN:VFREEBUSY\nDTSTART:20270607T000000Z\nDTEND:20270608T000000Z\n"
                 "FREEBUSY;FBTYPE=BUSY:20270607T140000Z/20270607T150000Z\n"
                 "END:VFREEBUSY\nEND:VCALENDAR\n")
    assert client.put(f"/ical/freebusy/{token}.vfb", content=published).status_code == 204
    mine = client.get(f"/ical/freebusy/{token}.vfb?start=2027-06-07&end=2027-06-08").text
    assert ":20270607T140000Z/20270607T150000Z" in mine.replace(
        "\r\n ", "")
    assert client.put(f"/ical/freebusy/{token}.vfb", content=b"hello").status_code == 400
    assert client.put(f"/ical/freebusy/{token}.vfb",
                      content=b"x" * (ical.MAX_BYTES + 1)).status_code == 413
    assert client.get("/ical/freebusy/wrong.vfb").status_code == 404
    assert client.get(f"/ical/freebusy/{token}.vfb?email=nobody@example.com").status_code \
        == 404


def test_a_zone_defined_by_the_file_is_that_files_own(site, admin):
    """icalendar remembers the first VTIMEZONE of a TZID for the whole process; two files
    defining "Office Time" differently each get theirs."""
    template = CALENDAR.format(body="""BEGIN:VTIMEZONE
TZID:Office Time
BEGIN:STANDARD
DTSTART:19700101T000000
TZOFFSETFROM:{o}
TZOFFSETTO:{o}
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:office-{o}@example.com
DTSTART;TZID=Office Time:20270601T100000
DTEND;TZID=Office Time:20270601T110000
SUMMARY:At the office {o}
END:VEVENT
""")
    for offset, hours in (("+0200", 8), ("+0500", 5)):
        ical.import_ics(site, admin, template.replace("{o}", offset).encode())
        [meeting] = site.records.list("meetings", admin, Query(filters=[
            ("name", "eq", f"At the office {offset}")], limit=None))
        assert ical._utc(meeting["date_start"]) == dt.datetime(2027, 6, 1, hours,
                                                                tzinfo=dt.UTC)


def test_an_occurrence_moved_on_its_own_travels_as_a_recurrence_id(site, admin, fresh_site):
    if "recurrence_series_id" not in site.registry.module("meetings").fields:
        pytest.skip("recurrence (plugins/activities/recurrence.py) materialises occurrences")
    save_preferences(site, admin.id, {"timezone": "Europe/Paris"})
    today = dt.datetime.now(PARIS).date() + dt.timedelta(days=2)
    first = dt.datetime.combine(today, dt.time(10), PARIS)
    series = site.records.create("meetings", {
        "name": "Weekly sync", "date_start": first, "date_end": first + dt.timedelta(hours=1),
        "recurrence_rule": "RRULE:FREQ=WEEKLY;COUNT=4"}, admin)
    occurrences = site.records.list("meetings", admin, Query(filters=[
        ("recurrence_series_id", "eq", series["id"])], sort="date_start", limit=None))
    assert len(occurrences) == 3
    moved = occurrences[1]  # the third week's, an hour later
    site.records.update("meetings", moved["id"], {
        "date_start": ical._utc(moved["date_start"]) + dt.timedelta(hours=1),
        "date_end": ical._utc(moved["date_end"]) + dt.timedelta(hours=1)}, admin)
    items = [("meetings", r) for r in site.records.list("meetings", admin, Query(limit=None))]
    body = ical.calendar(site, items).to_ical()
    events = icalendar.Calendar.from_ical(body).walk("VEVENT")
    assert len(events) == 2 and {str(e["UID"]) for e in events} == {f"{series['id']}@crbm"}
    [override] = [e for e in events if e.get("RECURRENCE-ID") is not None]
    assert override.decoded("RECURRENCE-ID") == ical._utc(moved["date_start"])
    assert override.decoded("DTSTART") == ical._utc(moved["date_start"]) + dt.timedelta(hours=1)
    [main] = [e for e in vobject.readOne(body.decode()).vevent_list if "rrule" in e.contents]
    assert len(list(main.getrruleset())) == 4
    boss = create_user(fresh_site, "boss", PASSWORD, is_admin=True)
    save_preferences(fresh_site, boss.id, {"timezone": "Europe/Paris"})
    ical.import_ics(fresh_site, boss, body, PARIS)
    starts = sorted(ical._utc(r["date_start"]) for r in fresh_site.records.list(
        "meetings", boss, Query(limit=None)))
    assert starts == sorted(ical._utc(r["date_start"]) for _, r in items)
    again = ical.import_ics(fresh_site, boss, body, PARIS)  # nothing new the second time
    assert not again.created and fresh_site.records.count("meetings", boss) == 4


def test_the_feed_and_free_busy_hold_the_meetings_the_owner_is_invited_to(site, admin):
    if "invitees" not in site.registry.modules:
        pytest.skip("invitees (plugins/activities/invitees.py) come with another part")
    sophie = create_user(site, "sophie", PASSWORD)
    start = dt.datetime.now(dt.UTC).replace(microsecond=0, second=0) + dt.timedelta(days=1)
    for name, answer in (("Invited", "accepted"), ("Declined", "declined")):
        meeting = site.records.create("meetings", {
            "name": name, "date_start": start, "date_end": start + dt.timedelta(hours=1)},
            admin)
        site.records.create("invitees", {"meeting_id": meeting["id"], "user_id": sophie.id,
                                         "accept_status": answer}, admin)
    token = ical.new_feed_token(site, sophie.id)
    names = [str(e["SUMMARY"]) for e in icalendar.Calendar.from_ical(
        ical.feed(site, token)).walk("VEVENT")]
    assert names == ["Invited"]
    row = ical.user_by_token(site, token)
    assert ical.busy_periods(site, ical.as_user(row), start - dt.timedelta(hours=1),
                             start + dt.timedelta(hours=3)) == [
        (start, start + dt.timedelta(hours=1))]
