"""Activities as a salesperson meets them: calls, meetings, tasks and notes "related to" an
account, a contact or an opportunity (any module that opts in), the record's Activities
panel showing what is still to do and its History what was done (with notes and emails),
quick creates prefilled with the record, save rules that refuse a meeting ending before it
starts, access that follows each activity's own rights, and the demo's story."""
import datetime as dt
import re
from urllib.parse import parse_qs, urlparse

import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import signed_in

PASSWORD = "correct horse battery"
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture
def acme(site, admin):
    account = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    contact = site.records.create("contacts", {"first_name": "Wile", "last_name": "Coyote",
                                               "account_id": account["id"]}, admin)
    return account, contact


def about(record, module):
    return {"parent_id": record["id"], "parent_type": module}


def test_related_to_names_every_module_that_opts_in(site):
    for kind in ("calls", "meetings", "tasks", "notes"):
        parent = site.registry.module(kind).fields["parent_id"]
        assert {"accounts", "contacts", "opportunities"} <= set(parent.spec["modules"])
        assert "calls" not in parent.spec["modules"]  # only those that say so
        allowed = site.registry.module(kind).fields["parent_type"].spec["allowed"]
        assert allowed == parent.spec["modules"]


def test_save_rules_refuse_bad_dates_and_store_nothing(site, admin, acme):
    account, _ = acme
    with pytest.raises(ValidationError) as caught:
        site.records.create("meetings", {"name": "Backwards", **about(account, "accounts"),
                                         "date_start": NOW, "date_end": NOW - dt.timedelta(
                                             hours=1)}, admin)
    assert set(caught.value.errors) == {"date_end"}
    with pytest.raises(ValidationError) as caught:
        site.records.create_many("tasks", [
            {"name": "Fine", "date_start": "2027-01-10", "date_due": "2027-01-12"},
            {"name": "Due before it starts", "date_start": "2027-01-10",
             "date_due": "2027-01-09"}], admin)
    assert set(caught.value.errors) == {"row 2: date_due"}
    with pytest.raises(ValidationError) as caught:  # a protected status list: no made-up one
        site.records.create("calls", {"name": "Odd", "status": "maybe", "date_start": NOW},
                            admin)
    assert "status" in caught.value.errors
    assert site.records.count("meetings", admin) == site.records.count("tasks", admin) == 0
    # an all-day meeting may end the day it starts
    day = dt.datetime(2027, 1, 10, tzinfo=dt.UTC)
    site.records.create("meetings", {"name": "Offsite", "all_day": True, "date_start": day,
                                     "date_end": day}, admin)


def panel(web, module, record_id, name) -> str:
    response = web.get(f"/m/{module}/{record_id}/panel/{name}?fragment=1")
    assert response.status_code == 200, response.text
    return response.text


def test_activities_and_history_panels_split_open_from_done(site, admin, acme):
    account, contact = acme
    later, earlier = NOW + dt.timedelta(days=2), NOW - dt.timedelta(days=2)
    site.records.create_many("calls", [
        {"name": "Call to plan", "status": "planned", "date_start": later,
         **about(account, "accounts")},
        {"name": "Call that was held", "status": "held", "date_start": earlier,
         **about(contact, "contacts")},
        # about the contact, but its account named directly: on the account's page too
        {"name": "Call via the account link", "status": "not_held", "date_start": earlier,
         "account_id": account["id"], **about(contact, "contacts")}], admin)
    site.records.create("meetings", {"name": "Demo meeting", "status": "planned",
                                     "date_start": later, "date_end": later + dt.timedelta(
                                         hours=1), **about(account, "accounts")}, admin)
    site.records.create_many("tasks", [
        {"name": "Task to do", "status": "in_progress", "date_due": "2030-01-01",
         **about(account, "accounts")},
        {"name": "Task deferred", "status": "deferred", **about(account, "accounts")},
        {"name": "Task for the contact", "status": "not_started",
         "contact_id": contact["id"]}], admin)
    site.records.create("notes", {"name": "Buying process", "description": "CFO decides",
                                  **about(account, "accounts")}, admin)
    if "emails" in site.registry.modules:
        site.records.create("emails", {"name": "Proposal sent", "status": "sent",
                                       "date_sent": earlier, "account_id": account["id"]},
                            admin)
    with signed_in(site, "admin") as web:
        page = web.get(f"/m/accounts/{account['id']}").text
        assert 'id="sub-activities"' in page and 'id="sub-history"' in page
        open_ = panel(web, "accounts", account["id"], "activities")
        done = panel(web, "accounts", account["id"], "history")
        shown = re.findall(r">(Call to plan|Demo meeting|Task to do)</a>", open_)
        assert sorted(shown[:2]) == ["Call to plan", "Demo meeting"]  # soonest first
        assert shown[2:] == ["Task to do"]  # due in 2030
        for text in ("Call that was held", "Task deferred", "Buying process"):
            assert text not in open_
        assert "Call via the account link" in done and "Task deferred" in done
        assert "Buying process" in done and "Call to plan" not in done
        assert "Call that was held" not in done  # about the contact only
        if "emails" in site.registry.modules:
            assert "Proposal sent" in done
        # the contact's page: its own, and the task that names it as its contact
        mine = panel(web, "contacts", contact["id"], "activities")
        assert "Task for the contact" in mine and "Call to plan" not in mine
        assert "Call that was held" in panel(web, "contacts", contact["id"], "history")
        # a module that did not opt in has no such panel; nor a record one may not see
        call = site.records.list("calls", admin, Query(limit=1))[0]
        assert web.get(f"/m/calls/{call['id']}/panel/history").status_code == 404
        assert 'id="sub-activities"' not in web.get(f"/m/calls/{call['id']}").text
        assert web.get(f"/m/accounts/{account['id']}/panel/nothing").status_code == 404
        # without JavaScript, the panel is a page of its own
        whole = web.get(f"/m/accounts/{account['id']}/panel/history")
        assert whole.status_code == 200 and "<html" in whole.text


def test_quick_create_links_are_prefilled_with_the_record(site, admin, acme):
    account, _ = acme
    with signed_in(site, "admin") as web:
        page = web.get(f"/m/accounts/{account['id']}").text
        links = {urlparse(href.replace("&amp;", "&")).path: parse_qs(urlparse(
            href.replace("&amp;", "&")).query) for href in re.findall(
            r'href="(/m/(?:calls|meetings|tasks|notes)/new\?[^"]+)"', page)}
        assert set(links) == {"/m/calls/new", "/m/meetings/new", "/m/tasks/new",
                              "/m/notes/new"}
        call = links["/m/calls/new"]
        assert call["parent_id"] == call["account_id"] == [account["id"]]
        assert call["parent_type"] == ["accounts"]
        # "Log a call" (in History) is a held one
        logged = [h.replace("&amp;", "&") for h in re.findall(
            r'href="(/m/calls/new\?[^"]+)"', page) if "status=held" in h]
        assert logged
        form = web.get(logged[0]).text
        assert "Acme Corporation" in form and 'value="held" selected' in form
        created = web.post("/m/calls/new", data={
            "_csrf": web.csrf, "name": "Logged from the account", "status": "held",
            "direction": "inbound", "date_start": "2026-11-30 10:00", "duration_minutes": "5",
            "parent_id": account["id"], "parent_type": "accounts",
            "account_id": account["id"]})
        assert created.status_code == 200, created.text
        assert "Logged from the account" in panel(web, "accounts", account["id"], "history")


def test_panels_show_only_what_the_reader_may_see(site, admin, acme):
    """A Team-level user sees the account, and in its panels only the calls of their team;
    a user whose roles disable meetings sees none (and no Create for them)."""
    from core.apps.admin import access_admin as aa
    from core.kernel.records import SYSTEM_USER

    account, _ = acme
    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team calls")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"calls": ("enabled", {a: "team" for a in rights}),
                                   "meetings": ("disabled", {})})
    aa.set_user_roles(site, tess.id, [role])
    values = {"status": "planned", "date_start": NOW, **about(account, "accounts")}
    site.records.create("calls", {**values, "name": "East call"}, SYSTEM_USER, teams=[east])
    site.records.create("calls", {**values, "name": "Hidden call"}, SYSTEM_USER)
    site.records.create("meetings", {**values, "name": "Hidden meeting",
                                     "date_end": NOW + dt.timedelta(hours=1)}, SYSTEM_USER)
    with signed_in(site, "admin") as web:
        seen = panel(web, "accounts", account["id"], "activities")
        assert {"East call", "Hidden call", "Hidden meeting"} <= set(re.findall(
            r">([^<>]+)</a>", seen))
    with signed_in(site, "tess", PASSWORD) as web:
        seen = panel(web, "accounts", account["id"], "activities")
        assert "East call" in seen and "Hidden" not in seen
        assert "/m/meetings/new" not in web.get(f"/m/accounts/{account['id']}").text


def test_demo_activities_tell_a_story(site, admin):
    import cli

    cli.load_demo(site, admin, 3, seed=1)
    calls = site.records.list("calls", admin, Query(limit=None))
    now = dt.datetime.now(dt.UTC)

    def aware(value):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    assert calls and all((c["status"] == "planned") == (aware(c["date_start"]) > now)
                         for c in calls)
    assert {c["parent_type"] for c in calls} == {"accounts", "contacts"}
    meetings = site.records.list("meetings", admin, Query(limit=None))
    assert meetings and all(m["date_end"] > m["date_start"] for m in meetings)
    tasks = site.records.list("tasks", admin, Query(limit=None))
    assert {t["status"] for t in tasks} & {"completed"} and \
        {t["status"] for t in tasks} & {"not_started", "in_progress", "pending_input"}
    assert site.records.count("notes", admin) > 0


def test_a_call_takes_its_account_s_teams_under_the_related_to_rule(site, admin):
    """Implementation guide §7.3.6: with "Inherit from 'Related To' Account" on, a call
    logged on an account gets the account's teams (its non-inheritable ones excepted)."""
    from core.apps.admin import access_admin as aa

    support = aa.create_team(site, "Support")
    board = aa.create_team(site, "Board", non_inheritable=True)
    acme = site.records.create("accounts", {"name": "Acme"}, admin, teams=[support, board])
    aa.save_settings(site, {"inherit_created_by": False, "inherit_related": True})
    call = site.records.create("calls", {"name": "Follow-up", "account_id": acme["id"]}, admin)
    assert set(site.records.teams_of("calls", [call["id"]])[call["id"]]) == {support}
    aa.save_settings(site, {"inherit_related": False})
    other = site.records.create("calls", {"name": "Cold call", "account_id": acme["id"]}, admin)
    assert not site.records.teams_of("calls", [other["id"]]).get(other["id"])


def test_meetings_tasks_and_notes_take_the_teams_of_what_they_are_related_to(site, admin):
    """The same rule through "Related to": a meeting about an account, a task about a
    contact, several notes about records of different modules created together — each
    takes the teams of its own parent, and one statement reads them all."""
    from core.apps.admin import access_admin as aa

    east, west = aa.create_team(site, "East"), aa.create_team(site, "West")
    acme = site.records.create("accounts", {"name": "Acme"}, admin, teams=[east])
    wile = site.records.create("contacts", {"last_name": "Coyote"}, admin, teams=[west])
    aa.save_settings(site, {"inherit_created_by": False, "inherit_related": True})
    start = dt.datetime(2027, 3, 8, 9, tzinfo=dt.UTC)
    meeting = site.records.create("meetings", {
        "name": "Review", "date_start": start, "date_end": start + dt.timedelta(hours=1),
        "parent_type": "accounts", "parent_id": acme["id"]}, admin)
    task = site.records.create("tasks", {"name": "Call back", "parent_type": "contacts",
                                         "parent_id": wile["id"]}, admin)
    note_ids = site.records.create_many("notes", [
        {"name": "About Acme", "parent_type": "accounts", "parent_id": acme["id"]},
        {"name": "About Wile", "parent_type": "contacts", "parent_id": wile["id"]},
        {"name": "About nothing"}], admin)
    assert site.records.teams_of("meetings", [meeting["id"]])[meeting["id"]] == [east]
    assert site.records.teams_of("tasks", [task["id"]])[task["id"]] == [west]
    teams = site.records.teams_of("notes", note_ids)
    assert [teams.get(i, []) for i in note_ids] == [[east], [west], []]
