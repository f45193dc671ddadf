"""Issue 22's acceptance flow for cases, end to end on the real pieces: a Dovecot IMAP
server (plugins/emails/tests/imap_server.py), the site's job queue and a real SMTP server
(``smtp_inbox``), the web UI over HTTP.

Mail to the support group inbox from a known contact creates case 1001 assigned to the
queue user; the agent replies from the case (the subject carries "Case ID#: 1001"); the
customer's "Re: Case ID#: 1001" is filed on the case, not a new one; the case is closed,
the survey link is mailed, the customer rates 4 stars through the link, the rating shows
on the case page; after N days a Pending case auto-closes (fixed clock)."""
import datetime as dt
import json
import re

import pytest
from starlette.testclient import TestClient

from core import jobs
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import csrf_of
from core.web.app import create_app
from plugins.cases import autoclose
from plugins.emails import fetch
from plugins.emails.tests.imap_server import HOST, PASSWORD, USER, Dovecot

JANE = "jane@acme.example"


@pytest.fixture(scope="module")
def dovecot():
    server = Dovecot.start()
    yield server
    server.stop()


@pytest.fixture
def imap(dovecot):
    dovecot.reset()
    client = dovecot.client()
    yield client
    client.logout()


def mail(number: int, subject: str, sender: str = f"Jane Roe <{JANE}>", extra: str = "") -> bytes:
    lines = [f"From: {sender}", f"To: {USER}", f"Subject: {subject}",
             f"Date: Mon, 1 Dec 2025 10:{number:02d}:00 +0100",
             f"Message-ID: <c{number}@acme.example>", "MIME-Version: 1.0",
             "Content-Type: text/plain; charset=utf-8", *([extra] if extra else []), "",
             f"Body of message {number}."]
    return "\r\n".join(lines).encode()


def cases(site, admin) -> list[dict]:
    return site.records.list("cases", admin, Query(limit=None, sort="number"))


def on_case(site, admin, case_id) -> list[dict]:
    return site.records.list("emails", admin, Query(
        filters={"parent_id": case_id}, limit=None, sort="date_sent"))


def test_support_flow(site, admin, web, dovecot, imap, smtp_inbox):
    queue = create_user(site, "queue", "queue user password 1")
    site.set_setting("base_url", "https://crm.example")
    site.set_setting("cases", {"queue_user_id": queue.id, "surveys": True,
                               "auto_close_status": "pending", "auto_close_days": 7,
                               "subject_pattern": "Case ID#: nnnn"})
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Roe",
                                            "email1": JANE, "account_id": acme["id"]}, admin)
    inbox = site.records.create("group_inboxes", {
        "name": "Support", "email_address": USER, "protocol": "imap", "host": HOST,
        "port": dovecot.imap, "security": "none", "certificate_validation": "none",
        "username": USER, "password": PASSWORD, "folders": "INBOX", "action": "create_case",
        "assigned_user_id": admin.id}, admin)

    # 1. mail to the support inbox from a known contact: case 1001, the queue user's
    imap.append("INBOX", mail(1, "Printer jams on every page"))
    assert fetch.fetch_mailbox(site, "group_inboxes", inbox["id"]).filed == 1
    [case] = cases(site, admin)
    assert (case["number"], case["name"], case["assigned_user_id"], case["contact_id"],
            case["account_id"]) == ("1001", "Printer jams on every page", queue.id,
                                    jane["id"], acme["id"])
    [first] = on_case(site, admin, case["id"])
    assert first["name"] == "Printer jams on every page"

    # 2. the agent replies from the case: the compose page starts from the case
    page = web.get(f"/email/compose?module=cases&record={case['id']}")
    assert page.status_code == 200 and JANE in page.text and "Case ID#: 1001" in page.text
    related = re.search(r'name="related" value="([^"]+)"', page.text).group(1)
    related = json.loads(related.replace("&#34;", '"').replace("&quot;", '"'))
    assert related["parent_id"] == case["id"]
    sent = web.post("/email/compose", data={
        "_csrf": web.csrf, "to": JANE, "subject": "Printer jams on every page",
        "html": "<p>Please try a new cartridge.</p>", "related": json.dumps(related),
        "new_case_status": "pending", "action": "send"}, follow_redirects=False)
    assert sent.status_code == 303
    jobs.run_due_jobs(site)
    [reply] = [m for m in smtp_inbox.messages if m["To"] == JANE]
    assert reply["Subject"] == "Case ID#: 1001 Printer jams on every page"
    assert site.records.get("cases", case["id"], admin)["status"] == "pending"

    # 3. the customer's answer "Re: Case ID#: 1001" is filed on the case, no new case
    imap.append("INBOX", mail(2, "Re: Case ID#: 1001 Printer jams on every page",
                              extra=f"In-Reply-To: {reply['Message-ID']}"))
    assert fetch.fetch_mailbox(site, "group_inboxes", inbox["id"]).filed == 1
    assert [c["number"] for c in cases(site, admin)] == ["1001"]
    assert [e["name"] for e in on_case(site, admin, case["id"]) if e["direction"] ==
            "inbound"] == ["Printer jams on every page",
                           "Re: Case ID#: 1001 Printer jams on every page"]

    # 4. closed: the survey link is mailed to the contact
    site.records.update("cases", case["id"], {"status": "closed",
                                              "resolution": "New cartridge."}, admin)
    jobs.run_due_jobs(site)
    [survey] = [m for m in smtp_inbox.messages if "How did we do?" in m["Subject"]]
    assert survey["To"] == JANE and "Case ID#: 1001" in survey["Subject"]
    link = re.search(r"https://crm\.example(/survey/\S+)", survey.get_content()).group(1)

    # 5. the customer rates 4 stars through the link, signed out; once only
    with TestClient(create_app(site)) as customer:
        form = customer.get(link)
        assert form.status_code == 200 and "Printer jams on every page" in form.text
        done = customer.post(link, data={"_csrf": csrf_of(form.text), "rating": "4",
                                         "comment": "Quick and kind."})
        assert done.status_code == 200 and "Thank you" in done.text
        again = customer.post(link, data={"_csrf": csrf_of(form.text), "rating": "1"})
        assert again.status_code == 409 and "Already answered" in again.text
        assert "Already answered" in customer.get(link).text
    shown = web.get(f"/m/cases/{case['id']}").text
    assert "★★★★☆" in shown and "Quick and kind." in shown
    stored = site.records.get("cases", case["id"], admin)
    assert (stored["rating"], stored["rating_comment"]) == (4, "Quick and kind.")

    # 6. after 7 days a Pending case closes by itself (the task's due time is the clock)
    other = site.records.create("cases", {"name": "Invoice copy", "status": "pending",
                                          "contact_id": jane["id"]}, admin)
    start = other["pending_since"]
    assert autoclose.run(site, start + dt.timedelta(days=6)) is None
    assert autoclose.run(site, start + dt.timedelta(days=7, minutes=1)) == "1 case(s) closed"
    assert site.records.get("cases", other["id"], admin)["status"] == "closed_expired"
    assert autoclose.run(site, start + dt.timedelta(days=8)) is None  # idempotent
