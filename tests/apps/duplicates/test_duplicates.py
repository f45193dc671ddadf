"""Likely duplicates on create (core.apps.duplicates): the same email (case, spaces, Gmail's
dots and tags), the same phone in E.164 whatever its spelling, a similar name within the
same company; only records the user may view; the keys kept by every save; the create
form's warning and "Save anyway", the API's 409 and ``?duplicates=ignore``, and the list
action's groups — on the session's database."""
import pytest

from core.apps.admin import access_admin as aa
from core.apps.duplicates import find_duplicates, find_groups
from core.apps.duplicates import keys as dk
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import api_client, bearer, csrf_of, signed_in

PASSWORD = "correct horse battery"
OWNER_LEVELS = {"view": "owner", "list": "owner", "edit": "owner", "delete": "owner",
                "export": "none", "report": "owner"}


@pytest.fixture
def world(site, admin):
    acme = site.records.create("accounts", {"name": "Acme Corporation",
                                            "phone_office": "+1 212 555 0100",
                                            "email1": "info@acme.example"}, admin)
    globex = site.records.create("accounts", {"name": "Globex"}, admin)
    jane = site.records.create("contacts", {
        "first_name": "Jane", "last_name": "Doe", "account_id": acme["id"],
        "email1": "Jane.Doe@Example.com", "phone_work": "(212) 555-0142",
        "primary_address_country": "United States"}, admin)
    john = site.records.create("contacts", {
        "first_name": "John", "last_name": "Smith", "account_id": acme["id"],
        "email1": "j.smith+crm@gmail.com", "phone_work": "+44 20 7946 0958"}, admin)
    return acme, globex, jane, john


def names(found):
    return [d.name for d in found]


def test_normalized_keys():
    assert dk.email_key("  Jane.Doe@Example.COM ") == "jane.doe@example.com"
    assert dk.email_key("J.Smith+news@googlemail.com") == "jsmith@gmail.com"
    assert dk.email_key("j.smith+news@example.com") == "j.smith+news@example.com"
    assert dk.email_key("not an address") is None
    assert dk.phone_key("(212) 555-0142", "US") == "+12125550142"
    assert dk.phone_key("020 7946 0958", "GB") == "+442079460958"
    assert dk.phone_key("01 42 68 53 00", dk.region_of("France")) == "+33142685300"
    assert dk.phone_key("12", "US") is None
    assert dk.phone_key("+1 212 555 0100 x204", "US") == "+12125550100x204"  # a switchboard's
    assert dk.name_key("Doe, JANE") == dk.name_key("jane  doe") == "doe jane"


def test_same_email_phone_or_similar_name_in_the_company(site, admin, world):
    acme, globex, _jane, _john = world
    same_email = {"first_name": "J", "last_name": "D", "email1": " jane.doe@EXAMPLE.com"}
    found = find_duplicates(site, "contacts", same_email, admin)
    assert names(found) == ["Jane Doe"] and found[0].reasons == ["email"]
    assert names(find_duplicates(site, "contacts", {"last_name": "Other",
                                                    "phone_work": "+1 212-555-0142"}, admin)) == \
        ["Jane Doe"]
    local = {"last_name": "Other", "phone_work": "212.555.0142", "primary_address_country": "US"}
    assert names(find_duplicates(site, "contacts", local, admin)) == ["Jane Doe"]
    # in France the same digits are another number
    assert find_duplicates(site, "contacts", {**local, "primary_address_country": "France"},
                           admin) == []
    assert names(find_duplicates(site, "contacts", {"last_name": "Q", "email1": "jsmith@gmail.com"},
                                 admin)) == ["John Smith"]
    similar = {"first_name": "Jon", "last_name": "Smith", "account_id": acme["id"]}
    found = find_duplicates(site, "contacts", similar, admin)
    assert names(found) == ["John Smith"] and found[0].reasons == ["name"]
    # the same name at another company, or at none, is no evidence; another name is not similar
    assert find_duplicates(site, "contacts", {**similar, "account_id": globex["id"]}, admin) == []
    assert find_duplicates(site, "contacts", {"first_name": "Jon", "last_name": "Smith"},
                           admin) == []
    assert find_duplicates(site, "contacts", {"first_name": "Mary", "last_name": "Smith",
                                              "account_id": acme["id"]}, admin) == []
    # accounts have no company: a name is compared with the names of the same first letters
    assert names(find_duplicates(site, "accounts", {"name": "ACME Corporation."}, admin)) == \
        ["Acme Corporation"]
    assert names(find_duplicates(site, "accounts", {"name": "Other", "email1": "INFO@acme.example"},
                                 admin)) == ["Acme Corporation"]
    assert find_duplicates(site, "accounts", {"name": "Acme Widgets"}, admin) == []
    # a module without flags has no duplicates
    assert find_duplicates(site, "products", {"name": "Acme Corporation"}, admin) == []


def test_keys_follow_saves_and_deleted_records_are_not_offered(site, admin, world):
    temp = site.records.create("contacts", {"last_name": "Temp", "email1": "temp@example.org"}, admin)
    assert names(find_duplicates(site, "contacts", {"email1": "temp@example.org"}, admin)) == ["Temp"]
    site.records.update("contacts", temp["id"], {"email1": "moved@example.org"}, admin)
    assert find_duplicates(site, "contacts", {"email1": "temp@example.org"}, admin) == []
    assert names(find_duplicates(site, "contacts", {"email1": "moved@example.org"}, admin)) == \
        ["Temp"]
    site.records.delete("contacts", temp["id"], admin)
    assert find_duplicates(site, "contacts", {"email1": "moved@example.org"}, admin) == []
    # rows written around the record service are keyed by the next schema sync
    table = site.tables.tables[dk.TABLE]
    with site.engine.begin() as conn:
        conn.execute(table.delete().where(table.c.module == "contacts"))
    assert find_duplicates(site, "contacts", {"email1": "jane.doe@example.com"}, admin) == []
    site.sync_schema()
    assert names(find_duplicates(site, "contacts", {"email1": "jane.doe@example.com"}, admin)) == \
        ["Jane Doe"]


def test_only_records_the_user_may_view_are_offered(site, admin, world):
    _acme, _globex, _jane, _john = world
    owen = create_user(site, "owen", PASSWORD)
    role = aa.create_role(site, "Own contacts")
    aa.set_role_rules(site, role, {m: ("enabled", OWNER_LEVELS) for m in ("accounts", "contacts")})
    aa.set_role_users(site, role, add=[owen.id])
    mine = site.records.create("contacts", {"last_name": "Doe", "first_name": "Janet",
                                            "email1": "jane.doe@example.com"}, owen)
    assert names(find_duplicates(site, "contacts", {"email1": "jane.doe@example.com"}, owen)) == \
        ["Janet Doe"]
    assert sorted(names(find_duplicates(site, "contacts", {"email1": "jane.doe@example.com"},
                                        admin))) == ["Jane Doe", "Janet Doe"]
    groups = find_groups(site, "contacts", [mine["id"]], owen)
    assert groups == []  # Jane is not Owen's to see: no group of one
    groups = find_groups(site, "contacts", [mine["id"]], admin)
    assert [sorted(names(g)) for g in groups] == [["Jane Doe", "Janet Doe"]]


def test_create_form_warns_and_save_anyway_creates(site, admin, world):
    _acme, _globex, jane, _john = world
    with signed_in(site, "admin") as web:
        form = web.get("/m/contacts/new")
        data = {"_csrf": csrf_of(form.text), "first_name": "Jane", "last_name": "Doe",
                "email1": "JANE.DOE@example.com"}
        warned = web.post("/m/contacts/new", data=data, follow_redirects=False)
        assert warned.status_code == 409
        assert "looks like a record that already exists" in warned.text
        assert f'href="/m/contacts/{jane["id"]}"' in warned.text
        assert "same email" in warned.text and "Save anyway" in warned.text
        assert 'value="JANE.DOE@example.com"' in warned.text  # the input is kept
        assert len(site.records.list("contacts", admin, Query(search="Doe"))) == 1
        saved = web.post("/m/contacts/new", data={**data, "_duplicates": "ignore"},
                         follow_redirects=False)
        assert saved.status_code == 303
        assert len(site.records.list("contacts", admin, Query(search="Doe"))) == 2
        # no likely duplicate: saved at once
        fresh = web.post("/m/contacts/new", data={**data, "email1": "someone@else.example",
                                                   "last_name": "Unique"}, follow_redirects=False)
        assert fresh.status_code == 303


def test_api_create_answers_409_with_the_candidates_unless_ignored(site, admin, world):
    acme, _globex, _jane, john = world
    client, auth = api_client(site), bearer(site, admin)
    body = {"first_name": "Jon", "last_name": "Smith", "account_id": acme["id"]}
    refused = client.post("/api/v1/contacts", json=body, headers=auth)
    assert refused.status_code == 409, refused.text
    problem = refused.json()
    assert problem["title"] == "Likely duplicate"
    assert problem["duplicates"] == [{"id": john["id"], "name": "John Smith", "reasons": ["name"],
                                      "score": problem["duplicates"][0]["score"],
                                      "url": f"/api/v1/contacts/{john['id']}"}]
    assert client.post("/api/v1/contacts?duplicates=maybe", json=body,
                       headers=auth).status_code == 400
    created = client.post("/api/v1/contacts?duplicates=ignore", json=body, headers=auth)
    assert created.status_code == 201, created.text
    assert client.post("/api/v1/contacts", json={"last_name": "Nobody Alike"},
                       headers=auth).status_code == 201


def test_find_duplicates_list_action_groups_the_selection(site, admin, world):
    acme, _globex, _jane, john = world
    twin = site.records.create("contacts", {"first_name": "Jon", "last_name": "Smith",
                                            "account_id": acme["id"]}, admin)
    site.records.create("contacts", {"first_name": "Ann", "last_name": "Other"}, admin)
    with signed_in(site, "admin") as web:
        page = web.get("/m/contacts")
        assert 'formaction="/m/contacts/duplicates"' in page.text
        assert "Find duplicates" in page.text
        found = web.post("/m/contacts/duplicates", data={"_csrf": web.csrf, "all": "1"})
        assert found.status_code == 200
        assert found.text.count('class="card duplicate-group"') == 1
        assert "similar name" in found.text
        assert f"ids={john['id']}" in found.text and f"ids={twin['id']}" in found.text
        assert web.get("/m/products").text.count("Find duplicates") == 0


def test_the_demo_contacts_hold_a_few_people_entered_twice(site, admin):
    import random

    from plugins.accounts.plugin import crbm_demo_data as demo_accounts
    from plugins.contacts.plugin import crbm_demo_data as demo_contacts

    for demo in (demo_accounts, demo_contacts):
        demo(site=site, user=admin, size=150, rng=random.Random(3), progress=lambda *a: None)
    contacts = site.records.list("contacts", admin, Query(fields=["id"], limit=None))
    assert len(contacts) == 300
    groups = find_groups(site, "contacts", [c["id"] for c in contacts], admin)
    assert 1 <= len(groups) <= 10
    assert all("email" in d.reasons for group in groups for d in group)
