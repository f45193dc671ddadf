"""Demo catalog: three categories, a couple of dozen products (hardware, software,
services) with plausible part numbers and margins, a default price book and a "Partner"
book with lower prices for some products, given to the partner and reseller accounts.

The catalog does not grow with the demo size (a company sells a few dozen things to any
number of accounts), and a site that already has products keeps its own catalog.
"""
from __future__ import annotations

import random
from decimal import Decimal

import sqlalchemy as sa

from core.kernel.records import Query

CENT = Decimal("0.01")
# category -> (name, part number prefix, list price, product type, tax code name)
CATALOG = {
    "Hardware": [
        ("ProBook 450 G10 Laptop", "PB450", "1099", "product", "Standard"),
        ("EliteDisplay 27\" 4K Monitor", "ED27K", "429", "product", "Standard"),
        ("UltraDock USB-C Docking Station", "UDC3", "249", "product", "Standard"),
        ("Wireless Keyboard and Mouse Combo", "KMC2", "69", "product", "Standard"),
        ("Gigabit 24-Port Managed Switch", "GS24M", "389", "product", "Standard"),
        ("Wi-Fi 6 Access Point", "AX1800", "179", "product", "Standard"),
        ("1U Rack Server R250", "R250", "2890", "product", "Standard"),
        ("NAS 4-Bay Storage Array", "NAS4B", "649", "product", "Standard"),
        ("8 TB Enterprise Hard Drive", "HD8TE", "239", "product", "Standard"),
        ("Laser Printer M404dn", "M404DN", "329", "product", "Standard"),
        ("UPS 1500VA Line-Interactive", "UPS15", "219", "product", "Standard"),
        ("Noise-Cancelling Headset", "NCH70", "149", "product", "Standard"),
    ],
    "Software": [
        ("Office Suite Business (annual licence)", "OSB-1Y", "150", "product", "Standard"),
        ("Endpoint Security (per device, 1 year)", "EPS-1Y", "45", "product", "Standard"),
        ("Backup & Recovery Server Edition", "BRS-SE", "1195", "product", "Standard"),
        ("CRM Professional (per user, 1 year)", "CRMP-1Y", "360", "product", "Standard"),
        ("Database Server Standard (2 cores)", "DBS-2C", "1890", "product", "Standard"),
        ("Remote Support Tool (per technician)", "RST-T", "299", "product", "Standard"),
        ("Project Planner Pro", "PPP-10", "229", "product", "Standard"),
    ],
    "Services": [
        ("On-site Installation (per hour)", "SV-INST", "125", "service", "Standard"),
        ("Remote Support (per hour)", "SV-REM", "95", "service", "Standard"),
        ("Network Assessment", "SV-NA", "1500", "service", "Standard"),
        ("Data Migration (fixed price)", "SV-MIG", "2400", "service", "Standard"),
        ("Training Day (up to 10 people)", "SV-TRN", "1200", "service", "Exempt"),
        ("Extended Warranty 3 Years", "SV-EW3", "199", "service", "Standard"),
        ("Managed Backup Service (monthly)", "SV-MBK", "89", "service", "Standard"),
    ],
}
DESCRIPTIONS = {
    "Hardware": "Ships within 2 business days. Manufacturer's warranty included.",
    "Software": "Licence key delivered by email. Includes updates for the term.",
    "Services": "Delivered by our certified technicians. Travel billed separately.",
}
PARTNER_SHARE = 0.4  # products the Partner book prices lower
PARTNER_TYPES = ["partner", "reseller", "integrator"]


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT)


def _ids_by_name(site, module: str) -> dict[str, str]:
    if module not in site.registry.modules:
        return {}
    table = site.tables.tables[site.registry.module(module).table]
    with site.engine.connect() as conn:
        return {row.name: row.id for row in conn.execute(
            sa.select(table.c.id, table.c.name).where(table.c.deleted.is_(False))
            .order_by(table.c.created_at, table.c.id))}


def load(site, user, size: int, rng: random.Random, progress) -> None:
    if size <= 0 or site.records.count("products", user, cap=0):
        return
    records = site.records
    products_total = sum(len(items) for items in CATALOG.values())
    total = len(CATALOG) + products_total * 2
    tax_codes = _ids_by_name(site, "tax_codes")
    suppliers = [row["id"] for row in records.list("accounts", user, Query(
        filters=[("account_type", "in", PARTNER_TYPES)], fields=["id"], sort="name",
        limit=8))]
    category_ids = dict(zip(CATALOG, records.create_many(
        "product_categories", [{"name": name, "description": DESCRIPTIONS[name]}
                               for name in CATALOG], user)))
    rows = []
    for category, items in CATALOG.items():
        for name, prefix, list_price, kind, tax_code in items:
            list_price = Decimal(list_price)
            sale = _money(list_price * Decimal(rng.choice((100, 100, 95, 90))) / 100)
            cost = _money(list_price * Decimal(rng.randint(45, 75)) / 100)
            rows.append({
                "name": name, "product_type": kind, "category_id": category_ids[category],
                "manufacturer_part_no": f"{prefix}-{rng.randrange(1000, 10000)}",
                "vendor_part_no": f"V{rng.randrange(100000, 1000000)}"
                if kind == "product" else None,
                "supplier_id": rng.choice(suppliers) if suppliers and kind == "product"
                else None,
                "tax_code_id": tax_codes.get(tax_code),
                "cost": cost, "list_price": list_price, "sale_price": sale,
                "sale_price_currency": "USD", "description": DESCRIPTIONS[category],
            })
    product_ids = records.create_many("products", rows, user)
    progress(len(CATALOG) + products_total, total)
    standard, partner = records.create_many("price_books", [
        {"name": "Standard prices", "currency": "USD", "is_default": True,
         "description": "Our prices for every customer without a price book of their own."},
        {"name": "Partner", "currency": "USD",
         "description": "Resellers, integrators and partners."}], user)
    prices = [{"price_book_id": standard, "product_id": pid, "price": row["sale_price"]}
              for pid, row in zip(product_ids, rows)]
    prices += [{"price_book_id": partner, "product_id": pid,
                "price": _money(row["sale_price"] * Decimal(rng.randint(78, 90)) / 100)}
               for pid, row in zip(product_ids, rows) if rng.random() < PARTNER_SHARE]
    records.create_many("price_book_prices", prices, user)
    _partner_accounts(site, user, partner)
    progress(total, total)


def _partner_accounts(site, user, partner_book: str) -> None:
    """Partner-type accounts buy from the Partner book, on 30 days' terms."""
    accounts = site.registry.modules.get("accounts")
    if accounts is None or "price_book_id" not in accounts.fields:
        return
    ids = [row["id"] for row in site.records.list("accounts", user, Query(
        filters=[("account_type", "in", PARTNER_TYPES)], fields=["id"], limit=None))]
    if ids:
        values = {"price_book_id": partner_book}
        if "terms" in accounts.fields:
            values["terms"] = "net_30"
        site.records.update_many("accounts", ids, values, user)
