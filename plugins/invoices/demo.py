"""Demo invoices, payments and a credit note for the first few demo accounts.

A handful of documents, whatever the demo's size (they show the figures at work, not a
volume): two invoices per account, one payment allocated across both invoices of the
first account (the second only in part), the second account's first invoice paid in
full, a credit note for part of the third account's first invoice, and a payment not
applied yet on the fourth. Lines are the catalog's products when it has some in the
account's currency, else plain service lines. Amounts come from ``rng``: the same seed
makes the same documents.
"""
from __future__ import annotations

import datetime as dt
import logging
from decimal import Decimal

from core.kernel.errors import CrbmError
from core.kernel.records import Query

from . import api

log = logging.getLogger(__name__)

ACCOUNTS = 4
SERVICES = (("Consulting (hours)", Decimal("120.00")), ("Installation", Decimal("450.00")),
            ("Support plan, one year", Decimal("1200.00")), ("Training day", Decimal("800.00")),
            ("Data migration", Decimal("950.00")))
STAGES = ("none", "pending", "shipped", "delivered", "partially_shipped")
METHODS = ("bank_transfer", "check", "credit_card")
ADDRESS_PARTS = ("street", "city", "state", "postal_code", "country")


def _products(site, user) -> list[dict]:
    module = site.registry.modules.get("products")
    wanted = ["id", "name", "sale_price", "sale_price_currency", "list_price", "cost"]
    if module is None or any(name not in module.fields for name in wanted):
        return []
    rows = site.records.list("products", user, Query(
        fields=wanted, sort="name", limit=20, filters=[("sale_price", "gt", 0)]))
    return rows


def _lines(rng, products: list[dict], currency: str) -> list[dict]:
    priced = [p for p in products if p.get("sale_price_currency") == currency]
    lines = []
    for _ in range(rng.randint(1, 3)):
        if priced:
            product = rng.choice(priced)
            lines.append({"kind": "product", "product_id": product["id"], "name": product["name"],
                          "quantity": rng.randint(1, 5), "unit_price": product["sale_price"],
                          "list_price": product.get("list_price"), "cost": product.get("cost")})
        else:
            name, price = rng.choice(SERVICES)
            lines.append({"kind": "service", "name": name, "quantity": rng.randint(1, 8),
                          "unit_price": price})
    return [{"name": None, "lines": lines}]


def load(site, user, size, rng, progress) -> None:
    if size <= 0 or any(m not in site.registry.modules for m in
                        ("accounts", "invoices", "payments", "credit_notes")):
        return
    accounts = site.records.list("accounts", user, Query(
        limit=ACCOUNTS, sort="name", fields=["id", "name", "annual_revenue_currency",
                                             *(f"billing_address_{p}" for p in ADDRESS_PARTS)]))
    if not accounts:
        return
    products = _products(site, user)
    today = dt.date.today()
    total, done = len(accounts) * 2 + 4, 0
    invoices: list[list[dict]] = []
    for index, account in enumerate(accounts):
        currency = account.get("annual_revenue_currency") or "USD"
        pair = []
        for number in range(2):
            invoice_date = today - dt.timedelta(days=rng.randint(5, 60) + 30 * (1 - number))
            values = {"name": f"{account['name'][:100]} - {'first' if number == 0 else 'second'} "
                              "invoice",
                      "account_id": account["id"], "invoice_date": invoice_date,
                      "terms": "net_30", "amount_currency": currency,
                      "shipping_stage": STAGES[(index + number) % len(STAGES)],
                      "assigned_user_id": user.id,
                      "line_items": _lines(rng, products, currency),
                      **{f"billing_address_{p}": account.get(f"billing_address_{p}")
                         for p in ADDRESS_PARTS}}
            pair.append(site.records.create("invoices", values, user))
            done += 1
            progress(done, total)
        invoices.append(pair)
    try:
        _payments_and_credit(site, user, rng, accounts, invoices)
    except CrbmError as exc:  # demo data never stops the demo: the invoices are there
        log.warning("demo payments and credit note skipped: %s", exc)
    progress(total, total)


def _payments_and_credit(site, user, rng, accounts, invoices) -> None:
    first, second = invoices[0]
    # one payment across both invoices of the first account, the second paid in part
    part = (second["amount"] / 2).quantize(Decimal("0.01"))
    payment = site.records.create("payments", {
        "account_id": accounts[0]["id"], "amount": first["amount"] + part,
        "amount_currency": first["amount_currency"], "payment_method": METHODS[0],
        "reference": f"TRF-{rng.randint(100000, 999999)}", "assigned_user_id": user.id}, user)
    api.allocate(site, user, payment["id"], {first["id"]: first["amount"], second["id"]: part})
    if len(invoices) > 1:
        api.record_payment(site, user, invoices[1][0]["id"], {
            "payment_method": METHODS[1], "reference": f"CHK-{rng.randint(1000, 9999)}"})
    if len(invoices) > 2:
        target = invoices[2][0]
        items = site.records.feature_data("line_items", "invoices", target["id"], user)
        line = max(items.lines, key=lambda candidate: candidate.quantity)
        quantity = max(Decimal(1), line.quantity // 2)  # half of it, at least one
        api.credit_invoice(site, user, target["id"],
                           api.credit_lines(site, user, target["id"], {line.id: quantity}),
                           {"reason": "Returned in part: damaged in transit."})
    if len(invoices) > 3:
        site.records.create("payments", {
            "account_id": accounts[3]["id"], "amount": Decimal("500.00"),
            "amount_currency": invoices[3][0]["amount_currency"],
            "payment_method": METHODS[2], "notes": "Deposit, not applied yet.",
            "assigned_user_id": user.id}, user)
