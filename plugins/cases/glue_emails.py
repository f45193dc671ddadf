"""Cases with the emails plugin (registered only while emails is active).

Contract:

- **Subject matching** (implementation guide FAQ §8, ``case_email_subject``): a new
  inbound email — fetched from a mail account or a group inbox, or logged by hand — whose
  subject carries the case subject pattern (Admin → Case settings; "Case ID#: nnnn" by
  default, anywhere in the subject, any case, "Re: Case ID#: 1001") with the number of an
  existing case is filed on that case (``parent_id``), **only when the sender owns the
  case**: the contact the emails plugin matched to the sender is the case's contact, or that
  contact's account is the case's account. Otherwise — a stranger, or a customer quoting
  another customer's case number (spoofing) — the pattern is ignored: the email is filed
  as any other (and a group inbox's "Create case" makes a new case of it). Runs after the
  emails plugin's own linking (``trylast``), set-based: one statement for all the case
  numbers of a batch.
- **Replies carry the pattern**: a new outbound email filed on a case whose subject does
  not carry that case's pattern gets it after its Re:/Fwd: prefixes ("Re: Case ID#: 1001
  Printer jams"), however it was written (the mail client's compose from a case, a reply,
  the API).
- **New case status** (§7.1.1): an outbound email filed on a case with ``new_case_status``
  sets the case's status once it is sent or queued — one ``update_many`` per status, as
  the writer of the email (their edit right on the case applies; a case they may not edit
  is left as it is).
- **An answer reopens a waiting case**: an inbound email filed on a case in the auto-close
  status (Pending) makes it Active (in_progress) again, in the same transaction — a customer who
  answered the "will close" warning keeps their case open.
- **Group inbox "Create case"** (``crbm_email_group_actions``): each new message of the
  batch not already filed on a case becomes a case (subject, body, the sender's contact and
  account), assigned to the case queue user, else to the inbox's user; the message is
  filed on it. One ``create_many`` and one ``set_derived`` for the batch, in its
  transaction.
"""
from __future__ import annotations

import logging
import re

import sqlalchemy as sa

from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.records import SYSTEM_USER
from plugins.cases.settings import case_settings
from plugins.emails.group_actions import GroupAction

MODULE = "cases"
EMAILS = "emails"
SENT = ("queued", "sending", "sent")
_PREFIX = re.compile(r"^((?:\s*(?:re|fwd?|aw|tr|sv|vs)\s*:\s*)*)", re.IGNORECASE)
log = logging.getLogger(__name__)


def _type_field(site) -> str:
    return site.registry.module(EMAILS).fields["parent_id"].spec.get("type_field",
                                                                     "parent_type")


def _cases_by(site, connection, column: str, values) -> dict[str, dict]:
    values = sorted({v for v in values if v})
    if not values:
        return {}
    table = site.records.table(site.registry.module(MODULE))
    rows = connection.execute(sa.select(
        table.c.id, table.c.number, table.c.contact_id, table.c.account_id)
        .where(table.c.deleted.is_(False), table.c[column].in_(values))).mappings()
    return {row[column]: dict(row) for row in rows}


def match_subjects(site, batch, connection) -> None:
    """File new inbound emails on the case their subject names, when the sender owns it."""
    type_field = _type_field(site)
    regex = case_settings(site).subject_regex()
    wanted: list[tuple[dict, list[str]]] = []
    for change in batch:
        record = change.record
        if not change.is_new or record.get("direction") != "inbound" or \
                record.get("parent_id"):
            continue
        numbers = [m.group(1) for m in regex.finditer(record.get("name") or "")]
        if numbers:
            wanted.append((record, numbers))
    if not wanted:
        return
    cases = _cases_by(site, connection, "number", [n for _, ns in wanted for n in ns])
    for record, numbers in wanted:
        for number in numbers:
            case = cases.get(number)
            if case is None:
                continue
            owned = (record.get("contact_id") and record["contact_id"] == case["contact_id"]) \
                or (record.get("account_id") and record["account_id"] == case["account_id"])
            if not owned:
                log.info("email %r names case %s but its sender does not own it: not filed "
                         "on it", record.get("message_id"), number)
                continue
            record["parent_id"], record[type_field] = case["id"], MODULE
            record["account_id"] = record.get("account_id") or case["account_id"]
            break


def tag_replies(site, batch, connection) -> None:
    """New outbound emails on a case carry its pattern in the subject."""
    type_field = _type_field(site)
    records = [c.record for c in batch if c.is_new and c.record.get("direction") == "outbound"
               and c.record.get(type_field) == MODULE and c.record.get("parent_id")]
    if not records:
        return
    settings = case_settings(site)
    regex = settings.subject_regex()
    cases = _cases_by(site, connection, "id", [r["parent_id"] for r in records])
    size = site.registry.module(EMAILS).fields["name"].spec.get("max_size") or 255
    for record in records:
        case = cases.get(record["parent_id"])
        subject = record.get("name") or ""
        if case is None or any(m.group(1) == case["number"] for m in regex.finditer(subject)):
            continue
        prefix = _PREFIX.match(subject).group(1)
        rest = subject[len(prefix):].strip()
        record["name"] = (f"{prefix}{settings.subject_for(case['number'])} {rest}").strip()[:size]


@hookimpl(specname="crbm_before_save", trylast=True)  # after the emails plugin's linking
@for_modules(EMAILS)
def _cases_email_before_save(site, batch, user, connection):
    if MODULE not in site.registry.modules:
        return
    match_subjects(site, batch, connection)
    tag_replies(site, batch, connection)


@hookimpl(specname="crbm_after_save")
@for_modules(EMAILS)
def _cases_email_after_save(site, batch, user, connection):
    """"New case status": an email sent on a case sets the case's status."""
    if MODULE not in site.registry.modules:
        return
    type_field = _type_field(site)
    by_status: dict[str, set[str]] = {}
    for change in batch:
        record = change.record
        if record.get(type_field) != MODULE or not record.get("parent_id") or \
                not record.get("new_case_status") or record.get("status") not in SENT:
            continue
        was = change.changes.get("status", (None, None))[0]
        if change.is_new or "new_case_status" in change.changes or was == "draft":
            by_status.setdefault(record["new_case_status"], set()).add(record["parent_id"])
    for status, ids in by_status.items():
        site.records.update_many(MODULE, sorted(ids), {"status": status}, user,
                                 connection=connection)
    answered = {c.record["parent_id"] for c in batch if c.is_new and
                c.record.get("direction") == "inbound" and c.record.get(type_field) == MODULE
                and c.record.get("parent_id")}
    if answered:
        reopen_answered(site, answered, connection)


def reopen_answered(site, case_ids, connection) -> None:
    """The customer answered: a case waiting in the auto-close status (Pending) is Active
    again (its assigned user is told, as of any status change), and does not close for want
    of an answer it got."""
    waiting = case_settings(site).auto_close_status
    table = site.records.table(site.registry.module(MODULE))
    ids = list(connection.execute(sa.select(table.c.id).where(
        table.c.id.in_(sorted(case_ids)), table.c.deleted.is_(False),
        table.c.status == waiting)).scalars())
    if ids:
        site.records.update_many(MODULE, ids, {"status": "in_progress"}, SYSTEM_USER,
                                 connection=connection)


def create_cases(site, inbox, emails, user, connection) -> None:
    """The group inbox action "Create case" (see the module's docstring)."""
    if MODULE not in site.registry.modules:
        return
    type_field = _type_field(site)
    fresh = [e for e in emails if not (e.get(type_field) == MODULE and e.get("parent_id"))]
    if not fresh:
        return
    settings = case_settings(site)
    assignee = settings.queue_user_id or inbox.get("assigned_user_id") or None
    cases = site.registry.module(MODULE)
    size = cases.fields["name"].spec.get("max_size") or 255
    rows = [{"name": (e.get("name") or "-")[:size], "description": e.get("body"),
             "account_id": e.get("account_id"), "contact_id": e.get("contact_id"),
             "status": "assigned" if assignee else "new", "assigned_user_id": assignee}
            for e in fresh]
    ids = site.records.create_many(MODULE, rows, user, connection=connection)
    site.records.set_derived(EMAILS, {e["id"]: {"parent_id": case_id, type_field: MODULE}
                                      for e, case_id in zip(fresh, ids)},
                             connection=connection, reason="case created from a group inbox")


@hookimpl
def crbm_email_group_actions(site):
    return [GroupAction("create_case", create_cases)]


@hookimpl
def crbm_email_compose(site, module, record_id, user):
    """Writing from a case: To its contact, the subject its pattern and name, and "New case
    status" (Pending by default, as in 1CRM)."""
    if module != MODULE or MODULE not in site.registry.modules:
        return None
    from core.kernel.errors import N_, NotFoundError
    from plugins.emails.compose import ComposeExtras, ComposeField

    try:
        case = site.records.get(MODULE, record_id, user)
    except NotFoundError:
        return None
    to = None
    if case.get("contact_id"):
        try:
            contact = site.records.get("contacts", case["contact_id"], user)
        except NotFoundError:
            contact = {}
        if contact.get("email1"):
            name = " ".join(filter(None, (contact.get("first_name"), contact.get("last_name"))))
            to = f'"{name}" <{contact["email1"]}>' if name else contact["email1"]
    cases = site.registry.module(MODULE)
    status = ComposeField("new_case_status", N_("New case status"),
                          tuple(site.registry.choices(cases.fields["status"])), "pending")
    return ComposeExtras(to=to, subject=f"{case_settings(site).subject_for(case['number'])} "
                                        f"{case['name']}", fields=(status,))
