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
  same transaction, for just the affected invoices, payments and accounts, through the
  shared sub-ledger (plugins/subledger) and ``records.set_derived`` (never
  ``records.update``: that would run these hooks again).
- api.py: ``allocate``, ``record_payment``, ``credit_invoice``, ``credit_lines``.
- web.py: the "Record payment", "Credit note" and "Allocate" buttons and their pages.
- documents.py: what the statement (from an account) and receipt (from a payment) forms
  read.
- demo.py: a handful of documents for the demo accounts.
"""
from __future__ import annotations

from core.apps.documents import printing
from core.kernel.hookspecs import for_modules, hookimpl

from . import demo, documents, figures, rules, web

__version__ = "0.1.0"

MODULES = ("invoices", "payments", "payment_allocations", "credit_notes")


def _old(batch, name: str) -> set:
    """Values ``name`` had before this write (a record moved to another account...)."""
    return {c.changes[name][0] for c in batch if name in c.changes} - {None}


def _new(records, name: str) -> set:
    return {r.get(name) for r in records} - {None}


@hookimpl
@for_modules(*MODULES, "accounts")
def crbm_before_save(module, batch):
    figures.RECEIVABLES.refuse_derived(module, batch)


@hookimpl(specname="crbm_before_save")
@for_modules("invoices")
def before_saving_invoices(site, batch, connection):
    rules.before_invoices(site, batch, connection)
    figures.RECEIVABLES.fill_figures(site, connection, "invoices", batch)


@hookimpl(specname="crbm_before_save")
@for_modules("payments")
def before_saving_payments(site, batch, connection):
    rules.before_payments(site, batch, connection)
    figures.RECEIVABLES.fill_figures(site, connection, "payments", batch)


@hookimpl(specname="crbm_before_save")
@for_modules("payment_allocations")
def before_saving_allocations(site, batch, connection):
    rules.before_allocations(site, batch, connection)


@hookimpl(specname="crbm_before_save")
@for_modules("credit_notes")
def before_saving_credit_notes(site, batch, connection):
    rules.before_credit_notes(site, batch, connection)


@hookimpl(specname="crbm_after_save")
@for_modules("invoices")
def after_saving_invoices(site, batch, connection):
    figures.refresh(site, connection, invoices=_new([c.record for c in batch], "id"),
                    accounts=_old(batch, "account_id"))


@hookimpl(specname="crbm_after_save")
@for_modules("payments")
def after_saving_payments(site, batch, connection):
    figures.refresh(site, connection, payments=_new([c.record for c in batch], "id"),
                    accounts=_old(batch, "account_id"))


@hookimpl(specname="crbm_after_save")
@for_modules("payment_allocations")
def after_saving_allocations(site, batch, connection):
    records = [c.record for c in batch]
    figures.refresh(site, connection, invoices=_new(records, "invoice_id"),
                    payments=_new(records, "payment_id"))


@hookimpl(specname="crbm_after_save")
@for_modules("credit_notes")
def after_saving_credit_notes(site, batch, connection):
    figures.refresh(site, connection,
                    invoices=_new([c.record for c in batch], "invoice_id")
                    | _old(batch, "invoice_id"),
                    accounts=_old(batch, "account_id"))


@hookimpl
@for_modules(*MODULES)
def crbm_before_delete(site, module, records, connection):
    rules.before_delete(site, module.name, records, connection)


@hookimpl
@for_modules("invoices", "payments")
def crbm_after_delete(site, records, connection):
    figures.refresh(site, connection, accounts=_new(records, "account_id"))


@hookimpl(specname="crbm_after_delete")
@for_modules("payment_allocations", "credit_notes")
def after_deleting_allocations(site, records, connection):
    figures.refresh(site, connection, invoices=_new(records, "invoice_id"),
                    payments=_new(records, "payment_id"))


@hookimpl
@for_modules("invoices")
def crbm_record_actions(site, record, user):
    return web.invoice_actions(site, record, user)


@hookimpl(specname="crbm_record_actions")
@for_modules("payments")
def payment_actions(site, record, user):
    return web.payment_actions(site, record, user)


@hookimpl
def crbm_web_routes(site):
    return web.routes


@hookimpl
def crbm_pdf_context(context, fmt):
    printing.add_labels(context, fmt, documents.PDF_LABELS)


@hookimpl(specname="crbm_pdf_context")
@for_modules("invoices")
def invoice_pdf(record, context):
    documents.invoice(record, context)


@hookimpl(specname="crbm_pdf_context")
@for_modules("accounts")
def statement_pdf(site, record, context, user, fmt):
    documents.statement(site, record, context, user, fmt)


@hookimpl(specname="crbm_pdf_context")
@for_modules("payments")
def receipt_pdf(site, record, context, user, fmt):
    documents.receipt(site, record, context, user, fmt)


@hookimpl(trylast=True)
def crbm_demo_data(site, user, size, rng, progress):
    demo.load(site, user, size, rng, progress)


@hookimpl
def crbm_api_actions(site):
    """Actions on these records through the REST API (api_actions.py)."""
    from . import api_actions

    return api_actions.actions()
