"""Invitations as invitees receive them: a real mail (real SMTP) with an .ics attachment that
calendar programs read — checked with two independent parsers, icalendar and vobject — a
REQUEST when invited, an updated REQUEST (SEQUENCE up) when the meeting moves, a CANCEL
when uninvited or when the meeting is deleted; sent by jobs, never twice."""
import datetime as dt

import pytest
import sqlalchemy as sa

from core import jobs
from core.kernel.users import create_user, save_preferences
from plugins.activities import invitations
from plugins.activities import invitees as inv

PASSWORD = "correct horse battery"
START = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def story(site, admin, smtp_inbox):
    users = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == admin.id).values(
            email="olivia@example.com", display_name="Olivia Organizer"))
    save_preferences(site, admin.id, {"timezone": "Europe/Paris"})
    sophie = create_user(site, "sophie", PASSWORD, email="sophie@example.com",
                         display_name="Sophie Martin")
    wile = site.records.create("contacts", {"first_name": "Wile", "last_name": "Coyote",
                                            "email1": "wile@acme.example"}, admin)
    room = site.records.create("resources", {"name": "Salle Lumière"}, admin)
    meeting = site.records.create("meetings", {
        "name": "Product demo", "location": "Our office", "date_start": START,
        "date_end": START + dt.timedelta(hours=1)}, admin)
    site.records.create_many("invitees", [
        {"meeting_id": meeting["id"], "user_id": sophie.id},
        {"meeting_id": meeting["id"], "invitee_id": wile["id"], "invitee_type": "contacts"},
        {"meeting_id": meeting["id"], "invitee_id": room["id"], "invitee_type": "resources"}],
        admin)
    return meeting, sophie, wile


def ics_of(message) -> bytes:
    found = [part for part in message.iter_attachments()
             if part.get_content_type() == "text/calendar"]
    assert len(found) == 1
    return found[0].get_payload(decode=True)


def by_recipient(inbox):
    return {str(m["To"]): m for m in inbox.messages}


def test_invitees_get_a_request_both_parsers_read(site, admin, story, smtp_inbox):
    import icalendar
    import vobject

    meeting, _sophie, _wile = story
    jobs.run_due_jobs(site)
    mails = by_recipient(smtp_inbox)
    assert set(mails) == {"sophie@example.com", "wile@acme.example"}  # a room has no mailbox
    message = mails["wile@acme.example"]
    assert message["Subject"] == "Invitation: Product demo"
    body = message.get_body(("plain",)).get_content()
    assert "2027-03-10 10:00 (Europe/Paris)" in body
    assert "Location: Our office — Salle Lumière" in body  # the room booked
    assert "/invitations/" in body
    data = ics_of(message)

    calendar = icalendar.Calendar.from_ical(data)
    assert str(calendar["METHOD"]) == "REQUEST"
    event = calendar.walk("VEVENT")[0]
    assert str(event["UID"]) == f"{meeting['id']}@crbm"
    assert int(event["SEQUENCE"]) == 0
    assert event["DTSTART"].params["TZID"] == "Europe/Paris"
    assert event.decoded("DTSTART") == START
    assert str(event["ORGANIZER"]) == "mailto:olivia@example.com"
    assert str(event["LOCATION"]) == "Our office — Salle Lumière"
    attendees = {str(a): a.params for a in event["ATTENDEE"]}
    room = f"urn:uuid:{story_room(site)}"
    assert set(attendees) == {"mailto:sophie@example.com", "mailto:wile@acme.example", room}
    assert (attendees[room]["CUTYPE"], attendees[room]["CN"]) == ("RESOURCE", "Salle Lumière")
    assert attendees["mailto:wile@acme.example"]["PARTSTAT"] == "NEEDS-ACTION"
    assert attendees["mailto:wile@acme.example"]["RSVP"] == "TRUE"
    assert calendar.walk("VTIMEZONE")[0]["TZID"] == "Europe/Paris"

    parsed = vobject.readOne(data.decode())
    assert parsed.method.value == "REQUEST"
    vevent = parsed.vevent
    assert vevent.uid.value == f"{meeting['id']}@crbm"
    assert vevent.dtstart.value == START
    # vobject resolved TZID against the attached VTIMEZONE: 10:00 in Paris, UTC+1 in March
    assert vevent.dtstart.params["X-VOBJ-ORIGINAL-TZID"] == ["Europe/Paris"]
    assert vevent.dtstart.value.utcoffset() == dt.timedelta(hours=1)
    assert vevent.dtstart.value.hour == 10
    assert vevent.organizer.value == "mailto:olivia@example.com"
    assert sorted(a.value for a in vevent.attendee_list) == [
        "mailto:sophie@example.com", "mailto:wile@acme.example", room]


def story_room(site) -> str:
    from core.kernel.records import SYSTEM_USER, Query
    return site.records.list("resources", SYSTEM_USER, Query(fields=["id"]))[0]["id"]


def test_a_job_delivered_again_sends_nothing_twice(site, story, smtp_inbox):
    meeting, _s, _w = story
    jobs.run_due_jobs(site)
    assert len(smtp_inbox.messages) == 2
    assert invitations.send_invitations(site, {"meeting_id": meeting["id"]}) == "mailed 0"
    jobs.enqueue(site, invitations.JOB, {"meeting_id": meeting["id"]})
    jobs.run_due_jobs(site)
    assert len(smtp_inbox.messages) == 2


def test_a_moved_meeting_sends_an_update_and_a_deleted_one_a_cancel(site, admin, story,
                                                                     smtp_inbox):
    import icalendar

    meeting, _sophie, _wile = story
    jobs.run_due_jobs(site)
    smtp_inbox.messages.clear()
    current = site.records.get("meetings", meeting["id"], admin)
    site.records.update("meetings", meeting["id"], {
        "date_start": START + dt.timedelta(hours=2),
        "date_end": START + dt.timedelta(hours=3)}, admin, base=current)
    site.records.update("invitees", site.records.list("invitees", admin)[0]["id"],
                        {"accept_status": "accepted"}, admin)  # an answer mails nobody
    jobs.run_due_jobs(site)
    mails = by_recipient(smtp_inbox)
    assert set(mails) == {"sophie@example.com", "wile@acme.example"}
    assert mails["wile@acme.example"]["Subject"] == "Updated invitation: Product demo"
    event = icalendar.Calendar.from_ical(ics_of(mails["wile@acme.example"])).walk("VEVENT")[0]
    assert int(event["SEQUENCE"]) == 1
    assert event.decoded("DTSTART") == START + dt.timedelta(hours=2)

    # Wile is uninvited: he alone gets a CANCEL
    smtp_inbox.messages.clear()
    row = next(i for i in inv.invitees_of(site, "meetings", [meeting["id"]])[meeting["id"]]
           if i.kind == "contacts")
    site.records.delete("invitees", row.invitee_record_id, admin)
    jobs.run_due_jobs(site)
    assert [str(m["To"]) for m in smtp_inbox.messages] == ["wile@acme.example"]
    cancel = icalendar.Calendar.from_ical(ics_of(smtp_inbox.messages[0]))
    assert str(cancel["METHOD"]) == "CANCEL"
    assert str(cancel.walk("VEVENT")[0]["STATUS"]) == "CANCELLED"

    # the meeting deleted: Sophie gets a CANCEL, Wile nothing more
    smtp_inbox.messages.clear()
    site.records.delete("meetings", meeting["id"], admin)
    jobs.run_due_jobs(site)
    assert [str(m["To"]) for m in smtp_inbox.messages] == ["sophie@example.com"]
    assert "Cancelled: Product demo" == smtp_inbox.messages[0]["Subject"]
    jobs.enqueue(site, invitations.JOB, {"meeting_id": meeting["id"]})
    jobs.run_due_jobs(site)
    assert len(smtp_inbox.messages) == 1
    sent = site.tables.tables[invitations.TABLE]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(sent)).scalar() == 6


def test_meeting_event_all_day(site):
    import icalendar

    event = invitations.meeting_event(
        {"id": "m1", "name": "Offsite", "all_day": True, "date_start": START,
         "date_end": START + dt.timedelta(days=1)}, ("Olivia", "olivia@example.com"), [],
        "Europe/Paris", 3)
    parsed = icalendar.Calendar.from_ical(invitations.invitation_ics(event)).walk("VEVENT")[0]
    assert parsed.decoded("DTSTART") == dt.date(2027, 3, 10)
    assert parsed.decoded("DTEND") == dt.date(2027, 3, 12)
    assert int(parsed["SEQUENCE"]) == 3


def test_marking_a_meeting_held_mails_nobody_calling_it_off_cancels(site, admin, story,
                                                                     smtp_inbox):
    import icalendar

    meeting, _s, _w = story
    jobs.run_due_jobs(site)
    smtp_inbox.messages.clear()
    current = site.records.get("meetings", meeting["id"], admin)
    site.records.update("meetings", meeting["id"], {"status": "held"}, admin, base=current)
    jobs.run_due_jobs(site)
    assert smtp_inbox.messages == []
    current = site.records.get("meetings", meeting["id"], admin)
    assert current["ical_sequence"] == 0
    site.records.update("meetings", meeting["id"], {"status": "not_held"}, admin,
                        base=current)
    jobs.run_due_jobs(site)
    assert sorted(str(m["To"]) for m in smtp_inbox.messages) == [
        "sophie@example.com", "wile@acme.example"]
    for message in smtp_inbox.messages:
        assert str(icalendar.Calendar.from_ical(ics_of(message))["METHOD"]) == "CANCEL"


def test_a_weekly_meeting_s_invitation_carries_its_rule(site, admin, smtp_inbox):
    """A series is invited to once, with its RRULE (the same VEVENT as its export): the
    invitee's calendar program makes the weeks, and the copies of the invitees on the
    occurrences mail nobody."""
    import icalendar
    import vobject

    save_preferences(site, admin.id, {"timezone": "Europe/Paris"})
    wile = site.records.create("contacts", {"first_name": "Wile", "last_name": "Coyote",
                                            "email1": "wile@acme.example"}, admin)
    weekly = site.records.create("meetings", {
        "name": "Weekly pipeline review", "date_start": START,
        "date_end": START + dt.timedelta(hours=1), "recurrence_tz": "Europe/Paris",
        "recurrence_rule": "RRULE:FREQ=WEEKLY;BYDAY=WE;COUNT=6"}, admin)
    site.records.create("invitees", {"meeting_id": weekly["id"], "invitee_id": wile["id"],
                                     "invitee_type": "contacts"}, admin)
    jobs.run_due_jobs(site)
    assert len(smtp_inbox.messages) == 1
    data = ics_of(smtp_inbox.messages[0])
    event = icalendar.Calendar.from_ical(data).walk("VEVENT")[0]
    assert str(event["UID"]) == f"{weekly['id']}@crbm"
    assert event["RRULE"].to_ical().decode() == "FREQ=WEEKLY;COUNT=6;BYDAY=WE"
    parsed = vobject.readOne(data.decode()).vevent
    assert parsed.rrule.value == "FREQ=WEEKLY;COUNT=6;BYDAY=WE"
    assert len(list(parsed.getrruleset())) == 6
