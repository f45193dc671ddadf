"""What happens to an email as it is stored: whom it is about, and which thread it is in
(implementation guide §7.4.1, third section; issue 21 point 3).

Contract — for every **new** email record, however it is created (the IMAP fetch's
``create_many``, the web form, the API, a sent message filed by ``crbm_mail_sent``), and
every email whose addresses (or, for the thread, Message-IDs) an update changes — a draft
given its recipients, then sent — adding to the links it has:

- **Contacts.** The addresses that say whom the message is with — an inbound message's
  sender, an outbound one's recipients (To, Cc, Bcc), read with ``email.utils.getaddresses``
  — are matched, regardless of case, against *every* email field of the contacts (email1,
  email2, and any email field the Studio adds). Every contact matched is linked through the
  emails↔contacts many-to-many relationship (``contacts``, table ``emails_contacts``, which
  the contacts plugin brings with ``contact_id``: without it, no contact is matched): the
  message shows on each one's History (core.apps.activities reads that relationship). The
  first matched (in the order the addresses come, then the oldest contact) becomes
  ``contact_id``, and — when ``email_settings(site).link_account`` — its account becomes
  ``account_id``. A value the user or the sender already gave is never replaced.
- **Leads** (only while the leads plugin is active): an address no contact has is matched
  against the leads' email fields the same way; the first lead matched becomes the email's
  "Related to" (``parent_id``/``parent_type``) when that is still empty.
- **Whose contacts**: every contact not deleted, whoever may see it — filing is the
  system's. Who sees the email on a History is still decided by the email's own access,
  and a contact's name is shown only to those who may see the contact.
- **Ignored domains**: an address at a domain of ``ignore_domains`` (or a subdomain of one)
  is never matched — your own company's people are not contacts.
- **Threads**: ``thread_id`` is the Message-ID of the thread's first message. The message's
  References (oldest first) and In-Reply-To are looked up among the emails already stored
  and the others of the same batch; the first one found gives its thread. When none is
  stored yet, the oldest reference *is* the thread's first message, so ``thread_id`` is
  that reference — its original, fetched later (a sent folder read after the inbox), then
  gets the same thread as its own Message-ID. A message that refers to nothing starts its
  own thread.

Why before the write (``crbm_before_save``) rather than after it: the values are set on the
rows about to be inserted, so the write stores them — no second UPDATE of every email, and
the account found here gives the email its teams (``inherit_teams_from: account_id``) in the
same write. The link rows go in at the same time, in the same transaction (the email ids
are known by then; the link table has no foreign keys): a refused write leaves none behind.

Cost: set-based, whatever the batch's size — one statement per 500 addresses for the
contacts, one for the leads, one per 500 Message-IDs for the threads, one insert of all
the link rows. No statement per email.
"""
from __future__ import annotations

import datetime as dt
import re
from email.utils import getaddresses

import sqlalchemy as sa

from core.kernel.database import link_columns
from plugins.emails.settings import email_settings

MODULE = "emails"
CONTACTS = "contacts"
LEADS = "leads"
RELATIONSHIP = "contacts"  # the emails↔contacts many-to-many (plugins/contacts/extends)
CHUNK = 500  # addresses or Message-IDs per IN list: every database takes that many
_MESSAGE_ID = re.compile(r"<[^<>\s]+>")
# an update changing one of these links or threads the email again
ADDRESS_FIELDS = ("direction", "from_address", "to_addresses", "cc_addresses", "bcc_addresses")
THREAD_FIELDS = ("message_id", "in_reply_to", "references")


# -- addresses ------------------------------------------------------------------------------

def addresses(*headers: str | None) -> list[tuple[str, str]]:
    """(display name, address lower-cased) of every mailbox in these header values, in
    order, each address once; what is not an address (an empty group, junk) is left out."""
    seen, out = set(), []
    for name, address in getaddresses([h for h in headers if h]):
        address = address.strip().lower()
        if "@" not in address or address in seen:
            continue
        seen.add(address)
        out.append((name.strip(), address))
    return out


def ignored(address: str, domains) -> bool:
    """Whether the address is at one of ``domains`` or a subdomain of one."""
    domain = address.rsplit("@", 1)[-1]
    return any(domain == d or domain.endswith("." + d) for d in domains)


def parties(record: dict, domains) -> list[tuple[str, str]]:
    """Whom an email is with: its sender when inbound, else its recipients — less the
    addresses at ignored domains."""
    if record.get("direction") == "inbound":
        found = addresses(record.get("from_address"))
    else:
        found = addresses(record.get("to_addresses"), record.get("cc_addresses"),
                          record.get("bcc_addresses"))
    return [(name, address) for name, address in found if not ignored(address, domains)]


def match(site, connection, module_name: str, wanted) -> dict[str, list[dict]]:
    """address -> the records of ``module_name`` (``id``, ``account_id`` when it has one)
    having that address in any of their email fields, oldest first; deleted ones left out.
    One statement per ``CHUNK`` addresses."""
    module = site.registry.modules.get(module_name)
    wanted = sorted(set(wanted))
    if module is None or not wanted:
        return {}
    table = site.records.table(module)
    fields = [f.name for f in module.stored_fields if f.type.is_email]
    if not fields:
        return {}
    extra = [table.c.account_id] if "account_id" in module.fields else []
    found: dict[str, list[dict]] = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start:start + CHUNK]
        rows = connection.execute(
            sa.select(table.c.id, *extra, *(table.c[f] for f in fields))
            .where(table.c.deleted.is_(False),
                   sa.or_(*(sa.func.lower(table.c[f]).in_(chunk) for f in fields)))
            .order_by(table.c.created_at, table.c.id)).mappings().all()
        for row in rows:
            for address in dict.fromkeys((row[f] or "").strip().lower() for f in fields):
                if address in chunk:
                    found.setdefault(address, []).append(
                        {"id": row["id"], "account_id": row.get("account_id")})
    return found


# -- the hook -------------------------------------------------------------------------------

def before_save(site, batch, user, connection) -> None:
    """Link the new emails of ``batch`` to their contacts, accounts and leads, and thread
    them (see the module's docstring); an email whose addresses change (a draft given its
    recipients, then sent) is linked again, adding to its links."""
    thread(site, [c.record for c in batch
                  if c.is_new or any(f in c.changes for f in THREAD_FIELDS)], connection)
    records = [c.record for c in batch
               if c.is_new or any(f in c.changes for f in ADDRESS_FIELDS)]
    if not records:
        return
    settings = email_settings(site)
    wanted = {record["id"]: parties(record, settings.ignore_domains) for record in records}
    every = {address for found in wanted.values() for _, address in found}
    contacts = match(site, connection, CONTACTS, every)
    leads = match(site, connection, LEADS, every - set(contacts)) \
        if _parent_may_name(site, LEADS) else {}
    links: dict[tuple[str, str], None] = {}
    for record in records:
        matched = [c for _, address in wanted[record["id"]] for c in contacts.get(address, ())]
        for contact in matched:
            links[(record["id"], contact["id"])] = None
        if matched and not record.get("contact_id"):
            record["contact_id"] = matched[0]["id"]
            if settings.link_account and not record.get("account_id") and \
                    matched[0].get("account_id"):
                record["account_id"] = matched[0]["account_id"]
        lead = next((lead for _, address in wanted[record["id"]]
                     for lead in leads.get(address, ())), None)
        if lead and not record.get("parent_id"):
            record["parent_id"], record[_type_field(site)] = lead["id"], LEADS
    changed = [c.record["id"] for c in batch
               if not c.is_new and any(f in c.changes for f in ADDRESS_FIELDS)]
    add_links(site, connection, user, list(links), changed)


def add_links(site, connection, user, pairs: list[tuple[str, str]],
              existing: list[str] = ()) -> None:
    """(email id, contact id) rows into the emails↔contacts link table, in one insert;
    ``existing``: the emails among them that may have links already (those are read
    first, in one statement per ``CHUNK``, and kept)."""
    emails = site.registry.module(MODULE)
    if RELATIONSHIP not in emails.relationships:
        return  # the contacts plugin is not active (its extends/emails.yaml brings it)
    mine, theirs = link_columns(emails, RELATIONSHIP)
    table = site.tables.tables[emails.link_table(RELATIONSHIP)]
    existing = sorted(set(existing))
    for start in range(0, len(existing) if pairs else 0, CHUNK):
        have = set(connection.execute(sa.select(table.c[mine], table.c[theirs]).where(
            table.c[mine].in_(existing[start:start + CHUNK]))).tuples())
        pairs = [pair for pair in pairs if pair not in have]
    if not pairs:
        return
    stamp = dt.datetime.now(dt.UTC)
    connection.execute(table.insert(), [{mine: e, theirs: c, "created_at": stamp,
                                         "created_by": user.id} for e, c in pairs])


def _type_field(site) -> str:
    return site.registry.module(MODULE).fields["parent_id"].spec["type_field"]


def _parent_may_name(site, module_name: str) -> bool:
    """Whether "Related to" may name a record of ``module_name`` (its plugin is active and
    lists it: plugins/leads/extends/emails.yaml)."""
    parent = site.registry.module(MODULE).fields.get("parent_id")
    return module_name in site.registry.modules and parent is not None and \
        module_name in (parent.spec.get("modules") or ())


# -- threads --------------------------------------------------------------------------------

def message_ids(text: str | None) -> list[str]:
    """The Message-IDs in a References or In-Reply-To value, in order (``<...>`` each; a
    bare value without angle brackets, as some senders write, is taken whole)."""
    if not text:
        return []
    found = _MESSAGE_ID.findall(text)
    return found or ([text.strip()] if text.strip() and " " not in text.strip() else [])


def thread(site, records: list[dict], connection) -> None:
    """Set ``thread_id`` on new emails that have none (see the module's docstring)."""
    todo = [r for r in records if not r.get("thread_id")]
    if not todo:
        return
    parents = {r["id"]: list(dict.fromkeys(message_ids(r.get("references")) +
                                           message_ids(r.get("in_reply_to")))) for r in todo}
    asked = {m for ids in parents.values() for m in ids}
    known: dict[str, str] = {}  # message id -> its thread, among the stored emails
    table = site.records.table(site.registry.module(MODULE))
    asked_list = sorted(asked)
    for start in range(0, len(asked_list), CHUNK):
        for row in connection.execute(
                sa.select(table.c.message_id, table.c.thread_id)
                .where(table.c.deleted.is_(False),
                       table.c.message_id.in_(asked_list[start:start + CHUNK]))
                .order_by(table.c.created_at, table.c.id)):
            known.setdefault(row.message_id, row.thread_id or row.message_id)
    in_batch = {r["message_id"]: r for r in records if r.get("message_id")}

    def resolve(record: dict, seen: set) -> str | None:
        if record.get("thread_id"):
            return record["thread_id"]
        ids = parents.get(record["id"])
        if ids is None:  # not one of todo: a message of the batch with no parent asked
            return record.get("message_id")
        for message_id in ids:
            if message_id in known:
                return known[message_id]
            other = in_batch.get(message_id)
            if other is not None and other["id"] not in seen:
                found = resolve(other, seen | {record["id"]})
                if found:
                    return found
        return ids[0] if ids else record.get("message_id")

    size = site.registry.module(MODULE).fields["thread_id"].spec.get("max_size") or 255
    for record in todo:
        found = resolve(record, set())
        record["thread_id"] = found[:size] if found else None
