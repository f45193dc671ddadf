"""Order documents as a customer and a sales person see them (issue 15, item 15): printed
tax lines and discounts, amounts in subpanels, who Email PDF writes to, what a new
document takes from its account, and whose contacts its billing-contact picker offers."""
import re

import pytest

from core.apps.documents import printing
from core.kernel.i18n import Preferences, formatter
from plugins.line_items.tests.test_web_line_items import form_values
from plugins.sales_orders.tests.test_orders_flow import pdf_text, shop  # noqa: F401 (fixture)
from tests.api_util import bearer
from tests.api_util import client as api_client
from tests.apps.documents.test_pdf import to_png
from tests.apps.documents.test_web_documents import client  # noqa: F401 (fixture)

FMT = formatter(Preferences())


@pytest.fixture
def named_rate(site, admin, shop):  # noqa: F811
    """A tax code whose rate is named with its figure, as the tax rates' help suggests."""
    rate = site.records.create("tax_rates", {"name": "GST 5%", "rate": "5"}, admin)
    code = site.records.create("tax_codes", {"name": "GST (named)"}, admin)
    site.records.link("tax_codes", code["id"], "rates", rate["id"], admin)
    return code["id"]


def summary_lines(text: str) -> list[str]:
    """The totals block of a printed document, from "Subtotal" to "Total"."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Subtotal"))
    end = next(i for i, line in enumerate(lines) if i > start and line.startswith("Total"))
    return lines[start:end + 1]


@pytest.mark.parametrize("module, form", [("quotes", "quote"), ("sales_orders", "sales_order"),
                                          ("invoices", "invoice")])
def test_tax_lines_name_their_rate_once_and_discounts_are_negative(site, admin, shop,  # noqa: F811
                                                                   named_rate, module, form):
    document = site.records.create(module, {"name": "Docks", "account_id": shop["account"],
                                            "line_items": [{"name": "Hardware", "lines": [
        # 2 x 150.00 = 300.00 - 10 % = 270.00; "GST 5%": 13.50
        {"name": "Dock", "quantity": "2", "unit_price": "150.00", "discount_kind": "percent",
         "discount_value": "10", "tax_code_id": named_rate},
        # 80.00; GST 4.00 and PST 5.60 (rates named without their figure)
        {"name": "Setup", "quantity": "1", "unit_price": "80.00",
         "tax_code_id": shop["both"]}]}]}, admin)
    _, content = printing.render_record(site, module, document["id"], admin, form, FMT)
    if module == "quotes":
        to_png(content, "orders-tax-lines")  # for a person to look at (test-artifacts/pdf)
    assert summary_lines(pdf_text(content)) == [
        "Subtotal $380.00", "Discount -$30.00", "GST 5% $13.50", "GST 5% $4.00",
        "PST 7% $5.60", "Total $373.10"]


def test_the_detail_page_names_tax_lines_like_the_pdf(site, admin, shop, named_rate,  # noqa: F811
                                                      client):  # noqa: F811
    quote = site.records.create("quotes", {"name": "Docks", "account_id": shop["account"],
                                           "line_items": [{"lines": [
        {"name": "Dock", "quantity": "2", "unit_price": "150.00", "tax_code_id": named_rate},
        {"name": "Setup", "quantity": "1", "unit_price": "80.00",
         "tax_code_id": shop["both"]}]}]}, admin)
    page = client.get(f"/m/quotes/{quote['id']}").text
    rows = [" ".join(re.sub(r"<[^>]+>", " ", row).split())
            for row in re.findall(r"<tr\b.*?</tr>", page, re.DOTALL)]
    assert "GST 5% $15.00" in rows and "GST 5% $4.00" in rows and "PST 7% $5.60" in rows
    assert not any("5% 5%" in row for row in rows)


def test_subpanels_show_amounts_in_their_currency(site, admin, shop, client):  # noqa: F811
    for code, price in (("EUR", "1234.00"), ("JPY", "5000")):
        site.records.create("quotes", {"name": f"In {code}", "account_id": shop["account"],
                                       "amount_currency": code, "line_items": [{"lines": [
                                           {"name": "Dock", "quantity": "1",
                                            "unit_price": price}]}]}, admin)
    panel = client.get(f"/m/accounts/{shop['account']}/subpanel/quotes?fragment=1").text
    cells = " ".join(re.sub(r"<[^>]+>", " ", panel).split())
    assert "€1,234.00" in cells and "¥5,000" in cells
    assert "$" not in cells


def test_email_pdf_writes_to_the_billing_contact_first(site, admin, shop, client):  # noqa: F811
    contact = site.records.create("contacts", {
        "first_name": "Amélie", "last_name": "Durand", "account_id": shop["account"],
        "email1": "amelie.durand@cafe.example"}, admin)
    supplier = site.records.create("accounts", {"name": "Parts KK",
                                                "email1": "sales@parts.example"}, admin)
    buyer = site.records.create("contacts", {"first_name": "Kenji", "last_name": "Sato",
                                             "account_id": supplier["id"],
                                             "email1": "k.sato@parts.example"}, admin)

    def recipient(module, form, values):
        record = site.records.create(module, {"name": "Mailed", **values}, admin)
        page = client.get(f"/m/{module}/{record['id']}/email/{form}").text
        return re.search(r'name="to"[^>]*value="([^"]*)"', page).group(1)

    for module, form in (("quotes", "quote"), ("sales_orders", "sales_order"),
                         ("invoices", "invoice")):
        assert recipient(module, form, {"account_id": shop["account"],
                                        "billing_contact_id": contact["id"]}) == \
            "amelie.durand@cafe.example", module
        # no billing contact: the account's address, as before
        assert recipient(module, form, {"account_id": shop["account"]}) == \
            "achats@cafe.example", module
    assert recipient("purchase_orders", "purchase_order",
                     {"supplier_id": supplier["id"], "contact_id": buyer["id"]}) == \
        "k.sato@parts.example"


@pytest.fixture
def two_accounts(site, admin, shop):  # noqa: F811
    """The shop's account with two contacts, another account with two."""
    other = site.records.create("accounts", {"name": "Brasserie du Port"}, admin)
    people = {}
    for account, first, last in ((shop["account"], "Amélie", "Durand"),
                                 (shop["account"], "Zoé", "Martin"),
                                 (other["id"], "Paul", "Dupont"),
                                 (other["id"], "Anne", "Bernard")):
        people[last] = site.records.create("contacts", {
            "first_name": first, "last_name": last, "account_id": account}, admin)["id"]
    return {"shop": shop["account"], "other": other["id"], **people}


def picked(http, url: str) -> list[str]:
    response = http.get(url)
    assert response.status_code == 200, response.text
    return [item["label"] for item in response.json()]


def test_the_billing_contact_picker_offers_the_accounts_contacts_first(two_accounts,
                                                                       client):  # noqa: F811
    shop_id = two_accounts["shop"]
    for module in ("quotes", "sales_orders", "invoices", "credit_notes"):
        page = client.get(f"/m/{module}/new").text
        picker = re.search(r'<div class="picker"[^>]*>\s*<input type="hidden" '
                           r'name="billing_contact_id"', page).group(0)
        assert 'data-filter-by="{&#34;account_id&#34;: &#34;account_id&#34;}"' in picker, module
    page = client.get("/m/purchase_orders/new").text
    assert 'data-filter-by="{&#34;account_id&#34;: &#34;supplier_id&#34;}"' in page

    # what the picker's script asks once an account is chosen: its contacts come first
    labels = picked(client, f"/m/contacts/pick?q=&by_account_id={shop_id}")
    assert labels[:2] == ["Amélie Durand", "Zoé Martin"]
    assert set(labels[2:]) >= {"Paul Dupont", "Anne Bernard"}
    labels = picked(client, f"/m/contacts/pick?q=Du&by_account_id={shop_id}")
    assert labels == ["Amélie Durand", "Paul Dupont"]  # typed text: the account's first
    assert picked(client, "/m/contacts/pick?q=Du")[0] == "Paul Dupont"  # no account: by name
    assert client.get("/m/contacts/pick?q=&by_last_name=Dupont").status_code == 400
    assert client.get("/m/contacts/pick?q=&by_nothing=1").status_code == 400


ADDRESSES = {"billing_address_street": "12 rue du Port", "billing_address_city": "Montréal",
             "billing_address_state": "QC", "billing_address_postal_code": "H2Y 1C6",
             "billing_address_country": "Canada",
             "shipping_address_street": "Quai 4, entrepôt B",
             "shipping_address_city": "Longueuil", "shipping_address_country": "Canada"}


@pytest.fixture
def customer(site, admin, shop):  # noqa: F811
    """The shop's account, with addresses and its own terms."""
    site.records.update("accounts", shop["account"], {**ADDRESSES, "terms": "net_45"}, admin)
    return shop["account"]


def test_a_new_document_takes_the_accounts_addresses_and_terms(site, admin, customer):
    """Through the API (the record service's save): empty fields are filled from the
    account; what the caller gives is kept, an address whole."""
    auth = bearer(site, admin)
    with api_client(site) as api:
        for module in ("quotes", "sales_orders", "invoices"):
            made = api.post(f"/api/v1/{module}", headers=auth, json={
                "name": "From the account", "account_id": customer})
            assert made.status_code == 201, made.text
            body = made.json()
            assert {k: body[k] for k in ADDRESSES} == ADDRESSES, module
            assert body["shipping_address_postal_code"] is None and body["terms"] == "net_45"
            given = api.post(f"/api/v1/{module}", headers=auth, json={
                "name": "Own", "account_id": customer, "terms": "cod",
                "billing_address_city": "Laval"}).json()
            assert (given["terms"], given["billing_address_city"],
                    given["billing_address_street"]) == ("cod", "Laval", None), module
            assert given["shipping_address_city"] == "Longueuil"
    # an account without terms: the order settings' default terms, as invoices always had
    site.set_setting("orders", {"default_terms": "net_15"})
    bare = site.records.create("accounts", {"name": "No terms"}, admin)
    for module in ("quotes", "sales_orders", "invoices"):
        record = site.records.create(module, {"name": "Bare", "account_id": bare["id"]}, admin)
        assert (record["terms"], record["billing_address_city"]) == ("net_15", None), module


def test_changing_the_account_fills_only_what_is_empty(site, admin, customer, shop):  # noqa: F811
    quote = site.records.create("quotes", {"name": "Later", "account_id": customer,
                                           "billing_address_city": "Laval"}, admin)
    other = site.records.create("accounts", {
        "name": "Brasserie du Port", "billing_address_city": "Québec",
        "shipping_address_city": "Lévis", "terms": "cod"}, admin)
    site.records.update("quotes", quote["id"], {"shipping_address_street": None,
                                                "shipping_address_city": None,
                                                "shipping_address_country": None}, admin)
    moved = site.records.update("quotes", quote["id"], {"account_id": other["id"]}, admin)
    assert (moved["billing_address_city"], moved["shipping_address_city"], moved["terms"]) == \
        ("Laval", "Lévis", "net_45")


def test_the_create_form_fills_from_the_account(site, admin, customer, client):  # noqa: F811
    # chosen in the picker: the page's script asks what to fill
    answer = client.get(f"/m/quotes/fill/account_id?id={customer}")
    assert answer.status_code == 200
    assert answer.json() == {
        "billing_address": {k: v for k, v in ADDRESSES.items() if k.startswith("billing")},
        "shipping_address": {
            "shipping_address_street": "Quai 4, entrepôt B", "shipping_address_city": "Longueuil",
            "shipping_address_state": "", "shipping_address_postal_code": "",
            "shipping_address_country": "Canada"}, "terms": {"terms": "net_45"}}
    page = client.get("/m/quotes/new").text
    assert 'data-fill="/m/quotes/fill/account_id"' in page
    # unknown, invisible or missing ids tell nothing
    for bad in ("00000000-0000-0000-0000-00000000000f", "nonsense", ""):
        assert client.get(f"/m/quotes/fill/account_id?id={bad}").json() == {}
    assert client.get("/m/quotes/fill/name?id=1").status_code == 404
    # opened from the account's page ("Create" in its Quotes subpanel): filled already
    values = form_values(client.get(f"/m/quotes/new?account_id={customer}").text)
    assert {k: values[k] for k in ADDRESSES} == ADDRESSES and values["terms"] == "net_45"
