"""Mail about a record (core.apps.documents.mail) and its history (plugins/emails), through a real SMTP
server on localhost: what arrives, what is filed on the account, and what is refused."""
import html
import logging
import re

import pytest
from starlette.testclient import TestClient

from core.apps.documents.mail import Attachment, MailError, send_mail, send_record_mail
from core.kernel.hookspecs import hookimpl
from core.kernel.records import Query
from core.testing import free_port, smtp_settings
from core.web.app import create_app

PASSWORD = "correct horse battery"
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer\n%%EOF\n"
BODY = "Dear Jane,\n\nplease find our quote attached.\n\nKind regards"


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme Corporation",
                                            "email1": "info@acme.example"}, admin)


def recipients(smtp_inbox) -> list[list[str]]:
    """Each message's envelope recipients (Bcc included), sorted."""
    return [sorted(envelope.rcpt_tos) for envelope in smtp_inbox.envelopes]


def emails_of(site, admin) -> list[dict]:
    return site.records.list("emails", admin, Query(limit=None))


def send_quote(site, admin, acme, **kwargs):
    return send_record_mail(
        site, admin, "accounts", acme["id"], kwargs.pop("to", "Jane Buyer <jane@acme.example>"),
        "Your quote Q-1001", BODY, cc=kwargs.pop("cc", ["boss@acme.example"]),
        attachments=[Attachment("Q-1001.pdf", PDF, "application/pdf")], **kwargs)


# -- sent and filed ------------------------------------------------------------------------

def test_a_quote_reaches_the_server_with_its_pdf_and_is_filed_on_the_account(site, admin,
                                                                              smtp_inbox, acme):
    sent = send_quote(site, admin, acme)

    [message] = smtp_inbox.messages
    assert recipients(smtp_inbox) == [["boss@acme.example", "jane@acme.example"]]
    assert (message["From"], message["To"], message["Cc"], message["Subject"]) == (
        "crm@example.com", "Jane Buyer <jane@acme.example>", "boss@acme.example",
        "Your quote Q-1001")
    assert message["Message-ID"] == sent.message_id
    assert message.get_body(("plain",)).get_content().replace("\r\n", "\n").rstrip() == BODY
    [pdf] = list(message.iter_attachments())
    assert (pdf.get_filename(), pdf.get_content_type(), pdf.get_content()) == (
        "Q-1001.pdf", "application/pdf", PDF)

    [filed] = emails_of(site, admin)
    assert filed["name"] == "Your quote Q-1001" and filed["status"] == "sent"
    assert filed["direction"] == "outbound" and filed["body"] == BODY
    assert (filed["parent_type"], filed["parent_id"], filed["account_id"]) == (
        "accounts", acme["id"], acme["id"])
    assert filed["to_addresses"] == "Jane Buyer <jane@acme.example>"
    assert filed["cc_addresses"] == "boss@acme.example"
    assert (filed["from_address"], filed["message_id"]) == ("crm@example.com", sent.message_id)
    assert filed["date_sent"] == sent.sent_at and sent.sent_at.utcoffset().total_seconds() == 0
    assert filed["assigned_user_id"] == admin.id
    stored = site.folder / "files" / filed["attachment"]
    assert stored.name == "Q-1001.pdf" and stored.read_bytes() == PDF

    history = site.records.related("accounts", acme["id"], "emails", admin)
    assert [e["id"] for e in history] == [filed["id"]]
    accounts = site.registry.module("accounts")
    assert accounts.relationships["emails"]["label"] == "Emails"
    assert "emails" in accounts.layouts["subpanels"]


def test_the_account_page_shows_the_mail_and_its_pdf_downloads(site, admin, smtp_inbox, acme):
    send_quote(site, admin, acme)
    [filed] = emails_of(site, admin)
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        csrf = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)
        client.post("/login", data={"_csrf": csrf, "username": "admin", "password": PASSWORD})
        page = html.unescape(client.get(f"/m/accounts/{acme['id']}").text)
        assert "Emails" in page and 'id="sub-emails"' in page  # rows come when opened
        history = client.get(f"/m/accounts/{acme['id']}/subpanel/emails?fragment=1").text
        assert "Your quote Q-1001" in html.unescape(history)
        download = client.get(f"/m/emails/{filed['id']}/file/attachment")
    assert download.status_code == 200 and download.content == PDF
    assert "Q-1001.pdf" in download.headers["content-disposition"]


def test_a_mail_about_a_contact_is_filed_on_the_contact_and_its_account(site, admin, smtp_inbox,
                                                                         acme):
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Buyer",
                                            "account_id": acme["id"]}, admin)
    send_record_mail(site, admin, "contacts", jane["id"], "jane@acme.example, ops@acme.example",
                     "Welcome", "Hello")
    assert recipients(smtp_inbox) == [["jane@acme.example", "ops@acme.example"]]
    [filed] = emails_of(site, admin)
    assert (filed["parent_type"], filed["parent_id"], filed["account_id"]) == (
        "contacts", jane["id"], acme["id"])
    assert filed["attachment"] is None and filed["cc_addresses"] is None
    assert [e["id"] for e in site.records.related("accounts", acme["id"], "emails", admin)] == \
        [filed["id"]]


def test_a_mail_about_a_module_the_history_does_not_know_is_filed_without_links(site, admin,
                                                                                smtp_inbox):
    widget = site.records.create("widgets", {"name": "Sprocket"}, admin)
    send_record_mail(site, admin, "widgets", widget["id"], "a@b.example", "About it", "Text")
    [filed] = emails_of(site, admin)
    assert (filed["parent_type"], filed["parent_id"], filed["account_id"]) == (None, None, None)
    assert filed["status"] == "sent"


def test_plain_mail_is_not_filed(site, admin, smtp_inbox):
    sent = send_mail(site, "dana@example.com", "Reset your CRBM password", "a secret link")
    assert len(smtp_inbox.messages) == 1 and sent.to == ["dana@example.com"]
    assert sent.attachments == () and sent.cc == []
    assert emails_of(site, admin) == []


# -- refused -------------------------------------------------------------------------------

@pytest.mark.parametrize(("to", "cc", "field", "bad"), [
    ("not an email", (), "to", "not an email"),
    ("jane@acme.example bob@acme.example", (), "to", "jane@acme.example bob@acme.example"),
    ("jane@", (), "to", "jane@"),
    ("jane@acme..example", (), "to", "jane@acme..example"),
    ("Jane <jane@acme.example", (), "to", "Jane <jane@acme.example"),
    ("jane@acme.example\r\nBcc: all@victims.example", (), "to",
     "jane@acme.example\r\nBcc: all@victims.example"),
    ("jane@acme.example", ["boss@acme.example", "boss"], "cc", "boss"),
])
def test_bad_addresses_are_refused_before_anything_is_sent(site, admin, smtp_inbox, acme, to, cc,
                                                           field, bad):
    with pytest.raises(MailError) as refused:
        send_quote(site, admin, acme, to=to, cc=cc)
    assert str(refused.value) == f"{bad!r} is not an email address"
    assert refused.value.field == field
    assert smtp_inbox.messages == [] and emails_of(site, admin) == []


def test_a_mail_needs_a_recipient(site, admin, smtp_inbox, acme):
    for nobody in ("", " , ", []):
        with pytest.raises(MailError, match="no recipient") as refused:
            send_quote(site, admin, acme, to=nobody)
        assert refused.value.field == "to"
    assert smtp_inbox.messages == [] and emails_of(site, admin) == []


def test_a_server_that_does_not_answer_is_named_and_nothing_is_filed(site, admin, acme):
    port = free_port()  # nothing listens there
    site.set_setting("smtp", smtp_settings(port))
    with pytest.raises(MailError, match=f"Nothing answers at 127.0.0.1:{port} "
                                        r"\(connection refused\): check the mail server's"):
        send_quote(site, admin, acme)
    assert emails_of(site, admin) == []
    assert not (site.folder / "files").exists() or not any((site.folder / "files").iterdir())


def test_unconfigured_mail_says_which_settings_are_missing(site, admin, acme):
    with pytest.raises(MailError, match="Mail is not configured: set the mail server and the "
                                        "from address at Admin → Outgoing mail."):
        send_quote(site, admin, acme)
    assert emails_of(site, admin) == []


class BrokenHistory:
    """A plugin whose history hook fails (its database is full, say)."""

    @hookimpl(tryfirst=True)
    def crbm_mail_sent(self, site, mail, user, module, record_id):
        raise RuntimeError("history store unavailable")


def test_a_failing_history_does_not_unsend_the_mail(site, admin, smtp_inbox, acme, caplog):
    broken = BrokenHistory()
    site.plugin_manager.register(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="core.apps.documents.mail"):
            sent = send_quote(site, admin, acme)
    finally:
        site.plugin_manager.unregister(broken)
    assert len(smtp_inbox.messages) == 1 and sent.subject == "Your quote Q-1001"
    [record] = caplog.records
    assert sent.message_id in record.getMessage() and acme["id"] in record.getMessage()
    assert "RuntimeError: history store unavailable" in record.getMessage()
    assert "please find our quote" not in caplog.text and "jane@" not in caplog.text
