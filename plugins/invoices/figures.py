"""The figures this plugin keeps, and the sums its checks read.

Derived figures (stored so lists can show and sort by them):

- invoice: ``amount_paid`` = Σ its allocations; ``amount_credited`` = Σ its credit notes
  (not cancelled); ``amount_due`` = amount − paid − credited, or 0 when it is cancelled;
- payment: ``unallocated`` = amount − Σ its allocations;
- account: ``balance_receivable`` = Σ amount due of its invoices − Σ unallocated of its
  payments (money received but not applied yet lowers what it owes).

Deleted records count for nothing. Each figure is written with one set-based
``UPDATE ... SET x = (SELECT SUM ...)`` for just the affected rows, on the saving
transaction's connection, so it is right the moment the write commits and gone with it if
the write rolls back. They are written with SQL, never through ``records.update``: a
record write would run the lifecycle hooks again (recursion) and log the figures in the
change log as if someone had typed them.

**One currency per account balance.** Amounts in different currencies cannot be added
without a rate, and CRBM never converts money silently. An account's balance is kept in
the currency of its first invoice (the oldest one created; when it has none, of its first
payment); invoices and payments in other currencies are left out of the balance — their
own amount due and unallocated figures stay exact. A known limitation, chosen over a
balance that adds dollars to euros.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

ZERO = Decimal(0)


@dataclass(frozen=True)
class Tables:
    invoices: sa.Table
    payments: sa.Table
    allocations: sa.Table
    credit_notes: sa.Table
    accounts: sa.Table


def tables(site) -> Tables:
    def table(name: str) -> sa.Table:
        return site.tables.tables[site.registry.module(name).table]

    return Tables(table("invoices"), table("payments"), table("payment_allocations"),
                  table("credit_notes"), table("accounts"))


def decimal(value) -> Decimal:
    """A stored number as a Decimal (SQLite may hand back floats)."""
    if value is None:
        return ZERO
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def current(conn, stmt):
    """``stmt`` reading the latest committed rows. MariaDB's repeatable read would answer
    a plain SELECT from the snapshot the transaction started with, missing an allocation
    another writer committed while we waited for a row lock; a locking read sees it.
    PostgreSQL (read committed) and SQLite (one writer) need nothing."""
    if conn.dialect.name in ("mysql", "mariadb"):
        stmt = stmt.with_for_update(read=True)
    return conn.execute(stmt)


def lock(conn, table: sa.Table, ids: Iterable[str], *columns: str) -> dict[str, dict]:
    """Rows of ``table`` by id, locked until the transaction ends (in id order, so two
    writers never wait on each other crosswise). Every writer of allocations and credit
    notes locks the payment and invoice rows before reading sums, so their checks see
    one another."""
    wanted = sorted({str(i) for i in ids if i})
    if not wanted:
        return {}
    stmt = (sa.select(table.c.id, *(table.c[c] for c in columns))
            .where(table.c.id.in_(wanted)).order_by(table.c.id).with_for_update())
    return {row["id"]: dict(row) for row in conn.execute(stmt).mappings()}


def lock_accounts(conn, t: Tables, ids: Iterable[str]) -> None:
    """The first lock every writer of invoices, payments, allocations and credit notes
    takes: their accounts' rows. The account is the mutex of its documents. Without it,
    on MariaDB, a writer holding an invoice would wait for a payment row while updating
    the account's balance (that UPDATE's subqueries lock what they read), and the
    payment's writer wait for the invoice: a deadlock. With it, writers of one account's
    documents queue at the account and take the rest in the same order."""
    lock(conn, t.accounts, ids)


def _sums(conn, amount: sa.ColumnElement, key: sa.Column, keys: Iterable[str],
          *where) -> dict[str, Decimal]:
    wanted = sorted({str(k) for k in keys if k})
    if not wanted:
        return {}
    stmt = (sa.select(key, sa.func.sum(amount)).where(key.in_(wanted), *where)
            .group_by(key))
    return {row[0]: decimal(row[1]) for row in current(conn, stmt)}


def allocated_to(conn, t: Tables, invoice_ids, excluding: Iterable[str] = ()) -> dict:
    """Invoice id -> Σ amounts allocated to it (allocations in ``excluding`` left out)."""
    a = t.allocations
    return _sums(conn, a.c.amount, a.c.invoice_id, invoice_ids, a.c.deleted.is_(False),
                 *_not_in(a, excluding))


def allocated_from(conn, t: Tables, payment_ids, excluding: Iterable[str] = ()) -> dict:
    """Payment id -> Σ amounts allocated from it."""
    a = t.allocations
    return _sums(conn, a.c.amount, a.c.payment_id, payment_ids, a.c.deleted.is_(False),
                 *_not_in(a, excluding))


def credited_on(conn, t: Tables, invoice_ids, excluding: Iterable[str] = ()) -> dict:
    """Invoice id -> Σ amounts of its credit notes that count (not cancelled)."""
    c = t.credit_notes
    return _sums(conn, c.c.amount, c.c.invoice_id, invoice_ids, c.c.deleted.is_(False),
                 c.c.cancelled.is_not(True), *_not_in(c, excluding))


def _not_in(table: sa.Table, ids: Iterable[str]) -> list:
    ids = sorted({str(i) for i in ids if i})
    return [table.c.id.not_in(ids)] if ids else []


# -- keeping the figures -----------------------------------------------------------------

def _sum_of(amount: sa.Column, *where) -> sa.ColumnElement:
    return sa.func.coalesce(sa.select(sa.func.sum(amount)).where(*where).scalar_subquery(), 0)


def refresh_invoices(conn, t: Tables, ids: Iterable[str]) -> None:
    ids = sorted({i for i in ids if i})
    if not ids:
        return
    inv, a, c = t.invoices, t.allocations, t.credit_notes
    paid = _sum_of(a.c.amount, a.c.invoice_id == inv.c.id, a.c.deleted.is_(False))
    credited = _sum_of(c.c.amount, c.c.invoice_id == inv.c.id, c.c.deleted.is_(False),
                       c.c.cancelled.is_not(True))
    due = sa.case((inv.c.cancelled.is_(True), 0),
                  else_=sa.func.coalesce(inv.c.amount, 0) - paid - credited)
    conn.execute(inv.update().where(inv.c.id.in_(ids)).values(
        amount_paid=paid, amount_paid_currency=inv.c.amount_currency,
        amount_credited=credited, amount_credited_currency=inv.c.amount_currency,
        amount_due=due, amount_due_currency=inv.c.amount_currency))


def refresh_payments(conn, t: Tables, ids: Iterable[str]) -> None:
    ids = sorted({i for i in ids if i})
    if not ids:
        return
    pay, a = t.payments, t.allocations
    allocated = _sum_of(a.c.amount, a.c.payment_id == pay.c.id, a.c.deleted.is_(False))
    conn.execute(pay.update().where(pay.c.id.in_(ids)).values(
        unallocated=sa.func.coalesce(pay.c.amount, 0) - allocated,
        unallocated_currency=pay.c.amount_currency))


def refresh_accounts(conn, t: Tables, ids: Iterable[str]) -> None:
    """Two statements: the balance's currency first (see the module's docstring), then
    the balance in it (one statement could not read the currency it sets on every
    database alike)."""
    ids = sorted({i for i in ids if i})
    if not ids:
        return
    acc, inv, pay = t.accounts, t.invoices, t.payments

    def first_currency(table: sa.Table):
        return (sa.select(table.c.amount_currency)
                .where(table.c.account_id == acc.c.id, table.c.deleted.is_(False))
                .order_by(table.c.created_at, table.c.id).limit(1).scalar_subquery())

    conn.execute(acc.update().where(acc.c.id.in_(ids)).values(
        balance_receivable_currency=sa.func.coalesce(
            first_currency(inv), first_currency(pay), acc.c.balance_receivable_currency)))
    owed = _sum_of(inv.c.amount_due, inv.c.account_id == acc.c.id, inv.c.deleted.is_(False),
                   inv.c.amount_currency == acc.c.balance_receivable_currency)
    unapplied = _sum_of(pay.c.unallocated, pay.c.account_id == acc.c.id,
                        pay.c.deleted.is_(False),
                        pay.c.amount_currency == acc.c.balance_receivable_currency)
    conn.execute(acc.update().where(acc.c.id.in_(ids)).values(
        balance_receivable=owed - unapplied))


def accounts_of(conn, t: Tables, invoice_ids=(), payment_ids=()) -> set[str]:
    """The accounts of these invoices and payments (one query each)."""
    found: set[str] = set()
    for table, ids in ((t.invoices, invoice_ids), (t.payments, payment_ids)):
        ids = sorted({i for i in ids if i})
        if ids:
            found |= set(conn.execute(sa.select(table.c.account_id).distinct()
                                      .where(table.c.id.in_(ids))).scalars())
    return found - {None}


def refresh(site, conn, *, invoices: Iterable[str] = (), payments: Iterable[str] = (),
            accounts: Iterable[str] = ()) -> None:
    """Bring every figure that depends on these records up to date, in dependency order:
    invoices and payments first, then the balances of their accounts (and ``accounts``)."""
    t = tables(site)
    invoices, payments = set(invoices), set(payments)
    refresh_invoices(conn, t, invoices)
    refresh_payments(conn, t, payments)
    refresh_accounts(conn, t, set(accounts) | accounts_of(conn, t, invoices, payments))
