"""Sending a template through the site's mail path to a real SMTP server (aiosmtpd): both
parts arrive, values are escaped in the HTML, the recipient's language picks the
translation, a keyed send keeps its Message-ID, and what cannot be sent says why."""

import pytest
import sqlalchemy as sa

from core.apps.documents.mail import MailError
from core.kernel import i18n, users
from plugins.email_templates import render
from plugins.email_templates.render import TemplateError

MODULE = "email_templates"


@pytest.fixture
def follow_up(site, admin):
    main = site.records.create(MODULE, {
        "name": "Meeting follow-up", "for_module": "contacts", "language": "en",
        "subject": "Following up, {{ first_name }}",
        "body_html": "<p>Dear {{ name }},</p><p>Thanks for meeting us at {{ account.name }}."
                     "</p><p>{{ user.name }}</p>"}, admin)
    site.records.create(MODULE, {
        "name": "Suivi", "language": "fr", "variant_of_id": main["id"],
        "subject": "Suite à notre rendez-vous, {{ first_name }}",
        "body_html": "<p>Bonjour {{ name }},</p><p>Merci pour la rencontre chez "
                     "{{ account.name }}.</p>"}, admin)
    return main


@pytest.fixture
def contact(site, admin):
    acme = site.records.create("accounts", {"name": "Acme <script>x()</script>"}, admin)
    return site.records.create("contacts", {"first_name": "<b>Jane</b>", "last_name": "Doe",
                                            "account_id": acme["id"]}, admin)


def user_with(site, name: str, email: str, language: str):
    person = users.create_user(site, name, "correct horse battery")
    table = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == person.id).values(email=email))
    users.save_preferences(site, person.id, i18n.Preferences(language=language).to_dict())
    return person


def test_the_message_arrives_with_both_parts_and_escaped_values(site, admin, smtp_inbox, follow_up,
                                                                contact):
    sent = render.send(site, follow_up["id"], "contacts", contact["id"],
                       ["Jane Doe <jane@example.com>"], user=admin)
    [message] = smtp_inbox.messages
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Following up, <b>Jane</b>"  # the subject is text
    assert message["To"] == "Jane Doe <jane@example.com>"
    assert message["Message-ID"] == sent.message_id
    html = message.get_body(("html",)).get_content()
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    assert "<p>Dear &lt;b&gt;Jane&lt;/b&gt; Doe,</p>" in html
    assert "Acme &lt;script&gt;x()&lt;/script&gt;" in html and "<script>" not in html
    assert text.startswith("Dear <b>Jane</b> Doe,\n\nThanks for meeting us at Acme <script>")
    # kept in the contact's history by the emails plugin, through the same path
    [filed] = site.records.list("emails", admin)
    assert filed["message_id"] == sent.message_id and filed["name"] == message["Subject"]


def test_a_french_recipient_gets_the_french_translation(site, admin, smtp_inbox, follow_up,
                                                        contact):
    user_with(site, "marie", "marie@example.com", "fr")
    render.send(site, follow_up["id"], "contacts", contact["id"], ["marie@example.com"],
                user=admin)
    assert smtp_inbox.messages[-1]["Subject"] == "Suite à notre rendez-vous, <b>Jane</b>"
    # a sender writing in French to an unknown address: the sender's language
    pierre = user_with(site, "pierre", "pierre@example.com", "fr")
    render.send(site, follow_up["id"], "contacts", contact["id"], ["someone@example.org"],
                user=pierre)
    assert smtp_inbox.messages[-1]["Subject"].startswith("Suite à notre rendez-vous")
    # the caller's language wins
    render.send(site, follow_up["id"], "contacts", contact["id"], ["marie@example.com"],
                user=admin, language="en")
    assert smtp_inbox.messages[-1]["Subject"].startswith("Following up")


def test_a_keyed_send_keeps_its_message_id_for_a_retry(site, admin, smtp_inbox, follow_up,
                                                       contact):
    key = "workflow:42:contact:" + contact["id"]
    first = render.send(site, follow_up["id"], "contacts", contact["id"], ["a@example.com"],
                        user=admin, idempotency_key=key)
    again = render.send(site, follow_up["id"], "contacts", contact["id"], ["a@example.com"],
                        user=admin, idempotency_key=key)
    other = render.send(site, follow_up["id"], "contacts", contact["id"], ["a@example.com"],
                        user=admin, idempotency_key=key + ":2")
    assert first.message_id == again.message_id == render.message_id_for(site, key)
    assert first.message_id.endswith("@example.com>")  # the from address's domain
    assert other.message_id != first.message_id
    assert [m["Message-ID"] for m in smtp_inbox.messages] == \
        [first.message_id] * 2 + [other.message_id]


def test_what_cannot_be_sent_sends_nothing_and_says_why(site, admin, smtp_inbox, follow_up):
    alone = site.records.create("contacts", {"last_name": "Alone"}, admin)
    with pytest.raises(TemplateError) as caught:
        render.send(site, follow_up["id"], "contacts", alone["id"], ["a@example.com"],
                    user=admin)
    assert "has no Account" in str(caught.value)
    with pytest.raises(MailError) as bad:
        render.send(site, follow_up["id"], "contacts", alone["id"], ["not an address"],
                    user=admin)
    assert bad.value.field == "to"
    assert smtp_inbox.messages == []
    emails = site.tables.tables["emails"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(emails)).scalar() == 0


def test_the_template_attachment_travels_with_the_message(site, admin, smtp_inbox, follow_up,
                                                          contact):
    key = "0123456789abcdef/brochure.pdf"
    stored = site.folder / "files" / key
    stored.parent.mkdir(parents=True)
    stored.write_bytes(b"%PDF-1.7 brochure")
    site.records.update(MODULE, follow_up["id"], {"attachment": key}, admin)
    render.send(site, follow_up["id"], "contacts", contact["id"], ["a@example.com"],
                user=admin)
    [message] = smtp_inbox.messages
    assert message.get_content_type() == "multipart/mixed"
    [attached] = list(message.iter_attachments())
    assert (attached.get_filename(), attached.get_content_type(), attached.get_content()) == \
        ("brochure.pdf", "application/pdf", b"%PDF-1.7 brochure")
    assert message.get_body(("html",)) is not None and message.get_body(("plain",)) is not None
    stored.unlink()  # gone from the store: said, and nothing sent
    with pytest.raises(TemplateError, match="attachment brochure.pdf is missing"):
        render.send(site, follow_up["id"], "contacts", contact["id"], ["a@example.com"],
                    user=admin)
    assert len(smtp_inbox.messages) == 1
