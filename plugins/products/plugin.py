"""Products: the catalog documents sell from.

Provides the modules ``products`` (goods and services: part numbers, supplier, category,
tax code, cost, list and sale price, image), ``product_categories`` (a tree),
``price_books`` and ``price_book_prices`` (one product's price in one book), the
``product_type_dom`` list, and on accounts (extends/accounts.yaml) the account's price
book and payment terms. The terms list and the tax codes come with the pricing plugin.

Rules kept on save (``crbm_before_save``, in the write's transaction):
- a product has one currency, its sale price's: the cost and list price follow it;
- a category is never its own ancestor;
- a price book's currency is an ISO 4217 code; at most one book is the default (making a
  book the default takes that from the old one, in the same transaction);
- a book prices a product once; the price is in the book's currency; a price's name is
  its product's (kept in step when a product is renamed, ``crbm_after_save``).

``price_for`` / ``prices_for`` (prices.py) give the price a new line item starts with, and
``GET /products/price?product_id=..&account_id=..`` gives it to the line-item editor as
JSON. Demo data (demo.py) is a small hardware, software and services catalog.
"""
from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.web.pages import page
from plugins.products import demo
from plugins.products.prices import (  # noqa: F401  (the plugin's public API)
    ProductPrice,
    price_for,
    prices_for,
)

__version__ = "0.1.0"

PRODUCTS, CATEGORIES, BOOKS, BOOK_PRICES = "products", "product_categories", "price_books", \
    "price_book_prices"
FOLLOWING_CURRENCY = ("cost_currency", "list_price_currency")  # follow sale_price_currency
ISO_CODE = re.compile(r"^[A-Z]{3}$")


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


def _table(module, *columns: str) -> sa.TableClause:
    return sa.table(module.table, *(sa.column(c) for c in ("id", *columns)))


@hookimpl(specname="crbm_before_save")
@for_modules(PRODUCTS)
def before_saving_products(site, module, batch, user, connection) -> None:
    for change in batch:
        code = change.record.get("sale_price_currency")
        if code:
            for name in FOLLOWING_CURRENCY:
                change.record[name] = code


@hookimpl(specname="crbm_before_save")
@for_modules(CATEGORIES)
def before_saving_categories(site, module, batch, user, connection) -> None:
    """No loops: walk up from each moved category's new parent (one query per level)."""
    table = _table(module, "parent_id")
    for change in batch:
        record_id, parent = change.record["id"], change.record.get("parent_id")
        if parent is None or (change.is_new and parent != record_id):
            continue  # a new category has no subcategories yet, so it cannot close a loop
        seen = set()
        while parent is not None and parent not in seen:
            if parent == record_id:
                raise ValidationError({"parent_id": Message(N_(
                    "a category cannot be inside itself or one of its own subcategories"))})
            seen.add(parent)
            parent = connection.execute(sa.select(table.c.parent_id)
                                        .where(table.c.id == parent)).scalar()


@hookimpl(specname="crbm_before_save")
@for_modules(BOOKS)
def before_saving_price_books(site, module, batch, user, connection) -> None:
    errors = _Errors(len(batch))
    defaults = []
    for index, change in enumerate(batch):
        record = change.record
        code = (record.get("currency") or "").strip().upper()
        record["currency"] = code
        if not ISO_CODE.match(code):
            errors.add(index, "currency", Message(
                N_("%(value)s is not an ISO 4217 currency code (three capital letters)"),
                value=repr(code)))
        if record.get("is_default"):
            defaults.append(index)
    if len(defaults) > 1:
        errors.add(defaults[1], "is_default", Message(N_("only one price book can be the "
                                                         "default")))
    errors.raise_any()
    if defaults:  # the new default takes over: the old one stops being it
        table = _table(module, "is_default")
        mine = [change.record["id"] for change in batch]  # the save writes these itself
        others = connection.execute(sa.select(table.c.id).where(
            table.c.is_default.is_(True), table.c.id.not_in(mine))).scalars()
        site.records.set_derived(BOOKS, {i: {"is_default": False} for i in others},
                                 connection=connection, reason="another default")


@hookimpl(specname="crbm_before_save")
@for_modules(BOOK_PRICES)
def before_saving_book_prices(site, module, batch, user, connection) -> None:
    """One price per book and product, in the book's currency, named after the product."""
    errors = _Errors(len(batch))
    pairs: dict[tuple[str, str], int] = {}
    for index, change in enumerate(batch):
        pair = (change.record.get("price_book_id"), change.record.get("product_id"))
        if None in pair:
            continue  # "is required" was said already
        if pair in pairs:
            errors.add(index, "product_id", Message(N_("this price book already has a price "
                                                       "for this product")))
        pairs[pair] = index
    errors.raise_any()
    if not pairs:
        return
    books = {b for b, _ in pairs}
    products = {p for _, p in pairs}
    prices = _table(module, "price_book_id", "product_id", "deleted")
    own_ids = [change.record["id"] for change in batch]
    for row in connection.execute(sa.select(prices.c.price_book_id, prices.c.product_id).where(
            prices.c.price_book_id.in_(books), prices.c.product_id.in_(products),
            prices.c.deleted.is_(False), prices.c.id.not_in(own_ids))):
        index = pairs.get((row.price_book_id, row.product_id))
        if index is not None:
            errors.add(index, "product_id", Message(N_("this price book already has a price "
                                                       "for this product")))
    errors.raise_any()
    # (the hook is not given the registry: these modules keep their names as tables)
    book_table = sa.table(BOOKS, sa.column("id"), sa.column("currency"))
    product_table = sa.table(PRODUCTS, sa.column("id"), sa.column("name"))
    currency = dict(connection.execute(sa.select(book_table.c.id, book_table.c.currency)
                                       .where(book_table.c.id.in_(books))).all())
    names = dict(connection.execute(sa.select(product_table.c.id, product_table.c.name)
                                    .where(product_table.c.id.in_(products))).all())
    for change in batch:
        record = change.record
        record["price_currency"] = currency.get(record["price_book_id"]) or \
            record.get("price_currency")
        record["name"] = names.get(record["product_id"]) or record.get("name")


@hookimpl
@for_modules(PRODUCTS)
def crbm_after_save(site, module, batch, connection):
    """A renamed product renames its book prices (one read, one write for the lot)."""
    renamed = {c.record["id"]: c.record["name"] for c in batch
               if not c.is_new and "name" in c.changes}
    if renamed:
        prices = sa.table(BOOK_PRICES, sa.column("id"), sa.column("product_id"))
        rows = connection.execute(sa.select(prices.c.id, prices.c.product_id)
                                  .where(prices.c.product_id.in_(sorted(renamed))))
        site.records.set_derived(BOOK_PRICES, {i: {"name": renamed[p]} for i, p in rows},
                                 connection=connection, reason="product renamed")


# -- the line-item editor's product picker -------------------------------------------------

def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def _uuid(text: str | None) -> str | None:
    try:
        return str(uuid.UUID(str(text)))
    except ValueError:
        return None


def _adds_comment_lines(site) -> bool:
    from plugins.pricing.settings import order_settings  # the settings live there

    return order_settings(site).add_comment_lines in ("products", "both")


@page(public=True)
def product_price(request: Request, form):
    """``GET /products/price?product_id=..[&account_id=..]`` -> the ProductPrice as JSON."""
    user = request.state.user
    if user is None or user.must_change_password:
        return _error(401, "sign in first")
    params = request.query_params
    product_id = _uuid(params.get("product_id"))
    if product_id is None:
        return _error(400, "product_id must be a product's id")
    account_id = None
    if params.get("account_id"):
        account_id = _uuid(params["account_id"])
        if account_id is None:
            return _error(400, "account_id must be an account's id")
    site = request.app.state.site
    try:
        found = price_for(site, product_id, account_id, user)
    except NotFoundError:
        return _error(404, f"no product with id {product_id}")
    answer = found.as_json()
    # "Add comment lines" (order settings): the description follows as a comment line
    if found.description and _adds_comment_lines(site):
        answer["comment_line"] = answer.pop("description")
    response = JSONResponse(answer)
    response.headers["Cache-Control"] = "no-store"
    return response


@hookimpl
def crbm_web_routes(site):
    return [Route("/products/price", product_price)]


# -- demo data -----------------------------------------------------------------------------

@hookimpl(trylast=True)
def crbm_demo_data(site, user, size, rng, progress):
    """A small catalog; after the accounts (suppliers) and the pricing setup (tax codes)."""
    demo.load(site, user, size, rng, progress)
