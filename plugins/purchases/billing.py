"""Bills from purchase orders: all that is left to bill, or part of each line.

What is left to bill on an order line is its quantity less the quantities of the bill
lines made from it (``source_line_id``) on live bills that are not cancelled, read with
one set-based query over the bills' lines joined to the bills. A conversion refuses more
than that, and every save of a bill checks it again (``over_billed``), so editing a bill's
lines by hand cannot bill more than was ordered either.

A partial bill keeps each chosen line as it is ordered except its quantity; an amount
discount is shared out in proportion (rounded half up to the currency's digits, so the
bills' discounts may differ from the order's by a cent). A group's shipping goes on the
first bill that bills any of its lines. Comment lines go with their group.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

import sqlalchemy as sa

from core.apps.conversion import convert
from core.kernel.errors import N_, Message, ValidationError, VetoError
from plugins.line_items import lines as line_items
from plugins.purchases.ledger import (
    BILLS,
    ORDERS,
    ZERO,
    current,
    decimal,
    lock,
    parse_amount,
    table,
)

# Quantities are stored with 6 decimals, so a line billed beyond its quantity is over by
# 0.000001 at least; SQLite sums them as floats (0.1 + 0.2 > 0.3), hence the margin.
HALF_A_STEP = Decimal("0.0000005")


def _lines_table(site, module_name: str) -> sa.Table:
    return site.tables.tables[f"{site.registry.module(module_name).table}_lines"]


def billed_quantities(site, connection, order_id: str) -> dict[str, tuple[Decimal, Decimal]]:
    """order line id -> (quantity ordered, quantity billed) for the order's priced lines.
    One query: the order's lines left-joined to the sums of their bill lines on live bills
    that are not cancelled."""
    order_lines, bill_lines = _lines_table(site, ORDERS), _lines_table(site, BILLS)
    bills = table(site, BILLS)
    billed = sa.select(bill_lines.c.source_line_id,
                       sa.func.sum(bill_lines.c.quantity).label("billed")) \
        .join(bills, bills.c.id == bill_lines.c.record_id) \
        .where(bills.c.deleted.is_(False), bills.c.cancelled.is_not(True),
               bill_lines.c.source_line_id.in_(
                   sa.select(order_lines.c.id).where(order_lines.c.record_id == order_id))) \
        .group_by(bill_lines.c.source_line_id).subquery()
    stmt = sa.select(order_lines.c.id, order_lines.c.quantity,
                     sa.func.coalesce(billed.c.billed, 0).label("billed")) \
        .outerjoin(billed, billed.c.source_line_id == order_lines.c.id) \
        .where(order_lines.c.record_id == order_id, order_lines.c.kind != "comment")
    return {row.id: (decimal(row.quantity), decimal(row.billed))
            for row in connection.execute(current(connection, stmt))}


def left_to_bill(site, connection, order_id: str) -> dict[str, Decimal]:
    """order line id -> the quantity still to bill (never below 0)."""
    return {line_id: max(ordered - billed, ZERO)
            for line_id, (ordered, billed) in billed_quantities(site, connection,
                                                                order_id).items()}


def bill_from_order(site, user, order_id: str,
                    quantities: Mapping[str, object] | None = None) -> dict:
    """Create a bill from purchase order ``order_id`` in one transaction; returns it.

    ``quantities`` ({order line id: quantity}) bills part of the order: lines not named
    are left out, quantities may not exceed what is left to bill. Without it, everything
    left to bill is billed. Refused (nothing written): a cancelled order, a quantity that
    is not a number, negative or above what is left, an unknown line, nothing to bill.
    The bill copies the order's same-named fields (supplier, contact, terms, currency...)
    and points back to it; each line remembers its order line.
    """
    orders = table(site, ORDERS)
    with site.engine.begin() as connection:
        # first, so concurrent billing of one order queues here and then counts the
        # other's bill (and MariaDB's snapshot starts after the wait)
        lock(connection, orders, [order_id])
        order = site.records.get(ORDERS, order_id, user, connection=connection)
        if order.get("status") == "cancelled":
            raise VetoError(Message(N_("%(order)s is cancelled: it cannot be billed"),
                                    order=order.get("number")))
        items = site.records.feature_data("line_items", ORDERS, order_id, user, connection=connection)
        quantities_ordered = billed_quantities(site, connection, order_id)
        chosen = _chosen(order, items, quantities_ordered, quantities)
        groups = _bill_groups(items, chosen, quantities_ordered, items.digits)
        return convert(site, user, ORDERS, order_id, BILLS,
                       values={"purchase_order_id": order_id}, lines=lambda _: groups,
                       connection=connection)


def _chosen(order: Mapping, items: line_items.LineItems,
            quantities_ordered: Mapping[str, tuple[Decimal, Decimal]],
            quantities: Mapping[str, object] | None) -> dict[str, Decimal]:
    """order line id -> the quantity to bill, checked; ValidationError keyed by line id."""
    left = {i: max(o - b, ZERO) for i, (o, b) in quantities_ordered.items()}
    number = order.get("number")
    if quantities is None:
        chosen = {i: q for i, q in left.items() if q > 0}
        if not chosen:
            raise ValidationError({"quantities": Message(
                N_("%(order)s has nothing left to bill"), order=number)})
        return chosen
    names = {line.id: line.name for line in items.lines}
    errors, chosen = {}, {}
    for line_id, value in quantities.items():
        line_id = str(line_id)
        if line_id not in left:
            errors[line_id] = Message(N_("%(line)s is not a priced line of %(order)s"),
                                      line=repr(line_id), order=number)
            continue
        quantity = ZERO if value is None or str(value).strip() == "" else parse_amount(value)
        if quantity is None:
            errors[line_id] = Message(N_("%(value)s is not a number"), value=repr(value))
            continue
        if quantity < 0:
            errors[line_id] = Message(N_("%(line)s: the quantity must not be negative"),
                                      line=names.get(line_id))
        elif quantity > left[line_id]:
            errors[line_id] = Message(
                N_("billing %(quantity)s of %(line)s is more than the %(left)s left to bill "
                   "on %(order)s"), quantity=plain(quantity), line=names.get(line_id),
                left=plain(left[line_id]), order=number)
        elif quantity > 0:
            chosen[line_id] = quantity
    if errors:
        raise ValidationError(errors)
    if not chosen:
        raise ValidationError({"quantities": Message(
            N_("choose a quantity to bill on at least one line of %(order)s"), order=number)})
    return chosen


def plain(number: Decimal) -> str:
    """2.000000 -> 2, 2.50 -> 2.5: quantities as people write them."""
    number = decimal(number)
    number = number.quantize(Decimal(1)) if number == number.to_integral() else number.normalize()
    return f"{number:f}"


def _bill_groups(items: line_items.LineItems, chosen: Mapping[str, Decimal],
                 quantities_ordered: Mapping[str, tuple[Decimal, Decimal]],
                 places: int) -> list[dict]:
    """The order's groups as the bill's lines: the chosen lines with their quantities."""
    groups = []
    for group in items.groups:
        priced = [line for line in group.lines if line.kind != "comment"]
        billed = [line for line in priced if line.id in chosen]
        if not billed:
            continue
        # shipping once per group: on the first bill of any of its lines
        untouched = all(quantities_ordered[line.id][1] == 0 for line in priced)
        lines = []
        for line in group.lines:
            if line.kind == "comment":
                lines.append(line.as_copy())
            elif line.id in chosen:
                lines.append(_partial(line, chosen[line.id], places))
        groups.append({"name": group.name,
                       "shipping": group.shipping if untouched else ZERO,
                       "shipping_tax_code_id": group.shipping_tax_code_id, "lines": lines})
    return groups


def _partial(line: line_items.Line, quantity: Decimal, places: int) -> dict:
    copy = line.as_copy() | {"quantity": quantity}
    if line.discount_kind == "amount" and line.discount_value and line.quantity and \
            quantity != line.quantity:
        copy["discount_value"] = line_items.money(
            line.discount_value * quantity / line.quantity, places)
    return copy


# -- the check on every save of a bill -----------------------------------------------------

def over_billed(site, connection, bill_ids: list[str]) -> list[Message]:
    """Order lines the bills' lines come from that are now billed beyond their quantity,
    as messages (empty: all is well). One query over the bills' lines, after locking the
    orders concerned, so two bills of one order are checked one after the other."""
    if not bill_ids:
        return []
    order_lines, bill_lines = _lines_table(site, ORDERS), _lines_table(site, BILLS)
    orders, bills = table(site, ORDERS), table(site, BILLS)
    sources = sa.select(bill_lines.c.source_line_id).where(
        bill_lines.c.record_id.in_(bill_ids), bill_lines.c.source_line_id.is_not(None))
    order_ids = connection.execute(sa.select(order_lines.c.record_id).distinct()
                                   .where(order_lines.c.id.in_(sources))).scalars().all()
    if not order_ids:
        return []
    lock(connection, orders, order_ids)
    total = sa.func.sum(bill_lines.c.quantity)
    stmt = sa.select(orders.c.number, order_lines.c.name, order_lines.c.quantity,
                     total.label("billed")) \
        .select_from(order_lines.join(orders, orders.c.id == order_lines.c.record_id)
                     .join(bill_lines, bill_lines.c.source_line_id == order_lines.c.id)
                     .join(bills, bills.c.id == bill_lines.c.record_id)) \
        .where(order_lines.c.id.in_(sources), bills.c.deleted.is_(False),
               bills.c.cancelled.is_not(True)) \
        .group_by(order_lines.c.id, orders.c.number, order_lines.c.name,
                  order_lines.c.quantity) \
        .having(total - order_lines.c.quantity > HALF_A_STEP) \
        .order_by(orders.c.number, order_lines.c.name)
    return [Message(N_("%(line)s on %(order)s: %(billed)s billed is more than the "
                       "%(ordered)s ordered"), line=row.name, order=row.number,
                    billed=plain(decimal(row.billed)), ordered=plain(decimal(row.quantity)))
            for row in connection.execute(current(connection, stmt))]
