"""One sub-ledger, configured by module and field names: receivables (the invoices
plugin) and payables (the purchases plugin) are the same bookkeeping.

The figures (currency fields no form, import or API may set):

- document (invoice, bill): ``amount_paid`` = Σ its allocations; ``amount_credited`` =
  Σ its credit notes that count (not cancelled), when the ledger has credit notes;
  ``amount_due`` = amount − paid − credited, or 0 when it is cancelled;
- payment: ``unallocated`` = amount − Σ its allocations;
- party (the account): the balance = Σ amount due of its documents − Σ unallocated of
  its payments (money received or paid but not applied yet).

Deleted records count for nothing. The figures of just the affected rows are worked out
from locking reads and grouped sums (no correlated subqueries: MariaDB's repeatable read
answers those from the transaction's snapshot, missing what another writer committed
while we waited for a lock), on the saving transaction's connection, and written
through ``RecordService.set_derived``: only the rows that move are written, they get a
new version, the change log shows the moves as done by the system and webhook
subscribers hear of them — without the save hooks running again (they refuse hand edits
of these fields, and would recurse).

**One currency per balance.** Amounts in different currencies are never converted: a
party's balance is kept in the currency of its first document (the oldest created; with
none, of its first payment), and documents in other currencies are left out of it; their
own amount due and unallocated stay exact.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import sqlalchemy as sa

from core.kernel.errors import N_, Message, ValidationError

ZERO = Decimal(0)


def decimal(value) -> Decimal:
    """A stored number as a Decimal (SQLite may hand back floats); None is 0."""
    if value is None:
        return ZERO
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def current(connection, stmt):
    """``stmt`` as a read of the latest committed rows. MariaDB's repeatable read would
    answer a plain SELECT from the snapshot the transaction started with, missing what
    another writer committed while we waited for a row lock; a locking read sees it.
    PostgreSQL (read committed) and SQLite (one writer) need nothing."""
    if connection.dialect.name in ("mysql", "mariadb"):
        return stmt.with_for_update(read=True)
    return stmt


def lock(connection, t: sa.Table, ids: Iterable[str], *columns: str) -> dict[str, dict]:
    """Rows of ``t`` by id, locked until the transaction ends (in id order, so two writers
    never wait on each other crosswise; SQLite has one writer and ignores it)."""
    wanted = sorted({str(i) for i in ids if i})
    if not wanted:
        return {}
    stmt = sa.select(t.c.id, *(t.c[c] for c in columns)).where(t.c.id.in_(wanted)) \
        .order_by(t.c.id).with_for_update()
    return {row["id"]: dict(row) for row in connection.execute(stmt).mappings()}


def key(batch: list, name: str, record: dict) -> str:
    """Error keys: the field, or "INV-0003: field" when a write has several records."""
    return name if len(batch) == 1 else f"{record.get('number') or record['id']}: {name}"


def _ids(ids: Iterable[str]) -> list[str]:
    return sorted({str(i) for i in ids if i})


@dataclass(frozen=True)
class SubLedger:
    """The names one sub-ledger uses; the methods keep its figures."""

    documents: str  # "invoices", "bills"
    payments: str  # "payments", "bill_payments"
    allocations: str  # "payment_allocations", "bill_payment_allocations"
    document_key: str  # an allocation's (and credit note's) document: "invoice_id"
    payment_key: str  # an allocation's payment: "payment_id", "bill_payment_id"
    party: str  # a document's and payment's account: "account_id", "supplier_id"
    balance: str  # the account's figure: "balance_receivable", "balance_payable"
    parties: str = "accounts"
    credit_notes: str | None = None  # documents that lower a document's amount due

    @property
    def derived(self) -> dict[str, tuple[str, ...]]:
        """Module -> the figures this ledger keeps in it; no form, import or API sets them."""
        credited = ("amount_credited",) if self.credit_notes else ()
        return {self.documents: ("amount_paid", *credited, "amount_due"),
                self.payments: ("unallocated",), self.parties: (self.balance,)}

    def refuse_derived(self, module, batch) -> None:
        """Before a save: a figure this ledger keeps, set by hand, refuses the write."""
        names = self.derived.get(module.name, ())
        errors = {key(batch, name, c.record): Message(
            N_("is worked out by CRBM and cannot be set"))
            for c in batch for name in names if name in c.changes}
        if errors:
            raise ValidationError(errors)

    def refuse_moves(self, batch, message: str) -> None:
        """Before saving allocations: one that changes its payment or document refuses the
        write with ``message`` (an ``N_`` text: delete it and allocate again)."""
        errors = {key(batch, self.document_key, c.record): Message(message)
                  for c in batch if not c.is_new
                  and {self.payment_key, self.document_key} & set(c.changes)}
        if errors:
            raise ValidationError(errors)

    def table(self, site, module_name: str) -> sa.Table:
        return site.tables.tables[site.registry.module(module_name).table]

    def _own_figures(self, documents: bool, record: Mapping, paid: Decimal,
                     credited: Decimal) -> dict:
        """A document's or payment's figures from its amount and what is allocated (and
        credited) on it, with their currency sub-fields."""
        amount, code = decimal(record.get("amount")), record.get("amount_currency")
        if documents:
            values = {"amount_paid": paid, "amount_due": ZERO if record.get("cancelled")
                      else amount - paid - credited}
            if self.credit_notes:
                values["amount_credited"] = credited
        else:
            values = {"unallocated": amount - paid}
        return values | {f"{name}_currency": code for name in list(values)}

    def _refresh(self, site, connection, module_name: str, ids: Iterable[str]) -> None:
        """The figures of these documents (or payments), from locking reads of the rows
        and grouped sums of what refers to them — never subqueries, which MariaDB's
        repeatable read would answer from the transaction's snapshot — written through
        ``set_derived``."""
        ids = _ids(ids)
        if not ids:
            return
        documents = module_name == self.documents
        t = self.table(site, module_name)
        columns = [t.c.id, t.c.amount, t.c.amount_currency] + \
            ([t.c.cancelled] if documents else [])
        rows = connection.execute(current(connection, sa.select(*columns)
                                          .where(t.c.id.in_(ids)))).mappings().all()
        allocated = self.sums(site, connection, self.allocations,
                              self.document_key if documents else self.payment_key, ids)
        credited = self.sums(site, connection, self.credit_notes, self.document_key, ids) \
            if documents and self.credit_notes else {}
        site.records.set_derived(module_name, {
            row["id"]: self._own_figures(documents, row, allocated.get(row["id"], ZERO),
                                         credited.get(row["id"], ZERO))
            for row in rows}, connection=connection, reason="allocations")

    def refresh_documents(self, site, connection, ids: Iterable[str]) -> None:
        self._refresh(site, connection, self.documents, ids)

    def refresh_payments(self, site, connection, ids: Iterable[str]) -> None:
        self._refresh(site, connection, self.payments, ids)

    def _first_currencies(self, connection, t: sa.Table, ids: list[str]) -> dict[str, str]:
        """Party -> the currency of its oldest live document (or payment) in ``t``: two
        small locking reads (the oldest time per party, then the rows at those times)."""
        party = t.c[self.party]
        live = [party.in_(ids), t.c.deleted.is_(False)]
        oldest = dict(connection.execute(current(connection, sa.select(
            party, sa.func.min(t.c.created_at)).where(*live).group_by(party))).all())
        if not oldest:
            return {}
        rows = connection.execute(current(connection, sa.select(
            party, t.c.created_at, t.c.id, t.c.amount_currency)
            .where(*live, t.c.created_at.in_(set(oldest.values())))
            .order_by(t.c.created_at, t.c.id))).all()
        found: dict[str, str] = {}
        for owner, created, _, code in rows:
            if created == oldest.get(owner) and owner not in found:
                found[owner] = code
        return found

    def refresh_balances(self, site, connection, ids: Iterable[str]) -> None:
        """The balance's currency first (see the module's docstring), then the sums of
        amounts due and unallocated per party and currency; locking reads, one write."""
        ids = _ids(ids)
        if not ids or self.parties not in site.registry.modules:
            return
        parties = self.table(site, self.parties)
        docs, pay = self.table(site, self.documents), self.table(site, self.payments)
        code = f"{self.balance}_currency"
        held = dict(connection.execute(current(connection, sa.select(
            parties.c.id, parties.c[code]).where(parties.c.id.in_(ids)))).all())
        first_doc, first_pay = self._first_currencies(connection, docs, ids), \
            self._first_currencies(connection, pay, ids)
        currency = {p: first_doc.get(p) or first_pay.get(p) or held[p] for p in held}

        def sums(t: sa.Table, figure: str) -> dict[tuple, Decimal]:
            stmt = sa.select(t.c[self.party], t.c.amount_currency, sa.func.sum(t.c[figure])) \
                .where(t.c[self.party].in_(ids), t.c.deleted.is_(False)) \
                .group_by(t.c[self.party], t.c.amount_currency)
            return {(p, c): decimal(s) for p, c, s in connection.execute(current(connection, stmt))}

        owed, unapplied = sums(docs, "amount_due"), sums(pay, "unallocated")
        site.records.set_derived(self.parties, {
            party: {code: cur, self.balance: owed.get((party, cur), ZERO)
                    - unapplied.get((party, cur), ZERO)}
            for party, cur in currency.items()}, connection=connection, reason="balance")

    def sums(self, site, connection, module_name: str, key: str, ids: Iterable[str],
             excluding: Iterable[str] = ()) -> dict[str, Decimal]:
        """``key`` value -> Σ amount of the live records of ``module_name`` (allocations,
        credit notes that count) with that value, those in ``excluding`` left out."""
        wanted = _ids(ids)
        if not wanted:
            return {}
        t = self.table(site, module_name)
        where = [t.c[key].in_(wanted), t.c.deleted.is_(False)]
        if module_name == self.credit_notes:
            where.append(t.c.cancelled.is_not(True))
        if _ids(excluding):
            where.append(t.c.id.not_in(_ids(excluding)))
        stmt = sa.select(t.c[key], sa.func.sum(t.c.amount)).where(*where).group_by(t.c[key])
        return {row[0]: decimal(row[1]) for row in connection.execute(current(connection, stmt))}

    def fill_figures(self, site, connection, module_name: str, batch) -> None:
        """Before a document or payment is written: its own figures, from its amount and
        what is allocated (and credited) on it, so the save writes them in its own version
        and the refresh after it finds nothing to move. One query per sum, for the
        records that exist already (a new one has nothing allocated yet)."""
        module = site.registry.module(module_name)
        existing = [c.record["id"] for c in batch if not c.is_new]
        documents = module_name == self.documents
        allocated = self.sums(site, connection, self.allocations,
                              self.document_key if documents else self.payment_key, existing)
        credited = self.sums(site, connection, self.credit_notes, self.document_key, existing) \
            if documents and self.credit_notes else {}
        for change in batch:
            record = change.record
            figures = self._own_figures(documents, record, allocated.get(record["id"], ZERO),
                                        credited.get(record["id"], ZERO))
            for name, value in figures.items():
                f = module.fields[name]
                record[name] = f.type.normalize(value, f.spec)

    def parties_of(self, site, connection, document_ids=(), payment_ids=()) -> set[str]:
        """The parties of these documents and payments (one query each)."""
        found: set[str] = set()
        for name, ids in ((self.documents, document_ids), (self.payments, payment_ids)):
            ids = _ids(ids)
            if ids:
                t = self.table(site, name)
                found |= set(connection.execute(sa.select(t.c[self.party]).distinct()
                                                .where(t.c.id.in_(ids))).scalars())
        return found - {None}

    def refresh(self, site, connection, *, documents: Iterable[str] = (),
                payments: Iterable[str] = (), parties: Iterable[str] = ()) -> None:
        """Bring every figure that depends on these records up to date, in dependency
        order: documents and payments first, then the balances of their parties (and
        ``parties``)."""
        documents, payments = set(documents), set(payments)
        self.refresh_documents(site, connection, documents)
        self.refresh_payments(site, connection, payments)
        self.refresh_balances(site, connection, set(parties) | self.parties_of(
            site, connection, documents, payments))
