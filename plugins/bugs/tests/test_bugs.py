"""Bugs: numbered, linked to cases both ways (subpanels), "Create bug" from a group inbox,
the product link only with the products plugin, the demo."""
import random

from core.kernel.records import Query
from plugins.emails.tests.test_group_inboxes import make_inbox, received


def test_bugs_are_numbered_and_linked_to_cases_both_ways(site, admin, web):
    bug = site.records.create("bugs", {"name": "Export drops accents", "type": "defect",
                                       "found_in": "2.1"}, admin)
    feature = site.records.create("bugs", {"name": "Dark mode", "type": "feature"}, admin)
    assert (bug["number"], bug["status"], feature["number"]) == ("1001", "new", "1002")
    case = site.records.create("cases", {"name": "Accents lost in export"}, admin)
    site.records.link("bugs", bug["id"], "cases", case["id"], admin)
    assert [c["id"] for c in site.records.related("bugs", bug["id"], "cases", admin)] == \
        [case["id"]]
    assert [b["id"] for b in site.records.related("cases", case["id"], "bugs", admin)] == \
        [bug["id"]]
    page = web.get(f"/m/cases/{case['id']}/subpanel/bugs")
    assert page.status_code == 200 and "Export drops accents" in page.text
    page = web.get(f"/m/bugs/{bug['id']}/subpanel/cases")
    assert page.status_code == 200 and "Accents lost in export" in page.text
    assert "product_id" in site.registry.module("bugs").fields  # products is active
    updated = site.records.update("bugs", bug["id"], {"status": "closed", "resolution": "fixed",
                                                      "fixed_in": "2.2"}, admin)
    assert (updated["resolution"], updated["fixed_in"]) == ("fixed", "2.2")


def test_a_group_inbox_creates_a_bug_per_message(site, admin):
    inbox = make_inbox(site, admin, "Bugs", action="create_bug", create_contacts=False,
                       assigned_user_id=admin.id)
    site.records.create_many("emails", [
        received(inbox, "x@example.org", "Crash on save"),
        received(inbox, "y@example.org", "Typo in the menu")], admin)
    bugs = site.records.list("bugs", admin, Query(limit=None, sort="number"))
    assert [(b["number"], b["name"]) for b in bugs] == [("1001", "Crash on save"),
                                                        ("1002", "Typo in the menu")]
    emails = site.records.list("emails", admin, Query(limit=None, sort="name"))
    assert {(e["parent_type"], e["parent_id"]) for e in emails} == {
        ("bugs", b["id"]) for b in bugs}


def test_a_group_inbox_creates_cases_unless_the_subject_names_ones_case(site, admin):
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    jane = site.records.create("contacts", {"last_name": "Roe", "email1": "jane@acme.example",
                                            "account_id": account["id"]}, admin)
    inbox = make_inbox(site, admin, "Support", create_contacts=True)
    site.records.create_many("emails", [
        received(inbox, "jane@acme.example", "Printer jams"),
        received(inbox, "New Person <new@person.example>", "Hello")], admin)
    cases = site.records.list("cases", admin, Query(limit=None, sort="number"))
    assert (cases[0]["number"], cases[0]["contact_id"]) == ("1001", jane["id"])
    assert cases[1]["contact_id"] is not None  # the contact made for the unknown sender
    site.records.create_many("emails", [
        received(inbox, "jane@acme.example", "Re: Case ID#: 1001 still jams"),
        received(inbox, "new@person.example", "Re: Case ID#: 1001 not mine")], admin)
    cases = site.records.list("cases", admin, Query(limit=None, sort="number"))
    assert [c["number"] for c in cases] == ["1001", "1002", "1003"]  # the spoof: a new case
    assert cases[2]["name"] == "Re: Case ID#: 1001 not mine"


def test_demo_bugs(site, admin):
    from plugins.bugs import demo as bugs_demo
    from plugins.cases import demo as cases_demo

    site.records.create_many("accounts", [{"name": f"A{i}"} for i in range(3)], admin)
    cases_demo.load(site, admin, 3, random.Random(2), lambda d, t: None)
    bugs_demo.load(site, admin, 3, random.Random(2), lambda d, t: None)
    bugs = site.records.list("bugs", admin, Query(limit=None))
    assert len(bugs) == 5
    assert all(site.records.related("bugs", b["id"], "cases", admin) for b in bugs)
