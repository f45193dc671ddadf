"""The cases plugin beside its flow (test_flow.py): numbering and the queue user, the
subject matching's spoofing guard, survey links forged or used twice, Admin → Case
settings and its bad input, auto-close on a fixed clock, notifications, "Find technician"
with access, the work order PDF, the demo."""
import datetime as dt
import io
import random
import re

import pypdf
import pytest
from starlette.testclient import TestClient

from core import jobs
from core.apps.admin import access_admin as aa
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import csrf_of, signed_in
from core.web.app import create_app
from plugins.cases import autoclose, surveys
from plugins.cases.settings import CaseSettings, case_settings, clean

PASSWORD = "a long enough password 1"


@pytest.fixture
def acme(site, admin):
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Roe",
                                            "email1": "jane@acme.example",
                                            "account_id": account["id"]}, admin)
    return account, jane


@pytest.fixture
def other(site, admin):
    account = site.records.create("accounts", {"name": "Globex"}, admin)
    mallory = site.records.create("contacts", {"first_name": "Mal", "last_name": "Lory",
                                               "email1": "mal@globex.example",
                                               "account_id": account["id"]}, admin)
    return account, mallory


def inbound(subject: str, sender: str, **values) -> dict:
    return {"name": subject, "direction": "inbound", "status": "received",
            "from_address": sender, "to_addresses": "support@ours.example", **values}


def test_cases_are_numbered_from_1001_and_go_to_the_queue_user(site, admin, acme):
    queue = create_user(site, "queue", PASSWORD)
    first = site.records.create("cases", {"name": "One"}, admin)
    assert (first["number"], first["status"], first["priority"], first["assigned_user_id"]) \
        == ("1001", "new", "p2", admin.id)
    site.set_setting("cases", {"queue_user_id": queue.id})
    second = site.records.create("cases", {"name": "Two"}, admin)
    named = site.records.create("cases", {"name": "Three", "assigned_user_id": queue.id},
                                admin)
    assert (second["number"], second["assigned_user_id"]) == ("1002", queue.id)
    assert named["assigned_user_id"] == queue.id
    # the queue user is told, the one who saved is not
    inbox = site.records.list("cases", queue, Query(limit=None))
    assert {c["number"] for c in inbox} >= {"1002"}


def test_a_subject_naming_a_case_files_the_mail_only_from_its_owner(site, admin, acme, other):
    account, jane = acme
    case = site.records.create("cases", {"name": "Printer", "account_id": account["id"],
                                         "contact_id": jane["id"]}, admin)
    mine = site.records.create("emails", inbound("Re: Case ID#: 1001 Printer",
                                                 "Jane <jane@acme.example>"), admin)
    assert (mine["parent_type"], mine["parent_id"]) == ("cases", case["id"])
    # a colleague of Jane's at Acme: the account owns the case
    colleague = site.records.create("contacts", {"last_name": "Doe", "email1": "doe@acme.example",
                                                 "account_id": account["id"]}, admin)
    theirs = site.records.create("emails", inbound("case id#:1001 again", "doe@acme.example"),
                                 admin)
    assert theirs["parent_id"] == case["id"] and theirs["contact_id"] == colleague["id"]
    # spoofing: another customer, or a stranger, naming Acme's case number
    spoof = site.records.create("emails", inbound("Re: Case ID#: 1001 send me the file",
                                                  "mal@globex.example"), admin)
    stranger = site.records.create("emails", inbound("Case ID#: 1001", "x@unknown.example"),
                                   admin)
    missing = site.records.create("emails", inbound("Case ID#: 9999", "jane@acme.example"),
                                  admin)
    for email in (spoof, stranger, missing):
        assert email["parent_id"] is None, email["name"]
    assert spoof["account_id"] == other[0]["id"]  # filed as any other mail of Globex's


def test_the_pattern_is_the_settings_and_a_bad_one_is_refused(site, admin):
    settings = CaseSettings(subject_pattern="[Ticket nnnn]")
    assert settings.subject_for("1001") == "[Ticket 1001]"
    assert settings.subject_regex().search("Fwd: RE: [ticket 1001] hi").group(1) == "1001"
    assert not settings.subject_regex().search("Ticket 1001")
    assert CaseSettings().subject_regex().search("xCase ID#: 1001-2 y").group(1) == "1001-2"
    for bad in ("Case ID#", "nnnn", "nnnn nnnn", "x" * 101 + " nnnn"):
        assert "subject_pattern" in clean({"subject_pattern": bad,
                                           "auto_close_status": "pending"}, set())[1]
    site.set_setting("cases", {"subject_pattern": "no placeholder", "auto_close_days": -3,
                               "surveys": "yes"})
    assert case_settings(site) == CaseSettings()  # unusable stored values: the defaults


def test_replies_from_a_case_carry_its_pattern(site, admin, acme):
    _, jane = acme
    case = site.records.create("cases", {"name": "Printer", "contact_id": jane["id"]}, admin)
    for subject, expected in (("Re: Printer", "Re: Case ID#: 1001 Printer"),
                              ("Case ID#: 1001 as is", "Case ID#: 1001 as is"),
                              ("Printer", "Case ID#: 1001 Printer")):
        email = site.records.create("emails", {
            "name": subject, "direction": "outbound", "to_addresses": "jane@acme.example",
            "parent_type": "cases", "parent_id": case["id"]}, admin)
        assert email["name"] == expected


def test_admin_case_settings_page(site, admin, web):
    queue = create_user(site, "queue", PASSWORD)
    page = web.get("/admin/cases")
    assert page.status_code == 200 and "Case queue user" in page.text
    assert "/admin/cases" in web.get("/admin").text
    bad = web.post("/admin/cases", data={
        "_csrf": web.csrf, "queue_user_id": "nobody", "auto_close_status": "closed",
        "auto_close_days": "-1", "subject_pattern": "Case"})
    assert bad.status_code == 422
    assert "Choose an active user." in bad.text and "is not a whole number" in bad.text
    assert site.settings.get("cases") is None  # nothing saved
    good = web.post("/admin/cases", data={
        "_csrf": web.csrf, "queue_user_id": queue.id, "auto_close_status": "pending",
        "auto_close_days": "14", "subject_pattern": "[Ticket nnnn]", "surveys": "1",
        "work_order_terms": "Pay in 10 days."}, follow_redirects=False)
    assert good.status_code == 303
    saved = case_settings(site)
    assert (saved.queue_user_id, saved.auto_close_days, saved.subject_pattern, saved.surveys,
            saved.notify_contacts) == (queue.id, 14, "[Ticket nnnn]", True, False)
    with signed_in(site, "queue", PASSWORD) as client:
        assert client.get("/admin/cases").status_code == 403


def _survey_link(site, admin, acme, smtp_inbox) -> tuple[dict, str]:
    _, jane = acme
    site.set_setting("cases", {"surveys": True})
    case = site.records.create("cases", {"name": "Printer", "contact_id": jane["id"]}, admin)
    site.records.update("cases", case["id"], {"status": "closed"}, admin)
    jobs.run_due_jobs(site)
    jobs.run_due_jobs(site)  # a job run again sends nothing twice
    [mail] = smtp_inbox.messages
    return case, re.search(r"(/survey/\S+)", mail.get_content()).group(1)


def test_survey_links_forged_or_used_twice(site, admin, acme, smtp_inbox):
    case, link = _survey_link(site, admin, acme, smtp_inbox)
    survey_id = link.rsplit("/", 1)[1].split(".")[0]
    forged = [f"/survey/{survey_id}.{'0' * 32}", f"/survey/{survey_id}", f"/survey/{case['id']}",
              "/survey/" + "x" * 500, f"/survey/{surveys.sign(site, 'made-up-id')}"]
    with TestClient(create_app(site)) as customer:
        token = csrf_of(customer.get(link).text)
        for bad in forged:
            shown = customer.get(bad)
            assert shown.status_code == 404 and "This link is not valid" in shown.text, bad
            posted = customer.post(bad, data={"_csrf": token, "rating": "1"})
            assert posted.status_code == 404, bad
        for rating in ("0", "6", "four", ""):
            refused = customer.post(link, data={"_csrf": token, "rating": rating})
            assert refused.status_code == 400 and "Choose from 1 to 5 stars." in refused.text
        assert customer.post(link, data={"rating": "5"}).status_code == 403  # no CSRF token
        assert site.records.get("cases", case["id"], admin)["rating"] is None
        assert customer.post(link, data={"_csrf": token, "rating": "2"}).status_code == 200
        twice = customer.post(link, data={"_csrf": token, "rating": "5"})
        assert twice.status_code == 409 and "Already answered" in twice.text
    assert site.records.get("cases", case["id"], admin)["rating"] == 2
    with pytest.raises(surveys.AlreadyAnswered):
        surveys.answer(site, survey_id, 5, "")


def test_contacts_are_mailed_on_create_and_status_change_once(site, admin, acme, smtp_inbox):
    _, jane = acme
    agent = create_user(site, "agent", PASSWORD)
    site.set_setting("cases", {"notify_contacts": True})
    case = site.records.create("cases", {"name": "Printer", "contact_id": jane["id"],
                                         "assigned_user_id": agent.id}, admin)
    site.records.update("cases", case["id"], {"status": "in_progress"}, admin)
    site.records.update("cases", case["id"], {"priority": "p1"}, admin)  # no status change
    jobs.run_due_jobs(site)
    jobs.run_due_jobs(site)
    subjects = [m["Subject"] for m in smtp_inbox.messages]
    assert subjects == ["Case ID#: 1001 Printer", "Case ID#: 1001 Printer"]
    assert "is now: Active" in smtp_inbox.messages[1].get_content()
    # the History of the case shows what was sent
    filed = site.records.list("emails", admin, Query(filters={"parent_id": case["id"]}))
    assert len(filed) == 2
    # the assigned user: told of the new case and of its status change, once each
    from core.apps.notifications import inbox
    assert inbox.unread_count(site, agent) == 2


def test_auto_close_on_a_fixed_clock(site, admin, acme):
    site.set_setting("cases", {"auto_close_days": 3, "auto_close_status": "pending"})
    pending = site.records.create("cases", {"name": "A", "status": "pending"}, admin)
    active = site.records.create("cases", {"name": "B", "status": "in_progress"}, admin)
    since = pending["pending_since"]
    assert since is not None and active["pending_since"] is None
    later = since + dt.timedelta(days=3, seconds=1)
    assert autoclose.expired(site, since + dt.timedelta(days=2)) == []
    assert autoclose.run(site, later) == "1 case(s) closed"
    assert autoclose.run(site, later) is None
    closed = site.records.get("cases", pending["id"], admin)
    assert (closed["status"], closed["pending_since"]) == ("closed_expired", None)
    assert closed["closed_at"] is not None
    # reopened and pending again: counted from then
    again = site.records.update("cases", pending["id"], {"status": "pending"}, admin)
    assert again["pending_since"] > since
    assert autoclose.run(site, again["pending_since"] + dt.timedelta(days=2)) is None
    site.set_setting("cases", {"auto_close_days": 0})
    assert autoclose.run(site, later + dt.timedelta(days=100)) is None  # off


def test_a_waiting_case_warns_its_contact_once_and_an_answer_keeps_it_open(
        site, admin, acme, smtp_inbox):
    """1CRM's "Warn When No Activity": N days into the wait the contact is told the case
    will close; their answer puts the case back In Progress, so it does not close."""
    _account, jane = acme
    site.set_setting("cases", {"auto_close_days": 7, "auto_close_warn_days": 5,
                               "auto_close_status": "pending"})
    case = site.records.create("cases", {"name": "Printer", "status": "pending",
                                         "contact_id": jane["id"]}, admin)
    nobody = site.records.create("cases", {"name": "No contact", "status": "pending"}, admin)
    since = case["pending_since"]
    assert autoclose.run(site, since + dt.timedelta(days=4)) is None
    assert autoclose.run(site, since + dt.timedelta(days=5, minutes=1)) == "1 warning(s) queued"
    jobs.run_due_jobs(site)
    assert autoclose.run(site, since + dt.timedelta(days=5, hours=2)) is None  # sent once
    jobs.run_due_jobs(site)
    [warning] = smtp_inbox.messages
    assert warning["Subject"] == "Case ID#: 1001 Printer"
    assert "will be closed in 2 days" in warning.get_content()
    # the customer answers: filed on the case, which is In Progress again and stays open
    site.records.create("emails", inbound("Re: Case ID#: 1001 Printer", "jane@acme.example",
                                          body="Still broken."), admin)
    assert site.records.get("cases", case["id"], admin)["status"] == "in_progress"
    assert autoclose.run(site, since + dt.timedelta(days=8)) == "1 case(s) closed"
    assert site.records.get("cases", nobody["id"], admin)["status"] == "closed_expired"
    assert site.records.get("cases", case["id"], admin)["status"] == "in_progress"


def test_a_warning_must_come_before_the_close(site):
    _, errors = clean({"auto_close_status": "pending", "auto_close_days": "7",
                       "auto_close_warn_days": "7", "subject_pattern": "Case nnnn"}, set())
    assert set(errors) == {"auto_close_warn_days"}
    _, errors = clean({"auto_close_status": "pending", "auto_close_days": "0",
                       "auto_close_warn_days": "3", "subject_pattern": "Case nnnn"}, set())
    assert set(errors) == {"auto_close_warn_days"}
    values, errors = clean({"auto_close_status": "pending", "auto_close_days": "7",
                            "auto_close_warn_days": "5", "subject_pattern": "Case nnnn"}, set())
    assert not errors and values["auto_close_warn_days"] == 5


def test_find_technician_lists_users_rated_well_enough(site, admin, web):
    ann, bob, cy = (create_user(site, n, PASSWORD) for n in ("ann", "bob", "cy"))
    net, prn = site.records.create_many("service_skills", [{"name": "Networking"},
                                                           {"name": "Printers"}], admin)
    site.records.create_many("user_skills", [
        {"user_id": ann.id, "skill_id": net, "level": "5"},
        {"user_id": ann.id, "skill_id": prn, "level": "3"},
        {"user_id": bob.id, "skill_id": net, "level": "4"},
        {"user_id": bob.id, "skill_id": prn, "level": "1"},
        {"user_id": cy.id, "skill_id": net, "level": "3"},
        {"user_id": cy.id, "skill_id": prn, "level": "4"}], admin)
    case = site.records.create("cases", {"name": "Printer on the network"}, admin)
    site.records.create_many("case_skills", [
        {"case_id": case["id"], "skill_id": net, "level": "3"},
        {"case_id": case["id"], "skill_id": prn, "level": "3"}], admin)
    page = web.get(f"/cases/{case['id']}/technicians")
    assert page.status_code == 200
    found = re.findall(r"<tr><td>(\w+)</td><td>(\d+)</td>", page.text)
    assert found == [("ann", "8"), ("cy", "7")]
    assert f"/cases/{case['id']}/technicians" in web.get(f"/m/cases/{case['id']}").text
    assert web.post(f"/cases/{case['id']}/technicians",
                    data={"_csrf": web.csrf, "user_id": bob.id}).status_code == 400
    done = web.post(f"/cases/{case['id']}/technicians",
                    data={"_csrf": web.csrf, "user_id": cy.id}, follow_redirects=False)
    assert done.status_code == 303
    assert site.records.get("cases", case["id"], admin)["assigned_user_id"] == cy.id


def test_a_user_sees_only_their_own_cases_and_technicians_page(site, admin):
    ann = create_user(site, "ann", PASSWORD)
    role = aa.create_role(site, "Agents")
    aa.set_role_rules(site, role, {m: ("enabled", {a: "owner" for a in (
        "view", "list", "edit")}) for m in ("cases", "case_skills")})
    aa.set_role_users(site, role, add=[ann.id])
    mine = site.records.create("cases", {"name": "Mine", "assigned_user_id": ann.id}, admin)
    theirs = site.records.create("cases", {"name": "Theirs"}, admin)
    assert [c["name"] for c in site.records.list("cases", ann, Query())] == ["Mine"]
    with signed_in(site, "ann", PASSWORD) as client:
        assert client.get(f"/cases/{theirs['id']}/technicians").status_code == 404
        assert client.get(f"/cases/{mine['id']}/technicians").status_code == 200
        assert client.get(f"/m/cases/{theirs['id']}").status_code == 404


def test_work_order_pdf_has_the_standard_terms(site, admin, web, acme):
    account, jane = acme
    site.set_setting("cases", {"work_order_terms": "Labour guaranteed for 30 days."})
    case = site.records.create("cases", {"name": "Printer jams", "account_id": account["id"],
                                         "contact_id": jane["id"],
                                         "description": "Paper feed"}, admin)
    assert f"/m/cases/{case['id']}/pdf/work_order" in web.get(f"/m/cases/{case['id']}").text
    printed = web.get(f"/m/cases/{case['id']}/pdf/work_order")
    assert printed.status_code == 200
    text = "\n".join(p.extract_text() for p in pypdf.PdfReader(io.BytesIO(printed.content)).pages)
    for expected in ("Work order", "1001", "Printer jams", "Acme", "Paper feed",
                     "Labour guaranteed for 30 days."):
        assert expected in text


def test_demo_cases(site, admin):
    from plugins.cases import demo

    site.records.create_many("accounts", [{"name": f"A{i}"} for i in range(3)], admin)
    demo.load(site, admin, 3, random.Random(1), lambda done, total: None)
    made = site.records.list("cases", admin, Query(limit=None))
    assert made and all(c["number"] >= "1001" for c in made)
    demo.load(site, admin, 3, random.Random(1), lambda done, total: None)
    assert len(site.records.list("cases", admin, Query(limit=None))) == len(made)  # once


def test_compose_from_a_case_and_a_bad_new_case_status(site, admin, web, acme):
    account, jane = acme
    case = site.records.create("cases", {"name": "Printer", "contact_id": jane["id"],
                                         "account_id": account["id"]}, admin)
    page = web.get(f"/email/compose?module=cases&record={case['id']}").text
    assert 'value="Case ID#: 1001 Printer"' in page and "jane@acme.example" in page
    assert '<option value="pending" selected>' in page  # "New case status", Pending first
    # another record: no case field on its compose page
    assert 'name="new_case_status"' not in web.get(
        f"/email/compose?module=contacts&record={jane['id']}").text
    related = f'{{"parent_id": "{case["id"]}", "parent_type": "cases"}}'
    for status in ("hacked", "closed"):
        assert web.post("/email/compose", data={
            "_csrf": web.csrf, "to": "jane@acme.example", "subject": "Printer", "html": "x",
            "related": related, "new_case_status": status, "action": "draft"},
            follow_redirects=False).status_code == 303
    drafts = site.records.list("emails", admin, Query(filters={"parent_id": case["id"]},
                                                      sort="created_at"))
    assert [d["new_case_status"] for d in drafts] == [None, "closed"]
    assert site.records.get("cases", case["id"], admin)["status"] == "new"  # a draft: not yet
