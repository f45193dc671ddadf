"""Invoices, incoming payments allocated across invoices, and credit notes.

Modules (modules/*.yaml): ``invoices`` (numbered INV-, line items, terms and due date,
cancelled flag, shipping stage, amount paid / credited / due), ``payments`` (numbered
PAY-, method, date, amount, unallocated), ``payment_allocations`` (a part of a payment
applied to one invoice) and ``credit_notes`` (numbered CN-, line items reversing all or
part of an invoice). On accounts (extends/accounts.yaml): ``balance_receivable`` and the
invoices, payments and credit notes relationships.

How the pieces fit:

- rules.py checks every write in ``crbm_before_save`` / ``crbm_before_delete``: no
  allocation above what the payment has left or what the invoice owes, none to a
  cancelled invoice or another account's or currency's; no credit note above the
  invoice's amount due; no cancelling an invoice that has payments; the figures below
  cannot be set by hand. A refusal rolls the whole write back.
- figures.py keeps the figures in ``crbm_after_save`` / ``crbm_after_delete``, in the
  same transaction, with set-based SQL for just the affected invoices, payments and
  accounts (never ``records.update``: that would run these hooks again).
- api.py: ``allocate``, ``record_payment``, ``credit_invoice``, ``credit_lines``.
- web.py: the "Record payment", "Credit note" and "Allocate" buttons and their pages.
- documents.py: what the statement (from an account) and receipt (from a payment) forms
  read.
- demo.py: a handful of documents for the demo accounts.
"""
from __future__ import annotations

from core.apps.documents import printing
from core.kernel.hookspecs import hookimpl

from . import demo, documents, figures, rules, web

__version__ = "0.1.0"

MODULES = ("invoices", "payments", "payment_allocations", "credit_notes")


def _old(batch, name: str) -> set:
    """Values ``name`` had before this write (a record moved to another account...)."""
    return {c.changes[name][0] for c in batch if name in c.changes} - {None}


def _new(records, name: str) -> set:
    return {r.get(name) for r in records} - {None}


@hookimpl
def crbm_before_save(site, module, batch, connection):
    name = module.name
    if name not in MODULES and name != "accounts":
        return
    rules.refuse_derived(module, batch)
    if name == "invoices":
        rules.before_invoices(site, batch, connection)
    elif name == "payments":
        rules.before_payments(site, batch, connection)
    elif name == "payment_allocations":
        rules.before_allocations(site, batch, connection)
    elif name == "credit_notes":
        rules.before_credit_notes(site, batch, connection)


@hookimpl
def crbm_after_save(site, module, batch, connection):
    records = [c.record for c in batch]
    if module.name == "invoices":
        figures.refresh(site, connection, invoices=_new(records, "id"),
                        accounts=_old(batch, "account_id"))
    elif module.name == "payments":
        figures.refresh(site, connection, payments=_new(records, "id"),
                        accounts=_old(batch, "account_id"))
    elif module.name == "payment_allocations":
        figures.refresh(site, connection, invoices=_new(records, "invoice_id"),
                        payments=_new(records, "payment_id"))
    elif module.name == "credit_notes":
        figures.refresh(site, connection,
                        invoices=_new(records, "invoice_id") | _old(batch, "invoice_id"),
                        accounts=_old(batch, "account_id"))


@hookimpl
def crbm_before_delete(site, module, records, connection):
    if module.name in MODULES:
        rules.before_delete(site, module.name, records, connection)


@hookimpl
def crbm_after_delete(site, module, records, connection):
    if module.name in ("invoices", "payments"):
        figures.refresh(site, connection, accounts=_new(records, "account_id"))
    elif module.name in ("payment_allocations", "credit_notes"):
        figures.refresh(site, connection, invoices=_new(records, "invoice_id"),
                        payments=_new(records, "payment_id"))


@hookimpl
def crbm_record_actions(site, module, record, user):
    return web.record_actions(site, module, record, user)


@hookimpl
def crbm_web_routes(site):
    return web.routes


@hookimpl
def crbm_pdf_context(site, module, record, context, user, fmt):
    printing.add_labels(context, fmt, documents.PDF_LABELS)
    if module.name == "invoices":
        documents.invoice(record, context)
    elif module.name == "accounts":
        documents.statement(site, record, context, user, fmt)
    elif module.name == "payments":
        documents.receipt(site, record, context, user, fmt)


@hookimpl(trylast=True)
def crbm_demo_data(site, user, size, rng, progress):
    demo.load(site, user, size, rng, progress)


@hookimpl
def crbm_api_actions(site):
    """Actions on these records through the REST API (api_actions.py)."""
    from . import api_actions

    return api_actions.actions()
