"""Invitees as an organizer meets them: users, contacts (and leads) invited to a meeting or a
call, each with an answer; shown on the meeting's page and in the API; answered from the
meeting's page or from a signed link without logging in; ``invitees_of`` set-based."""
import datetime as dt
import re

import pytest
import sqlalchemy as sa

from core.kernel.errors import ValidationError
from core.kernel.users import create_user
from core.testing import api_client, bearer, signed_in
from plugins.activities import invitees as inv

PASSWORD = "correct horse battery"
START = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def people(site, admin):
    sophie = create_user(site, "sophie", PASSWORD, email="sophie@example.com",
                         display_name="Sophie Martin")
    account = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    wile = site.records.create("contacts", {"first_name": "Wile", "last_name": "Coyote",
                                            "email1": "wile@acme.example",
                                            "account_id": account["id"]}, admin)
    return sophie, wile


def meeting(site, user, name="Product demo", start=START, minutes=60, **extra):
    return site.records.create("meetings", {"name": name, "date_start": start,
                                            "date_end": start + dt.timedelta(minutes=minutes),
                                            **extra}, user)


def test_users_and_contacts_are_invited_with_an_answer(site, admin, people):
    sophie, wile = people
    demo = meeting(site, admin)
    rows = [site.records.get("invitees", i, admin) for i in site.records.create_many(
        "invitees", [{"meeting_id": demo["id"], "user_id": sophie.id},
                     {"meeting_id": demo["id"], "invitee_id": wile["id"],
                      "invitee_type": "contacts", "accept_status": "tentative"}], admin)]
    assert [r["name"] for r in rows] == ["Sophie Martin", "Wile Coyote"]  # kept names
    assert rows[0]["accept_status"] == "none"
    found = inv.invitees_of(site, "meetings", [demo["id"], "no-such-id"])
    assert found["no-such-id"] == []
    assert [(i.kind, i.name, i.email, i.accept_status) for i in found[demo["id"]]] == [
        ("users", "Sophie Martin", "sophie@example.com", "none"),
        ("contacts", "Wile Coyote", "wile@acme.example", "tentative")]
    assert inv.invited_activities(site, "meetings", [sophie.id]) == {
        sophie.id: [(demo["id"], "none")]}
    # a call has invitees too
    call = site.records.create("calls", {"name": "Kick-off", "date_start": START}, admin)
    site.records.create("invitees", {"call_id": call["id"], "user_id": sophie.id}, admin)
    assert [i.name for i in inv.invitees_of(site, "calls", [call["id"]])[call["id"]]] == [
        "Sophie Martin"]
    # ... but books no room: resources are for meetings
    room = site.records.create("resources", {"name": "Salle Verte"}, admin)
    with pytest.raises(ValidationError) as caught:
        site.records.create("invitees", {"call_id": call["id"], "invitee_id": room["id"],
                                         "invitee_type": "resources"}, admin)
    assert "a call books no resource" in str(caught.value.errors["invitee_id"])
    assert len(inv.invitees_of(site, "calls", [call["id"]])[call["id"]]) == 1


def test_leads_are_invitable_while_the_leads_plugin_is_on(site):
    field = site.registry.module("invitees").fields["invitee_id"]
    assert {"contacts", "leads", "resources"} <= set(field.spec["modules"])
    assert "accounts" not in field.spec["modules"]


def test_bad_invitees_are_refused_and_nothing_is_stored(site, admin, people):
    sophie, wile = people
    demo = meeting(site, admin)
    with pytest.raises(ValidationError) as caught:  # neither a meeting nor a call
        site.records.create("invitees", {"user_id": sophie.id}, admin)
    assert "meeting_id" in caught.value.errors
    with pytest.raises(ValidationError) as caught:  # a user and a contact at once
        site.records.create("invitees", {"meeting_id": demo["id"], "user_id": sophie.id,
                                         "invitee_id": wile["id"],
                                         "invitee_type": "contacts"}, admin)
    assert "user_id" in caught.value.errors
    site.records.create("invitees", {"meeting_id": demo["id"], "user_id": sophie.id}, admin)
    with pytest.raises(ValidationError) as caught:  # twice
        site.records.create("invitees", {"meeting_id": demo["id"], "user_id": sophie.id},
                            admin)
    assert str(caught.value.errors["user_id"]) == "is already invited"
    with pytest.raises(ValidationError):  # a made-up answer
        site.records.create("invitees", {"meeting_id": demo["id"], "invitee_id": wile["id"],
                                         "invitee_type": "contacts",
                                         "accept_status": "maybe"}, admin)
    assert site.records.count("invitees", admin) == 1


def test_invitees_of_is_set_based(site, admin, people):
    sophie, wile = people
    meetings = [meeting(site, admin, f"M{i}", START + dt.timedelta(days=i)) for i in range(6)]
    site.records.create_many("invitees", [
        row for m in meetings for row in (
            {"meeting_id": m["id"], "user_id": sophie.id},
            {"meeting_id": m["id"], "invitee_id": wile["id"], "invitee_type": "contacts"})],
        admin)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(site.engine, "before_cursor_execute", count)
    try:
        found = inv.invitees_of(site, "meetings", [m["id"] for m in meetings])
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", count)
    assert all(len(v) == 2 for v in found.values())
    assert len(statements) == 3  # the rows, the users, the contacts — not one per meeting


def test_meeting_page_shows_invitees_and_the_user_answers(site, admin, people):
    sophie, wile = people
    demo = meeting(site, admin, assigned_user_id=sophie.id)
    site.records.create_many("invitees", [
        {"meeting_id": demo["id"], "user_id": sophie.id},
        {"meeting_id": demo["id"], "invitee_id": wile["id"], "invitee_type": "contacts"}],
        admin)
    with signed_in(site, "sophie", PASSWORD) as web:
        page = web.get(f"/m/meetings/{demo['id']}")
        assert page.status_code == 200
        assert 'data-subpanel="meetings:invitees"' in page.text
        assert f'action="/meetings/{demo["id"]}/answer/accepted"' in page.text
        rows = web.get(f"/m/meetings/{demo['id']}/subpanel/invitees?fragment=1")
        assert "Wile Coyote" in rows.text and "Sophie Martin" in rows.text
        done = web.post(f"/meetings/{demo['id']}/answer/accepted",
                        data={"_csrf": web.csrf}, follow_redirects=True)
        assert done.status_code == 200 and "Your answer is recorded: Accepted." in done.text
        assert f'action="/meetings/{demo["id"]}/answer/accepted"' not in done.text
    assert inv.invitees_of(site, "meetings", [demo["id"]])[demo["id"]][0].accept_status \
        == "accepted"


def test_a_user_not_invited_cannot_answer(site, admin, people):
    demo = meeting(site, admin)
    create_user(site, "other", PASSWORD)
    with signed_in(site, "other", PASSWORD) as web:
        assert web.post(f"/meetings/{demo['id']}/answer/accepted",
                        data={"_csrf": web.csrf}).status_code in (403, 404)


def test_a_signed_link_answers_without_logging_in(site, admin, people):
    from starlette.testclient import TestClient

    from core.web.app import create_app

    _sophie, wile = people
    demo = meeting(site, admin)
    row = site.records.create("invitees", {"meeting_id": demo["id"], "invitee_id": wile["id"],
                                           "invitee_type": "contacts"}, admin)
    url = inv.answer_url(site, row["id"], "declined")
    path = url[url.index("/invitations/"):]
    with TestClient(create_app(site)) as client:
        asked = client.get(path)
        assert asked.status_code == 200 and "Product demo" in asked.text
        assert site.records.get("invitees", row["id"], admin)["accept_status"] == "none"
        csrf = re.search(r'name="_csrf" value="([^"]+)"', asked.text).group(1)
        done = client.post(path, data={"_csrf": csrf})
        assert done.status_code == 200 and 'data-answer="declined"' in done.text
        assert site.records.get("invitees", row["id"], admin)["accept_status"] == "declined"
        # a forged token, or one for another answer, changes nothing
        forged = path.replace("/declined/", "/accepted/")
        assert client.get(forged).status_code == 410
        assert client.get(path[:-4] + "0000").status_code == 410
    assert site.records.get("invitees", row["id"], admin)["accept_status"] == "declined"


def test_invitees_in_the_api(site, admin, people):
    sophie, _wile = people
    demo = meeting(site, admin)
    client = api_client(site)
    headers = bearer(site, admin)
    made = client.post("/api/v1/invitees", json={"meeting_id": demo["id"],
                                                 "user_id": sophie.id}, headers=headers)
    assert made.status_code == 201, made.text
    listed = client.get(f"/api/v1/meetings/{demo['id']}/invitees", headers=headers)
    assert listed.status_code == 200, listed.text
    assert "Sophie Martin" in listed.text
    again = client.post("/api/v1/invitees", json={"meeting_id": demo["id"],
                                                  "user_id": sophie.id}, headers=headers)
    assert again.status_code == 422 and "already invited" in again.text


def test_a_lead_is_invited_and_mailed_like_a_contact(site, admin):
    lead = site.records.create("leads", {"first_name": "Road", "last_name": "Runner",
                                         "email1": "beep@desert.example"}, admin)
    demo = meeting(site, admin)
    site.records.create("invitees", {"meeting_id": demo["id"], "invitee_id": lead["id"],
                                     "invitee_type": "leads"}, admin)
    found = inv.invitees_of(site, "meetings", [demo["id"]])[demo["id"]]
    assert [(i.kind, i.name, i.email) for i in found] == [
        ("leads", "Road Runner", "beep@desert.example")]


def test_french_pages(site, admin, people):
    from core.kernel import i18n
    from core.kernel.users import save_preferences
    from tests.pack_util import install_folder

    install_folder(site, "lang_fr")
    sophie, _wile = people
    save_preferences(site, sophie.id, i18n.Preferences(language="fr").to_dict())
    room = site.records.create("resources", {"name": "Salle Lumière",
                                             "has_projector": True}, admin)
    demo = meeting(site, admin)
    site.records.create("invitees", {"meeting_id": demo["id"], "user_id": sophie.id}, admin)
    with signed_in(site, "sophie", PASSWORD) as web:
        page = web.get(f"/m/meetings/{demo['id']}").text
        assert "Invités" in page and ">Accepter<" in page and ">Refuser<" in page
        assert "Peut-être" in page
        page = web.get(f"/m/resources/{room['id']}").text
        assert "Salle de réunion" in page and "Vidéoprojecteur" in page
        assert "Équipement" in page
