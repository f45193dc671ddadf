"""Converting a lead (implementation guide 2.1, "Converting leads"): an account, a contact
and, when the opportunities plugin is active and the user asks, an opportunity — one
transaction through the record service (validation, access, change log, hooks), or nothing.

- **The account.** B2B: an existing one the user picked (``account_id``), else a new one
  named ``account_name`` (default: the lead's company) with the lead's website, office
  phone and address. B2C (``settings.LeadSettings.b2c``): a person-account named by the
  account name format from the person's name, carrying their email, phones and address.
- **The contact**: the lead's fields by "smart convert" (``core.apps.conversion``: every
  same-named field, custom ones included), at the account.
- **The opportunity** (optional): ``name``, ``amount``, ``date_closed``, ``sales_stage`` as
  given, at the account, with the lead's same-named fields (lead source, description...).
  Written against the opportunities plugin's contract (those required fields); refused
  with a clear message on a site without that module.
- **A first meeting** (optional, when the activities plugin is active): ``name``,
  ``date_start``, ``date_end``, ``location`` as given, related to the new contact.
- **The lead** becomes Converted and links to what it became (``converted_account_id``,
  ``converted_contact_id``; the opportunity's ``lead_id`` points back at it). Its row
  is locked first and its state read again, so two people converting at once make one
  contact; a converted lead is refused with a message saying so.

Rights: editing the lead, creating (edit right on) accounts — unless an existing account
is used —, contacts and, if asked, opportunities and meetings; viewing a picked account. Refusals are
``ConvertRefused`` (``forbidden``: a right is missing; else the lead's state) and
``ValidationError`` with the record named in each key (``account.name``,
``opportunity.amount``) for bad values.
"""
from __future__ import annotations

import contextvars
from dataclasses import dataclass

from core.apps import conversion
from core.kernel.errors import N_, CrbmError, Message, NotFoundError, ValidationError
from core.kernel.records import Query
from plugins.leads.settings import account_name, lead_settings

OPPORTUNITIES = "opportunities"
MEETINGS = "meetings"
MEETING_FIELDS = ("name", "date_start", "date_end", "location")
# what the opportunities plugin requires of a new opportunity besides its account
OPPORTUNITY_FIELDS = ("name", "amount", "date_closed", "sales_stage")
# person fields a B2B company account does not take from the lead (they are the person's)
NOT_FOR_COMPANY = frozenset({"description", "email_opt_out", "do_not_call", "lead_source"})

# set while convert() writes the lead, so the save hook lets its status and links change
converting = contextvars.ContextVar("converting_lead", default=False)


class ConvertRefused(CrbmError):
    """Converting was refused: ``forbidden`` when a right is missing, else the lead's
    state (already converted)."""

    def __init__(self, message: str, forbidden: bool = False):
        super().__init__(message)
        self.forbidden = forbidden


@dataclass(frozen=True)
class Converted:
    lead: dict
    account: dict
    contact: dict
    opportunity: dict | None
    account_created: bool
    meeting: dict | None = None


def is_converted(lead: dict) -> bool:
    return lead.get("status") == "converted" or bool(lead.get("converted_contact_id"))


def has_opportunities(site) -> bool:
    return OPPORTUNITIES in site.registry.modules


def has_meetings(site) -> bool:
    return MEETINGS in site.registry.modules


def accounts_named(site, user, name: str | None) -> list[dict]:
    """The accounts the user may see whose name is exactly ``name`` (the page offers
    them instead of making a second one)."""
    name = " ".join((name or "").split())
    if not name:
        return []
    return site.records.list("accounts", user, Query(filters=[("name", "eq", name)],
                                                     fields=["name"], limit=5, sort="name"))


def suggested_account_name(site, lead: dict) -> str:
    settings = lead_settings(site)
    if settings.b2c:
        return account_name(settings.account_name_format, lead)
    return " ".join((lead.get("account_name") or "").split())


def check_rights(site, user, lead: dict, *, new_account: bool, opportunity: bool,
                 meeting: bool = False) -> None:
    """Refuse (ConvertRefused, forbidden) what the user may not do; nothing is written."""
    registry = site.registry
    if not site.records.allowed("leads", [lead["id"]], user, "edit"):
        raise ConvertRefused(Message(N_("You may not edit the lead %(name)s, so you cannot "
                                        "convert it."), name=lead.get("name")), forbidden=True)
    needed = (["accounts"] if new_account else []) + ["contacts"] + \
        ([OPPORTUNITIES] if opportunity else []) + ([MEETINGS] if meeting else [])
    for name in needed:
        module = registry.module(name)
        if not site.access.can(user, module, "edit"):
            raise ConvertRefused(Message(N_("You may not create %(module)s, so you cannot "
                                            "convert this lead."),
                                         module=module.label), forbidden=True)


def _prefixed(exc: ValidationError, record: str) -> ValidationError:
    return ValidationError({f"{record}.{field}": message for field, message in exc.errors.items()})


def _account_values(site, lead: dict, name: str, b2c: bool) -> dict:
    leads, accounts = site.registry.module("leads"), site.registry.module("accounts")
    copied = conversion.smart_copy(leads, accounts, lead)
    if not b2c:  # a company: not the person's own details
        copied = {k: v for k, v in copied.items() if k not in NOT_FOR_COMPANY
                  and not leads.fields[k].spec.get("personal")}
    values = {**copied, "name": name}
    if "phone_office" in accounts.fields:
        values["phone_office"] = lead.get("phone_work") or (lead.get("phone_mobile") if b2c
                                                            else None)
    if b2c and "phone_alternate" in accounts.fields and lead.get("phone_work"):
        values["phone_alternate"] = lead.get("phone_mobile")
    for part in leads.fields:  # the person's address is the account's billing address
        if part.startswith("primary_address_") and lead.get(part):
            target = "billing_address_" + part.removeprefix("primary_address_")
            if target in accounts.fields:
                values[target] = lead[part]
    return {k: v for k, v in values.items() if v is not None}


def convert(site, user, lead_id: str, *, account_id: str | None = None,
            account_name: str | None = None, opportunity: dict | None = None,
            meeting: dict | None = None) -> Converted:
    """Convert the lead (see the module's docstring); returns what was made."""
    lead = site.records.get("leads", lead_id, user)  # NotFoundError if they may not see it
    if is_converted(lead):
        raise _already(site, lead)
    if opportunity is not None and not has_opportunities(site):
        raise ValidationError({"opportunity": Message(N_(
            "this site has no opportunities: convert without one"))})
    if meeting is not None and not has_meetings(site):
        raise ValidationError({"meeting": Message(N_(
            "this site has no meetings: convert without one"))})
    check_rights(site, user, lead, new_account=not account_id,
                 opportunity=opportunity is not None, meeting=meeting is not None)
    settings = lead_settings(site)
    with site.engine.begin() as conn:
        site.records.lock("leads", [lead_id], connection=conn)
        lead = site.records.get("leads", lead_id, user, connection=conn)  # as it is now
        if is_converted(lead):
            raise _already(site, lead)
        if account_id:
            try:
                account = site.records.get("accounts", str(account_id), user, connection=conn)
            except NotFoundError:
                raise ValidationError({"account_id": Message(
                    N_("no account with id %(id)s that you may see"), id=account_id)}) from None
        else:
            name = " ".join((account_name or "").split()) or \
                suggested_account_name(site, lead)
            if not name:
                raise ValidationError({"account.name": Message(N_(
                    "is required: give the company's name, or pick an existing account"))})
            try:
                account = site.records.create("accounts", _account_values(
                    site, lead, name, settings.b2c), user, connection=conn)
            except ValidationError as exc:
                raise _prefixed(exc, "account") from None
        token = converting.set(True)
        try:
            try:
                contact = conversion.convert(site, user, "leads", lead_id, "contacts",
                                             values={"account_id": account["id"]},
                                             connection=conn)
            except ValidationError as exc:
                raise _prefixed(exc, "contact") from None
            made = None
            links = {"status": "converted", "converted_account_id": account["id"],
                     "converted_contact_id": contact["id"]}
            if opportunity is not None:
                given = {k: opportunity.get(k) for k in OPPORTUNITY_FIELDS
                         if opportunity.get(k) not in (None, "")}
                if "lead_id" in site.registry.module(OPPORTUNITIES).fields:
                    given["lead_id"] = lead_id  # extends/opportunities.yaml
                try:
                    made = conversion.convert(site, user, "leads", lead_id, OPPORTUNITIES,
                                              values={**given, "account_id": account["id"]},
                                              connection=conn)
                except ValidationError as exc:
                    raise _prefixed(exc, "opportunity") from None
            first_meeting = None
            if meeting is not None:  # with the person the lead became
                given = {k: meeting.get(k) for k in MEETING_FIELDS
                         if meeting.get(k) not in (None, "")}
                try:
                    first_meeting = site.records.create(MEETINGS, {
                        **given, "parent_type": "contacts", "parent_id": contact["id"]},
                        user, connection=conn)
                except ValidationError as exc:
                    raise _prefixed(exc, "meeting") from None
            lead = site.records.update("leads", lead_id, links, user, base=lead,
                                       connection=conn)
        finally:
            converting.reset(token)
    return Converted(lead, account, contact, made, not account_id, first_meeting)


def already_message(lead: dict) -> Message:
    return Message(N_("%(name)s was already converted: a lead is converted once. Open the "
                      "contact it became to carry on."), name=lead.get("name"))


def _already(site, lead: dict) -> ConvertRefused:
    return ConvertRefused(already_message(lead))
