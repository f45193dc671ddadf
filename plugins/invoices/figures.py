"""The figures this plugin keeps, and the sums its checks read.

Derived figures (stored so lists can show and sort by them):

- invoice: ``amount_paid`` = Σ its allocations; ``amount_credited`` = Σ its credit notes
  (not cancelled); ``amount_due`` = amount − paid − credited, or 0 when it is cancelled;
- payment: ``unallocated`` = amount − Σ its allocations;
- account: ``balance_receivable`` = Σ amount due of its invoices − Σ unallocated of its
  payments (money received but not applied yet lowers what it owes).

The sums and the writing are the shared sub-ledger's (plugins/subledger/ledger.py,
``RECEIVABLES`` below): the figures of just the affected rows are worked out on the saving
transaction's connection and written through ``site.records.set_derived`` — a new
version, the change log (as the system) and webhook events, without the save hooks
running again.

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

import sqlalchemy as sa

from plugins.subledger.ledger import ZERO, SubLedger, decimal, key, lock

__all__ = ["RECEIVABLES", "ZERO", "Tables", "decimal", "key", "lock", "tables"]

RECEIVABLES = SubLedger(
    documents="invoices", payments="payments", allocations="payment_allocations",
    document_key="invoice_id", payment_key="payment_id", party="account_id",
    balance="balance_receivable", credit_notes="credit_notes")


@dataclass(frozen=True)
class Tables:
    invoices: sa.Table
    payments: sa.Table
    allocations: sa.Table
    credit_notes: sa.Table
    accounts: sa.Table
    site: object = None


def tables(site) -> Tables:
    def table(name: str) -> sa.Table:
        return site.tables.tables[site.registry.module(name).table]

    return Tables(table("invoices"), table("payments"), table("payment_allocations"),
                  table("credit_notes"), table("accounts"), site)


def lock_accounts(conn, t: Tables, ids: Iterable[str]) -> None:
    """The first lock every writer of invoices, payments, allocations and credit notes
    takes: their accounts' rows. The account is the mutex of its documents. Without it,
    on MariaDB, a writer holding an invoice would wait for a payment row while updating
    the account's balance, and the payment's writer wait for the invoice: a deadlock.
    With it, writers of one account's documents queue at the account and take the rest
    in the same order."""
    lock(conn, t.accounts, ids)


def allocated_to(conn, t: Tables, invoice_ids, excluding: Iterable[str] = ()) -> dict:
    """Invoice id -> Σ amounts allocated to it (allocations in ``excluding`` left out)."""
    return RECEIVABLES.sums(t.site, conn, "payment_allocations", "invoice_id", invoice_ids,
                            excluding)


def allocated_from(conn, t: Tables, payment_ids, excluding: Iterable[str] = ()) -> dict:
    """Payment id -> Σ amounts allocated from it."""
    return RECEIVABLES.sums(t.site, conn, "payment_allocations", "payment_id", payment_ids,
                            excluding)


def credited_on(conn, t: Tables, invoice_ids, excluding: Iterable[str] = ()) -> dict:
    """Invoice id -> Σ amounts of its credit notes that count (not cancelled)."""
    return RECEIVABLES.sums(t.site, conn, "credit_notes", "invoice_id", invoice_ids, excluding)


def accounts_of(conn, t: Tables, invoice_ids=(), payment_ids=()) -> set[str]:
    """The accounts of these invoices and payments (one query each)."""
    return RECEIVABLES.parties_of(t.site, conn, invoice_ids, payment_ids)


def refresh(site, conn, *, invoices: Iterable[str] = (), payments: Iterable[str] = (),
            accounts: Iterable[str] = ()) -> None:
    """Bring every figure that depends on these records up to date, in dependency order:
    invoices and payments first, then the balances of their accounts (and ``accounts``)."""
    RECEIVABLES.refresh(site, conn, documents=invoices, payments=payments, parties=accounts)
