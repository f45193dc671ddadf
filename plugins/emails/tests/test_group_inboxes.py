"""Group inboxes' actions (plugins/emails/group_actions.py, implementation guide §7.4.3):
"Automatically create contacts" from the From: header, and the hook through which the
plugins that bring cases, bugs and campaigns act on a group inbox's new messages.

This module is also the test-only plugin ``email_case_probe`` (booted with the site in
``probed``): it implements the emails plugin's own hook ``crbm_email_group_actions`` for
``create_case`` — a note about the sender's contact stands in for the case — and
``bounce``, and records each call."""
from __future__ import annotations

import sys

import pytest

from core.kernel.errors import ValidationError
from core.kernel.hookspecs import hookimpl
from core.kernel.records import Query
from core.kernel.site import Site
from plugins.emails.group_actions import GroupAction, split_name
from tests.plugins.kitchen_sink import plugin as kitchen_sink

PLUGIN_NAME = "email_case_probe"
CALLS: list[tuple[str, str, list[str]]] = []  # (action, inbox name, subjects) per call


def _case(site, inbox, emails, user, connection):
    CALLS.append(("create_case", inbox["name"], [e["name"] for e in emails]))
    if any(e["name"] == "boom" for e in emails):
        raise ValidationError({"name": "the probe refuses 'boom'"})
    site.records.create_many("notes", [
        {"name": f"Case: {e['name']}", "description": e.get("body"),
         "parent_type": "contacts", "parent_id": e["contact_id"]} for e in emails],
        user, connection=connection)


def _bounce(site, inbox, emails, user, connection):
    CALLS.append(("bounce", inbox["name"], [e["name"] for e in emails]))


@hookimpl
def crbm_email_group_actions(site):
    return [GroupAction("create_case", _case), GroupAction("bounce", _bounce)]


@pytest.fixture
def probed(site):
    """The test's site booted again with this module as a plugin."""
    CALLS.clear()
    booted = Site(site.folder, database_url=site.database_url,
                  extra_plugins=[kitchen_sink, sys.modules[__name__]])
    yield booted
    booted.close()


def make_inbox(site, admin, name="Support", **values) -> dict:
    return site.records.create("group_inboxes", {
        "name": name, "email_address": f"{name.lower()}@ours.example", "host": "imap.example",
        "username": name.lower(), "action": "create_case", "create_contacts": True,
        **values}, admin)


def received(inbox, sender, subject="Help", **values) -> dict:
    return {"name": subject, "direction": "inbound", "status": "received",
            "from_address": sender, "to_addresses": inbox["email_address"],
            "group_inbox_id": inbox["id"], "body": f"{subject}, please", **values}


def contacts(site, admin, **filters) -> list[dict]:
    return site.records.list("contacts", admin, Query(filters=filters, limit=None))


@pytest.mark.parametrize("display, first, last", [
    ("Jane Roe", "Jane", "Roe"), ("Roe, Jane", "Jane", "Roe"), ("Mary Ann Smith", "Mary Ann",
                                                                  "Smith"),
    ("Cher", "", "Cher"), ("", "", "x@example.org"), ("x@example.org", "", "x@example.org")])
def test_names_come_from_the_from_header_else_the_address(display, first, last):
    assert split_name(display, "x@example.org") == (first, last)


def test_unknown_senders_become_contacts_linked_to_their_email(site, admin):
    inbox = make_inbox(site, admin)
    known = site.records.create("contacts", {"last_name": "Known", "email1": "k@known.example"},
                                admin)
    ids = site.records.create_many("emails", [
        received(inbox, "Jane Roe <jane@example.org>"),
        received(inbox, "x@example.org", subject="Second"),
        received(inbox, '"Jane Roe" <JANE@example.org>', subject="Third"),  # same sender
        received(inbox, "Known Person <k@known.example>", subject="Fourth")], admin)
    [jane] = contacts(site, admin, email1="jane@example.org")
    assert (jane["first_name"], jane["last_name"]) == ("Jane", "Roe")
    [x] = contacts(site, admin, email1="x@example.org")
    assert (x["first_name"], x["last_name"]) == (None, "x@example.org")
    emails = {i: site.records.get("emails", i, admin) for i in ids}
    assert [emails[i]["contact_id"] for i in ids] == [jane["id"], x["id"], jane["id"],
                                                      known["id"]]
    # a known sender made nothing: three contacts in all, the two new and the known one
    assert len(contacts(site, admin)) == 3
    # the new contact's History shows the message
    assert {e["id"] for e in site.records.list("emails", admin, Query(
        filters={"contact_id": jane["id"]}, limit=None))} == {ids[0], ids[2]}


def test_no_contact_is_made_without_the_option_or_for_another_action(site, admin):
    plain = make_inbox(site, admin, "Plain", create_contacts=False)
    none = make_inbox(site, admin, "Sales", action="none")
    site.records.create_many("emails", [received(plain, "Ann One <ann@example.org>"),
                                        received(none, "Bob Two <bob@example.org>")], admin)
    # an outbound message through the inbox makes none either
    inbox = make_inbox(site, admin, "Out")
    site.records.create("emails", received(inbox, "support@ours.example", direction="outbound",
                                           to_addresses="Cy <cy@example.org>"), admin)
    site.set_setting("email", {"ignore_domains": ["ours.example"]})
    site.records.create("emails", received(inbox, "Colleague <me@ours.example>"), admin)
    assert contacts(site, admin) == []


def test_a_group_inbox_s_action_is_called_once_per_inbox_with_its_new_emails(probed, admin):
    support, returns = make_inbox(probed, admin), make_inbox(probed, admin, "Returns",
                                                             action="bounce")
    quiet = make_inbox(probed, admin, "Quiet", action="none")
    probed.records.create_many("emails", [
        received(support, "Jane Roe <jane@example.org>", subject="Broken"),
        received(support, "x@example.org", subject="Also broken"),
        received(returns, "MAILER-DAEMON@else.example", subject="Undelivered"),
        received(quiet, "z@example.org", subject="Hello"),
        {"name": "Not a group inbox's", "direction": "inbound",
         "from_address": "a@example.org"}], admin)
    assert sorted(CALLS) == [("bounce", "Returns", ["Undelivered"]),
                             ("create_case", "Support", ["Broken", "Also broken"])]
    # the case (a note standing in for it) names the contact made for the unknown sender
    [jane] = contacts(probed, admin, email1="jane@example.org")
    [case] = probed.records.list("notes", admin, Query(filters={"parent_id": jane["id"]}))
    assert case["name"] == "Case: Broken" and case["description"] == "Broken, please"


def test_an_action_that_fails_refuses_the_whole_batch(probed, admin):
    support = make_inbox(probed, admin)
    with pytest.raises(ValidationError):
        probed.records.create_many("emails", [
            received(support, "Jane Roe <jane@example.org>", subject="Fine"),
            received(support, "x@example.org", subject="boom")], admin)
    assert probed.records.list("emails", admin, Query(limit=None)) == []
    assert contacts(probed, admin) == [] and probed.records.list("notes", admin) == []


def test_without_a_plugin_for_the_action_the_mail_is_filed_all_the_same(site, admin):
    inbox = make_inbox(site, admin, "Bugs", action="create_bug", create_contacts=False)
    [email_id] = site.records.create_many("emails", [received(inbox, "q@example.org")], admin)
    assert site.records.get("emails", email_id, admin)["group_inbox_id"] == inbox["id"]
