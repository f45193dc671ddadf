"""The purchases plugin's REST API actions (``crbm_api_actions``):

    POST /api/v1/purchase_orders/{id}/actions/create_bill
         {"quantities": {"<order line id>": "2"}}  (absent: all that is left) -> the bill
    POST /api/v1/bill_payments/{id}/actions/allocate
         {"amounts": {"<bill id>": "10.00"}} -> {"allocations": [...]}
"""
from __future__ import annotations

from core.api.actions import ApiAction
from plugins.purchases import billing, ledger, web
from plugins.subledger.allocate import AMOUNT, may_create


def _create_bill(site, user, record_id: str, body: dict) -> dict:
    may_create(site, user, ledger.BILLS)
    return billing.bill_from_order(site, user, record_id, body.get("quantities"))


def actions() -> list[ApiAction]:
    return [
        ApiAction(ledger.ORDERS, "create_bill", "Bill the purchase order, all that is left "
                  "or chosen quantities per line", _create_bill,
                  {"type": "object", "additionalProperties": False, "properties": {
                      "quantities": {"type": "object", "maxProperties": 5000,
                                     "additionalProperties": AMOUNT}}}, ledger.BILLS),
        web.ALLOCATE.api_action(),  # the sub-ledger's (plugins/subledger/allocate.py)
    ]
