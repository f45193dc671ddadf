"""The invoices plugin's REST API actions (``crbm_api_actions``), over api.py:

    POST /api/v1/invoices/{id}/actions/credit_note
         {"quantities": {"<invoice line id>": "1"}}  (absent: the whole invoice) -> the note
    POST /api/v1/invoices/{id}/actions/record_payment
         {"amount": "10.00", "payment_date": "2025-01-31", "payment_method": ..,
          "reference": ..}  (all optional: what it owes, today) -> the payment
    POST /api/v1/payments/{id}/actions/allocate
         {"amounts": {"<invoice id>": "10.00", ...}} -> {"allocations": [...]}
"""
from __future__ import annotations

from core.api.actions import ApiAction
from plugins.subledger.allocate import AMOUNT, may_create

from . import api, web


def _credit_note(site, user, record_id: str, body: dict) -> dict:
    may_create(site, user, "credit_notes")
    lines = None
    if body.get("quantities") is not None:
        lines = api.credit_lines(site, user, record_id, body["quantities"])
    return api.credit_invoice(site, user, record_id, lines)


def _record_payment(site, user, record_id: str, body: dict) -> dict:
    may_create(site, user, "payments")
    payment, _ = api.record_payment(site, user, record_id, body)
    return payment


def actions() -> list[ApiAction]:
    return [
        ApiAction("invoices", "credit_note", "A credit note for the whole invoice or chosen "
                  "quantities of its lines", _credit_note,
                  {"type": "object", "additionalProperties": False, "properties": {
                      "quantities": {"type": "object", "minProperties": 1,
                                     "maxProperties": 5000, "additionalProperties": AMOUNT}}},
                  "credit_notes"),
        ApiAction("invoices", "record_payment", "Record a payment of the invoice, allocated "
                  "to it", _record_payment,
                  {"type": "object", "additionalProperties": False, "properties": {
                      "amount": AMOUNT,
                      "payment_date": {"type": "string", "format": "date",
                                       "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
                      "payment_method": {"type": ["string", "null"], "maxLength": 100},
                      "reference": {"type": ["string", "null"], "maxLength": 100}}},
                  "payments"),
        web.ALLOCATE.api_action(),  # the sub-ledger's (plugins/subledger/allocate.py)
    ]
