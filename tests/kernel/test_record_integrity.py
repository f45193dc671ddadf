"""What outside testing found about records (issue 15): client-chosen document numbers,
deleting what others depend on, who a new record is assigned to, calculated fields of
existing records, and links to records the writer may not see — as a user or an API
client meets them, on every database."""
from __future__ import annotations

import html
import json
import re

import pytest
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.apps.studio.studio import StudioError
from core.kernel.customizations import Item
from core.kernel.errors import InUseError, ValidationError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.web.app import create_app
from tests.api.test_api import fields_of, problem
from tests.api_util import bearer, client
from tests.web.test_web_views import PASSWORD, csrf_of


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


# -- item 9: deleting what other records depend on -----------------------------------------

def flashes(response) -> str:
    return html.unescape(" ".join(re.findall(r'class="flash[^"]*"[^>]*>(.*?)<', response.text,
                                             re.DOTALL)))


@pytest.fixture
def web(site, admin):
    """A browser session of the administrator."""
    with TestClient(create_app(site)) as browser:
        login = browser.get("/login")
        signed_in = browser.post("/login", data={"_csrf": csrf_of(login.text),
                                                 "username": "admin", "password": PASSWORD})
        assert signed_in.status_code == 200
        browser.csrf = csrf_of(signed_in.text)
        yield browser


def test_an_account_with_an_open_invoice_cannot_be_deleted_anywhere(site, admin, acme, web):
    invoice = site.records.create("invoices", {"name": "Spring order",
                                               "account_id": acme["id"]}, admin)
    bolt = site.records.create("accounts", {"name": "Bolt"}, admin)
    nora = site.records.create("contacts", {"last_name": "Nora", "account_id": acme["id"]},
                               admin)
    refusal = "Acme cannot be deleted: other records refer to it (1 Invoice)"
    # the detail page's Delete
    response = web.post(f"/m/accounts/{acme['id']}/delete", data={"_csrf": web.csrf})
    assert response.status_code == 200 and response.url.path == f"/m/accounts/{acme['id']}"
    assert refusal in flashes(response)
    # the API: 409, naming what depends on it
    with client(site) as api:
        body = problem(api.delete(f"/api/v1/accounts/{acme['id']}",
                                  headers=bearer(site, admin)), 409)
    assert body["detail"] == refusal
    assert body["dependents"] == [{"module": "invoices", "label": "Invoices", "count": 1}]
    # mass delete deletes the others and says which it skipped, and why
    response = web.post("/m/accounts/action", data={"_csrf": web.csrf, "action": "delete",
                                                    "ids": [acme["id"], bolt["id"]]})
    said = flashes(response)
    assert "Deleted 1 of 2 selected records" in said and refusal in said
    assert site.records.count("accounts", admin) == 1  # Acme
    assert site.records.get("invoices", invoice["id"], admin)["account_id"] == acme["id"]
    # once the invoice is gone, so may the account be; its contact stays, unlinked
    site.records.delete("invoices", invoice["id"], admin)
    response = web.post(f"/m/accounts/{acme['id']}/delete", data={"_csrf": web.csrf})
    assert response.url.path == "/m/accounts" and "Account deleted." in flashes(response)
    contact = site.records.get("contacts", nora["id"], admin)
    assert contact["account_id"] is None and contact["version"] == 2
    assert [(c["field"], c["old_value"], c["new_value"]) for c in
            site.records.change_log("contacts", nora["id"])] == [
        ("(created)", None, None), ("account_id", acme["id"], "")]


def test_deleted_with_it_and_in_use_through_it(site, admin):
    """gadget_parts are deleted with their gadget (cascade); a part that another gadget's
    part replaces is in use (restrict), and so is its gadget."""
    make = site.records.create
    lamp, fan = (make("gadgets", {"name": n}, admin) for n in ("Lamp", "Fan"))
    bulb = make("gadget_parts", {"name": "Bulb", "gadget_id": lamp["id"]}, admin)
    make("gadget_parts", {"name": "LED", "gadget_id": lamp["id"], "replaces_id": bulb["id"]},
         admin)
    blade = make("gadget_parts", {"name": "Blade", "gadget_id": fan["id"]}, admin)
    make("gadget_parts", {"name": "Spare blade", "gadget_id": lamp["id"],
                          "replaces_id": blade["id"]}, admin)
    # the fan's blade is replaced by a part of the lamp: the fan is in use
    with pytest.raises(InUseError) as caught:
        site.records.delete("gadgets", fan["id"], admin)
    assert str(caught.value) == \
        "Fan cannot be deleted: other records refer to it (1 Gadget part)"
    # the lamp takes its parts with it (the LED replacing the bulb goes too)
    site.records.delete("gadgets", lamp["id"], admin)
    assert [p["name"] for p in site.records.list("gadget_parts", admin)] == ["Blade"]
    site.records.delete("gadgets", fan["id"], admin)
    assert site.records.count("gadget_parts", admin) == 0
    # mass delete of several at once works out the lot in one go
    ids = [make("gadgets", {"name": f"G{i}"}, admin)["id"] for i in range(3)]
    site.records.create_many("gadget_parts", [{"name": f"P{i}", "gadget_id": g}
                                              for i, g in enumerate(ids)], admin)
    assert site.records.delete_many("gadgets", ids, admin) == 3
    assert site.records.count("gadget_parts", admin) == 0


def test_a_link_to_a_deleted_record_names_it_to_whoever_may_see_it(site, admin, acme, web):
    """Links left from before (deleted records kept their links) show the record's name
    marked deleted, not "(no access)"; to someone who may not see it, still nothing."""
    invoice = site.records.create("invoices", {"name": "Old order", "account_id": acme["id"]},
                                  admin)
    accounts = site.tables.tables["accounts"]
    with site.engine.begin() as conn:
        conn.execute(accounts.update().where(accounts.c.id == acme["id"]).values(deleted=True))
    page = web.get(f"/m/invoices/{invoice['id']}").text
    assert "(no access)" not in page and "Acme (deleted)" in html.unescape(page)
    with client(site) as api:
        got = api.get(f"/api/v1/invoices/{invoice['id']}?labels=1",
                      headers=bearer(site, admin)).json()
    assert got["_labels"]["account_id"] == "Acme"


def test_on_delete_is_checked_with_the_metadata(site, admin):
    for spec, reason in (
            ({"type": "related", "module": "accounts", "required": True, "on_delete": "clear"},
             "a required field cannot be cleared"),
            ({"type": "text", "on_delete": "restrict"}, "only related fields")):
        with pytest.raises(StudioError, match=reason):
            site.studio.save_field(admin, "contacts", "backup_id", spec, new=True)


# -- item 12: calculated fields of the records that exist --------------------------------

def test_a_calculated_field_is_computed_for_existing_records_in_the_same_change(
        site, admin, recorder):
    ids = site.records.create_many("gadgets", [
        {"name": "Lamp", "quantity": 2}, {"name": "Fan", "quantity": 5},
        {"name": "Clock", "quantity": None}], admin)
    recorder.reset()

    def shown(field):
        return {r["name"]: r[field] for r in site.records.list(
            "gadgets", admin, Query(fields=["name", field, "version"], limit=None))}

    change = site.studio.save_field(admin, "gadgets", "doubled", {
        "type": "calculated", "format": "integer",
        "formula": "multiply(ifNull(quantity, 0), 2)"}, new=True)
    assert change.warnings == []
    assert shown("doubled") == {"Lamp": 4, "Fan": 10, "Clock": 0}
    site.studio.save_field(admin, "gadgets", "doubled", {
        "type": "calculated", "format": "integer", "formula": "add(quantity, 100)"})
    assert shown("doubled") == {"Lamp": 102, "Fan": 105, "Clock": None}
    # derived values: no save hooks ran, no version moved, nothing in the change log
    assert recorder.calls == []
    assert {r["version"] for r in site.records.list("gadgets", admin)} == {1}
    assert all([e["field"] for e in site.records.change_log("gadgets", i)] == ["(created)"]
               for i in ids)
    # the web shows it too
    assert site.records.get("gadgets", ids[0], admin)["doubled"] == 102


def test_a_formula_that_fails_for_some_records_leaves_them_blank_and_says_so(site, admin):
    site.records.create_many("widgets", [{"name": "12", "color": "3"},
                                         {"name": "Blue", "color": "x"}], admin)
    change = site.studio.save_field(admin, "widgets", "ratio", {
        "type": "calculated", "format": "decimal", "formula": "divide(name, color)"},
        new=True)
    assert {r["name"]: r["ratio"] for r in site.records.list("widgets", admin)} == {
        "12": 4, "Blue": None}
    assert change.warnings == [("1 existing record could not be calculated (ratio: divide() "
                                "expects a number, got 'Blue'); it is left blank")]
