"""Line items on the web pages, through real HTTP requests: the editor of the create and
edit forms, the detail page's tables and totals, and a plugin's action buttons.

The module is the test plugin's ledgers (tests/plugins/ledger: tax codes T3/F5/... from a
dict, typed as text since it names no tax-code module); the figures are the hand-computed
ones of tests/kernel/test_line_items.py."""
import html
import re
from decimal import Decimal
from html.parser import HTMLParser

import pytest

from core.kernel.records import Query
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from core.testing import signed_in
from plugins.line_items.tests.test_line_items import two_groups
from tests.plugins.kitchen_sink import plugin as kitchen_sink
from tests.plugins.ledger import plugin as ledger

PASSWORD = "correct horse battery"


@pytest.fixture
def books(tmp_path, database_url):
    folder = create_site(tmp_path / "site", database_url)
    site = Site(folder, extra_plugins=[kitchen_sink, ledger])
    site.sync_schema()
    yield site, create_user(site, "admin", PASSWORD, is_admin=True)
    site.close()


@pytest.fixture
def client(books):
    site, _ = books
    with signed_in(site, "admin", PASSWORD) as client:
        yield client


def form_of(groups: list[dict], group_indexes, line_indexes) -> dict:
    """The editor's inputs for ``groups``, numbered as a page does after rows were added
    and removed (indexes with gaps)."""
    data = {"_line_items": "1"}
    for group, g in zip(groups, group_indexes, strict=False):
        data |= {f"li-{g}-{name}": str(group.get(name) or "")
                 for name in ("name", "shipping", "shipping_tax_code_id")}
        for line, ln in zip(group["lines"], line_indexes, strict=False):
            data |= {f"li-{g}-{ln}-{name}": str(value) for name, value in line.items()}
    return data


class FormReader(HTMLParser):
    """The values a browser would send for the page's record form (template rows, which
    are not part of the form, left out)."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}
        self.in_template = 0
        self.select = self.textarea = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "template":
            self.in_template += 1
        if self.in_template or "name" not in a and tag != "option":
            return
        if tag == "input" and a.get("type") not in ("checkbox", "submit", "file"):
            self.values[a["name"]] = a.get("value") or ""
        elif tag == "select":
            self.select = a["name"]
            self.values.setdefault(a["name"], "")
        elif tag == "option" and self.select and ("selected" in a or not self.values[self.select]):
            self.values[self.select] = a.get("value") or ""
        elif tag == "textarea":
            self.textarea = a["name"]
            self.values[a["name"]] = ""

    def handle_endtag(self, tag):
        if tag == "template":
            self.in_template -= 1
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data):
        if self.textarea and not self.in_template:
            self.values[self.textarea] += data


def form_values(page_html: str) -> dict[str, str]:
    reader = FormReader()
    reader.feed(page_html)
    return reader.values


def text_of(fragment: str) -> str:
    """What a piece of a page says, tags and entities aside."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", fragment)).split())


def rows_of(page_html: str, table_class: str) -> list[str]:
    """Each row of the first table with ``table_class``, as its text."""
    table = re.search(rf'<table class="[^"]*\b{table_class}\b.*?</table>', page_html, re.DOTALL)
    return [text_of(row) for row in re.findall(r"<tr\b.*?</tr>", table.group(0), re.DOTALL)]


def create(client, data: dict, **kwargs):
    return client.post("/m/ledgers/new", data={"_csrf": client.csrf, "name": "Order 1",
                                               "amount_currency": "USD", **data}, **kwargs)


def test_a_ledger_made_through_the_form_shows_its_hand_computed_totals(client, books):
    site, admin = books
    page = client.get("/m/ledgers/new").text
    assert 'name="li-0-0-name"' in page and "<template" in page  # one empty line to start
    data = form_of(two_groups(), [0, 5], [0, 3])
    data |= {"li-5-7-name": "", "li-5-7-quantity": "1", "li-5-7-kind": "product"}  # unused row
    response = create(client, data, follow_redirects=False)
    assert response.status_code == 303, response.text[:3000]
    [record] = site.records.list("ledgers", admin, Query(limit=None))
    items = site.records.feature_data("line_items", "ledgers", record["id"], admin)
    assert [g.name for g in items.groups] == ["Hardware", "Services"]
    assert [line.name or line.description for line in items.lines] == \
        ["Widget", "Gizmo", "Installed on site", "Installation"]  # the blank row is dropped

    detail = client.get(response.headers["location"]).text
    assert rows_of(detail, "li-document-totals") == [
        "Subtotal $259.97", "Discount -$21.50", "Shipping $10.00", "Federal 5% $7.43",
        "State 7% $9.70", "Luxury 10% $15.52", "Total $281.12"]
    hardware = rows_of(detail, "li-table")
    assert "Widget 3 $19.99 $6.00 (10%) $59.97 T3" in hardware
    assert "Gizmo 1 $100.00 $15.50 $100.00 T3" in hardware
    assert "Shipping (F5) $10.00" in hardware and "Group total $181.12" in hardware
    services = re.findall(r"<table class=\"li-table\">.*?</table>", detail, re.DOTALL)[1]
    assert 'colspan="6">Installed on site' in services  # a comment spans the row
    assert "List price" not in detail  # shown only for documents that ask for it


def test_editing_keeps_the_lines_and_removing_one_changes_the_totals(client, books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Order 1", "line_items": two_groups()},
                                 admin)
    url = f"/m/ledgers/{record['id']}/edit"
    values = form_values(client.get(url).text)
    assert values["li-0-0-name"] == "Widget" and values["li-0-0-unit_price"] == "19.99"
    assert values["li-0-0-discount_kind"] == "percent" and values["li-0-1-discount_value"] == "15.5"
    assert values["li-0-shipping"] == "10.00" and values["li-0-shipping_tax_code_id"] == "F5"
    assert values["li-1-0-kind"] == "comment"

    # saved as it is: nothing changes, not even the version
    assert client.post(url, data=values).status_code == 200
    assert site.records.get("ledgers", record["id"], admin)["version"] == record["version"]

    gizmo = {k: v for k, v in values.items() if not k.startswith("li-0-1-")}
    response = client.post(url, data=gizmo, follow_redirects=False)
    assert response.status_code == 303
    # Hardware without the gizmo: 53.97 net + 10.00 shipping + taxes 3.20 + 3.78 + 6.05
    after = site.records.get("ledgers", record["id"], admin)
    assert after["amount"] == Decimal("177.00")
    detail = client.get(f"/m/ledgers/{record['id']}").text
    assert "Total $177.00" in rows_of(detail, "li-document-totals")
    assert "Gizmo" not in detail


def test_bad_lines_come_back_marked_on_their_rows_and_nothing_is_saved(client, books):
    site, admin = books
    groups = two_groups()
    groups[0]["lines"][0]["unit_price"] = "12,5x"
    groups[1]["lines"][1]["quantity"] = "-2"
    groups[1]["lines"][1]["tax_code_id"] = "NOPE"
    response = create(client, form_of(groups, [0, 4], [2, 9]))
    assert response.status_code == 422
    assert site.records.list("ledgers", admin, Query(limit=None)) == []
    page = response.text
    # the summary at the top names each row as the user counts them
    summary = re.search(r'<ul class="flash error li-problems".*?</ul>', page, re.DOTALL).group(0)
    summary = [text_of(item) for item in re.findall(r"<li>.*?</li>", summary, re.DOTALL)]
    assert summary == ["Group 1, line 1 · Unit price: '12,5x' is not a number",
                       "Group 2, line 2 · Quantity: must not be negative",
                       "Group 2, line 2 · Tax code: unknown tax code"]
    # each message sits by its input, in the rows as they were posted (renumbered from 0)
    cell = re.search(r'<div class="li-cell li-quantity li-price invalid">.*?</div>', page,
                     re.DOTALL).group(0)
    assert 'id="li-1-1-quantity"' in cell and 'value="-2"' in cell
    assert "must not be negative" in cell and 'aria-invalid="true"' in cell
    assert re.search(r'id="li-0-0-unit_price-error">&#39;12,5x&#39; is not a number', page)
    values = form_values(page)
    assert values["li-0-0-name"] == "Widget" and values["li-1-1-tax_code_id"] == "NOPE"
    assert values["li-1-0-description"] == "Installed on site"
    assert "line_items.1.1" not in page  # no raw keys for the user


def test_a_form_without_the_editor_leaves_the_lines_alone(client, books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Order 1", "line_items": two_groups()},
                                 admin)
    url = f"/m/ledgers/{record['id']}/edit"
    values = {k: v for k, v in form_values(client.get(url).text).items()
              if not k.startswith("li-") and k != "_line_items"}
    assert client.post(url, data=values | {"name": "Renamed"}).status_code == 200
    assert len(site.records.feature_data("line_items", "ledgers", record["id"], admin).lines) == 4
    # while an editor emptied of every row removes them
    values = form_values(client.get(url).text)
    emptied = {k: v for k, v in values.items() if not k.startswith("li-")}
    assert client.post(url, data=emptied).status_code == 200
    assert site.records.feature_data("line_items", "ledgers", record["id"], admin).groups == []
    assert site.records.get("ledgers", record["id"], admin)["amount"] == 0


def test_plugin_actions_are_buttons_beside_edit(client, books):
    site, admin = books
    record = site.records.create("ledgers", {"name": "Order 1"}, admin)
    page = client.get(f"/m/ledgers/{record['id']}").text
    head = page[page.index('<div class="buttons">'):page.index("</div>", page.index(
        '<div class="buttons">'))]
    archive = re.search(r'<form method="post" action="/m/ledgers/[^"]+/archive".*?</form>',
                        head, re.DOTALL).group(0)
    assert f'name="_csrf" value="{client.csrf}"' in archive
    assert 'data-confirm="Archive this ledger?">Archive</button>' in archive
    assert f'<a class="button" href="/m/ledgers/{record["id"]}?statement=1">Statement</a>' in head
    assert head.index("Edit") < head.index("Archive")
    assert "line-items" not in page  # no lines, no table
    # modules the plugin has no buttons for get none
    widget = site.records.create("widgets", {"name": "Sprocket"}, admin)
    assert "/archive" not in client.get(f"/m/widgets/{widget['id']}").text


def test_a_catalog_and_a_tax_code_module_make_pickers_and_choices(client, books):
    site, admin = books
    # as a module naming both would (the shipped order plugins): widgets stand in for both
    site.registry.module("ledgers").features["line_items"].update(catalog="widgets",
                                                                   tax_codes="widgets")
    vat = site.records.create("widgets", {"name": "VAT 20%"}, admin)
    page = client.get("/m/ledgers/new").text
    assert 'data-price-url="/widgets/price"' in page
    picker = re.search(r'<div class="picker" data-picker data-li-product data-source="([^"]+)">'
                       r'\s*<input type="hidden" name="li-0-0-product_id"', page)
    assert picker and picker.group(1) == "/m/widgets/pick"
    select = re.search(r'<select id="li-0-0-tax_code_id".*?</select>', page, re.DOTALL).group(0)
    assert f'<option value="{vat["id"]}">VAT 20%</option>' in select
    # the currency is asked for in the editor only when the layout does not ask already
    assert page.count('name="amount_currency"') == 1


def test_the_editor_asks_for_the_currency_when_the_layout_does_not(client, books):
    site, _ = books
    site.registry.module("ledgers").definition["layouts"]["edit"] = [{"rows": [["name", "note"]]}]
    page = client.get("/m/ledgers/new").text
    editor = page[page.index('id="line-items"'):]
    assert re.search(r'<input id="f_amount_currency" name="amount_currency" value="USD"', editor)
    tea = [{"lines": [  # tests/kernel/test_line_items.py's yen document: 899 net + 72 tax + 1
        {"name": "Tea set", "quantity": "3", "unit_price": "333", "discount_value": "10",
         "discount_kind": "percent", "tax_code_id": "JP8"},
        {"name": "Sticker", "quantity": "1", "unit_price": "0.5"}]}]
    response = create(client, form_of(tea, [0], [0, 1]) | {"amount_currency": "JPY"},
                      follow_redirects=False)
    assert response.status_code == 303, response.text[:2000]
    detail = client.get(response.headers["location"]).text
    assert "Total ¥972" in rows_of(detail, "li-table")
    assert "Tea set 3 ¥333 ¥100 (10%) ¥999 JP8" in rows_of(detail, "li-table")
    assert "Sticker 1 ¥0.5 ¥1" in rows_of(detail, "li-table")  # the unit price as given
