"""Demo purchases: two purchase orders, a bill of part of the first and a payment that
pays part of the bill, so every purchase screen has something to show.

The same records every time (no randomness): two suppliers, the first two accounts by
name, written through the same functions a user's clicks call.
"""
from __future__ import annotations

from decimal import Decimal

from core.kernel.records import Query
from plugins.purchases.billing import bill_from_order
from plugins.purchases.ledger import ACCOUNTS, ORDERS, PAYMENTS, allocate_bill_payment

D = Decimal
ORDERS_DATA = [
    ("Workshop equipment", "submitted", [
        ("Hardware", [("Bench vise", "WV-150", "10", "12.50"),
                      ("Drill press", "DP-20", "4", "40.00")]),
        ("Services", [("Installation", None, "3", "80.00")]),
    ]),
    ("Office supplies", "draft", [
        (None, [("Copy paper, 500 sheets", "CP-500", "20", "4.25")]),
    ]),
]


def _groups(groups) -> list[dict]:
    return [{"name": name, "lines": [
        {"kind": "service" if part is None else "product", "name": line, "part_number": part,
         "quantity": quantity, "unit_price": price}
        for line, part, quantity, price in lines]} for name, lines in groups]


def load(site, user, rng, progress) -> None:
    suppliers = site.records.list(ACCOUNTS, user, Query(fields=["id", "name"], sort="name",
                                                        limit=2))
    if not suppliers:
        return
    total = len(ORDERS_DATA) + 2
    orders = []
    for index, (name, status, groups) in enumerate(ORDERS_DATA):
        supplier = suppliers[index % len(suppliers)]
        orders.append(site.records.create(ORDERS, {
            "name": name, "status": status, "supplier_id": supplier["id"],
            "assigned_user_id": user.id, "line_items": _groups(groups)}, user))
    progress(len(orders), total)
    # the first order: 6 of the 10 vises and every drill press billed (6 x 12.50 + 4 x 40)
    items = site.records.feature_data("line_items", ORDERS, orders[0]["id"], user)
    vise, press = items.lines[0], items.lines[1]
    bill = bill_from_order(site, user, orders[0]["id"], {vise.id: D(6), press.id: D(4)})
    site.records.update("bills", bill["id"], {"supplier_invoice_no": "SI-20417"}, user)
    payment = site.records.create(PAYMENTS, {
        "supplier_id": orders[0]["supplier_id"], "amount": D("200.00"),
        "amount_currency": bill["amount_currency"], "payment_method": "bank_transfer",
        "reference": "TRF-88213", "assigned_user_id": user.id}, user)
    allocate_bill_payment(site, user, payment["id"], {bill["id"]: D("200.00")})
    progress(total, total)
