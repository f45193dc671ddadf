"""The line items plugin's own hooks (``core.kernel.plugins`` adds the specs of a
plugin's ``hookspecs.py`` before registering the plugins): a plugin that implements
them (pricing) requires ``line_items`` in its ``plugin.yaml``.
"""
from __future__ import annotations

from core.kernel.hookspecs import hookspec


@hookspec(firstresult=True)
def crbm_tax_rates(site, tax_code_ids, connection):
    """The rates of each tax code used by line items (``features.line_items``).

    ``tax_code_ids`` is a set of ids of the module named by the feature's ``tax_codes``.
    Return ``{code_id: [plugins.line_items.lines.TaxRate, ...]}`` with the rates in the order they
    apply (a compound rate is charged on the net amount plus the taxes before it). An id
    missing from the answer is refused as an unknown tax code. ``connection`` is the saving
    transaction's, so rates read here are the ones the saved lines keep.
    """


@hookspec(firstresult=True)
def crbm_currency_digits(site, code):
    """How many digits after the decimal separator amounts in currency ``code`` keep.

    Return an int (a site's own currency settings), or ``None`` to use the ISO 4217
    figure Babel knows (0 for JPY, 3 for BHD, 2 for most).
    """


@hookspec
def crbm_line_item_defaults(site, module):
    """Values a new group of lines starts with in the editor of ``module`` (a dict; e.g.
    ``{"shipping_tax_code_id": ...}`` when the company taxes shipping). Merged in plugin
    order."""
