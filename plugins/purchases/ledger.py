"""The purchase ledger: what each bill still owes, what each bill payment has left to
allocate and what the company owes each supplier, and the rules that keep them true.

The figures (currency fields that no form, import or API may set):

- bill: ``amount_paid`` = Σ its allocations; ``amount_due`` = amount − amount_paid, or 0
  when it is cancelled;
- bill payment: ``unallocated`` = amount − Σ its allocations;
- account: ``balance_payable`` = Σ amount due of its bills − Σ unallocated of its bill
  payments (money paid but not allocated yet lowers what the company owes).

The sums and the writing are the shared sub-ledger's (plugins/subledger/ledger.py,
``PAYABLES`` below): worked out on the saving transaction's connection and written
through ``site.records.set_derived`` — a new version, the change log (as the system),
webhook events — not through ``site.records.update``, which would run the lifecycle
hooks again (recursion) and need the acting user's right to edit the bill (a clerk
allocating a payment may only see the bill).

After the writes the figures are read back and a negative one refuses the write: the
rules (no over-allocation of a payment or a bill) are enforced on what the database
holds, whatever wrote it. The payments and bills involved are locked first, so two people
allocating to one bill are checked one after the other.

**One currency per balance**, as for the invoices plugin's balance receivable: amounts are
never converted, so an account's balance payable is kept in the currency of its first
bill (the oldest created; with none, of its first bill payment), and documents in other
currencies are left out of it; their own amount due and unallocated stay exact.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal

import sqlalchemy as sa

from core.kernel.errors import N_, Message, ValidationError, VetoError
from core.kernel.records import Query
from plugins.line_items.lines import CURRENCY_FIELD
from plugins.pricing.settings import amount_problem, amount_text, due_date, parse_amount
from plugins.subledger.ledger import SubLedger, current, decimal, lock
from plugins.subledger.ledger import key as _key

BILLS, PAYMENTS, ALLOCATIONS = "bills", "bill_payments", "bill_payment_allocations"
ORDERS, ACCOUNTS = "purchase_orders", "accounts"
ZERO = Decimal(0)
PAYABLES = SubLedger(
    documents=BILLS, payments=PAYMENTS, allocations=ALLOCATIONS, document_key="bill_id",
    payment_key="bill_payment_id", party="supplier_id", balance="balance_payable")
__all__ = ["PAYABLES", "current", "decimal", "lock"]


def refresh_bills(site, connection, ids: Iterable[str]) -> None:
    PAYABLES.refresh_documents(site, connection, ids)


def refresh_payments(site, connection, ids: Iterable[str]) -> None:
    PAYABLES.refresh_payments(site, connection, ids)


def refresh_balances(site, connection, ids: Iterable[str]) -> None:
    PAYABLES.refresh_balances(site, connection, ids)


def suppliers_of(site, connection, bill_ids=(), payment_ids=()) -> set[str]:
    """The suppliers of these bills and payments (one query each)."""
    return PAYABLES.parties_of(site, connection, bill_ids, payment_ids)


def table(site, module_name: str) -> sa.Table:
    return site.tables.tables[site.registry.module(module_name).table]


def today() -> dt.date:
    return dt.date.today()


# -- dates and terms -----------------------------------------------------------------------


def supplier_terms(site, connection, supplier_ids: Iterable[str]) -> dict[str, str | None]:
    """Supplier id -> the terms of its new documents: the account's own, else the site's
    default terms (the pricing plugin's order settings). One query, on the saving
    connection."""
    registry = site.registry
    allowed = registry.option_values("terms_dom") if "terms_dom" in registry.dropdowns else ()
    try:
        from plugins.pricing.settings import order_settings
        default = order_settings(site).default_terms
    except ImportError:  # the pricing plugin is not installed: no site default
        default = None
    ids = sorted({i for i in supplier_ids if i})
    own: dict[str, str | None] = {}
    accounts = registry.modules.get(ACCOUNTS)
    if ids and accounts is not None and "terms" in accounts.fields:
        t = table(site, ACCOUNTS)
        own = dict(connection.execute(sa.select(t.c.id, t.c.terms).where(t.c.id.in_(ids))).all())
    return {i: t if t in allowed else None
            for i, t in ((i, own.get(i) or default) for i in ids)}


def fill_dates_and_terms(site, connection, batch, date_field: str,
                         due_field: str | None = None) -> None:
    """A document's defaults: ``date_field`` today; a new one's terms, its supplier's;
    the due date from the terms when it is left empty."""
    needing_terms = [c for c in batch
                     if c.is_new and "terms" in c.record and not c.record["terms"]]
    if needing_terms:
        terms = supplier_terms(site, connection,
                               (c.record.get("supplier_id") for c in needing_terms))
        for change in needing_terms:
            change.record["terms"] = terms.get(change.record.get("supplier_id"))
    for change in batch:
        record = change.record
        if record.get(date_field) is None:
            record[date_field] = today()
        if due_field is not None and record.get(due_field) is None:
            record[due_field] = due_date(record[date_field], record.get("terms"))


# -- reading and locking -------------------------------------------------------------------

def allocation_names(site, connection, column: str, ids: Iterable[str]
                     ) -> dict[str, list[str]]:
    """Bill (or payment) id -> the names of its live allocations ("BPAY-0001 > BILL-0003")."""
    ids = sorted({i for i in ids if i})
    if not ids:
        return {}
    a = table(site, ALLOCATIONS)
    out: dict[str, list[str]] = {}
    for owner, name in connection.execute(
            sa.select(a.c[column], a.c.name)
            .where(a.c[column].in_(ids), a.c.deleted.is_(False)).order_by(a.c.name)):
        out.setdefault(owner, []).append(name)
    return out


# -- keeping the figures -------------------------------------------------------------------

def _overdrawn(site, connection, name: str, figure: str, ids: Iterable[str]) -> list[dict]:
    """The records among ``ids`` whose ``figure`` fell below 0."""
    ids = sorted({i for i in ids if i})
    if not ids:
        return []
    t = table(site, name)
    stmt = sa.select(t.c.id, t.c.number, t.c.amount, t.c[figure], t.c.amount_currency) \
        .where(t.c.id.in_(ids), t.c[figure] < 0).order_by(t.c.number)
    return [dict(row) for row in connection.execute(stmt).mappings()]


# -- bills and payments --------------------------------------------------------------------

def refuse_allocated_changes(site, connection, batch, *, bills: bool) -> None:
    """A bill or payment with allocations keeps its supplier and currency (the
    allocations would join two suppliers or currencies), and a bill with allocations is
    not cancelled (it would owe nothing yet hold payments)."""
    watched = [c for c in batch if not c.is_new and (
        {"supplier_id", CURRENCY_FIELD} & set(c.changes)
        or (bills and "cancelled" in c.changes and c.record.get("cancelled")))]
    if not watched:
        return
    column = "bill_id" if bills else "bill_payment_id"
    allocated = allocation_names(site, connection, column, (c.record["id"] for c in watched))
    errors = {}
    for change in watched:
        record = change.record
        names = allocated.get(record["id"])
        if not names:
            continue
        number = record.get("number") or record["id"]
        if bills and "cancelled" in change.changes and record.get("cancelled"):
            errors[_key(batch, "cancelled", record)] = Message(
                N_("%(number)s has payments allocated to it (%(allocations)s): remove them "
                   "first"), number=number, allocations=", ".join(names))
        for name in ("supplier_id", CURRENCY_FIELD):
            if name in change.changes:
                errors[_key(batch, name, record)] = Message(
                    N_("%(number)s has payment allocations (%(allocations)s); remove them "
                       "before changing its supplier or currency"), number=number,
                    allocations=", ".join(names))
    if errors:
        raise ValidationError(errors)


def settle_bills(site, connection, batch) -> None:
    """After bills were written: their figures, then their suppliers' balances. A total
    below what was paid on a bill is refused."""
    ids = [c.record["id"] for c in batch]
    refresh_bills(site, connection, ids)
    errors = {}
    for bill in _overdrawn(site, connection, BILLS, "amount_due", ids):
        code = bill["amount_currency"]
        errors[_key(batch, "line_items", bill)] = Message(
            N_("%(number)s's total %(total)s is less than the %(paid)s already paid on it"),
            number=bill["number"], total=amount_text(site, bill["amount"], code),
            paid=amount_text(site, decimal(bill["amount"]) - decimal(bill["amount_due"]),
                             code))
    if errors:
        raise ValidationError(errors)
    refresh_balances(site, connection, _suppliers(batch))


def check_payments(site, batch) -> None:
    """A payment pays more than 0, in its currency's digits; its date is today and its
    name its number unless given."""
    errors = {}
    for change in batch:
        record = change.record
        if not record.get("name"):
            record["name"] = record.get("number")
        problem = amount_problem(site, record.get("amount"), record.get(CURRENCY_FIELD))
        if problem:
            errors[_key(batch, "amount", record)] = problem
    if errors:
        raise ValidationError(errors)


def settle_payments(site, connection, batch) -> None:
    """After payments were written: their unallocated amounts, then the balances. An
    amount below what was allocated from a payment is refused."""
    ids = [c.record["id"] for c in batch]
    refresh_payments(site, connection, ids)
    errors = {}
    for payment in _overdrawn(site, connection, PAYMENTS, "unallocated", ids):
        code = payment["amount_currency"]
        errors[_key(batch, "amount", payment)] = Message(
            N_("%(number)s's amount %(amount)s is less than the %(allocated)s already "
               "allocated from it"), number=payment["number"],
            amount=amount_text(site, payment["amount"], code),
            allocated=amount_text(site, decimal(payment["amount"])
                                  - decimal(payment["unallocated"]), code))
    if errors:
        raise ValidationError(errors)
    refresh_balances(site, connection, _suppliers(batch))


def _suppliers(batch) -> set:
    """The suppliers a write concerns: each record's, and the one it had before."""
    return {c.record.get("supplier_id") for c in batch} | \
        {c.changes["supplier_id"][0] for c in batch if "supplier_id" in c.changes}


def refuse_deleting_allocated(site, connection, module_name: str, records: list[dict]) -> None:
    """A bill with payments, or a payment allocated to bills, keeps the other's figures
    right only while it exists: remove the allocations first."""
    if module_name == BILLS:
        column = "bill_id"
        message = N_("%(numbers)s: remove the payments of a bill before deleting it")
    else:
        column = "bill_payment_id"
        message = N_("%(numbers)s: remove the allocations of a payment before deleting it")
    busy = allocation_names(site, connection, column, (r["id"] for r in records))
    if busy:
        raise VetoError(Message(message, numbers=", ".join(sorted(
            r.get("number") or r["id"] for r in records if r["id"] in busy))))


# -- allocations ---------------------------------------------------------------------------

PAYMENT_COLUMNS = ("number", "supplier_id", "amount_currency", "unallocated", "deleted")
BILL_COLUMNS = ("number", "supplier_id", "amount_currency", "amount_due", "cancelled",
                "deleted")


def party_problem(payment: Mapping | None, bill: Mapping | None) -> tuple[str, Message] | None:
    """Why ``payment`` may not pay ``bill`` at all (field, message), or None."""
    if payment is None or payment["deleted"]:
        return "bill_payment_id", Message(N_("no such bill payment"))
    if bill is None or bill["deleted"]:
        return "bill_id", Message(N_("no such bill"))
    names = {"payment": payment["number"], "bill": bill["number"]}
    if bill["supplier_id"] != payment["supplier_id"]:
        return "bill_id", Message(N_("%(bill)s is another supplier's bill: %(payment)s pays "
                                     "only its own supplier's bills"), **names)
    if bill["amount_currency"] != payment["amount_currency"]:
        return "bill_id", Message(
            N_("%(bill)s is in %(theirs)s but %(payment)s is in %(ours)s: a payment pays "
               "only bills in its own currency"), theirs=bill["amount_currency"],
            ours=payment["amount_currency"], **names)
    if bill["cancelled"]:
        return "bill_id", Message(N_("%(bill)s is cancelled: it owes nothing"), **names)
    return None


def over_bill(site, amount, bill: Mapping, due) -> Message:
    code = bill["amount_currency"]
    return Message(N_("allocating %(amount)s to %(bill)s is more than its amount due, "
                      "%(due)s"), amount=amount_text(site, amount, code), bill=bill["number"],
                   due=amount_text(site, due, code))


def over_payment(site, amount, payment: Mapping, left) -> Message:
    code = payment["amount_currency"]
    return Message(N_("allocating %(amount)s from %(payment)s is more than its unallocated "
                      "amount, %(left)s"), amount=amount_text(site, amount, code),
                   payment=payment["number"], left=amount_text(site, left, code))


def before_allocations(site, connection, batch) -> None:
    """Each allocation: a live payment and bill of one supplier and currency, the bill
    not cancelled, an amount more than 0. Named after both, in the payment's currency.
    (The sums are checked after the write, on the refreshed figures.)"""
    PAYABLES.refuse_moves(batch, N_(
        "an allocation cannot move to another payment or bill: delete it and allocate again"))
    errors = {}
    records = [c.record for c in batch]
    payments = lock(connection, table(site, PAYMENTS),
                    (r.get("bill_payment_id") for r in records), *PAYMENT_COLUMNS)
    bills = lock(connection, table(site, BILLS), (r.get("bill_id") for r in records),
                 *BILL_COLUMNS)
    for index, record in enumerate(records):
        payment, bill = payments.get(record.get("bill_payment_id")), bills.get(record.get("bill_id"))
        problem = party_problem(payment, bill)
        if problem is None:
            amount = amount_problem(site, record.get("amount"), payment["amount_currency"])
            problem = ("amount", amount) if amount else None
        if problem:
            errors[problem[0] if len(batch) == 1 else f"row {index + 1}: {problem[0]}"] = \
                problem[1]
            continue
        record[CURRENCY_FIELD] = payment["amount_currency"]
        record["name"] = f"{payment['number']} > {bill['number']}"
    if errors:
        raise ValidationError(errors)


def settle_allocations(site, connection, moves: list[tuple[dict | None, dict | None]]) -> None:
    """After allocations were written or deleted: refresh the figures they move, refuse
    what overdraws a bill or a payment, refresh the balances. ``moves``: (allocation as
    written, or None when deleted; as it was, or None when new), each a dict with
    bill_id, bill_payment_id and amount."""
    sides = [side for move in moves for side in move if side is not None]
    bill_ids = {side["bill_id"] for side in sides}
    payment_ids = {side["bill_payment_id"] for side in sides}
    refresh_bills(site, connection, bill_ids)
    refresh_payments(site, connection, payment_ids)
    to_bill, from_payment = _added(moves, "bill_id"), _added(moves, "bill_payment_id")
    messages = [over_bill(site, to_bill.get(bill["id"], ZERO), bill,
                          decimal(bill["amount_due"]) + to_bill.get(bill["id"], ZERO))
                for bill in _overdrawn(site, connection, BILLS, "amount_due", bill_ids)]
    messages += [over_payment(site, from_payment.get(p["id"], ZERO), p,
                              decimal(p["unallocated"]) + from_payment.get(p["id"], ZERO))
                 for p in _overdrawn(site, connection, PAYMENTS, "unallocated", payment_ids)]
    if messages:
        raise ValidationError({"amount": "; ".join(messages)})
    refresh_balances(site, connection, suppliers_of(site, connection, bill_ids, payment_ids))


def _added(moves, column: str) -> dict[str, Decimal]:
    """What the moves add per bill (or payment): new amounts less those they replace."""
    added: dict[str, Decimal] = {}
    for new, old in moves:
        if new is not None:
            added[new[column]] = added.get(new[column], ZERO) + decimal(new["amount"])
        if old is not None:
            added[old[column]] = added.get(old[column], ZERO) - decimal(old["amount"])
    return added


# -- allocating a payment ------------------------------------------------------------------

def allocate_bill_payment(site, user, payment_id: str, amounts: Mapping[str, object]
                          ) -> list[dict]:
    """Allocate parts of bill payment ``payment_id`` to bills: ``amounts`` maps a bill id
    to the amount (in the payment's currency) to allocate to it. Returns the allocation
    records, in the order given.

    All or nothing, in one transaction: every amount is checked first (a number more than
    0 in the currency's digits, at most what the payment has left and what each bill
    still owes, same supplier and currency, bill not cancelled) and a ``ValidationError``
    keyed by bill id ("amounts" for the request as a whole) lists every problem, with
    nothing written. The user must be allowed to edit the payment and see the bills.
    """
    errors: dict[str, Message] = {}
    rows: list[tuple[str, Decimal | None]] = []
    for bill_id, value in amounts.items():
        amount = parse_amount(value)
        if amount is None:
            errors[str(bill_id)] = Message(N_("%(value)s is not an amount"), value=repr(value))
        rows.append((str(bill_id), amount))
    if not rows:
        raise ValidationError({"amounts": Message(N_("give at least one bill and an amount "
                                                     "to allocate to it"))})
    bills_t = table(site, BILLS)
    with site.engine.begin() as connection:
        # locks first: a concurrent allocation waits here, and then is seen
        locked = lock(connection, table(site, PAYMENTS), [payment_id], *PAYMENT_COLUMNS)
        bills = lock(connection, bills_t, (b for b, _ in rows), *BILL_COLUMNS)
        # NotFoundError unless the user may edit the payment
        site.records.get(PAYMENTS, payment_id, user, connection=connection, action="edit")
        payment = locked[str(payment_id)]
        visible = set(connection.execute(sa.select(bills_t.c.id).where(
            bills_t.c.id.in_(list(bills)), *_may(site, user, BILLS, bills_t, "view")))
            .scalars()) if bills else set()
        left = decimal(payment["unallocated"])
        for bill_id, amount in rows:
            bill = bills.get(bill_id) if bill_id in visible else None
            if bill_id in errors:
                continue
            problem = party_problem(payment, bill)
            message = problem[1] if problem else \
                amount_problem(site, amount, payment["amount_currency"])
            if message is None and amount > decimal(bill["amount_due"]):
                message = over_bill(site, amount, bill, bill["amount_due"])
            if message is None and amount > left:
                message = over_payment(site, amount, payment, left)
            if message is not None:
                errors[bill_id] = message
                continue
            left -= amount
            bill["amount_due"] = decimal(bill["amount_due"]) - amount  # the same bill twice
        if errors:
            raise ValidationError(errors)
        # one create per bill (a payment pays a handful): each runs the same checks and
        # refreshes as any other writer's allocation
        return [site.records.create(ALLOCATIONS, {
            "bill_payment_id": payment["id"], "bill_id": bill_id, "amount": amount,
            CURRENCY_FIELD: payment["amount_currency"]}, user, connection=connection)
            for bill_id, amount in rows]


def _may(site, user, module_name: str, t: sa.Table, action: str) -> list:
    """The access predicate for ``action`` on ``module_name``'s rows, as a WHERE clause
    (on the caller's connection: ``site.records.allowed`` opens its own)."""
    access = site.records.access
    if access is None:
        return [t.c.deleted.is_(False)]
    return [t.c.deleted.is_(False),
            access.predicate(user, site.registry.module(module_name), action, t)]


def open_bills(site, user, supplier_id: str, currency: str | None = None) -> list[dict]:
    """The supplier's bills that still owe something (not cancelled), oldest due first."""
    filters = [("supplier_id", "eq", supplier_id), ("cancelled", "ne", True),
               ("amount_due", "gt", 0)]
    if currency:
        filters.append(("amount_currency", "eq", currency))
    return site.records.list(BILLS, user, Query(
        filters=filters, sort="due_date,number", limit=None,
        fields=["id", "number", "name", "supplier_invoice_no", "bill_date", "due_date",
                "amount", "amount_currency", "amount_due", "amount_due_currency"]))
