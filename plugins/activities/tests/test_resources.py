"""Resources as an office manager meets them (implementation guide §7.7.3): meeting rooms
with their equipment, projectors... invited to meetings; a resource is never booked twice
at once — the save is refused naming the resource and the other meeting, on the web, in the
API and when a meeting is moved — while a busy person is only a warning."""
import datetime as dt

import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import api_client, bearer, signed_in
from plugins.activities import invitees as inv

PASSWORD = "correct horse battery"
START = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.UTC)


def meeting(site, user, name, start=START, minutes=60, **extra):
    return site.records.create("meetings", {"name": name, "date_start": start,
                                            "date_end": start + dt.timedelta(minutes=minutes),
                                            **extra}, user)


def book(site, user, meeting_id, resource_id):
    return site.records.create("invitees", {"meeting_id": meeting_id, "invitee_id": resource_id,
                                            "invitee_type": "resources"}, user)


@pytest.fixture
def rooms(site, admin):
    room = site.records.create("resources", {
        "name": "Salle Lumière", "resource_type": "meeting_room", "capacity": 8,
        "has_projector": True, "has_conf_phone": True}, admin)
    projector = site.records.create("resources", {"name": "Projector 2",
                                                  "resource_type": "projector"}, admin)
    return room, projector


def test_resource_types_and_room_equipment(site, admin, rooms):
    room, _projector = rooms
    types = [o["value"] for o in site.registry.dropdowns["resource_type_dom"]]
    assert types == ["meeting_room", "television", "dvd", "vcr", "projector",
                     "projection_screen", "desktop_pc", "notebook_pc", "conference_phone",
                     "telephone_bridge"]
    fields = site.registry.module("resources").fields
    assert {"has_tv", "has_dvd", "has_vcr", "has_projector", "has_screen", "has_pc",
            "has_conf_phone"} <= set(fields)
    assert room["has_projector"] is True and room["has_tv"] is False


def test_a_double_booked_resource_is_refused_and_nothing_saved(site, admin, rooms):
    room, projector = rooms
    review = meeting(site, admin, "Quarterly business review")
    book(site, admin, review["id"], room["id"])
    demo = meeting(site, admin, "Product demo", START + dt.timedelta(minutes=30))
    with pytest.raises(ValidationError) as caught:
        book(site, admin, demo["id"], room["id"])
    assert str(caught.value.errors["invitee_id"]) == (
        "Salle Lumière is already booked for “Quarterly business review” at that time")
    # a batch with a free resource and a booked one: nothing of it is saved
    with pytest.raises(ValidationError) as caught:
        site.records.create_many("invitees", [
            {"meeting_id": demo["id"], "invitee_id": projector["id"],
             "invitee_type": "resources"},
            {"meeting_id": demo["id"], "invitee_id": room["id"],
             "invitee_type": "resources"}], admin)
    assert list(caught.value.errors) == ["row 2: invitee_id"]
    assert len(inv.invitees_of(site, "meetings", [demo["id"]])[demo["id"]]) == 0
    # back to back is not an overlap; a meeting not held frees its resources
    after = meeting(site, admin, "Debrief", START + dt.timedelta(minutes=60))
    book(site, admin, after["id"], room["id"])
    site.records.update("meetings", review["id"], {"status": "not_held"}, admin,
                        base=site.records.get("meetings", review["id"], admin))
    book(site, admin, demo["id"], projector["id"])
    with pytest.raises(ValidationError):  # the debrief still holds the room at 10:00
        book(site, admin, demo["id"], room["id"])


def test_moving_a_meeting_onto_a_booked_room_is_refused(site, admin, rooms):
    room, _ = rooms
    morning = meeting(site, admin, "Morning workshop")
    book(site, admin, morning["id"], room["id"])
    later = meeting(site, admin, "Afternoon workshop", START + dt.timedelta(hours=5))
    book(site, admin, later["id"], room["id"])
    current = site.records.get("meetings", later["id"], admin)
    with pytest.raises(ValidationError) as caught:
        site.records.update("meetings", later["id"], {
            "date_start": START + dt.timedelta(minutes=15),
            "date_end": START + dt.timedelta(minutes=45)}, admin, base=current)
    assert "Morning workshop" in str(caught.value.errors["date_start"])
    assert site.records.get("meetings", later["id"], admin)["date_start"] == \
        START + dt.timedelta(hours=5)  # nothing saved


def test_end_before_start_is_still_refused(site, admin):
    with pytest.raises(ValidationError) as caught:
        meeting(site, admin, "Backwards", minutes=-30)
    assert set(caught.value.errors) == {"date_end"}


def test_the_api_refuses_a_double_booking_with_the_reason(site, admin, rooms):
    room, _ = rooms
    first = meeting(site, admin, "Board meeting")
    book(site, admin, first["id"], room["id"])
    second = meeting(site, admin, "Training")
    client = api_client(site)
    answer = client.post("/api/v1/invitees", json={
        "meeting_id": second["id"], "invitee_id": room["id"], "invitee_type": "resources"},
        headers=bearer(site, admin))
    assert answer.status_code == 422
    assert "Salle Lumière is already booked for “Board meeting”" in answer.text
    assert inv.invitees_of(site, "meetings", [second["id"]])[second["id"]] == []


def test_a_busy_user_is_a_warning_not_a_refusal(site, admin, rooms):
    sophie = create_user(site, "sophie", PASSWORD, display_name="Sophie Martin")
    first = meeting(site, admin, "Board meeting")
    second = meeting(site, admin, "Training", START + dt.timedelta(minutes=30))
    for m in (first, second):  # both saved
        site.records.create("invitees", {"meeting_id": m["id"], "user_id": sophie.id}, admin)
    busy = inv.busy_users(site, [second["id"]])[second["id"]]
    assert [(c.name, c.meeting_name) for c in busy] == [("Sophie Martin", "Board meeting")]
    with _admin_web(site) as web:
        page = web.get(f"/m/meetings/{second['id']}")
        assert "Warning — busy at that time: Sophie Martin (“Board meeting”)" in page.text
    # the same warning for an API client, the other meeting named only to who may see it
    answer = api_client(site).post(f"/api/v1/meetings/{second['id']}/actions/conflicts",
                                   json={}, headers=bearer(site, admin))
    assert answer.status_code == 200
    assert answer.json()["busy"] == [{"user_id": sophie.id, "user_name": "Sophie Martin",
                                      "meeting_id": first["id"],
                                      "meeting_name": "Board meeting"}]


def _admin_web(site):
    from core.testing import ADMIN_PASSWORD

    return signed_in(site, "admin", ADMIN_PASSWORD)



def test_demo_rooms_and_invitees(site, admin):
    import sqlalchemy as sa

    import cli
    from core.kernel.records import Query
    from plugins.activities import invitations

    cli.load_demo(site, admin, 3, seed=1)
    rooms = site.records.list("resources", admin, Query(fields=["name", "resource_type"],
                                                        limit=None))
    assert {"meeting_room", "projector", "conference_phone"} <= {
        r["resource_type"] for r in rooms}
    planned = [m["id"] for m in site.records.list("meetings", admin, Query(
        filters=[("status", "eq", "planned")], limit=None))]
    found = inv.invitees_of(site, "meetings", planned)
    assert all(any(i.kind == "users" for i in found[m]) for m in planned)
    assert any(i.kind == "contacts" for m in planned for i in found[m])
    queued = site.tables.tables["crbm_jobs"]
    with site.engine.connect() as conn:  # the demo mails no invitation
        assert conn.execute(sa.select(sa.func.count()).select_from(queued).where(
            queued.c.name == invitations.JOB)).scalar() == 0


def test_the_warning_does_not_name_a_meeting_the_reader_may_not_see(site, admin):
    from core.apps.admin import access_admin as aa
    from core.kernel.records import SYSTEM_USER

    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    sophie = create_user(site, "sophie", PASSWORD, display_name="Sophie Martin")
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team meetings")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"meetings": ("enabled", {a: "team" for a in rights})})
    aa.set_user_roles(site, tess.id, [role])
    secret = site.records.create("meetings", {
        "name": "Secret merger talks", "date_start": START,
        "date_end": START + dt.timedelta(hours=1)}, SYSTEM_USER)
    mine = site.records.create("meetings", {
        "name": "Team lunch", "date_start": START, "date_end": START + dt.timedelta(hours=1),
        "assigned_user_id": None}, SYSTEM_USER, teams=[east])
    for m in (secret, mine):
        site.records.create("invitees", {"meeting_id": m["id"], "user_id": sophie.id},
                            SYSTEM_USER)
    with signed_in(site, "tess", PASSWORD) as web:
        page = web.get(f"/m/meetings/{mine['id']}")
        assert page.status_code == 200
        assert "Warning — busy at that time: Sophie Martin (another meeting)" in page.text
        assert "Secret merger talks" not in page.text


def test_a_weekly_meeting_books_its_room_every_week_and_its_invitees_follow(site, admin, rooms):
    """A series' invitees are its occurrences' — the room too: a meeting put in that room at
    the third week's time is refused, and a contact invited to the series later is invited
    to every coming week not changed on its own."""
    room, _projector = rooms
    soon = (dt.datetime.now(dt.UTC) + dt.timedelta(days=1)).replace(microsecond=0)
    weekly = meeting(site, admin, "Weekly pipeline review", soon,
                     recurrence_rule="FREQ=WEEKLY;COUNT=4", recurrence_tz="Europe/Paris")
    book(site, admin, weekly["id"], room["id"])
    occurrences = site.records.list("meetings", admin, Query(
        filters={"recurrence_series_id": weekly["id"]}, sort="date_start"))
    assert len(occurrences) == 3
    third_week = occurrences[1]
    clash = meeting(site, admin, "Board lunch", third_week["date_start"])
    with pytest.raises(ValidationError) as caught:
        book(site, admin, clash["id"], room["id"])
    assert "Weekly pipeline review" in str(caught.value.errors["invitee_id"])

    contact = site.records.create("contacts", {"last_name": "Okafor"}, admin)
    site.records.create("invitees", {"meeting_id": weekly["id"], "invitee_id": contact["id"],
                                     "invitee_type": "contacts"}, admin)
    found = inv.invitees_of(site, "meetings", [o["id"] for o in occurrences])
    for occurrence in occurrences:
        kinds = sorted(i.kind for i in found[occurrence["id"]])
        assert kinds == ["contacts", "resources"], occurrence["date_start"]
