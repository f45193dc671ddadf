"""A test-only plugin: a module with line items, priced with tax codes from a dict.

The kernel's line-item capability is tested through it, apart from the shipped order
plugins and their tax setup.
"""
from decimal import Decimal

from starlette.responses import JSONResponse
from starlette.routing import Route

from core.kernel.errors import N_, NotFoundError
from core.kernel.hookspecs import hookimpl
from core.web.actions import Action
from core.web.pages import page
from plugins.line_items.lines import TaxRate

PLUGIN_NAME = "ledger"

TAX_CODES = {
    # three rates, the last charged on the net plus the two before it
    "T3": [TaxRate("Federal 5%", Decimal(5)), TaxRate("State 7%", Decimal(7)),
           TaxRate("Luxury 10%", Decimal(10), compound=True)],
    "F5": [TaxRate("Federal 5%", Decimal(5))],
    "JP8": [TaxRate("Consumption 8%", Decimal(8))],
    "BH10": [TaxRate("VAT 10%", Decimal(10))],
    "NONE": [],
}


@hookimpl(tryfirst=True)
def crbm_tax_rates(tax_code_ids):
    known = {code: TAX_CODES[code] for code in tax_code_ids if code in TAX_CODES}
    return known or None  # codes of ours, or let another plugin answer


@hookimpl
def crbm_record_actions(module, record):
    """Buttons on a ledger's detail page: one that posts (with a question first), one link."""
    if module.name != "ledgers":
        return None
    return [Action(N_("Archive"), f"/m/ledgers/{record['id']}/archive", post=True,
                   confirm=N_("Archive this ledger?")),
            Action(N_("Statement"), f"/m/ledgers/{record['id']}?statement=1")]


@page()
def widget_price(request, form):
    """A catalog's price service, for tests that give ledgers the kitchen_sink's widgets as
    their catalog: every widget costs 12.50, list 15.00, taxed T3."""
    try:
        widget = request.app.state.site.records.get(
            "widgets", request.query_params.get("product_id", ""), request.state.user)
    except NotFoundError:
        return JSONResponse({"error": "no such product"}, status_code=404)
    return JSONResponse({"product_id": widget["id"], "name": widget["name"],
                         "part_number": f"W-{widget['name'][:3].upper()}",
                         "description": widget.get("color"), "kind": "product",
                         "unit_price": "12.50", "list_price": "15.00", "cost": None,
                         "currency": "USD", "tax_code_id": "T3"})


@hookimpl
def crbm_web_routes():
    return [Route("/widgets/price", widget_price)]
