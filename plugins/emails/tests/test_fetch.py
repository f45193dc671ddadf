"""Fetching mail (plugins/emails/fetch.py, mailboxes.py) from a real Dovecot started by the
tests (imap_server.py): three folders, the sent folder, re-runs, a message moved between
runs, a UIDVALIDITY change, POP3, SSL/STARTTLS and the certificate options, a refused
sign-in; and the mailboxes' secrets: sealed, never shown, a user's account their own."""
import html
import logging
import re
from email.message import EmailMessage
from pathlib import Path

import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.kernel import crypto
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import api_client, bearer, signed_in
from plugins.emails import attachments, fetch, folders, mailboxes, settings
from plugins.emails.tests.imap_server import HOST, PASSWORD, USER, Dovecot

USER_PASSWORD = "correct horse battery"


@pytest.fixture(scope="session")
def dovecot():
    server = Dovecot.start()
    yield server
    server.stop()


@pytest.fixture
def imap(dovecot):
    """The test user's mailbox, empty, and an imapclient session of it."""
    dovecot.reset()
    client = dovecot.client()
    yield client
    client.logout()


def role_for(site, name="Mail users"):
    role = aa.create_role(site, name)
    aa.set_role_rules(site, role, {module: ("enabled", {a: "owner" for a in (
        "view", "list", "edit", "delete", "export", "report")})
        for module in ("emails", "mail_accounts")})
    return role


@pytest.fixture
def ann(site):
    user = create_user(site, "ann", USER_PASSWORD)
    aa.set_role_users(site, role_for(site), add=[user.id])
    return user


def account(site, user, dovecot, **values):
    return site.records.create("mail_accounts", {
        "name": "Work", "email_address": USER, "protocol": "imap", "host": HOST,
        "port": dovecot.imap, "security": "none", "certificate_validation": "none",
        "username": USER, "password": PASSWORD, "folders": "INBOX", **values}, user)


def message(number: int, subject: str | None = None, *, sender="Jane Roe <jane@example.org>",
            to=USER, message_id: str | None = "default", extra: str = "") -> bytes:
    mid = f"<m{number}@example.org>" if message_id == "default" else message_id
    lines = [f"From: {sender}", f"To: {to}", f"Subject: {subject or f'Message {number}'}",
             f"Date: Mon, 1 Dec 2025 10:{number % 60:02d}:00 +0100"]
    if mid:
        lines.append(f"Message-ID: {mid}")
    lines += ["MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8",
              *([extra] if extra else []), "", f"Body of message {number}."]
    return "\r\n".join(lines).encode()


def filed(site, user) -> list[dict]:
    return site.records.list("emails", user, Query(limit=None, sort="name"))


def run(site, record):
    return fetch.fetch_mailbox(site, "mail_accounts", record["id"])


# -- three folders, the sent folder, re-runs -------------------------------------------------

def test_an_account_fetches_three_folders_and_files_sent_mail_as_sent(site, ann, dovecot, imap):
    for name in ("Archive", "Sent"):
        imap.create_folder(name)
    imap.append("INBOX", message(1, "Quote request"))
    imap.append("INBOX", message(2, "Re: Quote request", extra="In-Reply-To: <m1@example.org>"))
    imap.append("Archive", message(3, "Old thread"))
    imap.append("Sent", message(4, "Our answer", sender=USER, to="Jane Roe <jane@example.org>"))
    box = account(site, ann, dovecot, folders="INBOX\nArchive", sent_folder="Sent")

    result = run(site, box)

    assert result.problems == [], "; ".join(result.problems)
    assert result.filed == 4
    emails = {e["name"]: e for e in filed(site, ann)}
    assert sorted(emails) == ["Old thread", "Our answer", "Quote request", "Re: Quote request"]
    mine = folders.visible(site, ann)
    inbox = next(f.id for f in mine if f.kind == "inbox")
    sent_folder = next(f.id for f in mine if f.kind == "sent")
    request = emails["Quote request"]
    assert (request["direction"], request["status"], request["is_read"]) == (
        "inbound", "received", False)
    assert request["from_address"] == "Jane Roe <jane@example.org>"
    assert request["to_addresses"] == USER
    assert request["body"].strip() == "Body of message 1."
    assert request["message_id"] == "<m1@example.org>"
    assert request["folder_id"] == inbox and request["mail_account_id"] == box["id"]
    assert request["assigned_user_id"] == ann.id
    assert emails["Re: Quote request"]["in_reply_to"] == "<m1@example.org>"
    answer = emails["Our answer"]
    assert (answer["direction"], answer["status"], answer["folder_id"]) == (
        "outbound", "sent", sent_folder)
    stored = site.records.get("mail_accounts", box["id"], ann)
    assert stored["last_fetch_at"] is not None and stored["last_error"] is None

    again = run(site, box)
    assert again.filed == 0 and len(filed(site, ann)) == 4


def test_a_message_moved_between_runs_is_neither_lost_nor_duplicated(site, ann, dovecot, imap):
    imap.create_folder("Archive")
    imap.append("INBOX", message(1))
    imap.append("INBOX", message(2))
    box = account(site, ann, dovecot, folders="INBOX\nArchive")
    assert run(site, box).filed == 2
    imap.append("INBOX", message(3))
    imap.select_folder("INBOX")
    uids = imap.search(["HEADER", "Message-ID", "<m1@example.org>"]) + \
        imap.search(["HEADER", "Message-ID", "<m3@example.org>"])
    imap.move(uids, "Archive")  # 1 was filed from the inbox; 3 never was

    assert run(site, box).filed == 1
    assert sorted(e["name"] for e in filed(site, ann)) == ["Message 1", "Message 2",
                                                           "Message 3"]


def test_a_uidvalidity_change_resyncs_without_duplicates(site, ann, dovecot, imap):
    imap.create_folder("Projects")
    for n in (1, 2):
        imap.append("Projects", message(n))
    box = account(site, ann, dovecot, folders="Projects")
    assert run(site, box).filed == 2
    before = imap.folder_status("Projects", ["UIDVALIDITY"])[b"UIDVALIDITY"]
    imap.delete_folder("Projects")  # the server rebuilds the folder: a new UIDVALIDITY
    imap.create_folder("Projects")
    for n in (2, 1, 3):  # the same two messages again (other UIDs), and a new one
        imap.append("Projects", message(n))
    assert imap.folder_status("Projects", ["UIDVALIDITY"])[b"UIDVALIDITY"] != before

    assert run(site, box).filed == 1
    assert sorted(e["name"] for e in filed(site, ann)) == ["Message 1", "Message 2",
                                                           "Message 3"]


def test_the_batch_size_caps_a_run_and_the_next_run_goes_on(site, ann, dovecot, imap):
    for n in range(1, 6):
        imap.append("INBOX", message(n))
    box = account(site, ann, dovecot, batch_size=3)
    assert run(site, box).filed == 3
    assert run(site, box).filed == 2
    site.set_setting(settings.SETTING, {"fetch_batch": 1})
    imap.append("INBOX", message(6))
    imap.append("INBOX", message(7))
    assert run(site, box).filed == 1  # the site's cap is lower than the account's
    assert len(filed(site, ann)) == 6


def test_a_message_without_message_id_is_filed_once(site, ann, dovecot, imap):
    imap.append("INBOX", message(1, "No id", message_id=None))
    box = account(site, ann, dovecot)
    assert run(site, box).filed == 1
    [email] = filed(site, ann)
    assert email["message_key"].startswith(f"{box['id']}:sha256:")
    dovecot.reset()
    imap.append("INBOX", message(1, "No id", message_id=None))  # again, another UID
    assert run(site, box).filed == 0


def test_pop3_fetches_the_inbox_once(site, ann, dovecot, imap):
    for n in (1, 2):
        imap.append("INBOX", message(n))
    box = account(site, ann, dovecot, protocol="pop3", port=dovecot.pop3)
    assert run(site, box).filed == 2
    imap.append("INBOX", message(3))
    assert run(site, box).filed == 1
    assert sorted(e["name"] for e in filed(site, ann)) == ["Message 1", "Message 2",
                                                           "Message 3"]
    assert all(e["status"] == "received" for e in filed(site, ann))


# -- security and certificates ---------------------------------------------------------------

@pytest.mark.parametrize(("protocol", "security", "port"), [
    ("imap", "ssl", "imaps"), ("imap", "starttls", "imap"),
    ("pop3", "ssl", "pop3s"), ("pop3", "starttls", "pop3")])
def test_tls_with_a_self_signed_certificate_follows_the_validation_option(
        site, ann, dovecot, imap, protocol, security, port):
    imap.append("INBOX", message(1))
    base = {"protocol": protocol, "security": security, "port": getattr(dovecot, port)}
    strict = account(site, ann, dovecot, name="Strict", certificate_validation="third_party",
                     **base)
    refused = run(site, strict)
    assert refused.filed == 0
    error = site.records.get("mail_accounts", strict["id"], ann)["last_error"]
    assert "certificate" in error and "not trusted" in error
    for option in ("self_signed", "none"):
        box = account(site, ann, dovecot, name=option, certificate_validation=option, **base)
        assert run(site, box).filed == 1, option
    # trusting the server's certificate (a site's own authority) passes "third party"
    site.config["emails"] = {"imap_cafile": str(dovecot.cert)}
    trusted = account(site, ann, dovecot, name="Trusted", certificate_validation="third_party",
                      **base)
    assert run(site, trusted).filed == 1


def test_a_refused_sign_in_is_a_clear_last_error(site, ann, dovecot, imap, caplog):
    caplog.set_level(logging.DEBUG)
    good = account(site, ann, dovecot, name="Good")
    run(site, good)
    box = account(site, ann, dovecot, password="wrong password")
    result = run(site, box)
    assert PASSWORD not in caplog.text and "wrong password" not in caplog.text  # never logged
    assert result.filed == 0
    error = site.records.get("mail_accounts", box["id"], ann)["last_error"]
    assert f"refused the sign-in of {USER}" in error and "wrong password" not in error
    nobody = account(site, ann, dovecot, name="Nobody", port=1)
    run(site, nobody)
    assert "Cannot connect to 127.0.0.1:1" in \
        site.records.get("mail_accounts", nobody["id"], ann)["last_error"]


def test_the_scheduled_task_queues_one_job_per_active_mailbox(site, ann, dovecot, imap):
    from core import jobs

    imap.append("INBOX", message(1))
    account(site, ann, dovecot)
    account(site, ann, dovecot, name="Off", active=False)
    assert fetch.run_task(site, None) == "queued 1 mailboxes"
    jobs.run_due_jobs(site)
    assert [e["name"] for e in filed(site, ann)] == ["Message 1"]


# -- secrets ------------------------------------------------------------------------------

def raw_rows(site, module, record_id):
    table = site.records.table(site.registry.module(module))
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == record_id)).mappings().one()
        secrets = conn.execute(sa.select(site.tables.tables[mailboxes.SECRETS])).mappings().all()
    return dict(row), [dict(s) for s in secrets]


def test_passwords_are_sealed_at_rest_and_never_shown(site, ann, dovecot, admin):
    box = account(site, ann, dovecot, smtp_password="smtp secret 7")
    row, secrets = raw_rows(site, "mail_accounts", box["id"])
    assert row["password"] is None and row["smtp_password"] is None
    assert {s["field"] for s in secrets} == {"password", "smtp_password"}
    assert all(crypto.is_sealed(s["sealed"]) and PASSWORD not in s["sealed"] for s in secrets)
    dump = repr(row) + repr(secrets)
    assert PASSWORD not in dump and "smtp secret 7" not in dump
    with site.engine.connect() as conn:
        assert mailboxes.credentials(site, conn, "mail_accounts", [box["id"]])[box["id"]] == {
            "password": PASSWORD, "smtp_password": "smtp secret 7"}

    with signed_in(site, "ann", USER_PASSWORD) as web:
        for url in (f"/m/mail_accounts/{box['id']}", f"/m/mail_accounts/{box['id']}/edit"):
            page = web.get(url)
            assert page.status_code == 200
            assert PASSWORD not in page.text and "sealed:v1:" not in page.text
        form = web.get(f"/m/mail_accounts/{box['id']}/edit").text
        assert 'name="password" value="" type="password"' in form
    with api_client(site) as api:
        answer = api.get(f"/api/v1/mail_accounts/{box['id']}", headers=bearer(site, ann))
        assert answer.status_code == 200
        assert PASSWORD not in answer.text and "sealed:v1:" not in answer.text

    # an edit that leaves the password empty keeps it; a new one replaces it
    site.records.update("mail_accounts", box["id"], {"name": "Renamed", "password": ""}, ann)
    with site.engine.connect() as conn:
        kept = mailboxes.credentials(site, conn, "mail_accounts", [box["id"]])[box["id"]]
    assert kept["password"] == PASSWORD
    site.records.update("mail_accounts", box["id"], {"password": "new one"}, ann)
    with site.engine.connect() as conn:
        assert mailboxes.credentials(site, conn, "mail_accounts",
                                     [box["id"]])[box["id"]]["password"] == "new one"


def test_the_edit_form_left_empty_keeps_the_password_and_a_new_one_replaces_it(site, ann,
                                                                               dovecot):
    box = account(site, ann, dovecot)
    values = {"name": "Renamed", "email_address": USER, "protocol": "imap", "host": HOST,
              "port": str(dovecot.imap), "security": "none", "certificate_validation": "none",
              "username": USER, "auth_method": "password", "folders": "INBOX",
              "batch_size": "100", "active": "1", "smtp_mode": "site"}
    with signed_in(site, "ann", USER_PASSWORD) as web:
        for password, expected in (("", PASSWORD), ("typed anew", "typed anew")):
            edit = web.get(f"/m/mail_accounts/{box['id']}/edit").text
            base = html.unescape(re.search(r'name="_base" value="([^"]+)"', edit).group(1))
            saved = web.post(f"/m/mail_accounts/{box['id']}/edit", data={
                "_csrf": web.csrf, "_base": base, **values, "password": password})
            assert saved.status_code == 200 and 'class="error' not in saved.text
            assert PASSWORD not in saved.text and "typed anew" not in saved.text
            with site.engine.connect() as conn:
                stored = mailboxes.credentials(site, conn, "mail_accounts", [box["id"]])
            assert stored[box["id"]]["password"] == expected
            assert raw_rows(site, "mail_accounts", box["id"])[0]["password"] is None
    assert site.records.get("mail_accounts", box["id"], ann)["name"] == "Renamed"
    [entry] = [e for e in site.records.change_log("mail_accounts", box["id"])
               if e["field"] == "password"] or [None]
    assert entry is None  # the change log never names it


def test_the_fetch_task_is_on_the_scheduler_page(site):
    from core.jobs import scheduler

    task = scheduler.tasks(site)[fetch.TASK]
    assert task.schedule == "@every 5m"


def test_a_password_given_through_the_api_is_sealed_and_not_returned(site, ann, dovecot):
    with api_client(site) as api:
        made = api.post("/api/v1/mail_accounts", headers=bearer(site, ann), json={
            "name": "From the API", "email_address": USER, "protocol": "imap", "host": HOST,
            "security": "ssl", "certificate_validation": "third_party", "username": USER,
            "password": "api secret 9"})
        assert made.status_code == 201, made.text
        assert "api secret 9" not in made.text and "sealed:v1:" not in made.text
        record_id = made.json()["id"]
        changed = api.patch(f"/api/v1/mail_accounts/{record_id}", headers={
            **bearer(site, ann), "If-Match": made.headers["etag"]}, json={"name": "Renamed"})
        assert changed.status_code == 200, changed.text
    row, secrets = raw_rows(site, "mail_accounts", record_id)
    assert row["password"] is None and "api secret 9" not in repr(secrets)
    with site.engine.connect() as conn:  # the rename kept it
        assert mailboxes.credentials(site, conn, "mail_accounts",
                                     [record_id])[record_id]["password"] == "api secret 9"


def test_another_user_cannot_read_someones_mail_account(site, ann, dovecot, admin):
    box = account(site, ann, dovecot)
    bob = create_user(site, "bob", USER_PASSWORD)
    aa.set_role_users(site, role_for(site, "Bob's"), add=[bob.id])
    for who, password in (("bob", USER_PASSWORD), ("admin", None)):
        with signed_in(site, who, *([password] if password else [])) as web:
            assert web.get(f"/m/mail_accounts/{box['id']}").status_code == 404
            assert web.get(f"/m/mail_accounts/{box['id']}/edit").status_code == 404
            listed = web.get("/m/mail_accounts")
            assert box["id"] not in listed.text and "Work" not in listed.text
            tested = web.post(f"/mailboxes/mail_accounts/{box['id']}/test",
                              data={"_csrf": web.csrf})
            assert tested.status_code == 404
    with api_client(site) as api:
        for user in (bob, admin):
            one = api.get(f"/api/v1/mail_accounts/{box['id']}", headers=bearer(site, user))
            assert one.status_code == 404
            many = api.get("/api/v1/mail_accounts", headers=bearer(site, user))
            assert many.status_code == 200 and box["id"] not in many.text


def test_the_test_connection_button_says_how_it_went(site, ann, dovecot, imap):
    imap.append("INBOX", message(1))
    good = account(site, ann, dovecot)
    bad = account(site, ann, dovecot, name="Bad", password="nope")
    with signed_in(site, "ann", USER_PASSWORD) as web:
        page = web.get(f"/m/mail_accounts/{good['id']}")
        assert f"/mailboxes/mail_accounts/{good['id']}/test" in page.text
        ok = web.post(f"/mailboxes/mail_accounts/{good['id']}/test", data={"_csrf": web.csrf})
        assert "Connected: 1 folders to fetch." in ok.text
        refused = web.post(f"/mailboxes/mail_accounts/{bad['id']}/test",
                           data={"_csrf": web.csrf})
        assert "refused the sign-in" in refused.text


# -- real-world messages, attachments, the raw message, group inboxes -------------------------

MESSAGES = Path(__file__).parent / "messages"


def test_real_world_messages_are_filed_with_their_attachments(site, ann, dovecot, imap):
    for path in sorted(MESSAGES.glob("*.eml")):
        imap.append("INBOX", path.read_bytes())
    imap.append("INBOX", b"\r\n\r\n")  # not a message at all
    site.set_setting(settings.SETTING, {"keep_raw": True})
    box = account(site, ann, dovecot)

    result = run(site, box)

    assert result.filed == len(list(MESSAGES.glob("*.eml")))
    assert [p.template for p in result.problems] == [
        "A message in %(folder)s could not be read (%(reason)s)."]
    emails = {e["name"]: e for e in filed(site, ann)}
    assert {"Café crème à Noël", "お見積もりのご送付", "Grüße aus München ✈️",
            "Broken message and bad base64"} <= set(emails)
    news = site.records.get("emails", emails["Our December newsletter"]["id"], ann)
    assert "<script" not in news["body_html"] and "alert(1)" not in news["body_html"]
    assert 'src="cid:logo.png@01DC6354"' in news["body_html"]  # the inline image is kept
    files = attachments.listed(site, [news["id"]])[news["id"]]
    assert [(f["name"], f["inline"], f["content_id"]) for f in files] == [
        ("logo.png", True, "logo.png@01DC6354"), ("prices-2026.pdf", False, None)]
    assert attachments.read(site, files[1]) == b"%PDF-1.4 prices"
    raw = (site.folder / "files" / news["raw_message"]).read_bytes()
    assert raw == (MESSAGES / "related_inline.eml").read_bytes()
    stored = site.records.get("mail_accounts", box["id"], ann)
    assert "could not be read" in stored["last_error"]
    assert run(site, box).filed == 0  # the unreadable one is not tried again and again


def test_an_attachment_over_the_limit_is_left_out_with_a_note(site, ann, dovecot, imap):
    big = EmailMessage()
    big["From"], big["To"], big["Subject"] = "jane@example.org", USER, "The big file"
    big["Message-ID"] = "<big@example.org>"
    big.set_content("Here it is.")
    big.add_attachment(b"\0" * (25 * 2**20), maintype="application", subtype="octet-stream",
                       filename="big.bin")
    big.add_attachment(b"small", maintype="text", subtype="plain", filename="small.txt")
    imap.append("INBOX", big.as_bytes())
    site.config["emails"] = {"max_attachment_mb": 10}
    box = account(site, ann, dovecot)

    assert run(site, box).filed == 1
    [email] = filed(site, ann)
    assert "[Attachment big.bin (25.0 MB) was not kept: it is larger than 10 MB.]" \
        in email["body"]
    assert [f["name"] for f in attachments.listed(site, [email["id"]])[email["id"]]] == [
        "small.txt"]
    assert email["raw_message"] is None  # the site does not keep raw messages


def test_a_25_mb_attachment_within_the_limit_is_kept(site, ann, dovecot, imap):
    big = EmailMessage()
    big["From"], big["To"], big["Subject"] = "jane@example.org", USER, "The big file"
    big.set_content("Here it is.")
    data = bytes(range(256)) * (25 * 2**20 // 256)
    big.add_attachment(data, maintype="application", subtype="octet-stream", filename="big.bin")
    imap.append("INBOX", big.as_bytes())
    box = account(site, ann, dovecot)
    assert run(site, box).filed == 1
    [email] = filed(site, ann)
    [kept] = attachments.listed(site, [email["id"]])[email["id"]]
    assert kept["size"] == 25 * 2**20 and attachments.read(site, kept) == data


def test_a_group_inbox_files_into_the_group_folder(site, admin, dovecot, imap):
    imap.append("INBOX", message(1, "Help!"))
    inbox = site.records.create("group_inboxes", {
        "name": "Support", "email_address": "support@example.org", "protocol": "imap",
        "host": HOST, "port": dovecot.imap, "security": "none",
        "certificate_validation": "none", "username": USER, "password": PASSWORD,
        "folders": "INBOX", "assigned_user_id": admin.id}, admin)
    row, secrets = raw_rows(site, "group_inboxes", inbox["id"])
    assert row["password"] is None and PASSWORD not in repr(secrets)

    result = fetch.fetch_mailbox(site, "group_inboxes", inbox["id"])

    assert result.filed == 1
    [email] = filed(site, admin)
    with site.engine.begin() as conn:
        group_inbox = folders.ensure_group(site, conn)["Group Inbox"]
    assert (email["group_inbox_id"], email["folder_id"], email["assigned_user_id"]) == (
        inbox["id"], group_inbox, admin.id)
    assert email["mail_account_id"] is None
