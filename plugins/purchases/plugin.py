"""Purchases: purchase orders -> bills -> outgoing payments (the purchase side of what
the invoices plugin does for sales).

Provides the modules ``purchase_orders``, ``bills``, ``bill_payments`` and
``bill_payment_allocations`` (modules/*.yaml), the ``po_status_dom`` list, and on
accounts (extends/accounts.yaml) the ``balance_payable`` figure and the purchase orders,
bills and bill payments relationships. Python API:

- ``bill_from_order(site, user, order_id, quantities=None)`` (billing.py): a bill from a
  purchase order, all that is left to bill or chosen quantities per order line;
- ``allocate_bill_payment(site, user, payment_id, {bill_id: amount})`` (ledger.py): a
  payment allocated across bills, all or nothing.

The lifecycle hooks below keep the ledger's figures (ledger.py: amount due, unallocated,
balance payable) in the saving transaction and refuse what would break its rules; every
writer (forms, imports, the API, the two functions above) goes through them. The pages
(web.py): "Create bill" on a purchase order, "Allocate" on a bill payment.
"""
from __future__ import annotations

from core.apps.documents import printing
from core.kernel.errors import N_, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from plugins.purchases import demo, ledger, web
from plugins.purchases.billing import bill_from_order, left_to_bill, over_billed
from plugins.purchases.ledger import (
    ACCOUNTS,
    ALLOCATIONS,
    BILLS,
    ORDERS,
    PAYMENTS,
    allocate_bill_payment,
)

__version__ = "0.1.0"
__all__ = ["allocate_bill_payment", "bill_from_order", "left_to_bill"]

ALLOCATION_FIELDS = ("bill_id", "bill_payment_id", "amount")


# -- the lifecycle: rules before, figures after ---------------------------------------------

@hookimpl
@for_modules(BILLS, PAYMENTS, ACCOUNTS)
def crbm_before_save(module, batch):
    ledger.PAYABLES.refuse_derived(module, batch)


@hookimpl(specname="crbm_before_save")
@for_modules(ORDERS)
def before_saving_orders(site, batch, connection):
    ledger.fill_dates_and_terms(site, connection, batch, "order_date")


@hookimpl(specname="crbm_before_save")
@for_modules(BILLS)
def before_saving_bills(site, batch, connection):
    ledger.fill_dates_and_terms(site, connection, batch, "bill_date", "due_date")
    ledger.refuse_allocated_changes(site, connection, batch, bills=True)
    ledger.PAYABLES.fill_figures(site, connection, BILLS, batch)


@hookimpl(specname="crbm_before_save")
@for_modules(PAYMENTS)
def before_saving_payments(site, batch, connection):
    ledger.check_payments(site, batch)
    ledger.fill_dates_and_terms(site, connection, batch, "payment_date")
    ledger.refuse_allocated_changes(site, connection, batch, bills=False)
    ledger.PAYABLES.fill_figures(site, connection, PAYMENTS, batch)


@hookimpl(specname="crbm_before_save")
@for_modules(ALLOCATIONS)
def before_saving_allocations(site, batch, connection):
    ledger.before_allocations(site, connection, batch)


@hookimpl
@for_modules(BILLS)
def crbm_after_save(site, batch, connection):
    _check_billed_quantities(site, connection, batch)
    ledger.settle_bills(site, connection, batch)


@hookimpl(specname="crbm_after_save")
@for_modules(PAYMENTS)
def after_saving_payments(site, batch, connection):
    ledger.settle_payments(site, connection, batch)


@hookimpl(specname="crbm_after_save")
@for_modules(ALLOCATIONS)
def after_saving_allocations(site, batch, connection):
    ledger.settle_allocations(site, connection, [
        (_allocation(c.record, {}), None if c.is_new else _allocation(c.record, c.changes))
        for c in batch])


def _check_billed_quantities(site, connection, batch) -> None:
    """Bills whose lines changed, or that count again (no longer cancelled), may not bill
    more of an order line than was ordered."""
    counted_again = [c for c in batch if c.features.get("line_items") is not None or (
        "cancelled" in c.changes and not c.record.get("cancelled"))]
    problems = over_billed(site, connection, [c.record["id"] for c in counted_again])
    if problems:
        raise ValidationError({"line_items": "; ".join(problems)})


def _allocation(record: dict, changes: dict) -> dict:
    """An allocation's bill, payment and amount; with ``changes``, as they were before."""
    return {name: changes[name][0] if name in changes else record.get(name)
            for name in ALLOCATION_FIELDS}


@hookimpl
@for_modules(BILLS, PAYMENTS)
def crbm_before_delete(site, module, records, connection):
    ledger.refuse_deleting_allocated(site, connection, module.name, records)


@hookimpl
@for_modules(ALLOCATIONS)
def crbm_after_delete(site, records, connection):
    ledger.settle_allocations(site, connection, [(None, _allocation(r, {})) for r in records])


@hookimpl(specname="crbm_after_delete")
@for_modules(BILLS, PAYMENTS)
def after_deleting_documents(site, records, connection):
    ledger.refresh_balances(site, connection, {r.get("supplier_id") for r in records})


# -- pages and demo data -------------------------------------------------------------------

@hookimpl
@for_modules(ORDERS)
def crbm_record_actions(site, record, user):
    return web.order_actions(site, record, user)


@hookimpl(specname="crbm_record_actions")
@for_modules(PAYMENTS)
def payment_actions(site, record, user):
    return web.payment_actions(site, record, user)


PDF_LABELS = {  # what its documents print around the figures (core.apps.documents.printing.LABELS)
    "supplier": N_("Supplier"),
    "expected_date": N_("Expected by"),
}

@hookimpl
def crbm_pdf_context(context, fmt):
    printing.add_labels(context, fmt, PDF_LABELS)

@hookimpl
def crbm_web_routes(site):
    return web.routes


@hookimpl(trylast=True)
def crbm_demo_data(site, user, size, rng, progress):
    """A few purchase orders, bills and payments (demo.py), after the accounts and the
    catalog exist."""
    if size > 0:
        demo.load(site, user, rng, progress)


@hookimpl
def crbm_api_actions(site):
    """Actions on these records through the REST API (api_actions.py)."""
    from plugins.purchases import api_actions

    return api_actions.actions()
