"""The product catalog (plugins/products) and the tax and pricing setup (plugins/pricing):
what a line item is priced with, the rules kept on save, the Order management page and
the product picker's JSON."""
import html
import io
import random
import re
from decimal import Decimal
from pathlib import Path

import pytest
import sqlalchemy as sa
from PIL import Image
from starlette.testclient import TestClient

from core.apps.admin import access_admin
from core.kernel.errors import NotFoundError, ValidationError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.web.app import create_app
from plugins.accounts import plugin as accounts_plugin
from plugins.line_items.lines import TaxRate
from plugins.line_items.lines import digits as site_digits
from plugins.pricing import plugin as pricing
from plugins.products import plugin as products

PASSWORD = "correct horse battery"


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (4, 4)).save(out, "PNG")  # image fields take only real images
    return out.getvalue()


PNG = _png()


# -- helpers -------------------------------------------------------------------------------

def make(site, user, module: str, **values) -> dict:
    return site.records.create(module, values, user)


@pytest.fixture
def catalog(site, admin):
    """A product, two price books (default and partner), an account on each."""
    widget = make(site, admin, "products", name="Widget", manufacturer_part_no="W-1",
                  vendor_part_no="V-9", product_type="product", cost="40", list_price="120",
                  sale_price="100", sale_price_currency="USD", description="A fine widget")
    retail = make(site, admin, "price_books", name="Retail", currency="usd", is_default=True)
    partner = make(site, admin, "price_books", name="Partner", currency="USD")
    partner_co = make(site, admin, "accounts", name="Partner Co", price_book_id=partner["id"])
    plain_co = make(site, admin, "accounts", name="Plain Co")
    return {"widget": widget, "retail": retail, "partner": partner, "partner_co": partner_co,
            "plain_co": plain_co}


def rates_of(site, code_ids):
    with site.engine.connect() as conn:
        return site.hook.crbm_tax_rates(site=site, tax_code_ids=set(code_ids), connection=conn)


# -- price_for -----------------------------------------------------------------------------

def test_price_comes_from_the_accounts_book_then_the_default_book_then_the_product(
        site, admin, catalog):
    widget, retail, partner = catalog["widget"], catalog["retail"], catalog["partner"]
    partner_co, plain_co = catalog["partner_co"]["id"], catalog["plain_co"]["id"]

    # no book prices the widget yet: the product's own sale price, in its currency
    price = products.price_for(site, widget["id"], partner_co, admin)
    assert (price.unit_price, price.currency, price.price_book_id) == \
        (Decimal("100.00"), "USD", None)
    assert (price.name, price.part_number, price.description, price.kind) == \
        ("Widget", "W-1", "A fine widget", "product")
    assert (price.list_price, price.cost) == (Decimal("120.00"), Decimal("40.00"))

    make(site, admin, "price_book_prices", price_book_id=retail["id"], product_id=widget["id"],
         price="95")
    assert products.price_for(site, widget["id"], plain_co, admin).unit_price == Decimal("95.00")
    assert products.price_for(site, widget["id"], partner_co, admin).price_book_id == \
        retail["id"]  # the partner book does not price the widget: the default does
    assert products.price_for(site, widget["id"], None, admin).unit_price == Decimal("95.00")

    make(site, admin, "price_book_prices", price_book_id=partner["id"],
         product_id=widget["id"], price="80.5")
    price = products.price_for(site, widget["id"], partner_co, admin)
    assert (price.unit_price, price.price_book_id) == (Decimal("80.50"), partner["id"])
    assert products.price_for(site, widget["id"], plain_co, admin).unit_price == Decimal("95.00")

    # an inactive book prices nothing; nor does a deleted one
    site.records.update("price_books", partner["id"], {"active": False}, admin)
    assert products.price_for(site, widget["id"], partner_co, admin).unit_price == \
        Decimal("95.00")
    site.records.delete("price_books", retail["id"], admin)
    assert products.price_for(site, widget["id"], partner_co, admin).price_book_id is None


def test_prices_for_many_products_and_a_service(site, admin, catalog):
    service = make(site, admin, "products", name="Installation", product_type="service",
                   list_price="150", sale_price_currency="EUR")
    found = products.prices_for(site, [catalog["widget"]["id"], service["id"], service["id"]],
                                None, admin)
    assert set(found) == {catalog["widget"]["id"], service["id"]}
    install = found[service["id"]]
    # no sale price: the list price; its currency is the product's
    assert (install.kind, install.unit_price, install.currency) == \
        ("service", Decimal("150.00"), "EUR")
    assert install.part_number is None and install.cost is None
    assert products.prices_for(site, [], None, admin) == {}


def test_a_product_has_one_currency(site, admin):
    gadget = make(site, admin, "products", name="Gadget", cost="1", list_price="3",
                  sale_price="2", sale_price_currency="EUR", cost_currency="GBP")
    assert (gadget["cost_currency"], gadget["list_price_currency"]) == ("EUR", "EUR")
    gadget = site.records.update("products", gadget["id"], {"sale_price_currency": "JPY"}, admin)
    assert (gadget["cost_currency"], gadget["list_price_currency"]) == ("JPY", "JPY")


def test_unknown_or_hidden_products_have_no_price(site, admin, catalog):
    with pytest.raises(NotFoundError):
        products.price_for(site, "00000000-0000-4000-8000-000000000000", None, admin)
    dana = create_user(site, "dana", PASSWORD)
    assert products.price_for(site, catalog["widget"]["id"], None, dana).name == "Widget"
    access_admin.add_deny(site, "products", catalog["widget"]["id"], user_id=dana.id)
    with pytest.raises(NotFoundError):
        products.price_for(site, catalog["widget"]["id"], None, dana)


# -- rules kept on save --------------------------------------------------------------------

def default_books(site, admin) -> list[str]:
    return [b["name"] for b in site.records.list("price_books", admin, Query(
        filters=[("is_default", "eq", True)], fields=["name"]))]


# -- tax rates and currencies --------------------------------------------------------------

def test_tax_rates_of_codes_in_the_order_they_apply(site, admin):
    rates = {name: make(site, admin, "tax_rates", name=name, rate=rate, compound=compound,
                        apply_order=order, active=active)
             for name, rate, compound, order, active in (
                 ("Luxury 10%", "10", True, 0, True), ("State 7%", "7", False, 2, True),
                 ("Federal 5%", "5", False, 1, True), ("City 1%", "1", False, 0, False),
                 ("QST 9.975%", "9.975", False, 5, True))}
    combined = make(site, admin, "tax_codes", name="Combined")
    for name in ("Luxury 10%", "State 7%", "Federal 5%", "City 1%"):
        site.records.link("tax_codes", combined["id"], "rates", rates[name]["id"], admin)
    exempt = make(site, admin, "tax_codes", name="Exempt")
    old = make(site, admin, "tax_codes", name="Old QC", active=False)
    site.records.link("tax_codes", old["id"], "rates", rates["QST 9.975%"]["id"], admin)
    gone = make(site, admin, "tax_codes", name="Gone")
    site.records.delete("tax_codes", gone["id"], admin)
    unknown = "00000000-0000-4000-8000-000000000000"

    answer = rates_of(site, [combined["id"], exempt["id"], old["id"], gone["id"], unknown])
    # compound last, then by order of application; the inactive city rate is not charged
    assert answer[combined["id"]] == [
        TaxRate("Federal 5%", Decimal(5), False, rates["Federal 5%"]["id"]),
        TaxRate("State 7%", Decimal(7), False, rates["State 7%"]["id"]),
        TaxRate("Luxury 10%", Decimal(10), True, rates["Luxury 10%"]["id"])]
    assert answer[exempt["id"]] == []  # known, no tax
    # inactive and deleted codes still answer: documents using them keep being priced
    assert [r.percent for r in answer[old["id"]]] == [Decimal("9.975")]
    assert answer[gone["id"]] == []
    assert unknown not in answer
    assert rates_of(site, [unknown]) is None  # not ours: another plugin may answer


def test_currencies_give_their_digits(site, admin):
    assert site_digits(site, "JPY") == 0  # ISO 4217, while the site has none
    yen = make(site, admin, "currencies", name="Yen", iso_code="jpy", exchange_rate="151.5",
               digits=2)
    assert yen["iso_code"] == "JPY"
    assert site.hook.crbm_currency_digits(site=site, code="JPY") == 2
    assert site_digits(site, "JPY") == 2  # the site's own figure wins
    assert site.hook.crbm_currency_digits(site=site, code="XAU") is None
    site.records.update("currencies", yen["id"], {"active": False}, admin)
    assert site_digits(site, "JPY") == 0

    for values, field in (({"iso_code": "JPY"}, "iso_code"), ({"iso_code": "EURO"}, "iso_code"),
                          ({"iso_code": "E1R"}, "iso_code"),
                          ({"iso_code": "CHF", "exchange_rate": "0"}, "exchange_rate"),
                          ({"iso_code": "CHF", "digits": 5}, "digits")):
        with pytest.raises(ValidationError) as caught:
            make(site, admin, "currencies", name="Bad", **values)
        assert field in caught.value.errors, values
    site.records.delete("currencies", yen["id"], admin)
    make(site, admin, "currencies", name="Yen again", iso_code="JPY", digits=0)


def test_discount_shows_the_value_its_type_needs(site, admin):
    percent = make(site, admin, "discounts", name="Partner 15%", discount_type="percentage",
                   rate="15", amount="99")
    assert (percent["rate"], percent["amount"]) == (Decimal(15), None)
    with pytest.raises(ValidationError) as caught:
        make(site, admin, "discounts", name="Credit", discount_type="amount")
    assert set(caught.value.errors) == {"amount"}


# -- accounts: price book and terms --------------------------------------------------------

def test_accounts_get_sales_terms_without_losing_their_subpanels(site):
    accounts = site.registry.module("accounts")
    assert accounts.fields["price_book_id"].spec["module"] == "price_books"
    assert accounts.fields["terms"].spec["options"] == "terms_dom"
    for view in ("detail", "edit"):
        sections = accounts.layouts[view]
        assert [s["label"] for s in sections] == ["Overview", "Addresses", "More information",
                                                  "Sales terms"]
        assert sections[3]["rows"][0] == ["price_book_id", "terms"]
    assert {"contacts", "members"} <= set(accounts.layouts["subpanels"])
    assert [o["label"] for o in site.registry.dropdowns["terms_dom"]][:1] == ["Due on Receipt"]


def test_terms_come_from_the_account_else_the_default(site, admin):
    net_45 = make(site, admin, "accounts", name="Slow Payer", terms="net_45")
    plain = make(site, admin, "accounts", name="Plain")
    assert pricing.terms_for(site, net_45["id"], admin) == "net_45"
    assert pricing.terms_for(site, plain["id"], admin) is None
    site.set_setting("orders", {"default_terms": "net_30"})
    assert pricing.terms_for(site, plain["id"], admin) == "net_30"
    assert pricing.terms_for(site, None, admin) == "net_30"


def test_order_settings_have_defaults_and_types(site):
    settings = pricing.order_settings(site)
    assert settings == pricing.OrderSettings()
    assert (settings.add_comment_lines, settings.approve_quotes,
            settings.approval_threshold) == ("none", False, None)
    site.set_setting("orders", {"approve_quotes": True, "approval_threshold": "5000.50",
                                "margin_threshold": "x", "shipping_taxed": "yes"})
    settings = pricing.order_settings(site)
    assert settings.approve_quotes is True
    assert settings.approval_threshold == Decimal("5000.50")
    assert settings.margin_threshold is None  # not a number: as if never set
    assert settings.shipping_taxed is False


# -- the web: Order management and the product picker --------------------------------------

pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def errors_shown(response) -> str:
    found = re.findall(r'<p class="(?:flash[^"]*|error-text)"[^>]*>(.*?)</p>', response.text,
                       re.DOTALL)
    return " | ".join(html.unescape(f).strip() for f in found)


@pytest.fixture
def signed_in(site):
    opened = []

    def sign_in(username: str) -> TestClient:
        client = TestClient(create_app(site))
        client.__enter__()
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text),
                                               "username": username, "password": PASSWORD})
        assert response.status_code == 200
        client.csrf = csrf_of(response.text)
        opened.append(client)
        return client

    yield sign_in
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def boss(site):
    return create_user(site, "boss", PASSWORD, is_admin=True)


GOOD_FORM = {"add_comment_lines": "products", "shipping_taxed": "1", "approve_quotes": "1",
             "approval_threshold": "10,000.00", "margin_threshold": "12.5",
             "show_list_prices": "1", "default_terms": "net_30", "name": "Acme Supplies Ltd",
             "address": "1 Main Street\r\n\r\nSpringfield, IL 62701", "phone": "+1 555 0100",
             "email": "sales@acme.example", "website": "acme.example",
             "tax_information": "VAT GB123456789", "footer_text": "Thank you!",
             "link": "https://acme.example/pay"}


def test_order_management_page_saves_the_settings_and_the_company(site, boss, signed_in):
    code = make(site, boss, "tax_codes", name="Shipping tax")
    client = signed_in("boss")
    assert "/admin/orders" in client.get("/admin").text  # linked from the administration
    page = client.get("/admin/orders")
    assert page.status_code == 200 and "Order management" in page.text
    assert "Company details" in page.text and "Shipping tax" in page.text
    response = client.post("/admin/orders", data={
        "_csrf": client.csrf, **GOOD_FORM, "shipping_tax_code_id": code["id"]},
        files={"logo": ("logo.png", io.BytesIO(PNG), "image/png")}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/admin/orders"

    settings = pricing.order_settings(site)
    assert settings == pricing.OrderSettings(
        add_comment_lines="products", shipping_taxed=True, shipping_tax_code_id=code["id"],
        approve_quotes=True, approval_threshold=Decimal("10000.00"),
        margin_threshold=Decimal("12.5"), show_list_prices=True, show_pretax_totals=False,
        default_terms="net_30", tax_information="VAT GB123456789")
    company = pricing.company_details(site)
    assert company["address_lines"] == ["1 Main Street", "Springfield, IL 62701"]
    assert (company["name"], company["website"], company["tax_information"]) == \
        ("Acme Supplies Ltd", "https://acme.example", "VAT GB123456789")
    assert company["logo"].endswith("/logo.png") and Path(company["logo"]).read_bytes() == PNG
    assert company["logo"].startswith(str(site.folder / "files"))

    again = client.get("/admin/orders")
    assert "saved" in errors_shown(again)
    assert 'value="10000.00"' in again.text and "logo.png" in again.text

    # saving without a new file keeps the logo; "remove" forgets it and its file
    form = {"_csrf": client.csrf, **GOOD_FORM}
    assert client.post("/admin/orders", data=form, follow_redirects=False).status_code == 303
    assert pricing.company_details(site)["logo"] == company["logo"]
    response = client.post("/admin/orders", data={**form, "remove_logo": "1"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert pricing.company_details(site)["logo"] == ""
    assert not (site.folder / "files").joinpath(company["logo"]).exists()


@pytest.mark.parametrize("field, value, message", [
    ("approval_threshold", "-5", "must not be negative"),
    ("approval_threshold", "lots", "'lots' is not a number"),
    ("margin_threshold", "101", "must be at most 100"),
    ("margin_threshold", "-1", "must not be negative"),
    ("shipping_tax_code_id", "no-such-code", "no tax code with id no-such-code"),
    ("default_terms", "net_1000", "'net_1000' is not an option of terms_dom"),
    ("add_comment_lines", "always", "'always' is not one of"),
    ("email", "not an address", "is not an email address"),
    ("website", "nowhere", "is not a web address"),
])
def test_order_management_refuses_bad_input_and_saves_nothing(site, boss, signed_in, field,
                                                                value, message):
    client = signed_in("boss")
    response = client.post("/admin/orders", data={"_csrf": client.csrf, **GOOD_FORM,
                                                  field: value}, follow_redirects=False)
    assert response.status_code == 400
    shown = errors_shown(response)
    assert "Nothing was saved" in shown and message in shown
    assert f'id="f-{field}-error"' in response.text  # beside its field
    assert "orders" not in site.settings and "company" not in site.settings


def test_a_logo_must_be_an_image(site, boss, signed_in):
    client = signed_in("boss")
    response = client.post("/admin/orders", data={"_csrf": client.csrf, **GOOD_FORM},
                           files={"logo": ("logo.png", io.BytesIO(b"<svg onload=x>"),
                                           "image/png")}, follow_redirects=False)
    assert response.status_code == 400
    assert "must be a PNG, JPEG, GIF or WebP image" in errors_shown(response)
    assert not (site.folder / "files").exists() or not any((site.folder / "files").iterdir())


def test_only_administrators_change_order_settings(site, boss, signed_in):
    create_user(site, "dana", PASSWORD)
    client = signed_in("dana")
    assert client.get("/admin/orders").status_code == 403
    response = client.post("/admin/orders", data={"_csrf": client.csrf, **GOOD_FORM},
                           follow_redirects=False)
    assert response.status_code == 403 and "orders" not in site.settings
    boss_client = signed_in("boss")
    forged = boss_client.post("/admin/orders", data={**GOOD_FORM, "_csrf": "forged"},
                              follow_redirects=False)
    assert forged.status_code == 403 and "orders" not in site.settings


def test_the_product_picker_gets_the_price_as_json(site, boss, catalog, signed_in):
    widget, partner = catalog["widget"], catalog["partner"]
    make(site, boss, "price_book_prices", price_book_id=partner["id"], product_id=widget["id"],
         price="80.5")
    anonymous = TestClient(create_app(site))
    url = f"/products/price?product_id={widget['id']}"
    assert anonymous.get(url).status_code == 401

    client = signed_in("boss")
    response = client.get(url)
    assert response.status_code == 200
    assert response.json() == {
        "product_id": widget["id"], "name": "Widget", "part_number": "W-1",
        "description": "A fine widget", "kind": "product", "unit_price": "100.00",
        "list_price": "120.00", "cost": "40.00", "currency": "USD", "tax_code_id": None,
        "price_book_id": None}
    partner_price = client.get(f"{url}&account_id={catalog['partner_co']['id']}").json()
    assert (partner_price["unit_price"], partner_price["price_book_id"]) == \
        ("80.50", partner["id"])

    assert client.get("/products/price?product_id=nope").status_code == 400
    assert client.get("/products/price").status_code == 400
    assert client.get(f"{url}&account_id=1%3D1").status_code == 400
    missing = client.get("/products/price?product_id=00000000-0000-4000-8000-000000000000")
    assert missing.status_code == 404 and "no product" in missing.json()["error"]

    dana = create_user(site, "dana", PASSWORD)
    access_admin.add_deny(site, "products", widget["id"], user_id=dana.id)
    assert signed_in("dana").get(url).status_code == 404


# -- demo data -----------------------------------------------------------------------------

def test_demo_catalog(site, admin):
    rng = random.Random(7)
    progress = lambda done, total: None
    pricing.crbm_demo_data(site, admin, 30, progress)
    accounts_plugin.crbm_demo_data(site, admin, 30, rng, progress)
    products.crbm_demo_data(site, admin, 30, rng, progress)
    pricing.crbm_demo_data(site, admin, 30, progress)  # again: nothing twice
    products.crbm_demo_data(site, admin, 30, rng, progress)

    assert site.records.count("currencies", admin) == 4
    assert site.records.count("product_categories", admin) == 3
    items = site.records.list("products", admin, Query(limit=None))
    assert 20 <= len(items) <= 30
    assert all(p["cost"] < p["sale_price"] <= p["list_price"] for p in items)
    assert {p["product_type"] for p in items} == {"product", "service"}
    assert all(p["tax_code_id"] for p in items)
    assert default_books(site, admin) == ["Standard prices"]
    partner = site.records.list("price_books", admin, Query(filters={"name": "Partner"}))[0]
    cheaper = site.records.related("price_books", partner["id"], "prices", admin)
    assert 0 < len(cheaper) < len(items)
    [standard] = [p for p in items if p["id"] == cheaper[0]["product_id"]]
    assert cheaper[0]["price"] < standard["sale_price"]
    table = site.tables.tables["accounts"]
    with site.engine.connect() as conn:
        on_partner_book = conn.execute(sa.select(sa.func.count()).where(
            table.c.price_book_id == partner["id"])).scalar()
    assert on_partner_book == site.records.count("accounts", admin, Query(
        filters=[("account_type", "in", ["partner", "reseller", "integrator"])]))
    codes = site.records.list("tax_codes", admin, Query(fields=["id", "name"]))
    answer = rates_of(site, [c["id"] for c in codes])
    by_name = {c["name"]: [r.name for r in answer[c["id"]]] for c in codes}
    assert by_name["Exempt"] == [] and by_name["Canada GST+PST"] == ["GST 5%", "PST 7%"]


def test_the_new_modules_work_in_the_generic_screens(site, boss, catalog, signed_in):
    code = make(site, boss, "tax_codes", name="Canada GST+PST")
    gst = make(site, boss, "tax_rates", name="GST 5%", rate="5")
    client = signed_in("boss")
    linked = client.post(f"/m/tax_codes/{code['id']}/link/rates",
                         data={"_csrf": client.csrf, "other_id": gst["id"]},
                         follow_redirects=True)
    assert linked.status_code == 200 and 'id="sub-rates"' in linked.text  # back on the code
    rates = client.get(f"/m/tax_codes/{code['id']}/subpanel/rates?fragment=1")
    assert "GST 5%" in rates.text  # the Rates subpanel, opened
    assert [r.name for r in rates_of(site, [code["id"]])[code["id"]]] == ["GST 5%"]
    for module in ("products", "product_categories", "price_books", "price_book_prices",
                   "tax_rates", "tax_codes", "shipping_providers", "discounts", "currencies"):
        assert client.get(f"/m/{module}").status_code == 200, module
        assert client.get(f"/m/{module}/new").status_code == 200, module
    account = client.get(f"/m/accounts/{catalog['partner_co']['id']}")
    assert "Sales terms" in account.text and "Partner" in account.text
    assert client.get(f"/m/price_books/{catalog['partner']['id']}").status_code == 200

    created = client.post("/m/products/new", data={
        "_csrf": client.csrf, "name": "Cable", "product_type": "product",
        "sale_price": "9.99", "sale_price_currency": "EUR", "cost": "2",
        "cost_currency": "USD"}, files={"image": ("cable.png", io.BytesIO(PNG), "image/png")},
        follow_redirects=False)
    assert created.status_code == 303, errors_shown(created)
    product_id = created.headers["location"].rsplit("/", 1)[1]
    cable = site.records.get("products", product_id, boss)
    assert (cable["sale_price"], cable["cost_currency"]) == (Decimal("9.99"), "EUR")
    assert cable["image"].endswith("/cable.png")
    detail = client.get(f"/m/products/{product_id}")
    assert detail.status_code == 200 and "Cable" in detail.text


def test_order_settings_shape_new_lines_and_groups(site, boss, catalog, signed_in):
    """"Add comment lines": a picked product's description comes as a comment line;
    "Shipping is taxed": a new group's shipping starts with the default tax code."""
    gst = make(site, boss, "tax_codes", name="GST")
    site.set_setting("orders", {"add_comment_lines": "products", "shipping_taxed": True,
                                "shipping_tax_code_id": gst["id"]})
    client = signed_in("boss")
    answer = client.get(f"/products/price?product_id={catalog['widget']['id']}").json()
    assert answer["comment_line"] == "A fine widget" and "description" not in answer
    page = client.get("/m/quotes/new").text
    shipping_code = re.search(r'<select[^>]*name="li-0-shipping_tax_code_id"[^>]*>(.*?)</select>',
                              page, re.DOTALL).group(1)
    assert re.search(rf'<option value="{gst["id"]}" selected', shipping_code)
    site.set_setting("orders", {"add_comment_lines": "none"})
    answer = client.get(f"/products/price?product_id={catalog['widget']['id']}").json()
    assert answer["description"] == "A fine widget" and "comment_line" not in answer
