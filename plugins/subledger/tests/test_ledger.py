"""The sub-ledger library (plugins/subledger/ledger.py) on its own: the figures it owns,
what it refuses, and a document's or payment's own figures — then the two ledgers the
shipped plugins configure with it (receivables: invoices; payables: purchases) on a site.

The bookkeeping end to end, with every figure worked out by hand, is in
plugins/invoices/tests/test_invoices.py and plugins/purchases/tests/test_purchases.py."""
from decimal import Decimal
from types import SimpleNamespace

import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import RecordChange
from plugins.subledger.ledger import SubLedger, decimal, key

LEDGER = SubLedger(documents="docs", payments="pays", allocations="allocs",
                   document_key="doc_id", payment_key="pay_id", party="party_id",
                   balance="balance", credit_notes="credits")
NO_CREDITS = SubLedger(documents="docs", payments="pays", allocations="allocs",
                       document_key="doc_id", payment_key="pay_id", party="party_id",
                       balance="balance")


def change(record, changes=(), is_new=False):
    return RecordChange(dict(record), {name: (None, record.get(name)) for name in changes},
                        is_new)


def test_stored_numbers_become_exact_decimals():
    assert decimal(None) == Decimal(0)
    assert decimal(0.1) == Decimal("0.1")  # SQLite's float, by its shortest repr
    assert decimal("12.30") == Decimal("12.30")


def test_error_keys_name_the_record_only_when_a_write_has_several():
    one = [change({"id": "a", "number": "INV-0003"})]
    assert key(one, "amount_due", one[0].record) == "amount_due"
    two = one + [change({"id": "b"})]
    assert key(two, "amount_due", two[0].record) == "INV-0003: amount_due"
    assert key(two, "amount_due", two[1].record) == "b: amount_due"


def test_the_figures_it_owns_per_module():
    assert LEDGER.derived == {"docs": ("amount_paid", "amount_credited", "amount_due"),
                              "pays": ("unallocated",), "accounts": ("balance",)}
    assert NO_CREDITS.derived["docs"] == ("amount_paid", "amount_due")


def test_a_figure_set_by_hand_refuses_the_write():
    batch = [change({"id": "a", "amount": 10, "amount_due": 3}, changes=["amount", "amount_due"])]
    with pytest.raises(ValidationError) as caught:
        LEDGER.refuse_derived(SimpleNamespace(name="docs"), batch)
    assert set(caught.value.errors) == {"amount_due"}
    LEDGER.refuse_derived(SimpleNamespace(name="docs"),
                          [change({"id": "a", "amount": 10}, changes=["amount"])])
    LEDGER.refuse_derived(SimpleNamespace(name="other"), batch)  # not a ledger module


def test_an_allocation_that_moves_refuses_the_write():
    moved = change({"id": "x", "doc_id": "d2", "pay_id": "p"}, changes=["doc_id"])
    with pytest.raises(ValidationError) as caught:
        LEDGER.refuse_moves([moved], "delete it and allocate again")
    assert set(caught.value.errors) == {"doc_id"}
    LEDGER.refuse_moves([change({"id": "y", "doc_id": "d", "pay_id": "p"},
                                changes=["doc_id", "pay_id"], is_new=True)], "unused")


def test_own_figures_of_a_document_and_a_payment():
    doc = {"amount": "100.00", "amount_currency": "EUR"}
    assert LEDGER._own_figures(True, doc, Decimal(30), Decimal(20)) == {
        "amount_paid": Decimal(30), "amount_credited": Decimal(20),
        "amount_due": Decimal("50.00"), "amount_paid_currency": "EUR",
        "amount_credited_currency": "EUR", "amount_due_currency": "EUR"}
    cancelled = LEDGER._own_figures(True, doc | {"cancelled": True}, Decimal(0), Decimal(0))
    assert cancelled["amount_due"] == 0
    assert LEDGER._own_figures(False, doc, Decimal(40), Decimal(0)) == {
        "unallocated": Decimal("60.00"), "unallocated_currency": "EUR"}


def test_the_shipped_ledgers_are_this_one_configured(site):
    """Invoices and purchases share the one implementation; every figure each keeps is a
    field of the module it names, with its currency."""
    from plugins.invoices.figures import RECEIVABLES
    from plugins.purchases.ledger import PAYABLES

    for ledger in (RECEIVABLES, PAYABLES):
        assert type(ledger) is SubLedger
        for module, names in ledger.derived.items():
            fields = site.registry.module(module).fields
            for name in names:
                assert name in fields and f"{name}_currency" in fields, (module, name)
    assert RECEIVABLES.balance != PAYABLES.balance


def test_nothing_to_refresh_writes_nothing(site):
    from plugins.invoices.figures import RECEIVABLES

    with site.engine.begin() as connection:
        RECEIVABLES.refresh(site, connection)  # no ids: no query, no write
        assert RECEIVABLES.sums(site, connection, "payment_allocations", "invoice_id", []) == {}
        assert RECEIVABLES.parties_of(site, connection) == set()
