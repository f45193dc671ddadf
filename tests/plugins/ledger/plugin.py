"""A test-only plugin: a module with line items, priced with tax codes from a dict.

The kernel's line-item capability is tested through it, apart from the shipped order
plugins and their tax setup.
"""
from decimal import Decimal

from core.hookspecs import hookimpl
from core.line_items import TaxRate

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
