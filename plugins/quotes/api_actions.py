"""The quotes plugin's REST API actions (``crbm_api_actions``), over the same functions as
the quote's buttons: convert to a sales order or an invoice, approve.

    POST /api/v1/quotes/{id}/actions/convert_to_sales_order   {}  -> the sales order
    POST /api/v1/quotes/{id}/actions/convert_to_invoice       {}  -> the invoice
    POST /api/v1/quotes/{id}/actions/approve                  {}  -> the quote
"""
from __future__ import annotations

from core.api.actions import ApiAction
from core.api.problems import ApiProblem
from core.kernel.errors import VetoError
from plugins.quotes import plugin as quotes

NO_BODY = {"type": "object", "additionalProperties": False}


def _converter(target: str):
    def handler(site, user, record_id: str, body: dict) -> dict:
        if not site.access.can(user, site.registry.module(target), "edit"):
            raise ApiProblem(403, f"You may not create {site.registry.module(target).label}.")
        try:
            return quotes.convert(site, user, record_id, target)
        except quotes.QuoteError as exc:  # a cancelled quote: the state refuses it
            raise VetoError(str(exc)) from None
    return handler


def _approve(site, user, record_id: str, body: dict) -> dict:
    if not site.records.allowed("quotes", [record_id], user, "approve"):
        raise ApiProblem(403, "You may not approve this quote.")
    try:
        return quotes.approve(site, user, record_id)
    except quotes.QuoteError as exc:
        raise VetoError(str(exc)) from None


def actions() -> list[ApiAction]:
    return [
        ApiAction("quotes", "approve", "Approve a quote waiting for approval", _approve,
                  NO_BODY, "quotes"),
    ]


# the conversions, offered by glue.py only while the target's plugin is active
CONVERSIONS = {
    "sales_orders": ApiAction("quotes", "convert_to_sales_order", "Convert the quote to a "
                              "sales order (the quote becomes Closed Accepted)",
                              _converter("sales_orders"), NO_BODY, "sales_orders"),
    "invoices": ApiAction("quotes", "convert_to_invoice", "Convert the quote to an invoice "
                          "(the quote becomes Closed Accepted)", _converter("invoices"),
                          NO_BODY, "invoices"),
}
