"""The sub-ledger both sides of the books share: what each document still owes, what
each payment has left to allocate and a party's balance, kept through the record service.

No modules and no hooks of its own: ``ledger.py`` is a library the invoices plugin
(receivables: invoices, payments, allocations, credit notes, ``balance_receivable``) and
the purchases plugin (payables: bills, bill payments, allocations, ``balance_payable``)
each configure with their module and field names. A folder of its own so that neither
imports the other.
"""
from __future__ import annotations

__version__ = "0.1.0"
