"""The outbound queue (plugins/emails/outbound.py) and sent email tracking (tracking.py),
against a real SMTP server (aiosmtpd): what arrives, once; send later; retries and the
reason kept; the per-run limit; two workers on one email; opens counted only when on."""
import datetime as dt
import threading

import pytest
import sqlalchemy as sa
import time_machine
from aiosmtpd.smtp import AuthResult, LoginPassword

from core import jobs
from core.kernel.records import SYSTEM_USER
from core.testing import signed_in, smtp_server
from plugins.emails import attachments, folders, outbound, tracking
from plugins.emails.attachments import File


def queued(site, admin, **values):
    with site.engine.begin() as conn:
        email = site.records.create("emails", {
            "name": "Your quote", "to_addresses": "Jane Roe <jane@example.org>",
            "body": "Hello Jane,\n\nhere it is.", "status": "queued",
            "assigned_user_id": admin.id, **values}, admin, connection=conn)
        attachments.add(site, conn, email["id"], [File("quote.pdf", b"%PDF-1.7 quote",
                                                        "application/pdf")])
    return email


def stored(site, email_id):
    return site.records.get("emails", email_id, SYSTEM_USER, action=None)  # any owner's


def test_a_queued_email_goes_out_once_with_all_it_carries(site, admin, smtp_inbox):
    site.set_setting("email", {"auto_bcc": "archive@example.com"})
    email = queued(site, admin, cc_addresses="boss@example.org", bcc_addresses="me@example.com",
                   body_html="<p>Hello <b>Jane</b></p>", in_reply_to="<q1@example.org>",
                   references="<q0@example.org> <q1@example.org>")
    outbound.enqueue(site)
    jobs.run_due_jobs(site)
    assert len(smtp_inbox.messages) == 1
    message, envelope = smtp_inbox.messages[0], smtp_inbox.envelopes[0]
    assert sorted(envelope.rcpt_tos) == ["archive@example.com", "boss@example.org",
                                         "jane@example.org", "me@example.com"]
    assert "Bcc" not in message and message["Subject"] == "Your quote"
    assert message["In-Reply-To"] == "<q1@example.org>"
    assert message["References"] == "<q0@example.org> <q1@example.org>"
    assert message.get_body(("html",)).get_content().strip() == "<p>Hello <b>Jane</b></p>"
    assert "tracking" not in message.as_string() and "/email/open/" not in message.as_string()
    [pdf] = list(message.iter_attachments())
    assert (pdf.get_filename(), pdf.get_content()) == ("quote.pdf", b"%PDF-1.7 quote")
    after = stored(site, email["id"])
    assert after["status"] == "sent" and after["date_sent"] is not None
    assert after["message_id"] == message["Message-ID"] == f"<{email['id']}@example.com>"
    with site.engine.connect() as conn:
        sent_folder = folders.ensure_personal(site, conn, admin.id)["sent"]
    assert after["folder_id"] == sent_folder
    # a redelivered job, the scheduled task, another worker: nothing goes twice
    outbound.enqueue(site)
    jobs.run_due_jobs(site)
    assert outbound.run_queue(site) == "0 sent, 0 not sent"
    assert outbound.send_one(site, email["id"]) == "taken"
    assert len(smtp_inbox.messages) == 1


def test_send_later_waits_for_its_time(site, admin, smtp_inbox):
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    email = queued(site, admin, send_at=later)
    outbound.enqueue(site)
    jobs.run_due_jobs(site)
    assert smtp_inbox.messages == [] and stored(site, email["id"])["status"] == "queued"
    with time_machine.travel(later + dt.timedelta(minutes=1), tick=False):
        jobs.run_due_jobs(site)  # the run queued for its time
    assert len(smtp_inbox.messages) == 1
    assert stored(site, email["id"])["status"] == "sent"


def test_a_refused_send_is_retried_later_then_failed_with_the_reason(site, admin):
    email = queued(site, admin)  # no SMTP server configured
    assert outbound.run_queue(site) == "0 sent, 0 not sent"
    first = stored(site, email["id"])
    assert first["status"] == "queued" and first["send_attempts"] == 1
    assert "Mail is not configured" in first["last_error"]
    assert first["send_at"] > dt.datetime.now(dt.UTC)  # not before its delay
    for n in range(1, outbound.MAX_ATTEMPTS):  # each try after the last one's delay
        with time_machine.travel(dt.datetime.now(dt.UTC) + dt.timedelta(hours=2 * n),
                                 tick=False):
            outbound.run_queue(site)
    last = stored(site, email["id"])
    assert (last["status"], last["send_attempts"]) == ("failed", outbound.MAX_ATTEMPTS)


def test_a_run_sends_at_most_a_batch_and_queues_the_rest(site, admin, smtp_inbox):
    site.set_setting("email", {"send_batch": 2})
    for n in range(3):
        queued(site, admin, name=f"Mail {n}")
    assert outbound.run_queue(site) == "2 sent, 0 not sent"
    assert len(smtp_inbox.messages) == 2
    jobs.run_due_jobs(site)  # the run it queued for the rest
    assert sorted(m["Subject"] for m in smtp_inbox.messages) == ["Mail 0", "Mail 1", "Mail 2"]


def test_two_workers_on_one_email_send_it_once(site, admin, smtp_inbox):
    email = queued(site, admin)
    outcomes, start = [], threading.Barrier(2)

    def worker():
        start.wait()
        outcomes.append(outbound.send_one(site, email["id"]))
    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["sent", "taken"]
    assert len(smtp_inbox.messages) == 1


def test_opens_are_counted_only_while_tracking_is_on(site, admin, smtp_inbox):
    site.set_setting("base_url", "https://crm.example.com")
    site.set_setting("email", {"tracking": True})
    email = queued(site, admin, body_html="<html><body><p>Hi</p></body></html>")
    outbound.run_queue(site)
    html = smtp_inbox.messages[0].get_body(("html",)).get_content()
    url = tracking.pixel_url(site, email["id"])
    assert url.startswith(f"https://crm.example.com/email/open/{email['id']}/")
    assert f'<img src="{url}" width="1" height="1"' in html  # after the text
    path = url.removeprefix("https://crm.example.com")
    with signed_in(site, "admin") as web:
        web.cookies.clear()  # a mail client: nobody signed in
        for _ in range(2):
            image = web.get(path)
            assert image.status_code == 200 and image.headers["content-type"] == "image/gif"
        forged = web.get(f"/email/open/{email['id']}/AAAAAAAAAAAAAAAAAAAAAAAA.gif")
        assert forged.status_code == 200  # the same image, nothing counted
    after = stored(site, email["id"])
    assert after["open_count"] == 2 and after["first_opened"] is not None
    assert len(tracking.opens_of(site, email["id"])) == 2
    site.set_setting("email", {"tracking": False})
    assert not tracking.record_open(site, email["id"], path.rsplit("/", 1)[1][:-4])
    with signed_in(site, "admin") as web:
        page = web.get(f"/m/emails/{email['id']}").text
        assert 'id="email-opens"' in page and 'id="email-attachments"' in page
    table = site.records.table(site.registry.module("emails"))
    with site.engine.connect() as conn:  # no address or agent is kept: only the time
        assert conn.execute(sa.select(sa.func.count()).select_from(
            site.tables.tables[tracking.TABLE])).scalar() == 2
        assert conn.execute(sa.select(table.c.open_count).where(
            table.c.id == email["id"])).scalar() == 2


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_a_mail_account_of_its_own_sends_through_its_own_server(site, admin, smtp_inbox):
    """smtp_mode "own": the account's server, signed in with its password (sealed apart
    from the record, mailboxes.py), From its address; the site's server gets nothing."""
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = (auth_data.login.decode(), auth_data.password.decode())
        logins.append(login)
        return AuthResult(success=login == ("olivia", "Own-Smtp-Secret-9"), handled=False)

    with smtp_server(authenticator=authenticate, auth_required=True,
                     auth_require_tls=False) as own:
        account = site.records.create("mail_accounts", {
            "name": "Work", "email_address": "olivia@acme.example", "host": "127.0.0.1",
            "username": "olivia", "password": "Imap-Secret-1", "smtp_mode": "own",
            "smtp_host": "127.0.0.1", "smtp_port": own.port, "smtp_security": "none",
            "smtp_username": "olivia", "smtp_password": "Own-Smtp-Secret-9",
            "assigned_user_id": admin.id}, admin)
        email = queued(site, admin, mail_account_id=account["id"])
        assert outbound.run_queue(site) == "1 sent, 0 not sent"
        # written in the mail client: sent from that account too
        with signed_in(site, "admin") as web:
            web.post("/email/compose", data={"_csrf": web.csrf, "to": "jane@example.org",
                                             "subject": "From the client", "html": "<p>Hi</p>",
                                             "action": "send"}, follow_redirects=False)
        jobs.run_due_jobs(site)
    assert logins == [("olivia", "Own-Smtp-Secret-9")] * 2
    message = own.messages[0]
    assert message["From"] == "olivia@acme.example" and message["To"] == "Jane Roe <jane@example.org>"
    assert stored(site, email["id"])["status"] == "sent"
    assert [m["Subject"] for m in own.messages] == ["Your quote", "From the client"]
    assert own.messages[1]["From"] == "olivia@acme.example" and smtp_inbox.messages == []
