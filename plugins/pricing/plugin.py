"""Pricing: the tax and pricing setup documents are priced with.

Provides the administrators' setup modules — ``tax_rates``, ``tax_codes`` (each with any
number of rates, through the link table ``tax_code_rates``), ``shipping_providers``,
``discounts`` and ``currencies`` — readable by everyone, so pickers work (they are hidden
from the tabs; the Order management page links to them; roles decide who may edit them).
Also the ``terms_dom`` payment terms and ``discount_type_dom`` lists, and:

- ``crbm_tax_rates``: a tax code's rates for line items, read in one query;
- ``crbm_currency_digits``: the digits of the site's own currencies;
- a new document without terms gets the order settings' default terms (an account's own
  terms come first, through its related field's ``fill``);
- the order settings and the company details (settings.py: ``order_settings``,
  ``terms_for``, ``company_details``), edited at ``/admin/orders`` (web.py);
- the scheduler task ``pricing.exchange_rates``: the currencies' rates from the European
  Central Bank, behind a setting on the same page (exchange_rates.py);
- demo tax rates and codes, currencies, shipping providers and discounts.

Tax codes that are inactive or deleted still answer ``crbm_tax_rates``: a document that
uses one is priced again with it when it is edited, instead of failing on an "unknown tax
code". Not offering them for new lines is the pickers' business. Inactive *rates* are not
charged: switching a rate off takes it out of every code that has it.
"""
from __future__ import annotations

import re
from decimal import Decimal

import sqlalchemy as sa
from starlette.routing import Route

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from plugins.line_items.lines import TaxRate
from plugins.pricing import exchange_rates
from plugins.pricing.settings import (  # noqa: F401  (the plugin's public API)
    OrderSettings,
    company_details,
    order_settings,
    terms_for,
)
from plugins.pricing.web import URL, admin_orders

__version__ = "0.1.0"

TAX_CODES, TAX_RATES, CURRENCIES = "tax_codes", "tax_rates", "currencies"
RATES = "rates"  # the tax codes' relationship to their rates
ISO_CODE = re.compile(r"^[A-Z]{3}$")


# -- tax rates for line items --------------------------------------------------------------

def _plain(number) -> Decimal:
    """5.0000 -> 5, 9.9750 -> 9.975 (as stored on lines and printed), never 1E+1."""
    number = Decimal(repr(number)) if isinstance(number, float) else Decimal(number)
    return number.quantize(Decimal(1)) if number == number.to_integral() else number.normalize()


@hookimpl
def crbm_tax_rates(site, tax_code_ids, connection):
    """{code id: [TaxRate...]} for the asked codes this site has (inactive and deleted
    codes included, see the module docstring), each code's active rates ordered compound
    last, then by their order of application, then by name. One query."""
    if site is None or not tax_code_ids:
        return None
    codes_module = site.registry.modules.get(TAX_CODES)
    rates_module = site.registry.modules.get(TAX_RATES)
    if codes_module is None or rates_module is None:
        return None
    codes = site.tables.tables[codes_module.table]
    rates = site.tables.tables[rates_module.table]
    link = site.tables.tables[codes_module.link_table(RATES)]
    code_column, rate_column = f"{TAX_CODES}_id", f"{TAX_RATES}_id"
    ids = sorted({str(i) for i in tax_code_ids})
    stmt = (sa.select(codes.c.id.label("code_id"), rates.c.id, rates.c.name, rates.c.rate,
                      rates.c.compound)
            .select_from(codes)
            .outerjoin(link, link.c[code_column] == codes.c.id)
            .outerjoin(rates, sa.and_(rates.c.id == link.c[rate_column],
                                      rates.c.deleted.is_(False), rates.c.active.is_(True)))
            .where(codes.c.id.in_(ids))
            .order_by(codes.c.id, rates.c.compound, rates.c.apply_order, rates.c.name,
                      rates.c.id))
    answer: dict[str, list[TaxRate]] = {}
    for row in connection.execute(stmt):
        found = answer.setdefault(row.code_id, [])
        if row.id is not None:
            found.append(TaxRate(row.name, _plain(row.rate), bool(row.compound), row.id))
    return answer or None  # none of ours: another plugin may know them


@hookimpl
def crbm_currency_digits(site, code):
    """The digits of the site's active currency ``code``, else None (ISO 4217's figure).

    Read each time (one indexed lookup): it is asked once per document save, and a cache
    could not see another worker's change of a currency record."""
    module = site.registry.modules.get(CURRENCIES) if site is not None else None
    if module is None or not code:
        return None
    table = site.tables.tables[module.table]
    with site.engine.connect() as conn:
        digits = conn.execute(sa.select(table.c.digits).where(
            table.c.iso_code == str(code).upper(), table.c.active.is_(True),
            table.c.deleted.is_(False)).order_by(table.c.created_at).limit(1)).scalar()
    return None if digits is None else int(digits)


# -- checks on save ------------------------------------------------------------------------

@hookimpl(specname="crbm_before_save")
@for_modules(CURRENCIES)
def before_saving_currencies(module, batch, connection):
    _check_currencies(module, batch, connection)


@hookimpl
def crbm_before_save(site, module, batch):
    _default_terms(site, module, batch)


def _default_terms(site, module, batch) -> None:
    """A new document (a module with line items and ``terms`` on terms_dom) that has no
    terms — none given, none from its account (a related field's ``fill``, which runs
    before this) — gets the order settings' default terms."""
    f = module.fields.get("terms")
    if f is None or f.spec.get("options") != "terms_dom" or \
            module.features.get("line_items") is None:
        return
    new = [c for c in batch if c.is_new and not c.record.get("terms")]
    default = order_settings(site).default_terms if new else None
    if default in site.registry.option_values("terms_dom"):
        for change in new:
            change.record["terms"] = default


def _check_currencies(module, batch, connection) -> None:
    """ISO codes are three capital letters, one live currency each; rates are positive."""
    errors: dict[str, Message] = {}

    def problem(index: int, name: str, message: Message) -> None:
        errors[name if len(batch) == 1 else f"row {index + 1}: {name}"] = message

    codes: dict[str, int] = {}
    for index, change in enumerate(batch):
        record = change.record
        code = (record.get("iso_code") or "").strip().upper()
        record["iso_code"] = code
        if not ISO_CODE.match(code):
            problem(index, "iso_code", Message(N_("%(value)s is not an ISO 4217 currency code "
                                                  "(three capital letters)"), value=repr(code)))
        elif code in codes:
            problem(index, "iso_code", Message(N_("%(value)s is given twice"), value=code))
        else:
            codes[code] = index
        rate = record.get("exchange_rate")
        if rate is not None and rate <= 0:
            problem(index, "exchange_rate", Message(N_("must be more than 0")))
    if codes:
        table = sa.table(module.table, sa.column("id"), sa.column("iso_code"),
                         sa.column("deleted"))
        own_ids = [change.record["id"] for change in batch if change.record.get("id")]
        taken = connection.execute(sa.select(table.c.iso_code).where(
            table.c.iso_code.in_(list(codes)), table.c.deleted.is_(False),
            table.c.id.not_in(own_ids))).scalars()
        for code in taken:
            problem(codes[code], "iso_code", Message(N_("%(value)s is already taken"),
                                                     value=code))
    if errors:
        raise ValidationError(errors)


# -- documents -----------------------------------------------------------------------------

@hookimpl
def crbm_pdf_context(site, context):
    """Printed documents carry the company's details and the order settings' choices."""
    context["company"] = company_details(site)
    settings = order_settings(site)
    if "line_items" in context:
        context["line_items"]["show_pretax_totals"] = settings.show_pretax_totals
    if "terms" in context.get("record", {}):  # the terms' full text, for the terms block
        context["record"].setdefault("terms_text", context["record"]["terms"])


@hookimpl
def crbm_line_item_defaults(site):
    """Shipping is taxed: a new group's shipping starts with the default shipping tax code."""
    settings = order_settings(site)
    if settings.shipping_taxed and settings.shipping_tax_code_id:
        return {"shipping_tax_code_id": settings.shipping_tax_code_id}
    return {}


# -- web -----------------------------------------------------------------------------------

@hookimpl
def crbm_web_routes(site):
    return [Route(URL, admin_orders, methods=["GET", "POST"])]


@hookimpl
def crbm_admin_links(site):
    return [(N_("Order management"), URL)]


@hookimpl
def crbm_scheduled_tasks(site):
    return [exchange_rates.task(site)]


# -- demo data -----------------------------------------------------------------------------

DEMO_RATES = (  # name, percent, compound, order
    ("GST 5%", "5", False, 1),
    ("PST 7%", "7", False, 2),
    ("QST 9.975%", "9.975", False, 3),
    ("Sales tax 8.875%", "8.875", False, 1),
)
DEMO_CODES = (  # name, code, rates by name
    ("Standard", "STD", ("Sales tax 8.875%",)),
    ("Exempt", "EX", ()),
    ("Canada GST+PST", "BC", ("GST 5%", "PST 7%")),
    ("Canada GST+QST", "QC", ("GST 5%", "QST 9.975%")),
)
DEMO_CURRENCIES = (  # name, code, symbol, after, rate to USD, digits
    ("US Dollar", "USD", "$", False, "1", 2),
    ("Euro", "EUR", "€", True, "0.92", 2),
    ("Japanese Yen", "JPY", "¥", False, "151.5", 0),
    ("Canadian Dollar", "CAD", "$", False, "1.36", 2),
)
DEMO_PROVIDERS = ("UPS", "FedEx", "DHL", "USPS")
DEMO_DISCOUNTS = (  # name, type, rate or amount
    ("Partner discount 15%", "percentage", "15"),
    ("Volume discount 10%", "percentage", "10"),
    ("Loyalty credit $50", "amount", "50"),
)


def _existing(site, module: str, column: str) -> set[str]:
    table = site.tables.tables[site.registry.module(module).table]
    with site.engine.connect() as conn:
        return set(conn.execute(sa.select(table.c[column]).where(table.c.deleted.is_(False)))
                   .scalars())


@hookimpl(tryfirst=True)
def crbm_demo_data(site, user, size, progress):
    """The tax and pricing setup other demo data uses (products name tax codes), made
    once: what a site already has (by name or ISO code) is left as it is. Runs first."""
    if size <= 0:
        return
    total = len(DEMO_RATES) + len(DEMO_CODES) + len(DEMO_CURRENCIES) + len(DEMO_PROVIDERS) \
        + len(DEMO_DISCOUNTS)
    records = site.records
    have = _existing(site, TAX_RATES, "name")
    rows = [{"name": name, "rate": rate, "compound": compound, "apply_order": order}
            for name, rate, compound, order in DEMO_RATES if name not in have]
    rate_ids = dict(zip([r["name"] for r in rows], records.create_many(TAX_RATES, rows, user)))
    have = _existing(site, TAX_CODES, "name")
    wanted = [c for c in DEMO_CODES if c[0] not in have]
    code_ids = records.create_many(TAX_CODES, [{"name": name, "code": code}
                                               for name, code, _ in wanted], user)
    for (_, _, rate_names), code_id in zip(wanted, code_ids):
        for rate_name in rate_names:
            if rate_name in rate_ids:
                records.link(TAX_CODES, code_id, RATES, rate_ids[rate_name], user)
    progress(len(DEMO_RATES) + len(DEMO_CODES), total)
    have = _existing(site, CURRENCIES, "iso_code")
    records.create_many(CURRENCIES, [
        {"name": name, "iso_code": code, "symbol": symbol, "symbol_after": after,
         "exchange_rate": rate, "digits": digits}
        for name, code, symbol, after, rate, digits in DEMO_CURRENCIES if code not in have],
        user)
    have = _existing(site, "shipping_providers", "name")
    records.create_many("shipping_providers", [{"name": name} for name in DEMO_PROVIDERS
                                               if name not in have], user)
    have = _existing(site, "discounts", "name")
    records.create_many("discounts", [
        {"name": name, "discount_type": kind,
         **({"rate": value} if kind == "percentage" else {"amount": value})}
        for name, kind, value in DEMO_DISCOUNTS if name not in have], user)
    progress(total, total)
