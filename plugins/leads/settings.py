"""The leads settings (site setting ``leads``, JSON in ``crbm_settings``): 1CRM's company
settings that concern leads (implementation guide 7.1.1).

- ``business_model``: ``b2b`` (a lead converts into a company account and a contact at
  it) or ``b2c`` (a person-account named from the person's name by ``account_name_format``,
  carrying their email, phones and address, with the contact as its person).
- ``account_name_format``: the guide's pattern, ``l, s f`` → "Doe, Mr. John": ``s`` is the
  salutation, ``f`` the first name, ``l`` the last name (each a letter standing alone);
  anything else is kept as written, and separators left dangling by an empty part go.
- ``assign_new_leads_to``: a user id. A new lead that nobody is assigned to — made by the
  system (a web form), or given ``assigned_user_id: null`` by the API or an import — gets
  this user (``plugin.crbm_before_save``). Every other new record is its creator's (the
  kernel's rule), so an API client that omits the field keeps the lead itself.

``lead_settings(site)`` is the public reader (the web-to-lead forms call it);
``clean_settings`` checks what the administration page posts.
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import sqlalchemy as sa

from core.kernel.errors import N_, Message

SETTING = "leads"
MODELS = {"b2b": N_("Business to business"), "b2c": N_("Business to consumer")}
DEFAULT_FORMAT = "l, s f"
MAX_FORMAT = 40
# s, f or l standing alone (not a letter of a word written around them)
_PART = re.compile(r"(?<![A-Za-z])([sfl])(?![A-Za-z])")
PARTS = {"s": "salutation", "f": "first_name", "l": "last_name"}


@dataclass(frozen=True)
class LeadSettings:
    assign_new_leads_to: str | None = None
    business_model: str = "b2b"  # a key of MODELS
    account_name_format: str = DEFAULT_FORMAT

    @property
    def b2c(self) -> bool:
        return self.business_model == "b2c"

    def to_json(self) -> dict:
        return asdict(self)


def lead_settings(site, stored: dict | None = None) -> LeadSettings:
    """The site's lead settings; a value of the wrong shape counts as never set."""
    raw = (site.settings if stored is None else stored).get(SETTING)
    raw = raw if isinstance(raw, dict) else {}
    assignee = raw.get("assign_new_leads_to")
    model = raw.get("business_model")
    pattern = raw.get("account_name_format")
    return LeadSettings(
        assign_new_leads_to=assignee if isinstance(assignee, str) and assignee else None,
        business_model=model if model in MODELS else "b2b",
        account_name_format=pattern if isinstance(pattern, str) and format_problem(pattern)
        is None else DEFAULT_FORMAT)


def format_problem(pattern: str) -> Message | None:
    if len(pattern) > MAX_FORMAT:
        return Message(N_("must be at most %(max)s characters"), max=MAX_FORMAT)
    found = set(_PART.findall(pattern))
    if "l" not in found and "f" not in found:
        return Message(N_("must contain l (last name) or f (first name), e.g. “l, s f”"))
    return None


def account_name(pattern: str, person: dict) -> str:
    """The person-account's name: ``pattern`` with s, f, l replaced by the person's
    salutation, first and last name ("l, s f" → "Doe, Mr. John"; without a salutation
    "Doe, John"; without a first name "Doe")."""
    text = _PART.sub(lambda m: f"\0{(person.get(PARTS[m.group(1)]) or '').strip()}\0", pattern)
    pieces = text.split("\0")
    # a literal between two empty parts, or at an end beside an empty one, goes
    out, pending = [], ""
    for index, piece in enumerate(pieces):
        if index % 2:  # a part
            if piece:
                out.append(pending if out else pending.lstrip(" ,;-/|"))
                out.append(piece)
                pending = ""
        else:
            pending += piece
    if out and pending.strip(" ,;-/|"):
        out.append(pending)
    return " ".join("".join(out).split()).strip(" ,;-/|")


def _user_exists(site, user_id: str) -> bool:
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(users.c.id).where(
            users.c.id == user_id, users.c.active.is_(True))).first() is not None


def user_label(site, user_id: str | None) -> str:
    if not user_id:
        return ""
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(users.c.username, users.c.display_name)
                           .where(users.c.id == user_id)).first()
    return (row.display_name or row.username) if row else user_id


def clean_settings(site, form) -> tuple[dict, dict]:
    """(values to store, errors by field) from the posted form."""
    errors: dict[str, Message] = {}
    model = str(form.get("business_model") or "b2b")
    if model not in MODELS:
        errors["business_model"] = Message(N_("%(value)s is not one of %(allowed)s"),
                                           value=repr(model), allowed=", ".join(MODELS))
    pattern = " ".join(str(form.get("account_name_format") or "").split()) or DEFAULT_FORMAT
    problem = format_problem(pattern)
    if problem is not None:
        errors["account_name_format"] = problem
    assignee = str(form.get("assign_new_leads_to") or "").strip() or None
    if assignee and not _user_exists(site, assignee):
        errors["assign_new_leads_to"] = Message(N_("no active user with id %(id)s"), id=assignee)
    return LeadSettings(assignee, model, pattern).to_json(), errors
