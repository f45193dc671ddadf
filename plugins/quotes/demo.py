"""Demo quotes for the first demo accounts, priced from the catalog (or plain services),
in each stage of the pipeline; the confirmed ones are converted to sales orders, so the
demo shows a quote, its order and the order's invoicing page at work. A handful whatever
the demo's size; the same seed makes the same documents."""
from __future__ import annotations

import datetime as dt

from core.kernel.errors import CrbmError
from core.kernel.records import Query

QUOTES = 8
STAGES = ("draft", "negotiation", "delivered", "confirmed", "closed_accepted", "on_hold",
          "confirmed", "closed_lost")
SUBJECTS = ("Office fit-out", "Workstation refresh", "Network upgrade", "Annual support",
            "New branch equipment", "Training programme", "Server room", "Laptops for sales")
SERVICES = (("Installation", "450.00"), ("Consulting (hours)", "120.00"),
            ("Training day", "800.00"))


def load(site, user, rng, progress) -> None:
    from plugins.quotes.plugin import convert  # the plugin's own conversion

    if site.records.count("quotes", user, cap=0):
        return
    accounts = site.records.list("accounts", user, Query(fields=["id", "name"], sort="name",
                                                         limit=QUOTES))
    products = site.records.list("products", user, Query(
        fields=["id", "name", "sale_price", "sale_price_currency", "list_price", "cost",
                "tax_code_id", "manufacturer_part_no"],
        filters=[("sale_price_currency", "eq", "USD"), ("sale_price", "gt", 0)],
        sort="name", limit=30)) if "products" in site.registry.modules else []
    for index, account in enumerate(accounts):
        lines = []
        for _ in range(rng.randint(2, 4)):
            if products:
                p = rng.choice(products)
                lines.append({"kind": "product", "product_id": p["id"], "name": p["name"],
                              "part_number": p["manufacturer_part_no"],
                              "quantity": rng.randint(1, 6), "unit_price": p["sale_price"],
                              "list_price": p["list_price"], "cost": p["cost"],
                              "tax_code_id": p["tax_code_id"]})
        name, price = rng.choice(SERVICES)
        groups = [{"name": "Equipment", "lines": lines}] if lines else []
        groups.append({"name": "Services", "lines": [
            {"kind": "service", "name": name, "quantity": rng.randint(1, 4), "unit_price": price}]})
        stage = STAGES[index % len(STAGES)]
        quote = site.records.create("quotes", {
            "name": SUBJECTS[index % len(SUBJECTS)], "account_id": account["id"],
            "stage": "draft" if stage == "confirmed" else stage, "assigned_user_id": user.id,
            "valid_until": dt.date.today() + dt.timedelta(days=30), "line_items": groups}, user)
        if stage == "confirmed":
            try:
                convert(site, user, quote["id"], "sales_orders")
            except CrbmError:  # waiting for approval on this site: stays a quote
                pass
        progress(index + 1, len(accounts))
