"""Quotes × sales orders: "Convert to sales order" (button and API action). Registered by
the quotes manifest's ``glue`` only while the sales_orders plugin is active too, so the
quotes plugin never asks whether sales orders exist."""
from __future__ import annotations

from core.kernel.hookspecs import for_modules, hookimpl

TARGET = "sales_orders"


@hookimpl(trylast=True)  # after the quote's own buttons (Approve), as before
@for_modules("quotes")
def crbm_record_actions(site, record, user):
    from plugins.quotes import plugin as quotes

    return quotes.conversion_action(site, record, user, TARGET)


@hookimpl(trylast=True)
def crbm_api_actions(site):
    from plugins.quotes import api_actions

    return [api_actions.CONVERSIONS[TARGET]]
