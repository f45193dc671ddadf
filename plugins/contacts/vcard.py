"""vCard (RFC 2426 version 3.0, RFC 6350 version 4.0) for contacts: export and import.

Contract:

- ``vcard(contact, version, account_name=None)``: one contact as a ``vobject`` VCARD — FN,
  N (last; first;; salutation), ORG (the account; the department as its unit), TITLE, the
  two emails, five phones (work, cell, home, fax, other), the two addresses (work and
  other), BDAY, NOTE, REV and a UID: the contact's ``vcard_uid`` (kept from an import) or
  ``urn:uuid:<id>``. 4.0 writes its TYPE values in lower case and phone numbers as
  ``tel:`` URIs, as RFC 6350 does; 3.0 as RFC 2426.
- ``export(site, user, contacts, version)``: several cards in one .vcf (accounts' names in
  one query).
- ``import_vcf(site, user, data)``: every card created, or updated when its UID is on a
  contact the user may edit, **all or nothing in one transaction**. Each line is checked
  first (name, parameters, value; BEGIN/END nesting) and each card must have a name (FN or
  N), so a refusal names the line and the reason (``VcardProblem``) and nothing is written.
  ORG links the contact to an account of that exact name the user may see (none is created).

vobject is the maintained library that reads and writes both versions (icalendar has no
vCard); it is used for every parse and every serialization here.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid

import vobject
from vobject.base import ParseError

from core.kernel.errors import N_, CrbmError, Message, ValidationError
from core.kernel.records import Query

VERSIONS = ("3.0", "4.0")
MAX_BYTES = 2 * 1024 * 1024
UID_PREFIX = "urn:uuid:"
PHONES = (("phone_work", "work", "voice"), ("phone_mobile", "cell", None),
          ("phone_home", "home", "voice"), ("phone_fax", "work", "fax"),
          ("phone_other", None, "voice"))
ADDRESSES = (("primary_address", "work"), ("alt_address", "home"))
_LINE = re.compile(r"^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)?(;[^:]*)?:")


class VcardProblem(CrbmError):
    def __init__(self, line: int | None, message: Message):
        self.line, self.message = line, message
        super().__init__(str(message) if line is None else f"line {line}: {message}")


def uid_of(contact: dict) -> str:
    return contact.get("vcard_uid") or f"{UID_PREFIX}{contact['id']}"


def _types(version: str, *values) -> list[str]:
    values = [v for v in values if v]
    return [",".join(values).lower()] if version == "4.0" else [v.upper() for v in values]


def _rev(value) -> str | None:
    if not isinstance(value, dt.datetime):
        return None
    value = value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value.strftime("%Y%m%dT%H%M%SZ")


def vcard(contact: dict, version: str = "3.0", account_name: str | None = None):
    """One contact as a VCARD of ``version`` (3.0 or 4.0)."""
    if version not in VERSIONS:
        raise ValueError(f"vCard version {version!r}: 3.0 or 4.0")
    card = vobject.vCard()
    card.add("version").value = version
    first, last = contact.get("first_name") or "", contact.get("last_name") or ""
    card.add("n").value = vobject.vcard.Name(family=last, given=first,
                                             prefix=contact.get("salutation") or "")
    card.add("fn").value = " ".join(p for p in (first, last) if p) or \
        contact.get("name") or last
    if account_name or contact.get("department"):
        card.add("org").value = [account_name or "", *(
            [contact["department"]] if contact.get("department") else [])]
    if contact.get("title"):
        card.add("title").value = contact["title"]
    for index, name in enumerate(("email1", "email2")):
        if contact.get(name):
            line = card.add("email")
            line.value = contact[name]
            line.type_param = _types(version, "work" if index == 0 else "home")[0]
            if index == 0 and version == "4.0":
                line.params["PREF"] = ["1"]
    for name, kind, what in PHONES:
        if contact.get(name):
            line = card.add("tel")
            number = str(contact[name])
            if version == "4.0":
                line.value = "tel:" + re.sub(r"[^0-9+*#,;a-zA-Z-]", "-", number.strip())
                line.params["VALUE"] = ["uri"]
            else:
                line.value = number
            line.params["TYPE"] = _types(version, kind, what)
    for name, kind in ADDRESSES:
        parts = {p: contact.get(f"{name}_{p}") or "" for p in
                 ("street", "city", "state", "postal_code", "country")}
        if any(parts.values()):
            line = card.add("adr")
            line.value = vobject.vcard.Address(
                street=parts["street"], city=parts["city"], region=parts["state"],
                code=parts["postal_code"], country=parts["country"])
            line.params["TYPE"] = _types(version, kind)
    if contact.get("birthdate"):
        card.add("bday").value = str(contact["birthdate"])[:10]
    if contact.get("description"):
        card.add("note").value = contact["description"]
    if _rev(contact.get("modified_at")):
        card.add("rev").value = _rev(contact["modified_at"])
    card.add("uid").value = uid_of(contact)
    card.add("prodid").value = "-//CRBM//Contacts//EN"
    return card


def account_names(site, user, contacts: list[dict]) -> dict[str, str]:
    ids = list({c["account_id"] for c in contacts if c.get("account_id")})
    if not ids or "accounts" not in site.registry.modules:
        return {}
    return {a["id"]: a["name"] for a in site.records.list("accounts", user, Query(
        filters=[("id", "in", ids)], fields=["id", "name"], limit=None))}


def export(site, user, contacts: list[dict], version: str = "3.0") -> bytes:
    names = account_names(site, user, contacts)
    return "".join(vcard(c, version, names.get(c.get("account_id"))).serialize()
                   for c in contacts).encode()


# -- reading -----------------------------------------------------------------------------------

def _text(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise VcardProblem(None, Message(N_(
            "the file is too large (%(size)s KB; at most %(limit)s KB)"),
            size=len(data) // 1024, limit=MAX_BYTES // 1024))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise VcardProblem(data[:exc.start].count(b"\n") + 1, Message(N_(
            "this is not text (UTF-8): it cannot be a calendar or a card"))) from None


def cards_of(text: str) -> list[tuple[int, str]]:
    """(line of BEGIN:VCARD, the card's text) of each card, after checking every line."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    first = next((i for i, line in enumerate(raw) if line.strip()), 0)
    if not raw[first].strip().upper() == "BEGIN:VCARD":
        raise VcardProblem(first + 1, Message(N_(
            "this is not a vCard file: it should begin with BEGIN:VCARD")))
    cards, start, body = [], None, []
    for number, line in enumerate(raw, start=1):
        if not line.strip():
            continue
        if line[:1] in (" ", "\t"):
            if start is None:
                raise VcardProblem(number, Message(N_("a continued line outside a card")))
            body.append(line)
            continue
        if not _LINE.match(line):
            raise VcardProblem(number, Message(N_(
                "this line cannot be read (it should be NAME:value)")))
        upper = line.strip().upper()
        if upper == "BEGIN:VCARD":
            if start is not None:
                raise VcardProblem(number, Message(N_("BEGIN:VCARD inside another card")))
            start, body = number, [line]
        elif start is None:
            raise VcardProblem(number, Message(N_("text outside BEGIN:VCARD … END:VCARD")))
        elif upper == "END:VCARD":
            cards.append((start, "\r\n".join([*body, line]) + "\r\n"))
            start, body = None, []
        else:
            body.append(line)
    if start is not None:
        raise VcardProblem(start, Message(N_("the card has no END:VCARD")))
    return cards


def _first(card, name):
    lines = card.contents.get(name) or []
    return lines[0] if lines else None


def _kinds(line) -> set[str]:
    return {t.strip().lower() for value in line.params.get("TYPE", [])
            for t in str(value).split(",")}


def values_of(card, line_no: int) -> dict:
    """The contact's fields from a card (a card with no name is refused)."""
    n = _first(card, "n")
    fn = _first(card, "fn")
    family = given = prefix = ""
    if n is not None and isinstance(n.value, vobject.vcard.Name):
        family, given = str(n.value.family or "").strip(), str(n.value.given or "").strip()
        prefix = str(n.value.prefix or "").strip()
    full = str(fn.value).strip() if fn is not None else ""
    if not family and not given and not full:
        raise VcardProblem(line_no, Message(N_("the card has no name (FN or N)")))
    if not family:
        words = (given or full).split()
        family, given = words[-1], given or " ".join(words[:-1])
    values = {"last_name": family[:100], "first_name": given[:100] or None}
    if prefix in ("Mr.", "Ms.", "Mrs.", "Miss", "Dr.", "Prof."):
        values["salutation"] = prefix
    org = _first(card, "org")
    if org is not None:
        units = org.value if isinstance(org.value, list) else [org.value]
        values["_org"] = str(units[0]).strip() if units else ""
        if len(units) > 1 and units[1]:
            values["department"] = str(units[1])[:100]
    title = _first(card, "title")
    if title is not None:
        values["title"] = str(title.value)[:100]
    emails = [str(e.value).strip() for e in card.contents.get("email", []) if e.value]
    for name, email in zip(("email1", "email2"), emails, strict=False):
        values[name] = email
    free = []
    for tel in card.contents.get("tel", []):
        number = str(tel.value).strip()
        if number.startswith("tel:"):  # an RFC 3966 URI (4.0): "-" separates the digits
            number = number.removeprefix("tel:").split(";", 1)[0].replace("-", " ")
        kinds = _kinds(tel)
        name = "phone_mobile" if "cell" in kinds else "phone_fax" if "fax" in kinds else \
            "phone_home" if "home" in kinds else "phone_work" if "work" in kinds else None
        if name and name not in values:
            values[name] = number
        else:
            free.append(number)
    for name in ("phone_work", "phone_other"):
        if name not in values and free:
            values[name] = free.pop(0)
    addresses = card.contents.get("adr", [])
    work = [a for a in addresses if "work" in _kinds(a)]
    rest = [a for a in addresses if a not in work]
    for name, line in zip(("primary_address", "alt_address"), [*work, *rest], strict=False):
        a = line.value
        street = a.street if isinstance(a.street, str) else " ".join(a.street)
        values.update({f"{name}_street": street or None, f"{name}_city": a.city or None,
                       f"{name}_state": a.region or None,
                       f"{name}_postal_code": a.code or None,
                       f"{name}_country": a.country or None})
    bday = _first(card, "bday")
    if bday is not None and re.fullmatch(r"\d{4}-?\d{2}-?\d{2}", str(bday.value)[:10]):
        digits = str(bday.value).replace("-", "")[:8]
        values["birthdate"] = f"{digits[:4]}-{digits[4:6]}-{digits[6:8]}"
    note = _first(card, "note")
    if note is not None:
        values["description"] = str(note.value)
    return values


@dataclasses.dataclass
class Imported:
    created: int
    updated: int


def import_vcf(site, user, data: bytes) -> Imported:
    """Create or update (by UID) a contact for every card in ``data``, all or nothing."""
    rows = []
    for line_no, text in cards_of(_text(data)):
        try:
            card = vobject.readOne(text)
        except (ParseError, ValueError, TypeError) as exc:
            reason = re.sub(r"^At line \d+: ", "", str(exc))
            raise VcardProblem(line_no, Message(N_("the card cannot be read (%(reason)s)"),
                                                reason=reason)) from None
        uid = _first(card, "uid")
        uid = str(uid.value).strip()[:255] if uid is not None and uid.value else \
            f"{UID_PREFIX}{uuid.uuid4()}"
        rows.append((line_no, uid, values_of(card, line_no)))
    if not rows:
        raise VcardProblem(1, Message(N_("the file holds no card")))
    return _write(site, user, rows)


def _write(site, user, rows) -> Imported:
    created = updated = 0
    if site.access is not None and not site.access.can(
            user, site.registry.module("contacts"), "edit"):
        raise VcardProblem(None, Message(N_("you may not create or change contacts")))
    with site.engine.begin() as conn:
        orgs = list({v["_org"] for _, _, v in rows if v.get("_org")})
        accounts = {}
        if orgs and "accounts" in site.registry.modules:
            for a in site.records.list("accounts", user, Query(
                    filters=[("name", "in", orgs)], fields=["id", "name"], limit=None),
                    connection=conn):
                accounts.setdefault(a["name"], a["id"])
        uids = [uid for _, uid, _ in rows]
        ours = [u.removeprefix(UID_PREFIX) for u in uids if u.startswith(UID_PREFIX)]
        found = {}
        for filters in ([("vcard_uid", "in", uids)], [("id", "in", ours)] if ours else None):
            if filters is None:
                continue
            for r in site.records.list("contacts", user, Query(
                    filters=filters, fields=["id", "vcard_uid"], limit=None),
                    action="edit", connection=conn):
                found.setdefault(r["vcard_uid"] or f"{UID_PREFIX}{r['id']}", r)
        for line_no, uid, values in rows:
            org = values.pop("_org", None)
            if org and org in accounts:
                values["account_id"] = accounts[org]
            try:
                if uid in found:
                    site.records.update("contacts", found[uid]["id"], values, user,
                                        connection=conn)
                    updated += 1
                else:
                    found[uid] = site.records.create("contacts", {**values, "vcard_uid": uid},
                                                     user, connection=conn)
                    created += 1
            except ValidationError as exc:
                field, reason = next(iter(exc.errors.items()))
                raise VcardProblem(line_no, Message(N_("%(field)s: %(reason)s"),
                                                    field=field, reason=reason)) from None
    return Imported(created, updated)
