"""Targets and target lists (issue 19): members added from a list page's ticked rows and
from its filters, in one go and never twice; memberships are ordinary many-to-many links
(both sides see them); a target promoted to a lead once, in one transaction."""
import pytest

from core.apps.admin import access_admin as aa
from core.kernel.errors import NotFoundError, VetoError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD
from plugins.targets import glue_leads, members


def names(site, user, list_id, relationship):
    return sorted(r["name"] for r in site.records.related(
        "prospect_lists", list_id, relationship, user, Query(fields=["name"])))


def test_members_come_from_the_ticked_rows_and_from_the_filters(site, admin, web):
    newsletter = site.records.create("prospect_lists", {"name": "Newsletter"}, admin)
    ada, bob = (site.records.create("contacts", {"first_name": n, "last_name": "Lee"}, admin)
                for n in ("Ada", "Bob"))
    page = web.get("/m/contacts").text
    assert 'formaction="/prospect_lists/add/contacts"' in page or \
        "/prospect_lists/add/contacts" in page
    chooser = web.post("/prospect_lists/add/contacts", data={"_csrf": web.csrf,
                                                            "ids": [ada["id"], bob["id"]]})
    assert chooser.status_code == 200 and "2 records are selected." in chooser.text
    assert f'<option value="{newsletter["id"]}">Newsletter</option>' in chooser.text
    done = web.post("/prospect_lists/add/contacts", data={
        "_csrf": web.csrf, "ids": [ada["id"], bob["id"]], "target_list_id": newsletter["id"]},
        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == \
        f"/m/prospect_lists/{newsletter['id']}"
    assert names(site, admin, newsletter["id"], "contacts") == ["Ada Lee", "Bob Lee"]
    # the contact's side sees the same link (a merge moves it like any other)
    assert [r["name"] for r in site.records.related(
        "contacts", ada["id"], "prospect_lists", admin, Query(fields=["name"]))] == ["Newsletter"]

    # every lead the list's filter matches ("all"), twice: added once
    for source, last in (("trade_show", "Show"), ("trade_show", "Fair"), ("web_site", "Web")):
        site.records.create("leads", {"last_name": last, "lead_source": source}, admin)
    for _ in range(2):
        web.post("/prospect_lists/add/leads", data={
            "_csrf": web.csrf, "all": "1", "f_lead_source": "trade_show",
            "target_list_id": newsletter["id"]}, follow_redirects=False)
    assert names(site, admin, newsletter["id"], "leads") == ["Fair", "Show"]
    assert members.member_count(site, newsletter["id"], "leads") == 2
    empty = web.post("/prospect_lists/add/leads", data={"_csrf": web.csrf,
                                                       "target_list_id": newsletter["id"]})
    assert empty.status_code == 422 and "nothing was selected" in empty.text


def test_access_limits_what_is_added(site, admin):
    rep = create_user(site, "rep", ADMIN_PASSWORD)
    role = aa.create_role(site, "Own contacts")
    aa.set_role_rules(site, role, {"contacts": ("enabled", {"view": "owner", "list": "owner",
                                                            "edit": "owner"}),
                                   "prospect_lists": ("enabled", {"view": "all", "list": "all",
                                                                "edit": "owner"})})
    aa.set_role_users(site, role, add=[rep.id])
    theirs = site.records.create("prospect_lists", {"name": "Admin's"}, admin)
    mine = site.records.create("prospect_lists", {"name": "Mine"}, rep)
    own = site.records.create("contacts", {"last_name": "Own"}, rep)
    other = site.records.create("contacts", {"last_name": "Other"}, admin)
    with pytest.raises(NotFoundError, match="that you may change"):
        members.add_members(site, rep, theirs["id"], "contacts", [own["id"]])
    assert members.add_members(site, rep, mine["id"], "contacts",
                               [own["id"], other["id"]]) == (1, 1)
    assert names(site, admin, mine["id"], "contacts") == ["Own"]


def test_a_target_is_promoted_to_a_lead_once(site, admin, web):
    target = site.records.create("prospects", {
        "salutation": "Ms.", "first_name": "Ann", "last_name": "Lee", "account_name": "Acme",
        "email1": "ann@acme.example", "lead_source": "trade_show"}, admin)
    assert "Promote to lead" in web.get(f"/m/prospects/{target['id']}").text
    done = web.post(f"/prospects/{target['id']}/promote", data={"_csrf": web.csrf},
                    follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/m/leads/")
    lead = site.records.get("leads", done.headers["location"].rsplit("/", 1)[1], admin)
    assert lead["prospect_id"] == target["id"]
    assert [r["id"] for r in site.records.related("prospects", target["id"], "leads",
                                                  admin)] == [lead["id"]]
    assert (lead["name"], lead["account_name"], lead["email1"], lead["lead_source"],
            lead["status"]) == ("Ms. Ann Lee", "Acme", "ann@acme.example", "trade_show", "new")
    assert "Promote to lead" not in web.get(f"/m/prospects/{target['id']}").text
    with pytest.raises(glue_leads.PromoteRefused, match="already promoted"):
        glue_leads.promote(site, admin, target["id"])
    with pytest.raises(VetoError, match="set by promoting"):
        site.records.update("leads", lead["id"], {"prospect_id": None}, admin)
    assert site.records.count("leads", admin) == 1
