"""Line items: groups of priced lines on a record, and the arithmetic of their totals.

The ``line_items`` plugin's model (``plugin.py`` registers it as the module feature
``line_items``, ``crbm_module_features``). A module gets line items by declaring the
feature in its metadata (and its plugin ``requires: line_items`` in ``plugin.yaml``)::

    features:
      line_items:
        catalog: products         # the module a line's product_id points to (optional)
        tax_codes: tax_codes      # the module a line's tax_code_id points to (optional)
        negative_quantities: false

The feature then adds the total fields (``subtotal``, ``discount_total``, ``shipping_total``,
``tax_total`` and ``amount``, currency fields that only this capability writes; the
document's currency is ``amount_currency``) and two tables, ``<table>_line_groups`` and
``<table>_lines``. Writers pass the lines as the value ``line_items`` of a record (a list
of groups, see ``parse``) to ``RecordService.create``/``update``: lines, totals and the
record are written in one transaction, and the lifecycle hooks see the totals.

**The money rule.** Every amount is a ``Decimal`` rounded half up (0.005 -> 0.01) to the
document currency's digits, at each step of each line, and only then summed:

1. extended price = round(quantity x unit price)
2. discount = round(extended x percent / 100), or the amount given (at most the extended)
3. net = extended - discount
4. each tax rate of the line's tax code, in the code's order: round(base x percent / 100),
   where the base is the net, plus, for a *compound* rate, the line's taxes before it
5. a group's shipping is taxed the same way with the group's shipping tax code
6. group: subtotal = sum of extended, discount = sum of discounts, tax per rate = sum of
   its line (and shipping) taxes, total = net + shipping + taxes; the document sums its
   groups the same way.

So a printed document always adds up: every figure on it is the sum of the rounded figures
above it. The rates are the tax codes' when the lines are saved, and each line keeps them
(name, percent, amount), so a later change of rates leaves issued documents as they were.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

import sqlalchemy as sa
from babel import numbers

from core.apps.field_types.types import CURRENCY_SETTING, default_currency  # noqa: F401
from core.kernel.errors import N_, Message, ValidationError

KINDS = ("product", "service", "comment")
DISCOUNT_KINDS = ("percent", "amount")
MAX_LINES = 5_000  # per record: a document, not a data dump
MAX_AMOUNT = Decimal(10) ** 18
ZERO = Decimal(0)

# Fields the capability adds to the module (read-only everywhere else): name -> label.
TOTAL_FIELDS = {
    "subtotal": N_("Subtotal"),
    "discount_total": N_("Discount"),
    "shipping_total": N_("Shipping"),
    "tax_total": N_("Tax"),
    "amount": N_("Total"),
}
CURRENCY_FIELD = "amount_currency"  # the document's currency
# A new document starts in the site's default currency (``default_currency``): the setting
# the currency field type owns ({"default": "EUR"}; Admin → Order management).


@dataclass(frozen=True)
class TaxRate:
    """One rate of a tax code (``crbm_tax_rates`` answers with these)."""

    name: str
    percent: Decimal
    compound: bool = False
    id: str | None = None


@dataclass(frozen=True)
class TaxAmount:
    name: str
    percent: Decimal
    amount: Decimal
    compound: bool = False


@dataclass
class Line:
    kind: str = "product"
    name: str | None = None
    quantity: Decimal = Decimal(1)
    unit_price: Decimal = ZERO
    list_price: Decimal | None = None
    cost: Decimal | None = None
    discount_kind: str | None = None
    discount_value: Decimal | None = None
    tax_code_id: str | None = None
    product_id: str | None = None
    part_number: str | None = None
    description: str | None = None
    # the line this one was converted from (an order's line, on its invoice): conversions
    # count what is left to invoice or ship by it
    source_line_id: str | None = None
    id: str | None = None
    # worked out by compute()
    ext_price: Decimal = ZERO
    discount: Decimal = ZERO
    net_price: Decimal = ZERO
    taxes: list[TaxAmount] = field(default_factory=list)

    @property
    def tax(self) -> Decimal:
        return sum((t.amount for t in self.taxes), ZERO)

    def as_input(self) -> dict:
        """The line as ``parse`` takes it (to copy lines into another record)."""
        return {k: getattr(self, k) for k in INPUT_FIELDS}

    def as_copy(self) -> dict:
        """The line as input for another record, remembering where it came from."""
        return self.as_input() | {"source_line_id": self.id}


INPUT_FIELDS = ("kind", "name", "quantity", "unit_price", "list_price", "cost", "discount_kind",
                "discount_value", "tax_code_id", "product_id", "part_number", "description",
                "source_line_id")


@dataclass
class Group:
    name: str | None = None
    shipping: Decimal = ZERO
    shipping_tax_code_id: str | None = None
    lines: list[Line] = field(default_factory=list)
    id: str | None = None
    # worked out by compute()
    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    net: Decimal = ZERO
    shipping_taxes: list[TaxAmount] = field(default_factory=list)
    taxes: list[TaxAmount] = field(default_factory=list)
    total: Decimal = ZERO

    @property
    def tax(self) -> Decimal:
        return sum((t.amount for t in self.taxes), ZERO)

    def as_input(self) -> dict:
        return {"name": self.name, "shipping": self.shipping,
                "shipping_tax_code_id": self.shipping_tax_code_id,
                "lines": [line.as_input() for line in self.lines]}


@dataclass
class Totals:
    subtotal: Decimal = ZERO
    discount: Decimal = ZERO
    net: Decimal = ZERO
    shipping: Decimal = ZERO
    taxes: list[TaxAmount] = field(default_factory=list)
    total: Decimal = ZERO
    cost: Decimal = ZERO  # of the lines that have one

    @property
    def tax(self) -> Decimal:
        return sum((t.amount for t in self.taxes), ZERO)

    @property
    def margin_percent(self) -> Decimal | None:
        """Gross margin of the net amount, in percent; None when nothing is sold."""
        if not self.net:
            return None
        return ((self.net - self.cost) * 100 / self.net).quantize(Decimal("0.01"), ROUND_HALF_UP)


@dataclass
class LineItems:
    """A record's groups of lines with their totals, in one currency."""

    currency: str
    digits: int
    groups: list[Group] = field(default_factory=list)
    totals: Totals = field(default_factory=Totals)

    @property
    def lines(self) -> list[Line]:
        return [line for group in self.groups for line in group.lines]

    def as_input(self) -> list[dict]:
        return [group.as_input() for group in self.groups]

    def as_copy(self) -> list[dict]:
        """The groups as input for another record (a conversion), lines remembering their
        source line."""
        return [group.as_input() | {"lines": [line.as_copy() for line in group.lines]}
                for group in self.groups]

    def total_values(self) -> dict:
        """The record's total fields, as the capability writes them."""
        t = self.totals
        values = {"subtotal": t.subtotal, "discount_total": t.discount,
                  "shipping_total": t.shipping, "tax_total": t.tax, "amount": t.total}
        values |= {f"{name}_currency": self.currency for name in TOTAL_FIELDS}
        return values


# -- arithmetic ------------------------------------------------------------------------------

def money(value: Decimal, digits: int) -> Decimal:
    """Round half up to ``digits`` places (the one rounding rule of line items)."""
    return value.quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP)


def digits(site, code: str) -> int:
    """How many digits amounts in ``code`` keep on this site: its own figure
    (``crbm_currency_digits``, the pricing plugin's currencies), else ISO 4217's."""
    return currency_digits(code, site.hook.crbm_currency_digits(site=site, code=code))


def currency_digits(code: str, site_answer: int | None = None) -> int:
    """The site's figure for ``code`` if it has one, else ISO 4217's (via Babel)."""
    if site_answer is not None:
        return int(site_answer)
    return numbers.get_currency_precision(code)


def _taxes(base: Decimal, rates: Iterable[TaxRate], digits: int) -> list[TaxAmount]:
    out: list[TaxAmount] = []
    for rate in rates:
        taxed = base + sum((t.amount for t in out), ZERO) if rate.compound else base
        out.append(TaxAmount(rate.name, rate.percent, money(taxed * rate.percent / 100, digits),
                             rate.compound))
    return out


def _sum_taxes(taxes: Iterable[TaxAmount]) -> list[TaxAmount]:
    """Taxes added up per rate (name and percent), in the order they first appear."""
    summed: dict[tuple[str, Decimal], TaxAmount] = {}
    for tax in taxes:
        key = (tax.name, tax.percent)
        seen = summed.get(key)
        summed[key] = tax if seen is None else \
            TaxAmount(tax.name, tax.percent, seen.amount + tax.amount, tax.compound)
    return list(summed.values())


def compute(groups: list[Group], rates: Mapping[str, list[TaxRate]], currency: str,
            digits: int) -> LineItems:
    """Work out every line, group and document figure (see the module's money rule)."""
    totals = Totals()
    all_taxes: list[TaxAmount] = []
    for group in groups:
        group_taxes: list[TaxAmount] = []
        group.subtotal = group.discount = group.net = ZERO
        for line in group.lines:
            if line.kind == "comment":
                line.ext_price = line.discount = line.net_price = ZERO
                line.taxes = []
                continue
            line.ext_price = money(line.quantity * line.unit_price, digits)
            if line.discount_kind == "percent" and line.discount_value:
                line.discount = money(line.ext_price * line.discount_value / 100, digits)
            elif line.discount_kind == "amount" and line.discount_value:
                line.discount = money(line.discount_value, digits)
            else:
                line.discount = ZERO
            line.net_price = line.ext_price - line.discount
            line.taxes = _taxes(line.net_price, rates.get(line.tax_code_id, ()), digits) \
                if line.tax_code_id else []
            group.subtotal += line.ext_price
            group.discount += line.discount
            group.net += line.net_price
            group_taxes += line.taxes
            if line.cost is not None:
                totals.cost += money(line.quantity * line.cost, digits)
        group.shipping = money(group.shipping or ZERO, digits)
        group.shipping_taxes = _taxes(group.shipping, rates.get(group.shipping_tax_code_id, ()),
                                      digits) if group.shipping_tax_code_id else []
        group.taxes = _sum_taxes(group_taxes + group.shipping_taxes)
        group.total = group.net + group.shipping + group.tax
        totals.subtotal += group.subtotal
        totals.discount += group.discount
        totals.net += group.net
        totals.shipping += group.shipping
        totals.total += group.total
        all_taxes += group.taxes
    totals.taxes = _sum_taxes(all_taxes)
    return LineItems(currency, digits, groups, totals)


# -- reading what writers send -----------------------------------------------------------------

def _decimal(value, where: str, what: str, errors: dict, *, blank=None) -> Decimal | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return blank
    if isinstance(value, float):
        value = repr(value)  # 0.1 stays 0.1, not 0.1000000000000000055...
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        errors[f"{where}.{what}"] = Message(N_("%(value)s is not a number"), value=repr(value))
        return blank
    if not number.is_finite() or abs(number) >= MAX_AMOUNT:
        errors[f"{where}.{what}"] = Message(N_("must be a finite number below 10^18"))
        return blank
    return number


def _text(value, limit: int) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text[:limit] or None


def _id(value) -> str | None:
    return None if value in (None, "") else str(value)


def parse(data, *, negative_quantities: bool = False) -> tuple[list[Group], dict]:
    """Groups from what a form, the API or a conversion sends::

        [{"name": "Hardware", "shipping": "10", "shipping_tax_code_id": null,
          "lines": [{"kind": "product", "name": "Widget", "quantity": "2",
                     "unit_price": "9.99", "list_price": .., "cost": ..,
                     "discount_kind": "percent", "discount_value": "10",
                     "tax_code_id": .., "product_id": .., "part_number": ..,
                     "description": ..}]}]

    Returns (groups, errors); errors are keyed ``line_items.<group>.<line>.<field>``
    (numbered from 1, as a user counts), so every problem is reported at once.
    """
    errors: dict[str, Message] = {}
    if not isinstance(data, list):
        return [], {"line_items": Message(N_("must be a list of groups"))}
    groups, count = [], 0
    for g_index, raw_group in enumerate(data, start=1):
        where = f"line_items.{g_index}"
        if not isinstance(raw_group, Mapping):
            errors[where] = Message(N_("must be a group (a mapping with lines)"))
            continue
        group = Group(name=_text(raw_group.get("name"), 255), id=_id(raw_group.get("id")),
                      shipping_tax_code_id=_id(raw_group.get("shipping_tax_code_id")))
        group.shipping = _decimal(raw_group.get("shipping"), where, "shipping", errors,
                                  blank=ZERO)
        if group.shipping < 0:
            errors[f"{where}.shipping"] = Message(N_("must not be negative"))
        raw_lines = raw_group.get("lines") or []
        if not isinstance(raw_lines, list):
            errors[f"{where}.lines"] = Message(N_("must be a list of lines"))
            raw_lines = []
        for l_index, raw in enumerate(raw_lines, start=1):
            count += 1
            group.lines.append(_parse_line(raw, f"{where}.{l_index}", negative_quantities,
                                           errors))
        groups.append(group)
    if count > MAX_LINES:
        errors["line_items"] = Message(N_("at most %(max)s lines"), max=MAX_LINES)
    return groups, errors


def _parse_line(raw, where: str, negative_quantities: bool, errors: dict) -> Line:
    if not isinstance(raw, Mapping):
        errors[where] = Message(N_("must be a line (a mapping)"))
        return Line(kind="comment")
    kind = raw.get("kind") or "product"
    if kind not in KINDS:
        errors[f"{where}.kind"] = Message(N_("%(value)s is not one of %(allowed)s"),
                                          value=repr(kind), allowed=", ".join(KINDS))
        kind = "comment"
    line = Line(kind=kind, name=_text(raw.get("name"), 255), id=_id(raw.get("id")),
                description=_text(raw.get("description"), 10_000),
                part_number=_text(raw.get("part_number"), 100),
                product_id=_id(raw.get("product_id")), tax_code_id=_id(raw.get("tax_code_id")),
                source_line_id=_id(raw.get("source_line_id")))
    if kind == "comment":
        if not line.name and not line.description:
            errors[f"{where}.name"] = Message(N_("a comment line needs some text"))
        line.quantity, line.tax_code_id = ZERO, None
        return line
    if not line.name:
        errors[f"{where}.name"] = Message(N_("is required"))
    line.quantity = _decimal(raw.get("quantity"), where, "quantity", errors, blank=Decimal(1))
    line.unit_price = _decimal(raw.get("unit_price"), where, "unit_price", errors, blank=ZERO)
    line.list_price = _decimal(raw.get("list_price"), where, "list_price", errors)
    line.cost = _decimal(raw.get("cost"), where, "cost", errors)
    if line.quantity < 0 and not negative_quantities:
        errors[f"{where}.quantity"] = Message(N_("must not be negative"))
    for name in ("unit_price", "list_price", "cost"):
        value = getattr(line, name)
        if value is not None and value < 0:
            errors[f"{where}.{name}"] = Message(N_("must not be negative"))
    discount_kind = raw.get("discount_kind") or None
    value = _decimal(raw.get("discount_value"), where, "discount_value", errors)
    if discount_kind is None and value:
        discount_kind = "percent"
    if discount_kind is not None:
        if discount_kind not in DISCOUNT_KINDS:
            errors[f"{where}.discount_kind"] = Message(
                N_("%(value)s is not one of %(allowed)s"), value=repr(discount_kind),
                allowed=", ".join(DISCOUNT_KINDS))
        elif value is not None and value < 0:
            errors[f"{where}.discount_value"] = Message(N_("must not be negative"))
        elif discount_kind == "percent" and value is not None and value > 100:
            errors[f"{where}.discount_value"] = Message(N_("a percentage is at most 100"))
        elif (discount_kind == "amount" and value is not None
              and value > abs(line.quantity * line.unit_price)):
            errors[f"{where}.discount_value"] = Message(
                N_("the discount is more than the line's price"))
    line.discount_kind, line.discount_value = discount_kind, value
    return line


def tax_codes_of(groups: Iterable[Group]) -> set[str]:
    codes = {g.shipping_tax_code_id for g in groups if g.shipping_tax_code_id}
    return codes | {line.tax_code_id for g in groups for line in g.lines if line.tax_code_id}


def unknown_tax_codes(groups: list[Group], rates: Mapping[str, list]) -> dict:
    """Errors for lines whose tax code the site does not know."""
    errors = {}
    for g_index, group in enumerate(groups, start=1):
        if group.shipping_tax_code_id and group.shipping_tax_code_id not in rates:
            errors[f"line_items.{g_index}.shipping_tax_code_id"] = Message(N_("unknown tax code"))
        for l_index, line in enumerate(group.lines, start=1):
            if line.tax_code_id and line.tax_code_id not in rates:
                errors[f"line_items.{g_index}.{l_index}.tax_code_id"] = Message(
                    N_("unknown tax code"))
    return errors


# -- storage ---------------------------------------------------------------------------------

def _amount():
    return sa.Numeric(26, 6)


def tables(module_table: str, metadata: sa.MetaData) -> None:
    """The two tables of a module with line items."""
    sa.Table(
        f"{module_table}_line_groups", metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("record_id", sa.String(36), nullable=False, index=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("name", sa.String(255)),
        sa.Column("shipping", _amount()),
        sa.Column("shipping_tax_code_id", sa.String(36)),
        sa.Column("subtotal", _amount()),
        sa.Column("discount", _amount()),
        sa.Column("total", _amount()),
        sa.Column("shipping_taxes", sa.Text),  # JSON: [{name, percent, amount, compound}]
    )
    sa.Table(
        f"{module_table}_lines", metadata,
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("record_id", sa.String(36), nullable=False, index=True),
        sa.Column("group_id", sa.String(36), nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("product_id", sa.String(36), index=True),
        sa.Column("source_line_id", sa.String(36), index=True),
        sa.Column("name", sa.String(255)),
        sa.Column("part_number", sa.String(100)),
        sa.Column("description", sa.Text),
        sa.Column("quantity", sa.Numeric(20, 6)),
        sa.Column("unit_price", _amount()),
        sa.Column("list_price", _amount()),
        sa.Column("cost", _amount()),
        sa.Column("discount_kind", sa.String(10)),
        sa.Column("discount_value", _amount()),
        sa.Column("tax_code_id", sa.String(36)),
        sa.Column("ext_price", _amount()),
        sa.Column("discount", _amount()),
        sa.Column("net_price", _amount()),
        sa.Column("taxes", sa.Text),  # JSON: [{name, percent, amount, compound}]
    )


def _taxes_json(taxes: list[TaxAmount]) -> str:
    return json.dumps([{"name": t.name, "percent": str(t.percent), "amount": str(t.amount),
                        "compound": t.compound} for t in taxes])


def _taxes_from(text: str | None) -> list[TaxAmount]:
    return [TaxAmount(t["name"], Decimal(t["percent"]), Decimal(t["amount"]),
                      bool(t.get("compound"))) for t in json.loads(text or "[]")]


def write(conn, metadata: sa.MetaData, module_table: str, record_id: str,
          items: LineItems) -> None:
    """Replace a record's lines with ``items`` (within the caller's transaction)."""
    groups_table = metadata.tables[f"{module_table}_line_groups"]
    lines_table = metadata.tables[f"{module_table}_lines"]
    conn.execute(lines_table.delete().where(lines_table.c.record_id == record_id))
    conn.execute(groups_table.delete().where(groups_table.c.record_id == record_id))
    group_rows, line_rows = [], []
    for g_pos, group in enumerate(items.groups):
        group.id = str(uuid.uuid4())  # fresh ids: a posted id is never trusted
        group_rows.append({"id": group.id, "record_id": record_id, "position": g_pos,
                           "name": group.name, "shipping": group.shipping,
                           "shipping_tax_code_id": group.shipping_tax_code_id,
                           "subtotal": group.subtotal, "discount": group.discount,
                           "total": group.total,
                           "shipping_taxes": _taxes_json(group.shipping_taxes)})
        for l_pos, line in enumerate(group.lines):
            line.id = str(uuid.uuid4())
            line_rows.append({
                "id": line.id, "record_id": record_id, "group_id": group.id,
                "position": l_pos, **{k: getattr(line, k) for k in INPUT_FIELDS},
                "ext_price": line.ext_price, "discount": line.discount,
                "net_price": line.net_price, "taxes": _taxes_json(line.taxes)})
    if group_rows:
        conn.execute(groups_table.insert(), group_rows)
    if line_rows:
        conn.execute(lines_table.insert(), line_rows)


def read(conn, metadata: sa.MetaData, module_table: str, record_id: str, currency: str,
         digits: int) -> LineItems:
    """A record's lines as saved, with the totals summed from them (two queries)."""
    groups_table = metadata.tables[f"{module_table}_line_groups"]
    lines_table = metadata.tables[f"{module_table}_lines"]
    groups: dict[str, Group] = {}
    for row in conn.execute(sa.select(groups_table).where(groups_table.c.record_id == record_id)
                            .order_by(groups_table.c.position)).mappings():
        groups[row["id"]] = Group(
            id=row["id"], name=row["name"], shipping=_stored(row["shipping"], digits),
            shipping_tax_code_id=row["shipping_tax_code_id"],
            shipping_taxes=_taxes_from(row["shipping_taxes"]))
    for row in conn.execute(sa.select(lines_table).where(lines_table.c.record_id == record_id)
                            .order_by(lines_table.c.position)).mappings():
        group = groups.get(row["group_id"])
        if group is None:
            continue
        line = Line(**{k: row[k] for k in INPUT_FIELDS}, id=row["id"],
                    taxes=_taxes_from(row["taxes"]))
        for name in ("unit_price", "list_price", "cost", "discount_value"):
            setattr(line, name, _stored(getattr(line, name), None))
        line.quantity = _stored(line.quantity, None) or ZERO
        line.ext_price = _stored(row["ext_price"], digits) or ZERO
        line.discount = _stored(row["discount"], digits) or ZERO
        line.net_price = _stored(row["net_price"], digits) or ZERO
        group.lines.append(line)
    return summed(list(groups.values()), currency, digits)


def _stored(value, digits: int | None) -> Decimal | None:
    """Numbers as stored (SQLite gives floats back), trimmed to what they were."""
    if value is None:
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    if digits is not None:
        return money(number, digits)
    return number.quantize(Decimal(1)) if number == number.to_integral() else number.normalize()


def summed(groups: list[Group], currency: str, digits: int) -> LineItems:
    """Group and document totals from lines whose own figures are already worked out."""
    totals = Totals()
    all_taxes: list[TaxAmount] = []
    for group in groups:
        group.subtotal = sum((line.ext_price for line in group.lines), ZERO)
        group.discount = sum((line.discount for line in group.lines), ZERO)
        group.net = sum((line.net_price for line in group.lines), ZERO)
        group.taxes = _sum_taxes([t for line in group.lines for t in line.taxes]
                                 + group.shipping_taxes)
        group.total = group.net + group.shipping + group.tax
        totals.subtotal += group.subtotal
        totals.discount += group.discount
        totals.net += group.net
        totals.shipping += group.shipping
        totals.total += group.total
        totals.cost += sum((money(line.quantity * line.cost, digits) for line in group.lines
                            if line.cost is not None and line.kind != "comment"), ZERO)
        all_taxes += group.taxes
    totals.taxes = _sum_taxes(all_taxes)
    return LineItems(currency, digits, groups, totals)


def raise_errors(errors: dict) -> None:
    if errors:
        raise ValidationError(errors)
