"""What a group inbox does with the messages it receives (implementation guide §7.4.3): its
``action`` — None, Create case, Create bug, Bounce handling — and, with Create case,
"Automatically create contacts".

Contract:

- **Actions are provided by other plugins.** The cases, bugs and campaigns modules are not
  this plugin's: a plugin that brings one implements the emails plugin's own hook
  ``crbm_email_group_actions(site)`` (plugins/emails/hookspecs.py) and returns
  ``GroupAction(action, run)`` values — ``action`` one of ``group_inbox_action_dom``'s
  values (``create_case``, ``create_bug``, ``bounce``), ``run(site, inbox, emails, user,
  connection)``. After new emails that came in through a group inbox are written, each
  implementation of the inbox's action is called **once per inbox and batch**, inside the
  write's transaction, with the inbox (a dict of its fields) and its new emails (the
  records as stored: ``contact_id`` and ``account_id`` already linked, ``body``, ``name``...).
  It writes through ``site.records`` with ``connection=connection`` (a case made per email,
  a bounce recorded on its campaign and the email deleted...); raising refuses the whole
  batch, so the fetch retries it later and nothing is half-filed. An action nobody provides
  does nothing: the messages are filed in the inbox's group folder all the same. ``none``
  is never called.
- **Automatically create contacts** (an inbox whose action is ``create_case`` and whose
  ``create_contacts`` is ticked): before the write, an inbound message whose sender no
  contact has (after linking.py) gets a new contact, linked to the email (``contact_id``
  and the emails↔contacts relationship), so the case the action makes can name it. The
  contact's email is the sender's address; its names come from the From: header's display
  name ("Jane Roe" → first name Jane, last name Roe; "Roe, Jane" likewise), else the first
  name is empty and the last name is the address — the guide's rule. Two messages of one
  batch from one unknown sender make one contact. A sender at an ignored domain (Admin →
  Email settings) or whose address the contact's email field refuses makes none.

Why a hook of the emails plugin and not a table of handlers: pluggy already is the
registry — a plugin's implementation comes and goes with the plugin, and a misspelt one
stops boot (the kernel adds a plugin's ``hookspecs.py`` before any plugin registers).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel.fields import FieldError
from plugins.emails import linking
from plugins.emails.settings import email_settings

INBOXES = "group_inboxes"
NONE = "none"
CREATE_CASE = "create_case"
INBOX_FIELDS = ("id", "name", "email_address", "action", "create_contacts", "group_folder_id",
                "assigned_user_id")


@dataclass(frozen=True)
class GroupAction:
    """What a plugin does with a group inbox's new messages: ``action`` is the inbox's
    ``action`` value it answers; ``run(site, inbox, emails, user, connection)``."""
    action: str
    run: Callable


def provided(site) -> dict[str, list[GroupAction]]:
    """action -> the plugins' implementations of it, in plugin order."""
    hook = getattr(site.hook, "crbm_email_group_actions", None)
    out: dict[str, list[GroupAction]] = {}
    for found in (hook(site=site) if hook else ()):
        for action in found or ():
            out.setdefault(action.action, []).append(action)
    return out


def inboxes(site, connection, ids) -> dict[str, dict]:
    """id -> the group inbox's fields, for these ids (one statement)."""
    ids = sorted({i for i in ids if i})
    module = site.registry.modules.get(INBOXES)
    if not ids or module is None:
        return {}
    table = site.records.table(module)
    rows = connection.execute(sa.select(*(table.c[n] for n in INBOX_FIELDS)).where(
        table.c.id.in_(ids), table.c.deleted.is_(False))).mappings()
    return {row["id"]: dict(row) for row in rows}


def split_name(display_name: str, address: str) -> tuple[str, str]:
    """(first name, last name) of a new contact from the From: header (§7.4.3)."""
    name = " ".join(display_name.replace('"', " ").split())
    if not name or name.lower() == address.lower():
        return "", address
    if "," in name:  # "Roe, Jane"
        last, _, first = name.partition(",")
        if last.strip() and first.strip():
            return first.strip(), last.strip()
        name = name.replace(",", " ").strip()
    first, _, last = name.rpartition(" ")
    return first.strip(), last.strip()


def create_contacts(site, batch, user, connection) -> None:
    """Before the write: a contact for each unknown sender of a group inbox that creates
    cases and contacts (see the module's docstring). Runs after ``linking.before_save``."""
    wanting = [c.record for c in batch if c.is_new and c.record.get("group_inbox_id")
               and c.record.get("direction") == "inbound" and not c.record.get("contact_id")]
    if not wanting or "contacts" not in site.registry.modules:
        return
    found = inboxes(site, connection, [r["group_inbox_id"] for r in wanting])
    domains = email_settings(site).ignore_domains
    contacts = site.registry.module("contacts")
    email_field = contacts.fields["email1"]
    sizes = {n: contacts.fields[n].spec.get("max_size") or 100 for n in ("first_name",
                                                                       "last_name")}
    new: dict[str, dict] = {}  # address -> the contact's values
    senders: list[tuple[dict, str]] = []
    for record in wanting:
        inbox = found.get(record["group_inbox_id"])
        if not inbox or inbox["action"] != CREATE_CASE or not inbox["create_contacts"]:
            continue
        sender = linking.parties(record, domains)[:1]
        if not sender:
            continue
        display, address = sender[0]
        try:
            email_field.type.check_text(address, email_field.spec)
        except FieldError:
            continue  # not an address the contact could keep: no contact
        first, last = split_name(display, address)
        new.setdefault(address, {
            "first_name": first[:sizes["first_name"]] or None,
            "last_name": last[:sizes["last_name"]], "email1": address,
            "assigned_user_id": record.get("assigned_user_id") or inbox["assigned_user_id"]})
        senders.append((record, address))
    if not new:
        return
    addresses = list(new)
    ids = site.records.create_many("contacts", [new[a] for a in addresses], user,
                                   connection=connection)
    made = dict(zip(addresses, ids))
    for record, address in senders:
        record["contact_id"] = made[address]
    linking.add_links(site, connection, user, [(r["id"], made[a]) for r, a in senders])


def run_actions(site, batch, user, connection) -> None:
    """After the write: each group inbox's action, once per inbox, with its new emails."""
    received = [c.record for c in batch if c.is_new and c.record.get("group_inbox_id")]
    if not received:
        return
    found = inboxes(site, connection, [r["group_inbox_id"] for r in received])
    wanted = {i: inbox for i, inbox in found.items() if inbox["action"] not in (None, NONE)}
    if not wanted:
        return
    actions = provided(site)
    for inbox_id, inbox in wanted.items():
        emails = [r for r in received if r["group_inbox_id"] == inbox_id]
        for action in actions.get(inbox["action"], ()):
            action.run(site, inbox, emails, user, connection)
