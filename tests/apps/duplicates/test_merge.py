"""Merging duplicates (core.apps.duplicates.merge): two contacts, each with calls, quotes,
emails, target-list memberships and many-to-many links (the kitchen sink's gadgets),
merged field by field into one. The
survivor holds every related record and link (a link both had, once), the loser is deleted,
the change log tells it; access still applies afterwards, and a user who may not edit or
delete every record is refused with nothing changed. Bad input is refused naming what. Then
the same through the merge page and the REST action — on the session's database."""
import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.apps.duplicates import MergeRefused, merge
from core.kernel.errors import NotFoundError, ValidationError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import api_client, bearer, signed_in

PASSWORD = "correct horse battery"
LEVELS = {"view": "all", "list": "all", "edit": "owner", "delete": "owner", "export": "none",
          "report": "all"}


@pytest.fixture
def pair(site, admin):
    """Jane Doe (kept) and J. Doe (her duplicate), each with a quote, an email and gadgets."""
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Doe",
                                            "account_id": acme["id"], "email1": "jane@acme.example",
                                            "title": "CFO"}, admin)
    dupe = site.records.create("contacts", {"first_name": "J.", "last_name": "Doe",
                                            "account_id": acme["id"], "phone_work": "+1 212 555 0142",
                                            "email1": "jdoe@acme.example"}, admin)
    quotes = [site.records.create("quotes", {"name": f"Quote for {who['first_name']}",
                                             "account_id": acme["id"],
                                             "billing_contact_id": who["id"]}, admin)
              for who in (jane, dupe)]
    shipped = site.records.create("quotes", {"name": "Shipped to J.", "account_id": acme["id"],
                                             "shipping_contact_id": dupe["id"]}, admin)
    emails = [site.records.create("emails", {"name": f"Hello {who['first_name']}",
                                             "parent_type": "contacts", "parent_id": who["id"]},
                                  admin) for who in (jane, dupe)]
    calls = [site.records.create("calls", {"name": f"Call {who['first_name']}",
                                           "parent_type": "contacts", "parent_id": who["id"]},
                                 admin)["id"] for who in (jane, dupe)]
    lists = {name: site.records.create("prospect_lists", {"name": name}, admin)["id"]
             for name in ("Newsletter", "Trade show")}
    site.records.link("contacts", jane["id"], "prospect_lists", lists["Newsletter"], admin)
    for list_id in lists.values():  # J. is on both: the newsletter membership both had stays once
        site.records.link("contacts", dupe["id"], "prospect_lists", list_id, admin)
    gadgets = {name: site.records.create("gadgets", {"name": name}, admin)["id"]
               for name in ("Both", "Janes", "Dupes")}
    for who, names in ((jane, ["Both", "Janes"]), (dupe, ["Both", "Dupes"])):
        for name in names:
            site.records.link("contacts", who["id"], "gadgets", gadgets[name], admin)
    return {"acme": acme, "jane": jane, "dupe": dupe, "quotes": [q["id"] for q in quotes],
            "shipped": shipped["id"], "emails": [e["id"] for e in emails], "gadgets": gadgets,
            "calls": calls, "lists": lists}


def related_names(site, user, module, record_id, relationship):
    return sorted(r["name"] for r in site.records.related(module, record_id, relationship, user,
                                                          Query(limit=None)))


def pointing(site, admin, module, field, record_id):
    return sorted(r["id"] for r in site.records.list(module, admin, Query(
        filters=[(field, "eq", record_id)], limit=None)))


def test_merge_moves_every_related_record_and_link_and_deletes_the_loser(site, admin, pair):
    jane, dupe = pair["jane"], pair["dupe"]
    merged = merge(site, "contacts", [jane["id"], dupe["id"]], admin, survivor=jane["id"],
                   choices={"email1": dupe["id"], "phone_work": dupe["id"], "title": jane["id"]})
    survivor = merged.survivor
    assert (survivor["email1"], survivor["phone_work"], survivor["title"], survivor["name"]) == \
        ("jdoe@acme.example", "+1 212 555 0142", "CFO", "Jane Doe")
    assert merged.losers == [dupe["id"]]
    with pytest.raises(NotFoundError):
        site.records.get("contacts", dupe["id"], admin)
    assert pointing(site, admin, "quotes", "billing_contact_id", jane["id"]) == sorted(pair["quotes"])
    assert pointing(site, admin, "quotes", "shipping_contact_id", jane["id"]) == [pair["shipped"]]
    assert pointing(site, admin, "emails", "parent_id", jane["id"]) == sorted(pair["emails"])
    assert [site.records.get("emails", e, admin)["parent_type"] for e in pair["emails"]] == \
        ["contacts", "contacts"]
    assert related_names(site, admin, "contacts", jane["id"], "gadgets") == ["Both", "Dupes", "Janes"]
    assert pointing(site, admin, "calls", "parent_id", jane["id"]) == sorted(pair["calls"])
    assert related_names(site, admin, "contacts", jane["id"], "prospect_lists") == \
        ["Newsletter", "Trade show"]
    assert related_names(site, admin, "prospect_lists", pair["lists"]["Newsletter"],
                         "contacts") == ["Jane Doe"]
    links = site.tables.tables["contacts_gadgets_links"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(links)).scalar() == 3
    log = site.records.change_log("contacts", jane["id"])
    merged_entry = [e for e in log if e["field"] == "(merged)"]
    assert len(merged_entry) == 1
    # the loser's: a call, an email, two quotes, two links (a gadget and a target list; the
    # gadget and the list both had are linked once)
    assert merged_entry[0]["new_value"] == \
        f"Merged from J. Doe ({dupe['id']}); moved 1 Call, 1 Email, 2 Quotes, 2 links"
    assert any(e["field"] == "email1" and e["new_value"] == "jdoe@acme.example" for e in log)
    assert [e["new_value"] for e in site.records.change_log("contacts", dupe["id"])
            if e["field"] == "(merged)"] == [f"Merged into Jane Doe ({jane['id']})"]
    moved_email = site.records.change_log("emails", pair["emails"][1])
    assert [(e["field"], e["new_value"]) for e in moved_email if e["field"] == "parent_id"] == \
        [("parent_id", jane["id"])]
    # the loser's duplicate keys no longer offer it
    from core.apps.duplicates import find_duplicates
    assert [d.id for d in find_duplicates(site, "contacts", {"email1": "jdoe@acme.example"},
                                          admin)] == [jane["id"]]


def test_a_user_who_may_not_edit_or_delete_every_record_is_refused(site, admin, pair):
    jane, dupe = pair["jane"], pair["dupe"]
    owen = create_user(site, "owen", PASSWORD)
    role = aa.create_role(site, "See all, change own")
    aa.set_role_rules(site, role, {m: ("enabled", LEVELS) for m in ("accounts", "contacts")})
    aa.set_role_users(site, role, add=[owen.id])
    site.records.update("contacts", jane["id"], {"assigned_user_id": owen.id}, admin)
    with pytest.raises(MergeRefused, match="You may not edit J. Doe: nothing was merged"):
        merge(site, "contacts", [jane["id"], dupe["id"]], owen, choices={"email1": dupe["id"]})
    site.records.update("contacts", dupe["id"], {"assigned_user_id": owen.id}, admin)
    aa.set_role_rules(site, role, {"contacts": ("enabled", {**LEVELS, "delete": "none"})})
    with pytest.raises(MergeRefused, match="You may not delete J. Doe"):
        merge(site, "contacts", [jane["id"], dupe["id"]], owen)
    # a loser they cannot see is not found, as anywhere else
    aa.set_role_rules(site, role, {"contacts": ("enabled", {**LEVELS, "view": "owner",
                                                            "list": "owner"})})
    hidden = site.records.create("contacts", {"last_name": "Hidden"}, admin)
    with pytest.raises(NotFoundError, match=hidden["id"]):
        merge(site, "contacts", [jane["id"], hidden["id"]], owen)
    # nothing changed
    assert site.records.get("contacts", dupe["id"], admin)["email1"] == "jdoe@acme.example"
    assert pointing(site, admin, "quotes", "billing_contact_id", dupe["id"]) == [pair["quotes"][1]]
    assert related_names(site, admin, "contacts", dupe["id"], "gadgets") == ["Both", "Dupes"]
    # with every right, the same user merges; what they could not see still moved
    aa.set_role_rules(site, role, {"contacts": ("enabled", LEVELS), "quotes": ("disabled", {})})
    merge(site, "contacts", [jane["id"], dupe["id"]], owen)
    assert pointing(site, admin, "quotes", "billing_contact_id", jane["id"]) == sorted(pair["quotes"])
    # and access still applies to the survivor: Owen sees it, someone without rights does not
    assert site.records.get("contacts", jane["id"], owen)["id"] == jane["id"]
    assert site.records.list("quotes", owen, Query(limit=None)) == []


@pytest.mark.parametrize(("ids", "choices", "error", "where"), [
    (lambda p: [p["jane"]["id"]], {}, ValidationError, "two to five records"),
    (lambda p: [p["jane"]["id"], *[f"00000000-0000-4000-8000-00000000000{i}" for i in range(5)]],
     {}, ValidationError, "6 given"),
    (lambda p: [p["jane"]["id"], p["acme"]["id"]], {}, NotFoundError, "Contact not found"),
    (lambda p: [p["jane"]["id"], p["dupe"]["id"]], {"email1": "someone-else"}, ValidationError,
     "not one of the records merged"),
    (lambda p: [p["jane"]["id"], p["dupe"]["id"]], {"no_such": "x"}, ValidationError,
     "is not a field of Contacts"),
])
def test_bad_input_is_refused_and_nothing_changes(site, admin, pair, ids, choices, error, where):
    with pytest.raises(error) as refused:
        merge(site, "contacts", ids(pair), admin, choices=choices)
    said = str(refused.value) + " ".join(str(m) for m in getattr(refused.value, "errors", {}).values())
    assert where in said
    assert site.records.get("contacts", pair["dupe"]["id"], admin)["email1"] == "jdoe@acme.example"


def test_a_record_already_deleted_is_not_merged(site, admin, pair):
    site.records.delete("quotes", pair["quotes"][1], admin)
    site.records.delete("quotes", pair["shipped"], admin)
    site.records.delete("contacts", pair["dupe"]["id"], admin)
    with pytest.raises(NotFoundError, match=pair["dupe"]["id"]):
        merge(site, "contacts", [pair["jane"]["id"], pair["dupe"]["id"]], admin)
    assert related_names(site, admin, "contacts", pair["jane"]["id"], "gadgets") == ["Both", "Janes"]


def test_the_merge_page_and_the_api_action(site, admin, pair):
    jane, dupe = pair["jane"], pair["dupe"]
    with signed_in(site, "admin") as web:
        page = web.get(f"/m/contacts/merge?ids={jane['id']}&ids={dupe['id']}")
        assert page.status_code == 200
        assert "Jane Doe" in page.text and "J. Doe" in page.text
        assert f'name="survivor" value="{dupe["id"]}"' in page.text
        assert f'name="v_email1" value="{dupe["id"]}"' in page.text
        # the flagged fields come first: the name's parts, then the company, email, phone
        assert page.text.index('data-field="first_name"') < page.text.index('data-field="title"')
        one = web.get(f"/m/contacts/merge?ids={jane['id']}")
        assert one.status_code == 422 and "two to five records" in one.text
        done = web.post("/m/contacts/merge", data={
            "_csrf": web.csrf, "ids": [jane["id"], dupe["id"]], "survivor": dupe["id"],
            "v_first_name": jane["id"], "v_email1": dupe["id"]}, follow_redirects=False)
        assert done.status_code == 303 and done.headers["location"] == f"/m/contacts/{dupe['id']}"
        detail = web.get(done.headers["location"])
        assert "2 records merged into Jane Doe." in detail.text
        assert "Merged" in detail.text and f"Merged from Jane Doe ({jane['id']})" in detail.text
        again = web.post("/m/contacts/merge", data={"_csrf": web.csrf,
                                                     "ids": [jane["id"], dupe["id"]]})
        assert again.status_code == 404 and "deleted, or you may not see it" in again.text
    other = site.records.create("contacts", {"last_name": "Doe", "first_name": "Janie"}, admin)
    client, auth = api_client(site), bearer(site, admin)
    url = f"/api/v1/contacts/{dupe['id']}/actions/merge"
    assert client.post(url, json={"losers": ["a", "b", "c", "d", "e"]},
                       headers=auth).status_code == 422
    merged = client.post(url, json={"losers": [other["id"]], "values": {"first_name": other["id"]}},
                         headers=auth)
    assert merged.status_code == 200, merged.text
    assert merged.json()["first_name"] == "Janie"
    assert client.get(f"/api/v1/contacts/{other['id']}", headers=auth).status_code == 404
    owen = create_user(site, "owen", PASSWORD)
    role = aa.create_role(site, "See all, change own")
    aa.set_role_rules(site, role, {m: ("enabled", LEVELS) for m in ("accounts", "contacts")})
    aa.set_role_users(site, role, add=[owen.id])
    third = site.records.create("contacts", {"last_name": "Third"}, owen)
    refused = client.post(f"/api/v1/contacts/{third['id']}/actions/merge",
                          json={"losers": [dupe["id"]]}, headers=bearer(site, owen))
    assert refused.status_code == 403 and "You may not edit Janie Doe" in refused.json()["detail"]
