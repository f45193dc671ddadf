"""Sales orders: what an account has ordered, invoiced in one go or in parts.

Provides the ``sales_orders`` module (modules/sales_orders.yaml, with line items and the six
order statuses of 1CRM) and:

- **partial invoicing**: ``invoice_order`` makes an invoice of chosen quantities of the
  order's lines, never more than is left to invoice. What is left is counted from the
  invoices' lines that were copied from the order's (``source_line_id``), cancelled and
  deleted invoices not counting — one query, however many invoices there are.
- ``amount_invoiced`` on the order, kept up to date whenever one of its invoices is saved.
- the "Invoice" button and page (quantities per line, prefilled with what is left).
"""
from __future__ import annotations

from decimal import Decimal, InvalidOperation

import sqlalchemy as sa
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps import conversion
from core.apps.documents import printing
from core.kernel.errors import N_, CrbmError, Message, NotFoundError, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.actions import Action
from core.web.pages import page
from core.web.templating import flash

__version__ = "0.1.0"

ZERO = Decimal(0)


class InvoicingError(CrbmError):
    """Invoicing an order was refused (the message says why)."""


def _tables(site):
    orders = site.registry.module("sales_orders")
    invoices = site.registry.module("invoices")
    t = site.tables.tables
    return t[f"{orders.table}_lines"], t[invoices.table], t[f"{invoices.table}_lines"]


def left_to_invoice(site, order_id: str, connection) -> dict[str, Decimal]:
    """Line id -> quantity not yet invoiced, for the order's product and service lines."""
    order_lines, invoices, invoice_lines = _tables(site)
    invoiced = (sa.select(invoice_lines.c.source_line_id,
                          sa.func.sum(invoice_lines.c.quantity).label("quantity"))
                .join(invoices, invoices.c.id == invoice_lines.c.record_id)
                .where(invoices.c.sales_order_id == order_id, invoices.c.deleted.is_(False),
                       sa.or_(invoices.c.cancelled.is_(False), invoices.c.cancelled.is_(None)))
                .group_by(invoice_lines.c.source_line_id).subquery())
    rows = connection.execute(
        sa.select(order_lines.c.id, order_lines.c.quantity, invoiced.c.quantity.label("done"))
        .outerjoin(invoiced, invoiced.c.source_line_id == order_lines.c.id)
        .where(order_lines.c.record_id == order_id, order_lines.c.kind != "comment"))
    return {row.id: _decimal(row.quantity) - _decimal(row.done) for row in rows}


def _decimal(value) -> Decimal:
    if value is None:
        return ZERO
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def invoice_order(site, user, order_id: str, quantities: dict[str, object] | None = None,
                  values: dict | None = None) -> dict:
    """An invoice for ``quantities`` (order line id -> quantity; None: all that is left).

    Refused, with nothing written, when a quantity is negative, not a number, or more than
    is left of its line, or when the invoice would be empty."""
    order = site.records.get("sales_orders", order_id, user)
    with site.engine.begin() as conn:
        left = left_to_invoice(site, order_id, conn)
        wanted = dict(left) if quantities is None else {}
        errors = {}
        for line_id, raw in (quantities or {}).items():
            if line_id not in left:
                errors[f"line {line_id}"] = Message(N_("is not a line of %(number)s"),
                                                    number=order["number"])
                continue
            try:
                quantity = Decimal(str(raw).strip() or "0")
            except InvalidOperation:
                errors[line_id] = Message(N_("%(value)s is not a number"), value=repr(raw))
                continue
            if quantity < 0:
                errors[line_id] = Message(N_("must not be negative"))
            elif quantity > left[line_id]:
                errors[line_id] = Message(
                    N_("%(quantity)s is more than the %(left)s left to invoice"),
                    quantity=quantity, left=left[line_id].normalize())
            else:
                wanted[line_id] = quantity
        if errors:
            raise ValidationError(errors)
        if not any(q > 0 for q in wanted.values()):
            raise InvoicingError(Message(N_("Nothing is left to invoice on %(number)s."),
                                         number=order["number"]))
        first = _invoice_count(site, order_id, conn) == 0

        def chosen_lines(items):
            groups = []
            for group in items.groups:
                lines = []
                for line in group.lines:
                    if line.kind == "comment":
                        lines.append(line.as_copy())
                    elif wanted.get(line.id, ZERO) > 0:
                        lines.append(line.as_copy() | {"quantity": wanted[line.id]})
                if any(line["kind"] != "comment" for line in lines):
                    copy = group.as_input() | {"lines": lines}
                    if not first:  # shipping is charged once, on the order's first invoice
                        copy["shipping"] = ZERO
                    groups.append(copy)
            return groups

        link = {"sales_order_id": order_id, "quote_id": order.get("quote_id")}
        return conversion.convert(site, user, "sales_orders", order_id, "invoices",
                                  values=link | dict(values or {}), lines=chosen_lines,
                                  connection=conn)


def _invoice_count(site, order_id: str, conn) -> int:
    _, invoices, _ = _tables(site)
    return conn.execute(sa.select(sa.func.count()).where(
        invoices.c.sales_order_id == order_id, invoices.c.deleted.is_(False))).scalar()


@hookimpl
@for_modules("invoices")
def crbm_after_save(site, module, batch, connection):
    """An order's ``amount_invoiced`` follows its invoices (``records.set_derived`` in the
    same transaction: it is derived, and a record update would run the order's hooks
    again)."""
    order_ids = {c.record.get("sales_order_id") for c in batch} - {None}
    order_ids |= {c.changes["sales_order_id"][0] for c in batch
                  if "sales_order_id" in c.changes} - {None}
    if order_ids:
        _update_amount_invoiced(site, order_ids, connection)


@hookimpl
@for_modules("invoices")
def crbm_after_delete(site, module, records, connection):
    order_ids = {r.get("sales_order_id") for r in records} - {None}
    if order_ids:
        _update_amount_invoiced(site, order_ids, connection)


def _update_amount_invoiced(site, order_ids: set[str], connection) -> None:
    orders = site.tables.tables[site.registry.module("sales_orders").table]
    _, invoices, _ = _tables(site)
    total = (sa.select(sa.func.coalesce(sa.func.sum(invoices.c.amount), 0))
             .where(invoices.c.sales_order_id == orders.c.id, invoices.c.deleted.is_(False),
                    sa.or_(invoices.c.cancelled.is_(False), invoices.c.cancelled.is_(None)))
             .scalar_subquery())
    rows = connection.execute(sa.select(orders.c.id, total, orders.c.amount_currency)
                              .where(orders.c.id.in_(sorted(order_ids))))
    site.records.set_derived("sales_orders", {
        i: {"amount_invoiced": amount, "amount_invoiced_currency": code}
        for i, amount, code in rows}, connection=connection, reason="invoiced")


# -- web -----------------------------------------------------------------------------------

@hookimpl
@for_modules("sales_orders")
def crbm_record_actions(site, module, record, user):
    if not site.access.can(
            user, site.registry.module("invoices"), "edit"):
        return []
    return [Action(N_("Create invoice"), f"/sales_orders/{record['id']}/invoice", primary=True)]


@page()
def invoice_view(request, form):
    site, user = request.app.state.site, request.state.user
    order_id = request.path_params["record_id"]
    try:
        order = site.records.get("sales_orders", order_id, user)
    except NotFoundError:
        return RedirectResponse("/m/sales_orders", 303)
    items = site.records.feature_data("line_items", "sales_orders", order_id, user)
    with site.engine.connect() as conn:
        left = left_to_invoice(site, order_id, conn)
    errors, posted = {}, {}
    if form is not None:
        posted = {line_id: str(form.get(f"qty-{line_id}", "")) for line_id in left}
        try:
            invoice = invoice_order(site, user, order_id, posted)
        except ValidationError as exc:
            errors = exc.errors
        except InvoicingError as exc:
            errors = {"": exc.args[0]}
        else:
            flash(request, Message(N_("%(number)s created from %(order)s."),
                                   number=invoice.get("number"), order=order["number"]))
            return RedirectResponse(f"/m/invoices/{invoice['id']}", 303)
    return request.app.state.templates.render(
        request, "sales_order_invoice.html", status=422 if errors else 200, order=order,
        items=items, left=left, posted=posted, errors=errors)


PDF_LABELS = {  # what its documents print around the figures (core.apps.documents.printing.LABELS)
    "order_date": N_("Order date"),
    "purchase_order": N_("Your PO"),
}

@hookimpl
def crbm_pdf_context(context, fmt):
    printing.add_labels(context, fmt, PDF_LABELS)

@hookimpl
def crbm_web_routes(site):
    return [Route("/sales_orders/{record_id}/invoice", invoice_view, methods=["GET", "POST"])]


@hookimpl
def crbm_api_actions(site):
    """Actions on these records through the REST API (api_actions.py)."""
    from plugins.sales_orders import api_actions

    return api_actions.actions()
