"""What invoices, payments, allocations and credit notes must satisfy.

Checked in ``crbm_before_save`` / ``crbm_before_delete`` (plugin.py), inside the saving
transaction: a refusal raises ``ValidationError`` (or ``VetoError``) and the whole write
rolls back, so nothing changes. The rows involved are locked first, always in the same
order — the accounts (``figures.lock_accounts``), then the payments, then the invoices —
and only then are the sums read, with one grouped query per table: two people allocating
to the same invoice at once are checked one after the other.

The messages name the documents and the amounts, in the document's currency, e.g.
"allocating 120.00 USD to INV-0003 is more than its amount due, 100.00 USD".
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa

from core.kernel.errors import N_, Message, ValidationError, VetoError
from plugins.line_items.lines import CURRENCY_FIELD, TOTAL_FIELDS, money
from plugins.line_items.lines import digits as site_digits
from plugins.pricing.settings import amount_problem, amount_text, due_date

from . import figures
from .figures import ZERO, decimal
from .figures import key as _key


def today() -> dt.date:
    return dt.date.today()


def _accounts(batch) -> set[str]:
    """The accounts a write touches: each record's, and the one it leaves."""
    return ({c.record.get("account_id") for c in batch}
            | {c.changes["account_id"][0] for c in batch if "account_id" in c.changes}) - {None}


# -- invoices ------------------------------------------------------------------------------


def default_terms(site, conn, account_id: str | None) -> str | None:
    """The account's own terms when it has some, else the site's default terms (the
    pricing plugin's order settings) — read on the saving connection."""
    registry = site.registry
    allowed = registry.option_values("terms_dom") if "terms_dom" in registry.dropdowns else ()
    accounts = registry.modules.get("accounts")
    if account_id and accounts is not None and "terms" in accounts.fields:
        table = site.tables.tables[accounts.table]
        terms = conn.execute(sa.select(table.c.terms).where(table.c.id == account_id)).scalar()
        if terms in allowed:
            return terms
    try:
        from plugins.pricing.settings import order_settings
    except ImportError:  # the pricing plugin is not installed: no site default
        return None
    terms = order_settings(site).default_terms
    return terms if terms in allowed else None


def before_invoices(site, batch, conn) -> None:
    for change in batch:
        record = change.record
        if change.is_new and not record.get("terms"):
            record["terms"] = default_terms(site, conn, record.get("account_id"))
        if record.get("invoice_date") is None:
            record["invoice_date"] = today()
        if record.get("due_date") is None:
            record["due_date"] = due_date(record["invoice_date"], record.get("terms"))
    t = figures.tables(site)
    figures.lock_accounts(conn, t, _accounts(batch))
    existing = [c for c in batch if not c.is_new]
    if not existing:
        return
    ids = [c.record["id"] for c in existing]
    figures.lock(conn, t.invoices, ids)
    paid, credited = figures.allocated_to(conn, t, ids), figures.credited_on(conn, t, ids)
    errors = {}
    for change in existing:
        record = change.record
        number, code = record.get("number") or record["id"], record.get(CURRENCY_FIELD)
        p, c = paid.get(record["id"], ZERO), credited.get(record["id"], ZERO)
        if record.get("cancelled") and "cancelled" in change.changes and p:
            errors[_key(batch, "cancelled", record)] = Message(
                N_("%(number)s has %(paid)s of payments allocated to it: remove its payments "
                   "first"), number=number, paid=amount_text(site, p, code))
        if p or c:
            for name in ("account_id", CURRENCY_FIELD):
                if name in change.changes:
                    errors[_key(batch, name, record)] = Message(
                        N_("%(number)s has payments or credit notes; remove them before "
                           "changing its account or currency"), number=number)
        if not record.get("cancelled") and decimal(record.get("amount")) < p + c:
            errors[_key(batch, "line_items", record)] = Message(
                N_("%(number)s's total %(total)s is less than the %(settled)s already paid "
                   "and credited on it"), number=number,
                total=amount_text(site, record.get("amount"), code),
                settled=amount_text(site, p + c, code))
    if errors:
        raise ValidationError(errors)


# -- payments ------------------------------------------------------------------------------


def before_payments(site, batch, conn) -> None:
    errors = {}
    for change in batch:
        record = change.record
        if record.get("payment_date") is None:
            record["payment_date"] = today()
        if not record.get("name"):
            record["name"] = record.get("number")
        problem = amount_problem(site, record.get("amount"), record.get(CURRENCY_FIELD))
        if problem:
            errors[_key(batch, "amount", record)] = problem
    existing = [c for c in batch if not c.is_new]
    t = figures.tables(site)
    figures.lock_accounts(conn, t, _accounts(batch))
    if existing and not errors:
        ids = [c.record["id"] for c in existing]
        figures.lock(conn, t.payments, ids)
        allocated = figures.allocated_from(conn, t, ids)
        for change in existing:
            record = change.record
            done = allocated.get(record["id"], ZERO)
            if not done:
                continue
            number, code = record.get("number") or record["id"], record.get(CURRENCY_FIELD)
            for name in ("account_id", CURRENCY_FIELD):
                if name in change.changes:
                    errors[_key(batch, name, record)] = Message(
                        N_("%(number)s is allocated to invoices; remove its allocations "
                           "before changing its account or currency"), number=number)
            if decimal(record.get("amount")) < done:
                errors[_key(batch, "amount", record)] = Message(
                    N_("%(number)s's amount %(amount)s is less than the %(allocated)s already "
                       "allocated from it"), number=number,
                    amount=amount_text(site, record.get("amount"), code),
                    allocated=amount_text(site, done, code))
    if errors:
        raise ValidationError(errors)


# -- allocations ---------------------------------------------------------------------------

PAYMENT_COLUMNS = ("number", "account_id", "amount", "amount_currency", "deleted")
INVOICE_COLUMNS = ("number", "account_id", "amount", "amount_currency", "cancelled", "deleted")


@dataclass
class AllocationCheck:
    """What ``check_allocations`` found: the locked payments and invoices by id, and each
    problem as (row index, field, message)."""

    payments: dict[str, dict]
    invoices: dict[str, dict]
    problems: list[tuple[int, str, Message]] = field(default_factory=list)


def check_allocations(site, conn, rows: list[tuple[str, str, Decimal | None]],
                      excluding: Iterable[str] = ()) -> AllocationCheck:
    """Check allocations (payment id, invoice id, amount) against the payments' and
    invoices' figures, the allocations in ``excluding`` (being edited) left out of the
    sums. Rows are checked in order, each seeing the amounts of those before it, so a
    batch cannot over-allocate a payment or an invoice between its rows."""
    t = figures.tables(site)
    figures.lock_accounts(conn, t, figures.accounts_of(conn, t, {r[1] for r in rows},
                                                       {r[0] for r in rows}))
    payments = figures.lock(conn, t.payments, {r[0] for r in rows}, *PAYMENT_COLUMNS)
    invoices = figures.lock(conn, t.invoices, {r[1] for r in rows}, *INVOICE_COLUMNS)
    from_payment = figures.allocated_from(conn, t, payments, excluding)
    to_invoice = figures.allocated_to(conn, t, invoices, excluding)
    credited = figures.credited_on(conn, t, invoices)
    check = AllocationCheck(payments, invoices)
    for index, (payment_id, invoice_id, amount) in enumerate(rows):
        payment, invoice = payments.get(payment_id), invoices.get(invoice_id)
        problem = _allocation_problem(site, payment, invoice, amount, from_payment, to_invoice,
                                      credited)
        if problem:
            check.problems.append((index, *problem))
            continue
        from_payment[payment_id] = from_payment.get(payment_id, ZERO) + amount
        to_invoice[invoice_id] = to_invoice.get(invoice_id, ZERO) + amount
    return check


def _allocation_problem(site, payment, invoice, amount, from_payment, to_invoice, credited
                        ) -> tuple[str, Message] | None:
    if payment is None or payment["deleted"]:
        return "payment_id", Message(N_("no such payment"))
    if invoice is None or invoice["deleted"]:
        return "invoice_id", Message(N_("no such invoice"))
    code = payment["amount_currency"]
    problem = amount_problem(site, amount, code)
    if problem:
        return "amount", problem
    names = {"payment": payment["number"], "invoice": invoice["number"]}
    if invoice["account_id"] != payment["account_id"]:
        return "invoice_id", Message(N_("%(invoice)s is another account's invoice: %(payment)s "
                                        "pays only its own account's invoices"), **names)
    if invoice["amount_currency"] != code:
        return "invoice_id", Message(
            N_("%(invoice)s is in %(theirs)s but %(payment)s is in %(ours)s: a payment pays "
               "only invoices in its own currency"), theirs=invoice["amount_currency"],
            ours=code, **names)
    if invoice["cancelled"]:
        return "invoice_id", Message(N_("%(invoice)s is cancelled: it owes nothing"), **names)
    digits = site_digits(site, code)
    left = money(decimal(payment["amount"]) - from_payment.get(payment["id"], ZERO), digits)
    if amount > left:
        return "amount", Message(
            N_("allocating %(amount)s from %(payment)s is more than its unallocated amount, "
               "%(left)s"), amount=amount_text(site, amount, code),
            left=amount_text(site, left, code), **names)
    due = money(decimal(invoice["amount"]) - to_invoice.get(invoice["id"], ZERO)
                - credited.get(invoice["id"], ZERO), digits)
    if amount > due:
        return "amount", Message(
            N_("allocating %(amount)s to %(invoice)s is more than its amount due, %(due)s"),
            amount=amount_text(site, amount, code), due=amount_text(site, due, code), **names)
    return None


def before_allocations(site, batch, conn) -> None:
    figures.RECEIVABLES.refuse_moves(batch, N_(
        "an allocation cannot move to another payment or invoice: delete it and allocate again"))
    errors = {}
    records = [c.record for c in batch]
    check = check_allocations(
        site, conn, [(r["payment_id"], r["invoice_id"], r.get("amount")) for r in records],
        excluding=[c.record["id"] for c in batch if not c.is_new])
    for index, name, message in check.problems:
        errors[name if len(batch) == 1 else f"row {index + 1}: {name}"] = message
    if errors:
        raise ValidationError(errors)
    for record in records:  # amounts are in the payment's currency; named after both
        payment, invoice = check.payments[record["payment_id"]], check.invoices[record["invoice_id"]]
        record[CURRENCY_FIELD] = payment["amount_currency"]
        record["name"] = f"{payment['number']} > {invoice['number']}"


# -- credit notes --------------------------------------------------------------------------

def before_credit_notes(site, batch, conn) -> None:
    t = figures.tables(site)
    ids = {c.record["invoice_id"] for c in batch}
    figures.lock_accounts(conn, t, figures.accounts_of(conn, t, ids) | _accounts(batch))
    invoices = figures.lock(conn, t.invoices, ids, *INVOICE_COLUMNS)
    paid = figures.allocated_to(conn, t, ids)
    credited = figures.credited_on(conn, t, ids, excluding=[c.record["id"] for c in batch])
    errors = {}
    for change in batch:
        problem = _credit_note_problem(site, change, invoices[change.record["invoice_id"]],
                                       paid, credited)
        if problem:
            name, message = problem
            errors[_key(batch, name, change.record)] = message
    if errors:
        raise ValidationError(errors)


def _credit_note_problem(site, change, invoice: dict, paid: dict, credited: dict
                         ) -> tuple[str, Message] | None:
    """Fill in what a credit note takes from its invoice, then check it; ``credited``
    gains the note's amount so the next note of the same write sees it."""
    record = change.record
    number, code = invoice["number"], invoice["amount_currency"]
    if "account_id" in change.changes and record.get("account_id") and \
            record["account_id"] != invoice["account_id"]:
        return "account_id", Message(N_("must be the account of %(invoice)s"), invoice=number)
    record["account_id"] = invoice["account_id"]
    if not record.get("name"):
        record["name"] = f"Credit note for {number}"
    if record.get("credit_date") is None:
        record["credit_date"] = today()
    amount = decimal(record.get("amount"))
    if record.get(CURRENCY_FIELD) != code:
        if not (change.is_new and not amount and change.features.get("line_items") is None):
            return CURRENCY_FIELD, Message(
                N_("%(invoice)s is in %(theirs)s: its credit notes must be too"),
                invoice=number, theirs=code)
        # a note made without lines (the plain form) takes the invoice's currency
        record.update({f"{name}_currency": code for name in TOTAL_FIELDS})
    if record.get("cancelled"):
        return None  # counts for nothing
    if invoice["cancelled"]:
        return "invoice_id", Message(N_("%(invoice)s is cancelled: it owes nothing"),
                                     invoice=number)
    due = money(decimal(invoice["amount"]) - paid.get(invoice["id"], ZERO)
                - credited.get(invoice["id"], ZERO), site_digits(site, code))
    if amount > due:
        return "line_items", Message(
            N_("crediting %(amount)s on %(invoice)s is more than its amount due, %(due)s"),
            amount=amount_text(site, amount, code), invoice=number,
            due=amount_text(site, due, code))
    credited[invoice["id"]] = credited.get(invoice["id"], ZERO) + amount
    return None


# -- deletes -------------------------------------------------------------------------------

def before_delete(site, module_name: str, records: list[dict], conn) -> None:
    """An invoice with payments or credit notes, or a payment allocated to invoices, keeps
    the figures of other records right only while it exists: remove those first."""
    t = figures.tables(site)
    ids = [r["id"] for r in records]
    numbers = {r["id"]: r.get("number") or r["id"] for r in records}
    # the kernel has locked the records themselves already; the accounts come next
    figures.lock_accounts(conn, t, {r.get("account_id") for r in records} | figures.accounts_of(
        conn, t, {r.get("invoice_id") for r in records}, {r.get("payment_id") for r in records}))
    if module_name == "invoices":
        busy = set(figures.allocated_to(conn, t, ids)) | _with_credit_notes(conn, t, ids)
        message = N_("%(numbers)s: remove the payments and credit notes of an invoice before "
                     "deleting it")
    elif module_name == "payments":
        busy = set(figures.allocated_from(conn, t, ids))
        message = N_("%(numbers)s: remove the allocations of a payment before deleting it")
    else:
        return  # allocations and credit notes: nothing refused
    if busy:
        raise VetoError(Message(message, numbers=", ".join(sorted(numbers[i] for i in busy))))


def _with_credit_notes(conn, t: figures.Tables, invoice_ids: list[str]) -> set[str]:
    c = t.credit_notes
    return set(conn.execute(sa.select(c.c.invoice_id).distinct().where(
        c.c.invoice_id.in_(invoice_ids), c.c.deleted.is_(False))).scalars())
