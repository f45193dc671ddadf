"""The products plugin's rules kept on save: one default price book, a book prices a
product once (named after it, in the book's currency), and a category is never inside
itself. What a line item is priced with, the Order management page and the demo catalog:
plugins/pricing/tests/test_catalog_pricing.py, whose helpers these tests share."""
import pytest

from core.kernel.errors import ValidationError
from core.kernel.records import Query
from plugins.pricing.tests import test_catalog_pricing as pricing_tests
from plugins.pricing.tests.test_catalog_pricing import default_books, make

catalog = pricing_tests.catalog  # the fixture: a product, two price books, an account on each


def test_only_one_price_book_is_the_default(site, admin, catalog):
    assert default_books(site, admin) == ["Retail"]
    assert catalog["retail"]["currency"] == "USD"  # typed in lower case
    wholesale = make(site, admin, "price_books", name="Wholesale", is_default=True)
    assert default_books(site, admin) == ["Wholesale"]
    retail = site.records.get("price_books", catalog["retail"]["id"], admin)
    assert retail["version"] == catalog["retail"]["version"] + 1  # a stale edit conflicts
    site.records.update("price_books", catalog["partner"]["id"], {"is_default": True}, admin)
    assert default_books(site, admin) == ["Partner"]
    site.records.update("price_books", wholesale["id"], {"name": "Bulk"}, admin)
    assert default_books(site, admin) == ["Partner"]  # other edits leave the default alone

    with pytest.raises(ValidationError) as caught:
        site.records.create_many("price_books", [{"name": "A", "is_default": True},
                                                 {"name": "B", "is_default": True}], admin)
    assert "row 2: is_default" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        make(site, admin, "price_books", name="Odd", currency="dollars")
    assert "currency" in caught.value.errors
    assert default_books(site, admin) == ["Partner"]


def test_a_book_prices_a_product_once(site, admin, catalog):
    widget, retail = catalog["widget"], catalog["retail"]
    first = make(site, admin, "price_book_prices", price_book_id=retail["id"],
                 product_id=widget["id"], price="95", price_currency="EUR")
    # named after the product, in the book's currency whatever was typed
    assert (first["name"], first["price_currency"]) == ("Widget", "USD")
    with pytest.raises(ValidationError) as caught:
        make(site, admin, "price_book_prices", price_book_id=retail["id"],
             product_id=widget["id"], price="90")
    assert str(caught.value.errors["product_id"]) == \
        "this price book already has a price for this product"
    with pytest.raises(ValidationError) as caught:
        site.records.create_many("price_book_prices", [
            {"price_book_id": catalog["partner"]["id"], "product_id": widget["id"], "price": 1},
            {"price_book_id": catalog["partner"]["id"], "product_id": widget["id"], "price": 2},
        ], admin)
    assert "row 2: product_id" in caught.value.errors
    assert site.records.count("price_book_prices", admin) == 1

    # editing the price itself is fine; a deleted price no longer counts
    site.records.update("price_book_prices", first["id"], {"price": "93"}, admin)
    site.records.delete("price_book_prices", first["id"], admin)
    make(site, admin, "price_book_prices", price_book_id=retail["id"], product_id=widget["id"],
         price="90")

    site.records.update("products", widget["id"], {"name": "Widget Pro"}, admin)
    [row] = site.records.list("price_book_prices", admin, Query(fields=["name"]))
    assert row["name"] == "Widget Pro"


def test_a_category_is_never_inside_itself(site, admin):
    hardware = make(site, admin, "product_categories", name="Hardware")
    laptops = make(site, admin, "product_categories", name="Laptops", parent_id=hardware["id"])
    gaming = make(site, admin, "product_categories", name="Gaming", parent_id=laptops["id"])
    for parent in (gaming["id"], hardware["id"]):
        with pytest.raises(ValidationError) as caught:
            site.records.update("product_categories", hardware["id"], {"parent_id": parent},
                                admin)
        assert "parent_id" in caught.value.errors
    assert site.records.get("product_categories", hardware["id"], admin)["parent_id"] is None
    assert [c["name"] for c in site.records.related(
        "product_categories", hardware["id"], "children", admin)] == ["Laptops"]
