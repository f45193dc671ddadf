"""The purchase pages: buttons on detail pages and the pages behind them.

- a purchase order: "Create bill" (a quantity per line, prefilled with what is left to
  bill; saving makes the bill) while the order is not cancelled and has something left;
- a bill payment: "Allocate" (the supplier's open bills in the payment's currency, an
  amount box each; saving allocates them all or, if any is refused, nothing): the
  sub-ledger's page (plugins/subledger/allocate.py), configured here.

Every refusal is shown beside what caused it, with nothing saved.
"""
from __future__ import annotations

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message, ValidationError, VetoError
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash
from plugins.purchases import billing, ledger
from plugins.purchases.ledger import BILLS, ORDERS
from plugins.subledger.allocate import AllocatePage


def order_actions(site, record: dict, user) -> list[Action]:
    if record.get("status") == "cancelled" or \
            not site.access.can(user, site.registry.module(BILLS), "edit"):
        return []
    with site.engine.connect() as connection:
        left = billing.left_to_bill(site, connection, record["id"])
    if any(quantity > 0 for quantity in left.values()):
        return [Action(N_("Create bill"), f"/purchase_orders/{record['id']}/bill",
                       primary=True)]
    return []


def _allocated(payment: dict, made: list[dict]) -> Message:
    return Message(N_("%(payment)s allocated to %(count)s bills."),
                   payment=payment["number"], count=len(made))


# "Allocate" on a bill payment: the sub-ledger's one page and API action, in the bills' words
ALLOCATE = AllocatePage(
    ledger.PAYABLES, ledger.open_bills, ledger.allocate_bill_payment, ledger.parse_amount,
    _allocated, "supplier_invoice_no",
    intro=N_("Type how much of this payment goes to each bill. Allocations are saved all "
             "together, or not at all."), none_typed=N_("Type an amount for at least one bill."),
    none_open=N_("This supplier has no open bills in this currency."))
payment_actions = ALLOCATE.buttons


ACTIONS = {ORDERS: order_actions, ledger.PAYMENTS: payment_actions}  # plugin.py hooks them


def record_actions(site, module, record: dict, user) -> list[Action]:
    """The buttons this plugin adds to a record of ``module``."""
    actions = ACTIONS.get(module.name)
    return actions(site, record, user) if actions else []


def _render(request: Request, name: str, status: int = 200, **context):
    return request.app.state.templates.render(request, name, status=status, **context)


@page()
def bill_view(request: Request, form):
    site, user = request.app.state.site, request.state.user
    order_id = request.path_params["record_id"]
    order = site.records.get(ORDERS, order_id, user, labels=True)
    if not site.access.can(user, site.registry.module(BILLS), "edit"):
        raise HTTPException(403, Message(N_("You are not allowed to create bills.")))
    if order.get("status") == "cancelled":
        flash(request, Message(N_("%(order)s is cancelled: it cannot be billed"),
                               order=order["number"]), "error")
        return RedirectResponse(f"/m/{ORDERS}/{order_id}", 303)
    items = site.records.feature_data("line_items", ORDERS, order_id, user)
    with site.engine.connect() as connection:
        quantities = billing.billed_quantities(site, connection, order_id)
    left = {line_id: max(ordered - billed, ledger.ZERO)
            for line_id, (ordered, billed) in quantities.items()}
    errors, posted = {}, {}
    if form is not None:
        posted = {line_id: str(form.get(f"qty-{line_id}", "")).strip() for line_id in left}
        try:
            bill = billing.bill_from_order(site, user, order_id, posted)
        except ValidationError as exc:
            errors = exc.errors
        except VetoError as exc:
            errors = {"": exc.args[0]}
        else:
            flash(request, Message(N_("%(number)s created from %(order)s."),
                                   number=bill["number"], order=order["number"]))
            return RedirectResponse(f"/m/{BILLS}/{bill['id']}", 303)
    general = [message for key, message in errors.items() if key not in left]
    return _render(request, "purchases_bill.html", status=422 if errors else 200,
                   order=order, items=items, left=left, posted=posted, errors=errors,
                   general=general, plain=billing.plain)


routes = [
    Route("/purchase_orders/{record_id}/bill", bill_view, methods=["GET", "POST"]),
    ALLOCATE.route(),
]
