"""Service subcontracts and supported products (user guide "Customer Service"; the
implementation guide's service contract model): the modules are YAML (modules/); this file
checks their dates, keeps a supported product on its subcontract's account, and registers
the expiry reminders (reminders.py) and the demo data (demo.py).

Settings: ``crbm settings set service_contracts.reminder_days 30`` — days before the end date
the account manager is reminded (0: never).
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from plugins.service_contracts import reminders

__version__ = "0.1.0"
SUBCONTRACTS, ASSETS = "subcontracts", "supported_products"


@hookimpl(specname="crbm_before_save")
@for_modules(SUBCONTRACTS)
def before_saving_subcontracts(site, module, batch, user, connection) -> None:
    """A subcontract ends on or after the day it starts."""
    errors = _Errors(len(batch))
    for index, change in enumerate(batch):
        start, end = change.record.get("date_start"), change.record.get("date_end")
        if start and end and end < start:
            errors.add(index, "date_end", Message(N_("The end date is before the start date.")))
    errors.raise_any()


@hookimpl(specname="crbm_before_save")
@for_modules(ASSETS)
def before_saving_assets(site, module, batch, user, connection) -> None:
    """A supported product is covered only by a subcontract of its own account (one read
    for the batch)."""
    wanted = {c.record.get("subcontract_id") for c in batch} - {None}
    if not wanted:
        return
    table = site.records.table(site.registry.module(SUBCONTRACTS))
    owners = dict(connection.execute(sa.select(table.c.id, table.c.account_id)
                                     .where(table.c.id.in_(sorted(wanted)))).all())
    errors = _Errors(len(batch))
    for index, change in enumerate(batch):
        contract = change.record.get("subcontract_id")
        if contract and owners.get(contract) not in (None, change.record.get("account_id")):
            errors.add(index, "subcontract_id",
                       Message(N_("This subcontract belongs to another account.")))
    errors.raise_any()


class _Errors(dict):
    """Problems keyed by field, prefixed with the row when a write has several records."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def add(self, index: int, name: str, message: Message) -> None:
        self[name if self.size == 1 else f"row {index + 1}: {name}"] = message

    def raise_any(self) -> None:
        if self:
            raise ValidationError(dict(self))


@hookimpl
def crbm_tables(metadata):
    reminders.tables(metadata)


@hookimpl
def crbm_scheduled_tasks(site):
    return reminders.scheduled_tasks()


@hookimpl(specname="crbm_demo_data", trylast=True)  # after the accounts and products
def service_contracts_demo_data(site, user, size, rng, progress):
    from plugins.service_contracts import demo

    demo.load(site, user, size, rng, progress)
