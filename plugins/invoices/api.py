"""What people do with invoices and payments, as functions the web pages (and other
plugins, scripts, tests) call: allocate a payment across invoices, credit an invoice in
whole or in part, record the payment of an invoice.

Each runs in one transaction (or in the caller's, ``connection=``): everything is written
or nothing is. Refusals raise ``ValidationError`` whose messages name the documents and
amounts; the lifecycle checks in rules.py run on every record written here too.
"""
from __future__ import annotations

from collections.abc import Mapping
from contextlib import nullcontext
from decimal import Decimal

import sqlalchemy as sa

from core.apps import conversion
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.records import Query
from plugins.line_items.lines import money
from plugins.pricing.settings import parse_amount

from . import rules
from .figures import ZERO, decimal


def _transaction(site, connection):
    return nullcontext(connection) if connection is not None else site.engine.begin()




# -- allocating ----------------------------------------------------------------------------

def allocate(site, user, payment_id: str, amounts: Mapping[str, Decimal | str], *,
             connection=None) -> list[dict]:
    """Apply parts of payment ``payment_id`` to invoices: ``amounts`` maps an invoice id
    to the amount (in the payment's currency) to apply to it. Returns the allocation
    records, in the order given.

    All or nothing: every amount is checked first (more than 0, at most what the payment
    has left and what each invoice still owes, same account and currency, invoice not
    cancelled) and a ``ValidationError`` keyed by invoice id lists every problem, with
    nothing written. The user must be allowed to edit the payment and see the invoices.
    """
    errors: dict[str, Message] = {}
    rows: list[tuple[str, str, Decimal | None]] = []
    for invoice_id, value in amounts.items():
        amount = parse_amount(value)
        if amount is None:
            errors[str(invoice_id)] = Message(N_("%(value)s is not an amount"), value=repr(value))
        rows.append((payment_id, str(invoice_id), amount))
    if not rows:
        raise ValidationError({"amounts": Message(N_("give at least one invoice and an "
                                                     "amount to allocate to it"))})
    visible = {r["id"] for r in site.records.list("invoices", user, Query(
        filters=[("id", "in", [r[1] for r in rows])], fields=["id"], limit=None),
        action="view")}
    for _, invoice_id, _ in rows:
        if invoice_id not in visible:
            errors.setdefault(invoice_id, Message(N_("no such invoice")))
    with _transaction(site, connection) as conn:
        payment = site.records.get("payments", payment_id, user, connection=conn, action="edit")
        if errors:
            raise ValidationError(errors)
        check = rules.check_allocations(site, conn, rows)
        for index, _name, message in check.problems:
            errors[rows[index][1]] = message
        if errors:
            raise ValidationError(errors)
        return [site.records.create("payment_allocations", {
            "payment_id": payment["id"], "invoice_id": invoice_id, "amount": amount,
            "amount_currency": payment["amount_currency"]}, user, connection=conn)
            for _, invoice_id, amount in rows]


def open_invoices(site, user, account_id: str, currency: str | None = None) -> list[dict]:
    """The account's invoices that still owe something (not cancelled), oldest first."""
    filters = [("account_id", "eq", account_id), ("cancelled", "ne", True),
               ("amount_due", "gt", 0)]
    if currency:
        filters.append(("amount_currency", "eq", currency))
    return site.records.list("invoices", user, Query(
        filters=filters, sort="invoice_date,number", limit=None,
        fields=["id", "number", "name", "invoice_date", "due_date", "amount", "amount_currency",
                "amount_due", "amount_due_currency"]))


# -- paying an invoice ---------------------------------------------------------------------

def record_payment(site, user, invoice_id: str, values: Mapping | None = None, *,
                   connection=None) -> tuple[dict, dict]:
    """A payment from the invoice's account of what the invoice owes (``values`` may set
    the amount, date, method, reference...), allocated to the invoice: all of it, or the
    amount due if the payment is larger (the rest stays unallocated). Returns (payment,
    allocation)."""
    with _transaction(site, connection) as conn:
        invoice = site.records.get("invoices", invoice_id, user, connection=conn)
        due = decimal(invoice.get("amount_due"))
        if invoice.get("cancelled") or due <= 0:
            raise ValidationError({"invoice_id": Message(N_("%(invoice)s owes nothing"),
                                                         invoice=invoice["number"])})
        code = invoice["amount_currency"]
        payment = site.records.create("payments", {
            "account_id": invoice["account_id"], "amount": due, "amount_currency": code,
            "payment_date": rules.today(), "assigned_user_id": user.id,
            **dict(values or {})}, user, connection=conn)
        if payment["amount_currency"] != code:
            raise ValidationError({"amount_currency": Message(
                N_("%(invoice)s is in %(theirs)s: pay it in %(theirs)s"),
                invoice=invoice["number"], theirs=code)})
        applied = min(decimal(payment["amount"]), due)
        [allocation] = allocate(site, user, payment["id"], {invoice_id: applied},
                                connection=conn)
        return payment, allocation


# -- crediting -----------------------------------------------------------------------------

def credit_invoice(site, user, invoice_id: str, lines: list[dict] | None = None,
                   values: Mapping | None = None, *, connection=None) -> dict:
    """A credit note for invoice ``invoice_id``: of the whole invoice (``lines`` None:
    every line copied, remembering its invoice line), or of ``lines`` (groups as
    ``plugins.line_items.lines.parse`` takes them; ``credit_lines`` builds them from quantities).
    Refused when its amount is more than the invoice still owes."""
    with _transaction(site, connection) as conn:
        invoice = site.records.get("invoices", invoice_id, user, connection=conn)
        base = {"invoice_id": invoice["id"], "account_id": invoice["account_id"],
                "name": f"Credit note for {invoice['number']}", "cancelled": False,
                "credit_date": rules.today(), "assigned_user_id": user.id}
        return conversion.convert(site, user, "invoices", invoice["id"], "credit_notes",
                                  values=base | dict(values or {}),
                                  lines=None if lines is None else (lambda _items: lines),
                                  connection=conn)


def credit_lines(site, user, invoice_id: str, quantities: Mapping[str, Decimal | str], *,
                 connection=None) -> list[dict]:
    """Groups for ``credit_invoice`` crediting ``quantities`` (invoice line id ->
    quantity) of the invoice's lines. Each line is copied with its price, discount (an
    amount discount in proportion) and tax code, and remembers its invoice line;
    shipping is not credited. A quantity may not be more than what is left to credit of
    its line (invoiced less what other credit notes, not cancelled, already credit)."""
    with _transaction(site, connection) as conn:
        invoice = site.records.get("invoices", invoice_id, user, connection=conn)
        items = site.records.feature_data("line_items", "invoices", invoice_id, user, connection=conn)
        by_id = {line.id: line for line in items.lines if line.kind != "comment"}
        credited = credited_quantities(site, conn, list(by_id))
    errors, wanted = {}, {}
    for line_id, raw in quantities.items():
        line, quantity = by_id.get(line_id), parse_amount(raw)
        if line is None:
            errors[str(line_id)] = Message(N_("is not a line of %(invoice)s"),
                                           invoice=invoice["number"])
        elif quantity is None:
            errors[line_id] = Message(N_("%(value)s is not a number"), value=repr(raw))
        elif quantity < 0:
            errors[line_id] = Message(N_("must not be negative"))
        elif quantity > line.quantity - credited.get(line_id, ZERO):
            left = line.quantity - credited.get(line_id, ZERO)
            errors[line_id] = Message(
                N_("crediting %(quantity)s of %(name)s is more than the %(left)s left to "
                   "credit"), quantity=quantity.normalize(), name=line.name,
                left=left.normalize())
        elif quantity > 0:
            wanted[line_id] = quantity
    if not errors and not wanted:
        errors["quantities"] = Message(N_("give at least one line and a quantity to credit"))
    if errors:
        raise ValidationError(errors)
    groups = []
    for group in items.groups:
        lines = []
        for line in group.lines:
            if line.id not in wanted:
                continue
            copy = line.as_copy() | {"quantity": wanted[line.id]}
            if line.discount_kind == "amount" and line.discount_value and line.quantity:
                copy["discount_value"] = money(
                    line.discount_value * wanted[line.id] / line.quantity, items.digits)
            lines.append(copy)
        if lines:
            groups.append(group.as_input() | {"shipping": ZERO, "shipping_tax_code_id": None,
                                              "lines": lines})
    return groups


def credited_quantities(site, conn, invoice_line_ids: list[str]) -> dict[str, Decimal]:
    """Invoice line id -> quantity credited by credit notes that count (one query)."""
    if not invoice_line_ids:
        return {}
    notes = site.registry.module("credit_notes")
    note_table = site.tables.tables[notes.table]
    lines = site.tables.tables[f"{notes.table}_lines"]
    rows = conn.execute(
        sa.select(lines.c.source_line_id, sa.func.sum(lines.c.quantity))
        .join(note_table, note_table.c.id == lines.c.record_id)
        .where(lines.c.source_line_id.in_(invoice_line_ids), note_table.c.deleted.is_(False),
               note_table.c.cancelled.is_not(True))
        .group_by(lines.c.source_line_id))
    return {row[0]: decimal(row[1]) for row in rows}
