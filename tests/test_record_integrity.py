"""What outside testing found about records (issue 15): client-chosen document numbers,
deleting what others depend on, who a new record is assigned to, calculated fields of
existing records, and links to records the writer may not see — as a user or an API
client meets them, on every database."""
from __future__ import annotations

import json

import pytest

from core import access_admin as aa
from core.customizations import Item
from core.errors import ValidationError
from core.users import create_user
from tests.api_util import bearer, client
from tests.test_api import fields_of, problem


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme"}, admin)


def manual_numbers(site, admin, module: str = "quotes") -> None:
    """The site's metadata lets writers choose the module's numbers."""
    site.studio.save_items(admin, [Item("module", module, {
        "name": module, "features": {"sequence": {"field": "number", "manual": True}}})])


# -- item 6: document numbers ------------------------------------------------------------

def test_a_number_is_read_only_unless_the_module_allows_manual_numbers(site, admin, acme):
    auth = bearer(site, admin)
    with client(site) as api:
        body = problem(api.post("/api/v1/quotes", headers=auth, json={
            "name": "Chosen", "account_id": acme["id"], "number": "QUO-0001"}), 422)
        assert fields_of(body) == {"number"}
        assert body["errors"][0]["message"] == "is read-only"
        made = api.post("/api/v1/quotes", headers=auth,
                        json={"name": "Numbered", "account_id": acme["id"]})
        assert made.status_code == 201 and made.json()["number"] == "QUO-0001"
        # bulk creates go through the same schema
        bulk = api.post("/api/v1/quotes/bulk", headers=auth, json={"create": [
            {"name": "Chosen", "account_id": acme["id"], "number": "QUO-0002"}]}).json()
        assert bulk["data"][0]["status"] == 422
        # a number cannot be changed afterwards either
        changed = api.patch(f"/api/v1/quotes/{made.json()['id']}", headers=auth,
                            json={"number": "QUO-0002"})
        assert fields_of(problem(changed, 422)) == {"number"}
    # the record service refuses it too (web forms, imports, plugins)
    for write in (lambda: site.records.create("quotes", {"name": "X", "account_id": acme["id"],
                                                         "number": "QUO-0009"}, admin),
                  lambda: site.records.create_many("quotes", [
                      {"name": "X", "account_id": acme["id"], "number": "QUO-0009"}], admin)):
        with pytest.raises(ValidationError) as caught:
            write()
        assert caught.value.errors == {"number": "is read-only"}
    assert site.records.create("quotes", {"name": "Next", "account_id": acme["id"]},
                               admin)["number"] == "QUO-0002"


def test_manual_numbers_are_skipped_by_the_sequence_and_a_duplicate_is_refused(
        site, admin, acme):
    manual_numbers(site, admin)
    auth = bearer(site, admin)
    with client(site) as api:
        def create(**values):
            return api.post("/api/v1/quotes", headers=auth,
                            json={"name": "Q", "account_id": acme["id"], **values})

        # the client takes the number the sequence would give next, and one further on
        assert create(number="QUO-0001").json()["number"] == "QUO-0001"
        assert create(number="QUO-0003").json()["number"] == "QUO-0003"
        # automatic numbers go on past the taken ones
        numbers = [create().json()["number"] for _ in range(3)]
        assert numbers == ["QUO-0002", "QUO-0004", "QUO-0005"]
        # a number used twice is the client's mistake, named, never a 500
        body = problem(create(number="QUO-0004"), 422)
        assert body["errors"] == [{"field": "number", "message": "QUO-0004 is already taken"}]
        # ... also when it is another record's number given in an update
        first = api.get("/api/v1/quotes?filter[number]=QUO-0001", headers=auth).json()
        body = problem(api.patch(f"/api/v1/quotes/{first['data'][0]['id']}", headers=auth,
                                 json={"number": "QUO-0005"}), 422)
        assert fields_of(body) == {"number"}
        # ... or twice in one batch
    with pytest.raises(ValidationError) as caught:
        site.records.create_many("quotes", [
            {"name": "A", "account_id": acme["id"], "number": "QUO-0100"},
            {"name": "B", "account_id": acme["id"], "number": "QUO-0100"}], admin)
    assert caught.value.errors == {"row 2: number": "QUO-0100 is already taken"}
    # a deleted record keeps its number (its row does)
    site.records.delete("quotes", site.records.create(
        "quotes", {"name": "Gone", "account_id": acme["id"], "number": "QUO-0200"},
        admin)["id"], admin)
    with pytest.raises(ValidationError):
        site.records.create("quotes", {"name": "C", "account_id": acme["id"],
                                       "number": "QUO-0200"}, admin)


def test_a_unique_violation_at_write_time_is_a_validation_error(site, admin, recorder):
    """A number taken between the check and the write (another writer committing in
    between; here a hook sets it) is a 422 naming the field, not a 500."""
    first = site.records.create("gadgets", {"name": "First"}, admin)
    recorder.number = first["gadget_number"]
    with pytest.raises(ValidationError) as caught:
        site.records.create("gadgets", {"name": "Second"}, admin)
    assert caught.value.errors == {
        "gadget_number": f"{first['gadget_number']} is already taken"}
    recorder.number = None
    assert site.records.create("gadgets", {"name": "Third"}, admin)["gadget_number"]


# -- item 11: who a new record is assigned to ----------------------------------------------

OWNER = {"view": "owner", "list": "owner", "edit": "owner", "delete": "owner"}


def test_a_record_created_through_the_api_is_assigned_to_its_creator(site, admin):
    """An Owner-level user sees what they created: the record is theirs."""
    olive = create_user(site, "olive", "correct horse battery")
    role = aa.create_role(site, "Own accounts")
    aa.set_role_rules(site, role, {"accounts": ("enabled", OWNER)})
    aa.set_role_users(site, role, add=[olive.id])
    auth = bearer(site, olive)
    with client(site) as api:
        made = api.post("/api/v1/accounts", headers=auth, json={"name": "Olive's"})
        assert made.status_code == 201 and made.json()["assigned_user_id"] == olive.id
        got = api.get(f"/api/v1/accounts/{made.json()['id']}", headers=auth)
        assert got.status_code == 200 and got.json()["name"] == "Olive's"
        bulk = api.post("/api/v1/accounts/bulk", headers=auth,
                        json={"create": [{"name": "Bulk one"}]}).json()
        assert bulk["data"][0]["record"]["assigned_user_id"] == olive.id
        # saying "nobody" is still possible
        nobody = api.post("/api/v1/accounts", headers=bearer(site, admin),
                          json={"name": "Nobody's", "assigned_user_id": None})
        assert nobody.json()["assigned_user_id"] is None
    # imports and plugins (create_many) too
    [imported] = site.records.create_many("accounts", [{"name": "Imported"}], olive)
    assert site.records.get("accounts", imported, olive)["assigned_user_id"] == olive.id


def test_a_conversion_keeps_the_assigned_user(site, admin, acme):
    from plugins.quotes import plugin as quotes
    sam = create_user(site, "sam", "correct horse battery")
    quote = site.records.create("quotes", {"name": "For Sam", "account_id": acme["id"],
                                           "assigned_user_id": sam.id}, admin)
    order = quotes.convert(site, admin, quote["id"], "sales_orders")
    assert order["assigned_user_id"] == sam.id
    unassigned = site.records.create("quotes", {"name": "Nobody's", "account_id": acme["id"],
                                                "assigned_user_id": None}, admin)
    invoice = quotes.convert(site, admin, unassigned["id"], "invoices")
    assert invoice["assigned_user_id"] == admin.id  # none to keep: whoever converted it


# -- item 7: links to records the writer may not see -------------------------------------

TEAM = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}


def test_a_record_may_not_link_one_its_writer_cannot_see(site, admin):
    """Linking another team's account is refused exactly as an unknown id is: the answer
    does not tell whether it exists."""
    north, south = aa.create_team(site, "North"), aa.create_team(site, "South")
    tess = create_user(site, "tess", "correct horse battery")
    aa.set_team_members(site, north, add=[tess.id])
    role = aa.create_role(site, "Team")
    aa.set_role_rules(site, role, {"accounts": ("enabled", TEAM),
                                   "contacts": ("enabled", TEAM)})
    aa.set_role_users(site, role, add=[tess.id])
    hidden = site.records.create("accounts", {"name": "Southco"}, admin, teams=[south])["id"]
    ours = site.records.create("accounts", {"name": "Northco"}, admin, teams=[north])["id"]
    unknown = "6f1c1a52-0000-4000-8000-000000000000"
    linked = site.records.create("contacts", {"last_name": "Linked", "account_id": hidden},
                                 admin, teams=[north])["id"]
    auth = bearer(site, tess)
    with client(site) as api:
        answers = {}
        for name, account in (("hidden", hidden), ("unknown", unknown)):
            body = problem(api.post("/api/v1/contacts", headers=auth, json={
                "last_name": "Sneaky", "account_id": account}), 422)
            answers[name] = json.dumps(body).replace(account, "<id>")
        assert answers["hidden"] == answers["unknown"]
        assert "account_id" in answers["hidden"]
        made = api.post("/api/v1/contacts", headers=auth,
                        json={"last_name": "Fine", "account_id": ours})
        assert made.status_code == 201
        patched = api.patch(f"/api/v1/contacts/{made.json()['id']}", headers=auth,
                            json={"account_id": hidden})
        assert fields_of(problem(patched, 422)) == {"account_id"}
        # a link someone else made stays, and does not stop her editing the rest
        kept = api.patch(f"/api/v1/contacts/{linked}", headers=auth,
                         json={"first_name": "Still"})
        assert kept.status_code == 200 and kept.json()["account_id"] == hidden
    # the web goes through the same check
    with pytest.raises(ValidationError) as caught:
        site.records.create("contacts", {"last_name": "Web", "account_id": hidden}, tess)
    assert caught.value.errors == {"account_id": f"no Account with id {hidden}"}
    assert site.records.count("contacts", admin) == 2
