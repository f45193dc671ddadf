"""What the invoice, statement and receipt forms read beyond the record (pdf/*.yaml).

A statement is printed from an account: its open invoices, each with the payments applied
to it, and the balance. A receipt is printed from a payment: the invoices it paid. Three
queries each, however many invoices there are; values formatted for the reader.
"""
from __future__ import annotations

from collections import defaultdict

from core.kernel.errors import N_
from core.kernel.records import Query

PDF_LABELS = {  # what its documents print around the figures (core.apps.documents.printing.LABELS)
    "amount_due": N_("Amount due"),
    "amount_paid": N_("Paid"),
    "amount_credited": N_("Credited"),
    "invoice": N_("Invoice"),
    "payment": N_("Payment"),
    "payment_date": N_("Payment date"),
    "payment_method": N_("Method"),
    "receipt": N_("Receipt"),
    "receipt_thanks": N_("We have received your payment. Thank you."),
    "received_from": N_("Received from"),
    "amount_received": N_("Received"),
    "applied_to": N_("Applied to"),
    "amount_applied": N_("Amount applied"),
    "total_received": N_("Total received"),
    "unapplied": N_("Not applied to an invoice yet: held as a credit."),
    "statement": N_("Statement"),
    "statement_date": N_("Date"),
    "statement_for": N_("Statement for"),
    "statement_note": N_("Please pay the balance by its due dates. If you have already "
                         "paid, thank you: please disregard this statement."),
    "open_invoices": N_("Open invoices"),
    "nothing_due": N_("Nothing is due. Thank you!"),
    "balance_due": N_("Balance due"),
    "account": N_("Account"),
}


def _ids(rows, field: str) -> list[str]:
    return sorted({row[field] for row in rows if row.get(field)})


def invoice(record: dict, context: dict) -> None:
    """Paid and credited print only when there is something to say (an unpaid invoice
    has no "Paid $0.00" row)."""
    for name in ("amount_paid", "amount_credited"):
        if not record.get(name):
            context["record"][name] = ""


def statement(site, record: dict, context: dict, user, fmt) -> None:
    invoices = site.records.list("invoices", user, Query(
        filters=[("account_id", "eq", record["id"]), ("cancelled", "ne", True),
                 ("amount_due", "gt", 0)],
        sort="invoice_date,number", limit=None,
        fields=["id", "number", "invoice_date", "due_date", "amount", "amount_currency",
                "amount_due", "amount_due_currency"]))
    allocations = site.records.list("payment_allocations", user, Query(
        filters=[("invoice_id", "in", [i["id"] for i in invoices])], limit=None,
        fields=["invoice_id", "payment_id", "amount", "amount_currency"])) if invoices else []
    payments = {p["id"]: p for p in site.records.list("payments", user, Query(
        filters=[("id", "in", _ids(allocations, "payment_id"))], limit=None,
        fields=["id", "number", "payment_date"]))} if allocations else {}
    paid = defaultdict(list)
    for allocation in allocations:
        payment = payments.get(allocation["payment_id"])
        if payment is not None:  # one the reader may not see is left out
            paid[allocation["invoice_id"]].append({
                "number": payment["number"], "date": fmt.date(payment["payment_date"]),
                "amount": fmt.currency(allocation["amount"], allocation["amount_currency"])})
    context["invoices"] = [{
        "number": i["number"], "date": fmt.date(i["invoice_date"]),
        "due_date": fmt.date(i["due_date"]),
        "total": fmt.currency(i["amount"], i["amount_currency"]),
        "amount_due": fmt.currency(i["amount_due"], i["amount_due_currency"]),
        "payments": paid[i["id"]]} for i in invoices]
    context["balance"] = fmt.currency(record.get("balance_receivable") or 0,
                                      record.get("balance_receivable_currency") or "USD")


def receipt(site, record: dict, context: dict, user, fmt) -> None:
    allocations = site.records.list("payment_allocations", user, Query(
        filters=[("payment_id", "eq", record["id"])], limit=None,
        fields=["invoice_id", "amount", "amount_currency"]))
    invoices = {i["id"]: i for i in site.records.list("invoices", user, Query(
        filters=[("id", "in", _ids(allocations, "invoice_id"))], limit=None,
        fields=["id", "number", "invoice_date"]))} if allocations else {}
    context["payment"] = {
        "number": record.get("number"), "date": fmt.date(record.get("payment_date")),
        "method": context["record"].get("payment_method", ""),
        "amount": fmt.currency(record.get("amount"), record.get("amount_currency")),
        "allocations": [{
            "invoice_number": invoices[a["invoice_id"]]["number"],
            "invoice_date": fmt.date(invoices[a["invoice_id"]]["invoice_date"]),
            "amount": fmt.currency(a["amount"], a["amount_currency"])}
            for a in allocations if a["invoice_id"] in invoices]}
