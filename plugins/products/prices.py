"""What a product costs a given account: the price a new line item starts with.

The rule (1CRM's price books): the price in the account's own price book if that book is
active and prices the product; else the price in the default price book (active); else the
product's sale price (its list price when it has no sale price). Name, part number,
description, list price, cost and tax code always come from the product.

``prices_for`` answers for many products at once in two queries (and one per currency
for its digits): the products (through the
record service, so the user's right to view them counts) and the book prices that apply.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal

import sqlalchemy as sa

from core.kernel.errors import NotFoundError
from core.kernel.records import SYSTEM_USER, Query
from plugins.line_items.lines import digits as site_digits

PRODUCTS, BOOKS, BOOK_PRICES, ACCOUNTS = "products", "price_books", "price_book_prices", \
    "accounts"
PRODUCT_FIELDS = ("name", "manufacturer_part_no", "vendor_part_no", "description",
                  "product_type", "sale_price", "sale_price_currency", "list_price", "cost",
                  "tax_code_id")
KINDS = {"product": "product", "service": "service"}  # product_type -> a line's kind


@dataclass(frozen=True)
class ProductPrice:
    """A product as a new line item takes it. Amounts are in ``currency``."""

    product_id: str
    name: str
    part_number: str | None
    description: str | None
    kind: str  # "product" or "service"
    unit_price: Decimal | None
    list_price: Decimal | None
    cost: Decimal | None
    currency: str
    tax_code_id: str | None
    price_book_id: str | None  # the book the unit price came from; None: the product's own

    def as_json(self) -> dict:
        """For the web: amounts as strings (JSON has no decimals)."""
        return {key: str(value) if isinstance(value, Decimal) else value
                for key, value in asdict(self).items()}


def _amount(value, digits: int) -> Decimal | None:
    """A stored amount (scale 6) as people write it in its currency: 89.000000 -> 89.00,
    0.012500 -> 0.0125 (a unit price may have more digits than the currency)."""
    if value is None:
        return None
    number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    number = number.normalize()
    if number.as_tuple().exponent > -digits:
        number = number.quantize(Decimal(1).scaleb(-digits))
    return number


def price_for(site, product_id: str, account_id: str | None = None, user=None
              ) -> ProductPrice:
    """The price of one product for ``account_id`` (None: no account). ``NotFoundError``
    when there is no such product or ``user`` may not view it (like ``records.get``);
    ``user`` None reads as the system."""
    found = prices_for(site, [product_id], account_id, user).get(str(product_id))
    if found is None:
        raise NotFoundError(f"no product with id {product_id}")
    return found


def prices_for(site, product_ids: Iterable[str], account_id: str | None = None, user=None
               ) -> dict[str, ProductPrice]:
    """{product id: ProductPrice} for the products ``user`` may view (two queries)."""
    ids = sorted({str(i) for i in product_ids})
    if not ids:
        return {}
    products = site.records.list(PRODUCTS, user or SYSTEM_USER, Query(
        filters=[("id", "in", ids)], fields=list(PRODUCT_FIELDS), limit=None), action="view")
    if not products:
        return {}
    book_prices = _book_prices(site, [p["id"] for p in products], account_id)
    digits: dict[str, int] = {}  # currency -> its digits, asked once per currency
    answer = {}
    for product in products:
        found = book_prices.get(product["id"])
        if found is not None:
            book_id, unit_price, currency = found
        else:
            book_id = None
            unit_price = product["sale_price"] if product["sale_price"] is not None \
                else product["list_price"]
            currency = product["sale_price_currency"] or "USD"
        if currency not in digits:
            digits[currency] = site_digits(site, currency)
        places = digits[currency]
        answer[product["id"]] = ProductPrice(
            product_id=product["id"], name=product["name"],
            part_number=product["manufacturer_part_no"] or product["vendor_part_no"],
            description=product["description"],
            kind=KINDS.get(product["product_type"], "product"),
            unit_price=_amount(unit_price, places),
            list_price=_amount(product["list_price"], places),
            cost=_amount(product["cost"], places), currency=currency,
            tax_code_id=product["tax_code_id"], price_book_id=book_id)
    return answer


def _book_prices(site, product_ids: list[str], account_id: str | None
                 ) -> dict[str, tuple[str, Decimal, str]]:
    """{product id: (book id, price, currency)} from the account's book, else the default
    book: one query, the account's book sorted first. The account only chooses the book
    (none of its values is shown), so it is read without an access check."""
    registry, tables = site.registry, site.tables.tables
    if BOOKS not in registry.modules or BOOK_PRICES not in registry.modules:
        return {}
    books = tables[registry.module(BOOKS).table]
    prices = tables[registry.module(BOOK_PRICES).table]
    accounts_module = registry.modules.get(ACCOUNTS)
    account_book = None
    if account_id and accounts_module is not None and "price_book_id" in accounts_module.fields:
        accounts = tables[accounts_module.table]
        account_book = sa.select(accounts.c.price_book_id).where(
            accounts.c.id == str(account_id), accounts.c.deleted.is_(False)).scalar_subquery()
    chosen, rank = books.c.is_default.is_(True), sa.literal(1)
    if account_book is not None:
        chosen = sa.or_(chosen, books.c.id == account_book)
        rank = sa.case((books.c.id == account_book, 0), else_=1)
    stmt = (sa.select(prices.c.product_id, books.c.id, prices.c.price,
                      prices.c.price_currency, rank.label("rank"))
            .join(books, books.c.id == prices.c.price_book_id)
            .where(prices.c.product_id.in_(product_ids), prices.c.deleted.is_(False),
                   prices.c.price.is_not(None), books.c.deleted.is_(False),
                   books.c.active.is_(True), chosen)
            .order_by(prices.c.product_id, "rank", prices.c.modified_at.desc()))
    found: dict[str, tuple[str, Decimal, str]] = {}
    with site.engine.connect() as conn:
        for row in conn.execute(stmt):
            found.setdefault(row.product_id, (row.id, row.price, row.price_currency or "USD"))
    return found
