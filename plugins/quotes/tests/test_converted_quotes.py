"""A converted quote is final (issue 15, item 10): it is converted once, and it is not
changed afterwards so that it no longer matches its order or invoice — from its page, its
buttons, the API's actions, a PATCH, or a mass update. A copy ("Duplicate") is the way to
offer it again differently."""
import re
from decimal import Decimal

import pytest

from core.kernel.errors import VetoError
from core.kernel.records import Query
from plugins.line_items.tests.test_web_line_items import form_values
from plugins.quotes import plugin as quotes
from plugins.sales_orders.tests.test_orders_flow import quote_lines, shop  # noqa: F401 (fixture)
from tests.api_util import bearer
from tests.api_util import client as api_client
from tests.apps.documents.test_web_documents import client, flash_of  # noqa: F401 (fixture)
from tests.kernel.test_concurrency import run_together


@pytest.fixture
def quote(site, admin, shop):  # noqa: F811
    """A quote under the approval threshold (no approval needed): Services, 252.00."""
    return site.records.create("quotes", {"name": "Setup", "account_id": shop["account"],
                                          "line_items": quote_lines(shop)[1:]}, admin)


def documents(site, admin) -> tuple[int, int]:
    return site.records.count("sales_orders", admin), site.records.count("invoices", admin)


def lines_of(site, admin, quote_id):
    return site.records.feature_data("line_items", "quotes", quote_id, admin).as_input()


def test_a_quote_converts_once_from_its_page(site, admin, quote, client):  # noqa: F811
    url = f"/quotes/{quote['id']}/convert"
    first = client.post(f"{url}/sales_orders", data={"_csrf": client.csrf},
                        follow_redirects=False)
    assert first.status_code == 303 and "/m/sales_orders/" in first.headers["location"]
    [order] = site.records.list("sales_orders", admin, Query(fields=["number"]))

    page = client.get(f"/m/quotes/{quote['id']}").text
    assert "Convert to sales order" not in page and "Convert to invoice" not in page
    for target in ("sales_orders", "invoices"):  # the buttons are gone; the URL still refuses
        again = client.post(f"{url}/{target}", data={"_csrf": client.csrf},
                            follow_redirects=False)
        assert again.status_code == 303
        assert again.headers["location"] == f"/m/quotes/{quote['id']}"
        message = flash_of(client, f"/m/quotes/{quote['id']}")
        assert f"{quote['number']} was already converted to {order['number']}" in message
        assert "Duplicate" in message
    assert documents(site, admin) == (1, 0)


def test_a_quote_converts_once_through_the_api(site, admin, quote):
    auth = bearer(site, admin)
    url = f"/api/v1/quotes/{quote['id']}/actions"
    with api_client(site) as api:
        order = api.post(f"{url}/convert_to_sales_order", headers=auth)
        assert order.status_code == 200, order.text
        for action in ("convert_to_sales_order", "convert_to_invoice"):
            again = api.post(f"{url}/{action}", headers=auth)
            assert again.status_code == 409, again.text
            assert f"already converted to {order.json()['number']}" in again.json()["detail"]
    assert documents(site, admin) == (1, 0)


def test_two_people_converting_at_once_make_one_order(site, admin, quote):
    results = run_together(2, lambda i: quotes.convert(site, admin, quote["id"],
                                                       "sales_orders"))
    made = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, quotes.QuoteError)]
    assert len(made) == 1 and len(refused) == 1, results
    assert documents(site, admin) == (1, 0)


def test_an_invoice_of_the_order_does_not_make_the_quote_convertible(site, admin, quote):
    from plugins.sales_orders import plugin as sales_orders

    order = quotes.convert(site, admin, quote["id"], "sales_orders")
    sales_orders.invoice_order(site, admin, order["id"])
    with pytest.raises(quotes.QuoteError, match="already converted"):
        quotes.convert(site, admin, quote["id"], "invoices")
    assert documents(site, admin) == (1, 1)


def test_a_converted_quote_cannot_be_edited_from_its_page(site, admin, quote,
                                                          client):  # noqa: F811
    quotes.convert(site, admin, quote["id"], "sales_orders")
    before = site.records.get("quotes", quote["id"], admin)
    lines = lines_of(site, admin, quote["id"])
    data = form_values(client.get(f"/m/quotes/{quote['id']}/edit").text)
    quantity = next(k for k in data if re.fullmatch(r"li-\d+-\d+-quantity", k))
    edits = [{quantity: "30"},  # its lines (and so its amount)
             {"name": "Something else"},  # its other fields
             {"stage": "negotiation"}]  # reopened, to convert it again
    for edit in edits:
        saved = client.post(f"/m/quotes/{quote['id']}/edit",
                            data={**data, **edit, "_csrf": client.csrf},
                            follow_redirects=False)
        assert saved.status_code == 422, edit
        assert "was converted to" in saved.text and "Duplicate" in saved.text
    after = site.records.get("quotes", quote["id"], admin)
    assert after == before and after["amount"] == Decimal("252.00")
    assert lines_of(site, admin, quote["id"]) == lines

    # a description or the assigned user may still change: they do not touch the offer
    site.records.update("quotes", quote["id"], {"description": "Signed by Mr Tremblay."},
                        admin)


def test_a_converted_quote_cannot_be_edited_through_the_api(site, admin, quote):
    quotes.convert(site, admin, quote["id"], "sales_orders")
    before = site.records.get("quotes", quote["id"], admin)
    lines = lines_of(site, admin, quote["id"])
    auth = bearer(site, admin)
    url = f"/api/v1/quotes/{quote['id']}"
    more = [{"name": "Setup", "lines": [{"name": "Setup", "quantity": "30",
                                         "unit_price": "80.00"}]}]
    with api_client(site) as api:
        for body in ({"line_items": more}, {"valid_until": "2031-01-01"},
                     {"stage": "draft"}):
            refused = api.patch(url, headers=auth, json=body)
            assert refused.status_code == 409, refused.text
            assert "was converted to" in refused.json()["detail"]
        refused = api.put(f"{url}/line_items", headers=auth, json={"groups": more})
        assert refused.status_code == 409, refused.text
    after = site.records.get("quotes", quote["id"], admin)
    assert after == before and lines_of(site, admin, quote["id"]) == lines


def test_a_converted_quote_is_left_out_of_no_mass_update(site, admin, shop, quote,  # noqa: F811
                                                         client):  # noqa: F811
    other = site.records.create("quotes", {"name": "Other", "account_id": shop["account"]},
                                admin)
    quotes.convert(site, admin, quote["id"], "sales_orders")
    response = client.post("/m/quotes/action", data={
        "_csrf": client.csrf, "action": "update", "ids": [quote["id"], other["id"]],
        "mass_stage": "draft"})
    assert "Nothing was changed" in response.text and "was converted to" in response.text
    assert site.records.get("quotes", quote["id"], admin)["stage"] == "closed_accepted"
    assert site.records.get("quotes", other["id"], admin)["stage"] == "draft"
    with pytest.raises(VetoError, match="was converted to"):
        site.records.update_many("quotes", [quote["id"]], {"stage": "delivered"}, admin)


def test_a_cancelled_order_frees_the_quote(site, admin, quote):
    """Deleting the order undoes the conversion: the quote may be changed and converted
    again (a second order only ever replaces one that is gone)."""
    order = quotes.convert(site, admin, quote["id"], "sales_orders")
    site.records.delete("sales_orders", order["id"], admin)
    site.records.update("quotes", quote["id"], {"name": "Setup, revised"}, admin)
    quotes.convert(site, admin, quote["id"], "invoices")
    assert documents(site, admin) == (0, 1)


def test_duplicate_makes_a_new_quote_from_a_converted_one(site, admin, quote,
                                                          client):  # noqa: F811
    """"Duplicate" opens the create form filled from the record, lines included; the copy
    starts as a draft with a number of its own, and can be changed and converted."""
    quotes.convert(site, admin, quote["id"], "sales_orders")
    detail = client.get(f"/m/quotes/{quote['id']}").text
    assert f'href="/m/quotes/new?_duplicate={quote["id"]}"' in detail
    page = client.get(f"/m/quotes/new?_duplicate={quote['id']}").text
    data = form_values(page)
    assert data["name"] == "Setup" and data["account_id"] == quote["account_id"]
    assert data["stage"] == "draft" and "Société Générale de Café" in page
    assert [data[k] for k in sorted(data) if re.fullmatch(r"li-\d+-\d+-name", k)] == ["Setup"]
    quantity = next(k for k in data if re.fullmatch(r"li-\d+-\d+-quantity", k))
    made = client.post("/m/quotes/new", data={**data, quantity: "4", "_csrf": client.csrf},
                       follow_redirects=False)
    assert made.status_code == 303, made.text
    copy_id = made.headers["location"].rsplit("/", 1)[-1]
    copy = site.records.get("quotes", copy_id, admin)
    assert copy["number"] != quote["number"] and copy["stage"] == "draft"
    assert copy["amount"] == Decimal("336.00")  # 4 x 80.00 + GST 16.00
    quotes.convert(site, admin, copy_id, "invoices")
    assert documents(site, admin) == (1, 1)
    assert client.get("/m/quotes/new?_duplicate=00000000-0000-0000-0000-00000000000f"
                      ).status_code == 404
