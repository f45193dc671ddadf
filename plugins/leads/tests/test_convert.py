"""Converting a lead (issue 19): the page, the button, the API action; B2B and B2C; an
existing account picked; smart convert of a same-named custom field; converting twice
refused; the rights it needs — every refusal leaves nothing made."""
import re

import pytest

from core.apps.admin import access_admin as aa
from core.kernel.errors import ValidationError, VetoError
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, api_client, bearer, signed_in
from plugins.leads import convert
from plugins.leads.settings import SETTING, account_name, lead_settings
from tests.apps.documents.test_web_documents import flash_of


def made(site, admin) -> tuple[int, int]:
    return site.records.count("accounts", admin), site.records.count("contacts", admin)


def new_lead(site, user, **values):
    return site.records.create("leads", {
        "salutation": "Mr.", "first_name": "John", "last_name": "Doe",
        "account_name": "Acme Rockets", "title": "Buyer", "email1": "john@acme.example",
        "phone_work": "+1 212 555 0100", "phone_mobile": "+1 917 555 0199",
        "primary_address_street": "1 Main St", "primary_address_city": "Springfield",
        "lead_source": "trade_show", "description": "Met at the booth.", **values}, user)


def test_the_page_converts_once_and_the_lead_links_to_what_it_became(site, admin, web):
    lead = new_lead(site, admin)
    page = web.get(f"/m/leads/{lead['id']}").text
    assert f'href="/leads/{lead["id"]}/convert"' in page and "Convert lead" in page
    form = web.get(f"/leads/{lead['id']}/convert").text
    assert 'value="Acme Rockets"' in form and "Create an opportunity" in form
    done = web.post(f"/leads/{lead['id']}/convert", data={
        "_csrf": web.csrf, "account_mode": "new", "account_name": "Acme Rockets Inc."},
        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/m/contacts/")
    [account] = site.records.list("accounts", admin, Query(fields=[
        "name", "website", "phone_office", "billing_address_city", "email1"]))
    assert (account["name"], account["phone_office"], account["billing_address_city"],
            account["email1"]) == ("Acme Rockets Inc.", "+1 212 555 0100", "Springfield", None)
    contact = site.records.get("contacts", done.headers["location"].rsplit("/", 1)[1], admin)
    assert (contact["name"], contact["title"], contact["email1"], contact["phone_mobile"],
            contact["primary_address_city"], contact["lead_source"], contact["account_id"],
            contact["description"]) == ("Mr. John Doe", "Buyer", "john@acme.example",
                                        "+1 917 555 0199", "Springfield", "trade_show",
                                        account["id"], "Met at the booth.")
    lead = site.records.get("leads", lead["id"], admin)
    assert (lead["status"], lead["converted_account_id"], lead["converted_contact_id"]) == \
        ("converted", account["id"], contact["id"])
    logged = {(e["field"], e["new_value"]) for e in site.records.change_log("leads", lead["id"])}
    assert ("status", "converted") in logged and ("converted_contact_id", contact["id"]) in logged

    # twice: the button is gone, the page and its form refuse, nothing more is made
    page = web.get(f"/m/leads/{lead['id']}").text
    assert "Convert lead" not in page
    for method in ("GET", "POST"):
        again = web.request(method, f"/leads/{lead['id']}/convert", data={
            "_csrf": web.csrf, "account_mode": "new", "account_name": "X"} if method == "POST"
            else None, follow_redirects=False)
        assert again.status_code == 303 and again.headers["location"] == f"/m/leads/{lead['id']}"
        assert "was already converted" in flash_of(web, f"/m/leads/{lead['id']}")
    assert made(site, admin) == (1, 1)
    # and by hand: the status and the links change only by converting
    with pytest.raises(VetoError, match="stays Converted"):
        site.records.update("leads", lead["id"], {"status": "in_process"}, admin)
    other = new_lead(site, admin, last_name="Roe")
    with pytest.raises(VetoError, match="by converting it"):
        site.records.update("leads", other["id"], {"status": "converted"}, admin)
    with pytest.raises(VetoError, match="Converted to account is set by converting"):
        site.records.update("leads", other["id"], {"converted_account_id": account["id"]},
                            admin)


def test_an_account_of_the_same_name_is_offered_and_used(site, admin, web):
    acme = site.records.create("accounts", {"name": "Acme Rockets"}, admin)
    lead = new_lead(site, admin)
    form = web.get(f"/leads/{lead['id']}/convert").text
    assert "An account of this name exists already: Acme Rockets." in form
    assert re.search(r'name="account_mode" value="existing" checked', form)
    assert f'name="account_id" value="{acme["id"]}"' in form
    missing = web.post(f"/leads/{lead['id']}/convert", data={
        "_csrf": web.csrf, "account_mode": "existing", "account_id": ""})
    assert missing.status_code == 422 and "pick an account" in missing.text
    done = web.post(f"/leads/{lead['id']}/convert", data={
        "_csrf": web.csrf, "account_mode": "existing", "account_id": acme["id"]},
        follow_redirects=False)
    assert done.status_code == 303
    assert made(site, admin) == (1, 1)
    assert site.records.get("leads", lead["id"], admin)["converted_account_id"] == acme["id"]


def test_b2c_makes_a_person_account_named_by_the_format(site, admin, web):
    saved = web.post("/admin/leads", data={"_csrf": web.csrf, "business_model": "b2c",
                                           "account_name_format": "l, s f"},
                     follow_redirects=False)
    assert saved.status_code == 303 and lead_settings(site).b2c
    bad = web.post("/admin/leads", data={"_csrf": web.csrf, "business_model": "b2c",
                                         "account_name_format": "Customer",
                                         "assign_new_leads_to": "nobody"})
    assert bad.status_code == 400 and "must contain l (last name)" in bad.text \
        and "no active user with id nobody" in bad.text
    assert lead_settings(site).account_name_format == "l, s f"  # nothing saved
    lead = new_lead(site, admin, account_name=None)
    assert 'value="Doe, Mr. John"' in web.get(f"/leads/{lead['id']}/convert").text
    done = convert.convert(site, admin, lead["id"])
    assert (done.account["name"], done.account["email1"], done.account["phone_office"],
            done.account["phone_alternate"], done.account["billing_address_street"]) == (
        "Doe, Mr. John", "john@acme.example", "+1 212 555 0100", "+1 917 555 0199", "1 Main St")
    assert done.contact["account_id"] == done.account["id"]
    assert account_name("l, s f", {"first_name": "Jane", "last_name": "Roe"}) == "Roe, Jane"
    assert account_name("s f l", {"last_name": "Roe"}) == "Roe"
    assert account_name("f l (customer)", {"first_name": "Ann", "last_name": "Lee"}) == \
        "Ann Lee (customer)"


def test_smart_convert_copies_a_custom_field_both_modules_have(site, admin):
    for module in ("leads", "contacts"):
        site.studio.save_field(admin, module, "shoe_size", {"type": "integer",
                                                            "label": "Shoe size"}, new=True)
    lead = new_lead(site, admin, shoe_size=44)
    assert convert.convert(site, admin, lead["id"]).contact["shoe_size"] == 44


def test_rights_missing_refuse_and_nothing_is_made(site, admin):
    seller = create_user(site, "seller", ADMIN_PASSWORD)
    role = aa.create_role(site, "No accounts")
    aa.set_role_rules(site, role, {"accounts": ("enabled", {"view": "all", "list": "all",
                                                            "edit": "none"})})
    aa.set_role_users(site, role, add=[seller.id])
    mine = new_lead(site, seller)
    with pytest.raises(convert.ConvertRefused, match="You may not create Accounts") as caught:
        convert.convert(site, seller, mine["id"])
    assert caught.value.forbidden
    assert made(site, admin) == (0, 0)
    assert site.records.get("leads", mine["id"], admin)["status"] == "new"
    with signed_in(site, "seller") as client:  # the page says 403, the button stays
        refused = client.post(f"/leads/{mine['id']}/convert", data={
            "_csrf": client.csrf, "account_mode": "new", "account_name": "Acme"})
        assert refused.status_code == 403 and "You may not create Accounts" in refused.text
    acme = site.records.create("accounts", {"name": "Acme", "assigned_user_id": seller.id},
                               admin)
    assert convert.convert(site, seller, mine["id"], account_id=acme["id"]).account["id"] == \
        acme["id"]  # an existing account needs no right to create one

    # a lead they may see but not edit
    watcher = create_user(site, "watcher", ADMIN_PASSWORD)
    reader = aa.create_role(site, "Lead reader")
    aa.set_role_rules(site, reader, {"leads": ("enabled", {"view": "all", "list": "all",
                                                           "edit": "none"})})
    aa.set_role_users(site, reader, add=[watcher.id])
    theirs = new_lead(site, admin, last_name="Roe")
    with pytest.raises(convert.ConvertRefused, match="You may not edit the lead Mr. John Roe"):
        convert.convert(site, watcher, theirs["id"])
    with signed_in(site, "watcher") as client:  # no button; the page refuses at once
        assert "Convert lead" not in client.get(f"/m/leads/{theirs['id']}").text
        refused = client.get(f"/leads/{theirs['id']}/convert")
        assert refused.status_code == 403 and "You may not edit the lead" in refused.text
    assert made(site, admin) == (1, 1)


def test_the_api_action_converts_once(site, admin):
    lead = new_lead(site, admin)
    url = f"/api/v1/leads/{lead['id']}/actions/convert"
    with api_client(site) as api:
        auth = bearer(site, admin)
        refused = api.post(url, headers=auth, json={"opportunity": {"name": "Deal",
                                                                     "amount": "lots"}})
        assert refused.status_code == 422 and "opportunity.amount" in refused.text
        bad = api.post(url, headers=auth, json={"account_name": ""})
        assert bad.status_code == 200, bad.text  # empty: the lead's company
        body = bad.json()
        assert body["account"]["name"] == "Acme Rockets" and body["account_created"] is True
        assert body["lead"]["status"] == "converted"
        assert body["contact"]["account_id"] == body["account"]["id"]
        again = api.post(url, headers=auth, json={})
        assert again.status_code == 409 and "already converted" in again.json()["detail"]
        unknown = api.post(url, headers=auth, json={"colour": "red"})
        assert unknown.status_code in (409, 422)
    assert made(site, admin) == (1, 1)


def test_new_leads_nobody_is_assigned_to_go_to_the_setting(site, admin):
    rep = create_user(site, "rep", ADMIN_PASSWORD)
    site.set_setting(SETTING, {"assign_new_leads_to": rep.id})
    by_form = site.records.create("leads", {"last_name": "Form"}, SYSTEM_USER)
    by_api = site.records.create("leads", {"last_name": "Api", "assigned_user_id": None}, admin)
    own = site.records.create("leads", {"last_name": "Own"}, admin)
    assert [r["assigned_user_id"] for r in (by_form, by_api, own)] == [rep.id, rep.id, admin.id]


def test_an_account_name_is_needed(site, admin):
    lead = new_lead(site, admin, account_name=None)
    with pytest.raises(ValidationError) as caught:
        convert.convert(site, admin, lead["id"])
    assert "account.name" in caught.value.errors
    assert made(site, admin) == (0, 0)


def test_a_first_meeting_is_made_with_the_contact_or_nothing_is(site, admin, web):
    lead = new_lead(site, admin)
    form = web.get(f"/leads/{lead['id']}/convert").text
    assert "Schedule a meeting with them" in form and 'value="Meeting with Mr. John Doe"' in form
    base = {"_csrf": web.csrf, "account_mode": "new", "account_name": "Acme Rockets",
            "create_meeting": "1", "meeting_name": "Kick-off", "meeting_location": "Their office"}
    # ends before it starts: the meeting's own rule refuses, and nothing at all is made
    refused = web.post(f"/leads/{lead['id']}/convert", data={
        **base, "meeting_start": "2027-01-12T10:00", "meeting_end": "2027-01-12T09:00"})
    assert refused.status_code == 422 and 'id="f-meeting_end"' in refused.text
    assert made(site, admin) == (0, 0) and site.records.count("meetings", admin) == 0
    done = web.post(f"/leads/{lead['id']}/convert", data={
        **base, "meeting_start": "2027-01-12T10:00", "meeting_end": "2027-01-12T11:00"},
        follow_redirects=False)
    assert done.status_code == 303
    contact_id = done.headers["location"].rsplit("/", 1)[1]
    [meeting] = site.records.list("meetings", admin, Query(fields=[
        "name", "location", "date_start", "date_end", "parent_type", "parent_id"]))
    assert (meeting["name"], meeting["location"], meeting["parent_type"], meeting["parent_id"],
            meeting["date_start"].isoformat(), meeting["date_end"].isoformat()) == \
        ("Kick-off", "Their office", "contacts", contact_id, "2027-01-12T10:00:00+00:00",
         "2027-01-12T11:00:00+00:00")  # the admin's zone is UTC


def test_the_api_converts_with_a_first_meeting(site, admin):
    lead = new_lead(site, admin)
    with api_client(site) as api:
        done = api.post(f"/api/v1/leads/{lead['id']}/actions/convert", headers=bearer(site, admin),
                        json={"meeting": {"name": "Call back", "date_start": "2027-02-01T09:00:00Z",
                                          "date_end": "2027-02-01T09:30:00Z"}})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["meeting"]["parent_id"] == body["contact"]["id"]
    assert body["meeting"]["name"] == "Call back"
