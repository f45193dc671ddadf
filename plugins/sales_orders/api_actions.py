"""The sales orders plugin's REST API action (``crbm_api_actions``):

    POST /api/v1/sales_orders/{id}/actions/create_invoice
         {"quantities": {"<order line id>": "2", ...}}   (absent: all that is left)
         -> the invoice
"""
from __future__ import annotations

from core.api.actions import ApiAction
from core.api.problems import ApiProblem
from core.kernel.errors import VetoError
from plugins.sales_orders import plugin as orders

QUANTITY = {"type": ["string", "number"], "pattern": r"^[0-9]{1,12}(\.[0-9]{1,6})?$",
            "minimum": 0}
BODY = {"type": "object", "additionalProperties": False, "properties": {
    "quantities": {"type": "object", "maxProperties": 5000,
                   "additionalProperties": QUANTITY,
                   "description": "order line id -> quantity to invoice"}}}


def _create_invoice(site, user, record_id: str, body: dict) -> dict:
    if not site.access.can(user, site.registry.module("invoices"), "edit"):
        raise ApiProblem(403, "You may not create invoices.")
    try:
        return orders.invoice_order(site, user, record_id, body.get("quantities"))
    except orders.InvoicingError as exc:  # nothing left to invoice
        raise VetoError(str(exc)) from None


def actions() -> list[ApiAction]:
    return [ApiAction("sales_orders", "create_invoice", "Invoice the order, all that is "
                      "left or chosen quantities per line", _create_invoice, BODY, "invoices")]
