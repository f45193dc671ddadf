"""The order-management and company settings, as the documents read them.

Both are site settings (JSON in ``crbm_settings``, so every worker sees the same):

- ``orders``: how quotes, orders and invoices behave (1CRM's "Order Management" section
  of the System Settings). Read it with ``order_settings(site)``: typed values, defaults
  for whatever was never saved. Amounts are stored as strings (JSON has no decimals).
- ``company``: who the documents come from (name, address, tax number, logo...). Read it
  with ``company_details(site)``. The logo is an uploaded file's key in the site's file
  store (``<site>/files/<key>``, as record uploads are kept).

``clean_settings`` checks what the administration page (web.py) posts; it answers with the
values to store or the problems found, so a bad form saves nothing.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import asdict, dataclass, fields
from decimal import Decimal, InvalidOperation

import sqlalchemy as sa

from core.apps.field_types.types import BUILTIN_TYPES
from core.kernel import i18n
from core.kernel.errors import N_, Message
from core.kernel.fields import FieldError
from core.kernel.records import Query
from plugins.line_items.lines import digits as site_digits
from plugins.line_items.lines import money

ORDERS = "orders"
COMPANY = "company"
TERMS_LIST = "terms_dom"
TAX_CODES = "tax_codes"
# 1CRM adds the product's (or assembly's) description as a comment line after it
COMMENT_LINES = {"none": N_("No"), "products": N_("For products"),
                 "assemblies": N_("For assemblies"), "both": N_("For products and assemblies")}
# characters per company text; the address and the footer are several lines
TEXT_LIMITS = {"name": 150, "address": 1000, "phone": 50, "email": 255, "website": 255,
               "tax_information": 255, "footer_text": 2000, "link": 255}
COMPANY_KEYS = tuple(TEXT_LIMITS) + ("logo",)
MAX_AMOUNT = Decimal(10) ** 15


@dataclass(frozen=True)
class OrderSettings:
    """The ``orders`` setting with its types; every field has the value a new site has."""

    add_comment_lines: str = "none"  # a key of COMMENT_LINES
    shipping_taxed: bool = False
    shipping_tax_code_id: str | None = None  # the tax code shipping pays when taxed
    approve_quotes: bool = False
    approval_threshold: Decimal | None = None  # quotes above this total need approval
    margin_threshold: Decimal | None = None  # quotes below this gross margin % need it
    show_list_prices: bool = False  # the default of a new quote's "show list prices"
    show_pretax_totals: bool = False
    default_terms: str | None = None  # a terms_dom value; an account's own terms win
    tax_information: str = ""  # the company's VAT or tax registration number

    def to_json(self) -> dict:
        values = asdict(self)
        for key in ("approval_threshold", "margin_threshold"):
            if values[key] is not None:
                values[key] = str(values[key])
        return values


def _decimal(value) -> Decimal | None:
    if value is None or value == "":
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def order_settings(site, stored: dict | None = None) -> OrderSettings:
    """The site's order settings (``stored``: the settings dict, if already read). A value
    of the wrong type in the database counts as never set."""
    settings = site.settings if stored is None else stored
    raw = settings.get(ORDERS)
    raw = raw if isinstance(raw, dict) else {}
    defaults = OrderSettings()
    values = {}
    for f in fields(OrderSettings):
        value = raw.get(f.name, getattr(defaults, f.name))
        default = getattr(defaults, f.name)
        if f.name in ("approval_threshold", "margin_threshold"):
            value = _decimal(value)
        elif isinstance(default, bool):
            value = value if isinstance(value, bool) else default
        elif f.name == "add_comment_lines":
            value = value if value in COMMENT_LINES else default
        elif f.name == "tax_information":
            value = value if isinstance(value, str) else ""
        else:
            value = value if isinstance(value, str) and value else None
        values[f.name] = value
    company = settings.get(COMPANY)
    if not values["tax_information"] and isinstance(company, dict):
        values["tax_information"] = str(company.get("tax_information") or "")
    return OrderSettings(**values)


def terms_for(site, account_id: str | None, user) -> str | None:
    """The payment terms of a new document for this account: the account's own terms when
    it has some (and ``user`` may see it), else the site's default terms."""
    accounts = site.registry.modules.get("accounts")
    if account_id and accounts is not None and "terms" in accounts.fields:
        rows = site.records.list("accounts", user, Query(
            filters=[("id", "eq", str(account_id))], fields=["terms"], limit=1), action="view")
        if rows and rows[0].get("terms"):
            return rows[0]["terms"]
    return order_settings(site).default_terms


def company_details(site) -> dict:
    """Who the documents come from: ``name``, ``address_lines`` (a list), ``phone``,
    ``email``, ``website``, ``tax_information``, ``logo`` (the image's absolute path, or
    "" when there is none or its file is gone), ``footer_text`` and ``link``."""
    settings = site.settings
    stored = settings.get(COMPANY)
    stored = stored if isinstance(stored, dict) else {}
    details = {key: str(stored.get(key) or "") for key in TEXT_LIMITS}
    address = details.pop("address")
    details["address_lines"] = [line.strip() for line in address.splitlines() if line.strip()]
    if not details["tax_information"]:
        orders = settings.get(ORDERS)
        if isinstance(orders, dict):
            details["tax_information"] = str(orders.get("tax_information") or "")
    details["logo"] = logo_path(site, stored.get("logo"))
    return details


def logo_path(site, key) -> str:
    """The absolute path of a stored logo ``key``, or "" (no key, a key leaving the file
    store, or a file that is gone)."""
    if not key or not isinstance(key, str):
        return ""
    files = (site.folder / "files").resolve()
    path = (files / key).resolve()
    if not path.is_relative_to(files) or not path.is_file():
        return ""
    return str(path)


# -- the administration form ----------------------------------------------------------------

def terms_choices(registry) -> list[tuple[str, str]]:
    """(value, label) of the payment terms, labels in the active language."""
    return [(o["value"], (o.get("labels") or {}).get(i18n.language()) or i18n.label(o["label"]))
            for o in registry.dropdowns.get(TERMS_LIST, [])]


def tax_code_choices(site, keep: str | None = None) -> list[tuple[str, str]]:
    """(id, name) of the active tax codes, plus ``keep`` (the one chosen now) if inactive."""
    module = site.registry.modules.get(TAX_CODES)
    if module is None:
        return []
    table = site.tables.tables[module.table]
    wanted = sa.and_(table.c.deleted.is_(False), table.c.active.is_(True))
    if keep:
        wanted = sa.or_(wanted, sa.and_(table.c.id == keep, table.c.deleted.is_(False)))
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.name).where(wanted)
                            .order_by(table.c.name, table.c.id)).all()
    return [(row.id, row.name) for row in rows]


def _tax_code_exists(site, code_id: str) -> bool:
    module = site.registry.modules.get(TAX_CODES)
    if module is None:
        return False
    table = site.tables.tables[module.table]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table.c.id).where(
            table.c.id == code_id, table.c.deleted.is_(False))).first() is not None


def _amount(text: str, name: str, errors: dict, *, at_most: Decimal | None = None
            ) -> Decimal | None:
    text = text.strip().replace(",", "")
    if not text:
        return None
    try:
        number = Decimal(text)
    except InvalidOperation:
        errors[name] = Message(N_("%(value)s is not a number"), value=repr(text))
        return None
    if not number.is_finite() or abs(number) >= MAX_AMOUNT:
        errors[name] = Message(N_("%(value)s is not a number"), value=repr(text))
    elif number < 0:
        errors[name] = Message(N_("must not be negative"))
    elif at_most is not None and number > at_most:
        errors[name] = Message(N_("must be at most %(max)s"), max=at_most)
    return number


def clean_settings(site, form: dict) -> tuple[dict, dict, dict]:
    """(orders, company, errors) from the posted values (strings and booleans). The
    company's ``logo`` is left to the caller (the upload is stored only once all is well)."""
    errors: dict[str, Message] = {}
    text = {key: str(form.get(key) or "") for key in form}
    comment_lines = text.get("add_comment_lines") or "none"
    if comment_lines not in COMMENT_LINES:
        errors["add_comment_lines"] = Message(N_("%(value)s is not one of %(allowed)s"),
                                              value=repr(comment_lines),
                                              allowed=", ".join(COMMENT_LINES))
    shipping_code = text.get("shipping_tax_code_id", "").strip() or None
    if shipping_code and not _tax_code_exists(site, shipping_code):
        errors["shipping_tax_code_id"] = Message(N_("no tax code with id %(id)s"),
                                                 id=shipping_code)
    terms = text.get("default_terms", "").strip() or None
    allowed_terms = [value for value, _ in terms_choices(site.registry)]
    if terms and terms not in allowed_terms:
        errors["default_terms"] = Message(N_("%(values)s is not an option of %(list)s"),
                                          values=repr(terms), list=TERMS_LIST)
    threshold = _amount(text.get("approval_threshold", ""), "approval_threshold", errors)
    margin = _amount(text.get("margin_threshold", ""), "margin_threshold", errors,
                     at_most=Decimal(100))
    orders = OrderSettings(
        add_comment_lines=comment_lines, shipping_taxed=bool(form.get("shipping_taxed")),
        shipping_tax_code_id=shipping_code, approve_quotes=bool(form.get("approve_quotes")),
        approval_threshold=threshold, margin_threshold=margin,
        show_list_prices=bool(form.get("show_list_prices")),
        show_pretax_totals=bool(form.get("show_pretax_totals")), default_terms=terms)
    company = {}
    for key, limit in TEXT_LIMITS.items():
        value = text.get(key, "").strip()
        if key != "address" and key != "footer_text":
            value = " ".join(value.split())
        if len(value) > limit:
            errors[key] = Message(N_("is %(length)s characters long; at most %(limit)s allowed"),
                                  length=len(value), limit=limit)
        company[key] = value
    for key, kind in (("phone", "phone"), ("email", "email"), ("website", "url"),
                      ("link", "url")):
        if company[key] and key not in errors:
            try:
                company[key] = BUILTIN_TYPES[kind].check_text(company[key], {})
            except FieldError as exc:
                errors[key] = exc.message
    orders_json = orders.to_json()
    orders_json["tax_information"] = company["tax_information"]
    return orders_json, company, errors


# -- terms and amounts (shared by the documents that use them) -----------------------------

NET_TERMS = re.compile(r"^net_(\d{1,3})$")
DUE_AT_ONCE = {"due_on_receipt", "cod", "prepaid"}


def due_date(start: dt.date | None, terms: str | None) -> dt.date | None:
    """When a document dated ``start`` is due under ``terms`` (terms_dom): Net N days, N
    days later; due on receipt, COD, prepaid: that day; other terms: not known."""
    if start is None or not terms:
        return None
    net = NET_TERMS.match(terms)
    if net:
        return start + dt.timedelta(days=int(net.group(1)))
    return start if terms in DUE_AT_ONCE else None


def parse_amount(value) -> Decimal | None:
    """A typed or given amount (or quantity) as a Decimal; None when it is not a finite
    number. A float goes through its repr, so 0.1 stays 0.1."""
    if isinstance(value, float):
        value = repr(value)
    try:
        number = value if isinstance(value, Decimal) else \
            Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def amount_text(site, value, code: str | None) -> str:
    """``120.00 USD``: rounded to the currency's digits, as refusals show amounts."""
    code = code or "USD"
    if isinstance(value, float):
        value = repr(value)
    number = Decimal(0) if value is None else Decimal(value)
    return f"{money(number, site_digits(site, code))} {code}"


def amount_problem(site, amount: Decimal | None, code: str | None) -> Message | None:
    """An amount of money paid or allocated: more than 0, in the currency's digits."""
    if amount is None:
        return None  # "is required" comes from the field
    if amount <= 0:
        return Message(N_("must be more than 0"))
    code = code or "USD"
    digits = site_digits(site, code)
    if amount != money(amount, digits):
        return Message(N_("has more decimals than %(currency)s allows (%(digits)s)"),
                       currency=code, digits=digits)
    return None
