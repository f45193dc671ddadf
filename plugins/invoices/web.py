"""The invoice and payment pages: buttons on their detail pages and the pages behind them.

- an invoice: "Record payment" (a form prefilled with the account's amount due; saving it
  writes the payment and its allocation together) and "Credit note" (the whole invoice,
  after a confirmation);
- a payment: "Allocate" (the account's open invoices in the payment's currency, an amount
  box each; saving allocates them all or, if any is refused, nothing): the sub-ledger's
  page (plugins/subledger/allocate.py), configured here.

Every refusal is shown beside what caused it, with nothing saved.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message, ValidationError
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash
from plugins.line_items.lines import digits as site_digits
from plugins.line_items.lines import money
from plugins.subledger.allocate import AllocatePage

from . import api, rules
from .figures import RECEIVABLES, decimal


def invoice_actions(site, record: dict, user) -> list[Action]:
    registry = site.registry
    actions = []
    owes = not record.get("cancelled") and decimal(record.get("amount_due")) > 0
    if owes and site.access.can(user, registry.module("payments"), "edit"):
        actions.append(Action(N_("Record payment"), f"/invoices/{record['id']}/payment",
                              primary=True))
    if owes and site.access.can(user, registry.module("credit_notes"), "edit"):
        actions.append(Action(N_("Credit note"), f"/invoices/{record['id']}/credit-note",
                              post=True, confirm=N_("Credit the whole invoice?")))
    return actions


def _allocated(payment: dict, made: list[dict]) -> Message:
    return Message(N_("%(payment)s allocated to %(invoices)s."), payment=payment["number"],
                   invoices=", ".join(a["name"].rsplit(" > ", 1)[-1] for a in made))


# "Allocate" on a payment: the sub-ledger's one page and API action, in the invoices' words
ALLOCATE = AllocatePage(
    RECEIVABLES, api.open_invoices, api.allocate, api.parse_amount, _allocated,
    "invoice_date", N_("Type how much of this payment goes to each invoice. Allocations are "
                       "saved all together, or not at all."),
    N_("Type an amount for at least one invoice."),
    N_("This account has no open invoices in this currency."))
payment_actions = ALLOCATE.buttons

ACTIONS = {"invoices": invoice_actions, "payments": payment_actions}  # plugin.py hooks them


def record_actions(site, module, record: dict, user) -> list[Action]:
    """The buttons this plugin adds to a record of ``module``."""
    actions = ACTIONS.get(module.name)
    return actions(site, record, user) if actions else []


def _require(request: Request, module_name: str, what: str) -> None:
    """The user's roles must let them create records of ``module_name`` (403 otherwise)."""
    site = request.app.state.site
    if not site.access.can(request.state.user, site.registry.module(module_name), "edit"):
        raise HTTPException(403, Message(N_("You are not allowed to %(what)s here."),
                                         what=what))


def _render(request: Request, name: str, status: int = 200, **context):
    return request.app.state.templates.render(request, name, status=status, **context)


@page()
def payment_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    _require(request, "payments", N_("record payments"))
    invoice_id = request.path_params["record_id"]
    invoice = site.records.get("invoices", invoice_id, user, labels=True)
    method = site.registry.module("payments").fields["payment_method"]
    errors = {}
    code = invoice["amount_currency"]
    due = money(decimal(invoice.get("amount_due")), site_digits(site, code))
    values = {"amount": str(due), "payment_date": rules.today().isoformat(),
              "payment_method": "", "reference": ""}
    if form is not None:
        values = {name: str(form.get(name, "")).strip() for name in values}
        try:
            payment, _ = api.record_payment(site, user, invoice_id, {
                name: value or None for name, value in values.items()})
        except ValidationError as exc:
            errors = exc.errors
        else:
            flash(request, Message(N_("%(payment)s recorded for %(invoice)s."),
                                   payment=payment["number"], invoice=invoice["number"]))
            return RedirectResponse(f"/m/payments/{payment['id']}", 303)
    known = {"amount", "payment_date", "payment_method", "reference"}
    general = [message for key, message in errors.items() if key not in known]
    return _render(request, "invoices_record_payment.html", status=422 if errors else 200,
                   invoice=invoice, values=values, errors=errors, general=general,
                   methods=site.registry.choices(method))


@page()
def credit_note_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    _require(request, "credit_notes", N_("create credit notes"))
    invoice_id = request.path_params["record_id"]
    try:
        note = api.credit_invoice(site, user, invoice_id)
    except ValidationError as exc:
        flash(request, next(iter(exc.errors.values())), "error")
        return RedirectResponse(f"/m/invoices/{invoice_id}", 303)
    flash(request, Message(N_("%(note)s created."), note=note["number"]))
    return RedirectResponse(f"/m/credit_notes/{note['id']}", 303)


routes = [
    ALLOCATE.route(),
    Route("/invoices/{record_id}/payment", payment_view, methods=["GET", "POST"]),
    Route("/invoices/{record_id}/credit-note", credit_note_view, methods=["POST"]),
]
