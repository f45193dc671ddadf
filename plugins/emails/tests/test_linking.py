"""Auto-linking and threading of stored emails (plugins/emails/linking.py): an email created
through the record service — as the IMAP fetch creates them, in one ``create_many`` — lands
on its contacts' and their account's History, on a lead's, and a reply threads under its
original."""
import re

import pytest
import sqlalchemy as sa

from core.kernel.records import Query
from core.testing import signed_in

ORIGINAL = "<first.1@acme.example>"


@pytest.fixture
def people(site, admin):
    """An account with two contacts; Jane has her address in the second email field."""
    acme = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    globex = site.records.create("accounts", {"name": "Globex"}, admin)
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Buyer",
                                            "email1": "jane.b@private.example",
                                            "email2": "Jane@Acme.example",
                                            "account_id": acme["id"]}, admin)
    john = site.records.create("contacts", {"first_name": "John", "last_name": "Boss",
                                            "email1": "john@acme.example",
                                            "account_id": acme["id"]}, admin)
    return {"acme": acme, "globex": globex, "jane": jane, "john": john}


def inbound(**values) -> dict:
    return {"name": "Question about the quote", "direction": "inbound", "status": "received",
            "from_address": "Jane Buyer <JANE@acme.example>", "to_addresses": "me@ours.example",
            "message_id": ORIGINAL, **values}


def stored(site, admin, email_id) -> dict:
    return site.records.get("emails", email_id, admin)


def panel(web, module, record_id) -> str:
    response = web.get(f"/m/{module}/{record_id}/panel/history?fragment=1")
    assert response.status_code == 200, response.text
    return response.text


def linked_contacts(site, email_id) -> set[str]:
    table = site.tables.tables["emails_contacts"]
    with site.engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.contacts_id)
                                .where(table.c.emails_id == email_id)).scalars())


def test_a_message_from_a_known_contact_lands_on_the_contact_and_the_account_and_a_reply_threads_under_it(
        site, admin, people):
    first, reply = site.records.create_many("emails", [
        inbound(),
        {"name": "Re: Question about the quote", "direction": "outbound", "status": "sent",
         "from_address": "me@ours.example", "to_addresses": "Jane <jane@acme.example>",
         "message_id": "<reply.2@ours.example>", "in_reply_to": ORIGINAL,
         "references": ORIGINAL}], admin)
    email = stored(site, admin, first)
    assert email["contact_id"] == people["jane"]["id"]  # by her second address, any case
    assert email["account_id"] == people["acme"]["id"]
    assert email["thread_id"] == ORIGINAL
    assert stored(site, admin, reply)["thread_id"] == ORIGINAL
    # a later reply, stored in another write, threads under the same first message
    later = site.records.create("emails", inbound(
        name="Re: Re: Question", message_id="<third.3@acme.example>",
        in_reply_to="<reply.2@ours.example>",
        references=f"{ORIGINAL} <reply.2@ours.example>"), admin)
    assert later["thread_id"] == ORIGINAL
    with signed_in(site, "admin") as web:
        for module, record in (("contacts", people["jane"]), ("accounts", people["acme"])):
            shown = panel(web, module, record["id"])
            assert "Question about the quote" in shown and "Re: Question about the quote" \
                in shown
        assert "Question about the quote" not in panel(web, "contacts", people["john"]["id"])


def test_a_message_to_several_contacts_shows_on_each_one_s_history(site, admin, people):
    email_id = site.records.create("emails", {
        "name": "Minutes of our meeting", "direction": "outbound", "status": "sent",
        "to_addresses": "Jane <jane@acme.example>", "cc_addresses": "John@ACME.example, "
        "nobody@unknown.example", "message_id": "<minutes@ours.example>"}, admin)["id"]
    email = stored(site, admin, email_id)
    assert email["contact_id"] == people["jane"]["id"]  # the first recipient's
    assert linked_contacts(site, email_id) == {people["jane"]["id"], people["john"]["id"]}
    assert {c["id"] for c in site.records.related("emails", email_id, "contacts", admin)} == \
        {people["jane"]["id"], people["john"]["id"]}
    with signed_in(site, "admin") as web:
        for contact in (people["jane"], people["john"]):
            assert "Minutes of our meeting" in panel(web, "contacts", contact["id"])
        # the History counts: John's through the relationship; Jane's once, though her
        # contact_id and the relationship both name it
        for contact in (people["jane"], people["john"]):
            page = web.get(f"/m/contacts/{contact['id']}").text
            assert re.search(r'id="sub-history".*?data-panel-count="(\d+)"', page,
                             re.DOTALL).group(1) == "1"
        timeline = web.get(f"/m/contacts/{people['john']['id']}/timeline?fragment=1").text
        assert "Minutes of our meeting" in timeline
        # the email's own page lists its contacts
        page = web.get(f"/m/emails/{email_id}").text
        assert re.search(r'id="sub-contacts".*?data-count="2"', page, re.DOTALL)


def test_links_already_given_are_kept(site, admin, people):
    email = site.records.create("emails", inbound(account_id=people["globex"]["id"],
                                                  contact_id=people["john"]["id"]), admin)
    assert email["contact_id"] == people["john"]["id"]
    assert email["account_id"] == people["globex"]["id"]
    # Jane is still linked: the message is with her too
    assert people["jane"]["id"] in linked_contacts(site, email["id"])


def test_the_account_is_left_out_when_the_setting_says_so(site, admin, people):
    site.set_setting("email", {"link_account": False})
    email = site.records.create("emails", inbound(), admin)
    assert email["contact_id"] == people["jane"]["id"] and email["account_id"] is None


def test_addresses_at_ignored_domains_are_never_matched(site, admin, people):
    site.set_setting("email", {"ignore_domains": ["acme.example"]})
    email = site.records.create("emails", inbound(), admin)
    assert email["contact_id"] is None and email["account_id"] is None
    assert linked_contacts(site, email["id"]) == set()
    # a subdomain of an ignored domain is ignored too
    site.records.update("contacts", people["john"]["id"], {"email1": "john@eu.acme.example"},
                        admin)
    email = site.records.create("emails", inbound(from_address="john@eu.acme.example",
                                                  message_id="<x@eu>"), admin)
    assert email["contact_id"] is None


def test_an_unknown_sender_links_nothing_and_a_deleted_contact_is_not_matched(site, admin,
                                                                            people):
    email = site.records.create("emails", inbound(from_address="stranger@else.example"), admin)
    assert (email["contact_id"], email["account_id"], email["parent_id"]) == (None, None, None)
    site.records.delete("contacts", people["jane"]["id"], admin)
    email = site.records.create("emails", inbound(message_id="<again@acme>"), admin)
    assert email["contact_id"] is None


def test_a_lead_s_address_relates_the_email_to_the_lead(site, admin, people):
    if "leads" not in site.registry.modules:
        pytest.skip("the leads plugin is not active")
    lead = site.records.create("leads", {"first_name": "Lee", "last_name": "Prospect",
                                         "email1": "lee@prospect.example"}, admin)
    email = site.records.create("emails", inbound(from_address="Lee <LEE@prospect.example>",
                                                  message_id="<lead@p>"), admin)
    assert (email["parent_type"], email["parent_id"]) == ("leads", lead["id"])
    assert email["contact_id"] is None
    # "Related to" given by the sender is kept
    email = site.records.create("emails", inbound(
        from_address="lee@prospect.example", message_id="<lead2@p>",
        parent_type="accounts", parent_id=people["globex"]["id"]), admin)
    assert (email["parent_type"], email["parent_id"]) == ("accounts", people["globex"]["id"])
    with signed_in(site, "admin") as web:
        assert "Question about the quote" in panel(web, "leads", lead["id"])


def test_a_batch_links_with_a_fixed_number_of_statements(site, admin, people):
    """One fetch batch: the same statements whether it holds 3 emails or 60."""
    def statements(count: int) -> int:
        seen = []

        def count_it(conn, cursor, statement, parameters, context, executemany):
            seen.append(statement)

        rows = [inbound(message_id=f"<m{count}.{i}@acme>", in_reply_to=ORIGINAL,
                        references=ORIGINAL) for i in range(count)]
        sa.event.listen(site.engine, "before_cursor_execute", count_it)
        try:
            site.records.create_many("emails", rows, admin)
        finally:
            sa.event.remove(site.engine, "before_cursor_execute", count_it)
        return len(seen)

    assert statements(3) == statements(60)
    linked = site.records.list("emails", admin, Query(filters=[(
        "contact_id", "eq", people["jane"]["id"])], limit=None))
    assert len(linked) == 63


def test_threads_resolve_within_one_batch_whatever_the_order(site, admin, people):
    reply, original = site.records.create_many("emails", [
        inbound(name="Re: Plan", message_id="<b@x>", in_reply_to="<a@x>", references="<a@x>"),
        inbound(name="Plan", message_id="<a@x>")], admin)
    assert stored(site, admin, reply)["thread_id"] == stored(site, admin, original)[
        "thread_id"] == "<a@x>"
    # an orphan reply (its original not stored yet) is in its first reference's thread
    orphan = site.records.create("emails", inbound(
        message_id="<d@x>", in_reply_to="<c@x>", references="<root@x> <c@x>"), admin)
    assert orphan["thread_id"] == "<root@x>"
    root = site.records.create("emails", inbound(message_id="<root@x>"), admin)
    assert root["thread_id"] == "<root@x>"


def test_a_draft_given_its_recipients_later_is_linked_then(site, admin, people):
    draft = site.records.create("emails", {"name": "Offer", "status": "draft",
                                           "direction": "outbound"}, admin)
    assert draft["contact_id"] is None
    updated = site.records.update("emails", draft["id"], {"to_addresses": "jane@acme.example"},
                                  admin)
    assert (updated["contact_id"], updated["account_id"]) == (people["jane"]["id"],
                                                              people["acme"]["id"])
    # a Cc added: John's link is added, Jane's kept (once), the contact stays Jane
    updated = site.records.update("emails", draft["id"], {
        "cc_addresses": "john@acme.example", "status": "sent"}, admin)
    assert updated["contact_id"] == people["jane"]["id"]
    assert linked_contacts(site, draft["id"]) == {people["jane"]["id"], people["john"]["id"]}
    # other changes leave the links alone
    site.records.update("emails", draft["id"], {"name": "Our offer"}, admin)
    assert linked_contacts(site, draft["id"]) == {people["jane"]["id"], people["john"]["id"]}


def test_without_the_contacts_plugin_emails_are_still_threaded_and_stored(site, admin):
    gone = site.disable_plugin("contacts", with_dependents=True)
    if "emails" in gone:
        pytest.skip("emails went with contacts")
    assert "contact_id" not in site.registry.module("emails").fields
    first, reply = site.records.create_many("emails", [
        inbound(), inbound(name="Re: it", message_id="<r@x>", in_reply_to=ORIGINAL)], admin)
    assert stored(site, admin, reply)["thread_id"] == ORIGINAL
    assert stored(site, admin, first)["account_id"] is None
