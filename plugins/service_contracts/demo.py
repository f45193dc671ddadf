"""Demo service contracts: the first customer accounts each have a subcontract (one of them
ending within the reminder window, one already expired) covering two or three of their
supported products — catalog products with a make, model and serial number."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal

from core.kernel.records import Query

ACCOUNTS = 6
KINDS = ("standard", "premium", "on_site", "warranty")


def load(site, user, size, rng, progress) -> None:
    records = site.records
    if size <= 0 or records.count("subcontracts", user, cap=0):
        return
    accounts = records.list("accounts", user, Query(fields=["id", "name"], sort="name",
                                                     limit=ACCOUNTS))
    products = records.list("products", user, Query(
        filters=[("product_type", "eq", "product")], fields=["id", "name"], sort="name",
        limit=20))
    if not accounts:
        return
    today = dt.date.today()
    contracts = []
    for n, account in enumerate(accounts):
        start = today - dt.timedelta(days=rng.randrange(60, 700))
        end = (today + dt.timedelta(days=20) if n == 1 else
               today - dt.timedelta(days=15) if n == 4 else
               start + dt.timedelta(days=365 * rng.choice((2, 3))))
        kind = KINDS[n % len(KINDS)]
        contracts.append({
            "name": f"{account['name']} — {kind.replace('_', ' ')} support",
            "account_id": account["id"], "contract_type": kind,
            "status": "expired" if end < today else "active",
            "date_start": start, "date_end": end,
            "annual_fee": Decimal(rng.choice((1200, 2400, 4800, 9600))),
            "annual_fee_currency": "USD",
            "terms": "Response within one business day; parts and labour included.",
            "assigned_user_id": user.id})
    contract_ids = records.create_many("subcontracts", contracts, user)
    progress(len(contracts), len(contracts) * 3)
    assets = []
    for contract, contract_id in zip(contracts, contract_ids):
        for k in range(rng.randint(2, 3)):
            product = rng.choice(products) if products else None
            assets.append({
                "name": product["name"] if product else f"Workstation {k + 1}",
                "account_id": contract["account_id"], "subcontract_id": contract_id,
                "product_id": product["id"] if product else None,
                "manufacturer": rng.choice(("Dell", "HP", "Lenovo", "Cisco", "Brother")),
                "model": f"M{rng.randrange(100, 999)}",
                "serial_number": f"SN{rng.randrange(10**7, 10**8)}",
                "purchase_date": contract["date_start"],
                "purchase_cost": Decimal(rng.randrange(300, 3000)),
                "purchase_cost_currency": "USD",
                "support_cost": Decimal(rng.randrange(50, 400)),
                "support_cost_currency": "USD",
                "assigned_user_id": user.id})
    records.create_many("supported_products", assets, user)
    progress(len(contracts) * 3, len(contracts) * 3)
