"""The line-items editor in Chromium: groups and lines added, moved and removed with the
buttons, saved, and the detail page's totals; then the same pages at phone width.
Screenshots: line-items-edit-*, line-items-detail-* (test-artifacts/screenshots/)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.kernel.records import Query
from core.kernel.site import Site, create_site
from plugins.line_items.tests.test_line_items import two_groups
from tests import browser as helpers
from tests.browser import log_in, screenshot
from tests.plugins.kitchen_sink import plugin as kitchen_sink
from tests.plugins.ledger import plugin as ledger

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


@pytest.fixture
def site(tmp_path, database_url):
    """A site with the test ledger plugin (the browser fixtures serve this one)."""
    folder = create_site(tmp_path / "site", database_url)
    site = Site(folder, extra_plugins=[kitchen_sink, ledger])
    site.sync_schema()
    yield site
    site.close()


def fill_line(line, name, quantity, price, discount=None, discount_kind=None, tax=None):
    line.locator("input[name$='-name']").fill(name)
    line.locator("input[name$='-quantity']").fill(quantity)
    line.locator("input[name$='-unit_price']").fill(price)
    if discount:
        line.locator("input[name$='-discount_value']").fill(discount)
    if discount_kind:
        line.locator("select[name$='-discount_kind']").select_option(discount_kind)
    if tax:
        line.locator("input[name$='-tax_code_id']").fill(tax)


@pytest.mark.parametrize("viewport", ["desktop"])
def test_a_ledger_is_built_with_the_editor_buttons(page, site, admin, viewport):
    log_in(page)
    page.goto("/m/ledgers/new")
    page.locator("#f_name").fill("Order 1")
    editor = page.locator("[data-line-items]")
    groups = editor.locator("[data-li-group]")
    hardware = groups.nth(0)
    hardware.get_by_label("Group name").fill("Hardware")
    hardware.get_by_label("Shipping", exact=True).fill("10")
    hardware.get_by_label("Shipping tax code").fill("F5")
    lines = hardware.locator("[data-li-line]")
    fill_line(lines.nth(0), "Gizmo", "1", "100", "15.50", "amount", "T3")
    hardware.get_by_role("button", name="+ Add line").click()
    fill_line(lines.nth(1), "Widget", "3", "19.99", "10", None, "T3")
    lines.nth(1).get_by_role("button", name="Move up").click()  # Widget first
    expect(lines.nth(0).locator("input[name$='-name']")).to_have_value("Widget")

    editor.get_by_role("button", name="+ Add group").click()
    expect(groups).to_have_count(2)
    services = groups.nth(1)
    services.get_by_label("Group name").fill("Services")
    fill_line(services.locator("[data-li-line]").nth(0), "Installation", "2.5", "40")
    services.get_by_role("button", name="+ Add line").click()
    fill_line(services.locator("[data-li-line]").nth(1), "Mistake", "1", "1")
    services.locator("[data-li-line]").nth(1).get_by_role("button", name="Remove line").click()
    services.get_by_role("button", name="+ Add comment").click()
    comment = services.locator("[data-li-line]").nth(1)
    expect(comment.locator("input[name$='-unit_price']")).to_be_hidden()  # comments: text only
    comment.locator("textarea").fill("Installed on site")
    comment.get_by_role("button", name="Move up").click()
    expect(services.locator("[data-li-line]")).to_have_count(2)
    screenshot(page, "line-items-edit", viewport)

    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).not_to_have_text(re.compile("Create"))
    totals = page.locator("table.li-document-totals")
    expect(totals).to_contain_text("$281.12")
    expect(totals.locator("tr", has_text="Federal 5%")).to_contain_text("$7.43")
    [record] = site.records.list("ledgers", admin, Query(limit=None))
    items = site.records.feature_data("line_items", "ledgers", record["id"], admin)
    assert [(g.name, [line.name or line.description for line in g.lines])
            for g in items.groups] == [("Hardware", ["Widget", "Gizmo"]),
                                       ("Services", ["Installed on site", "Installation"])]
    screenshot(page, "line-items-detail", viewport)


@pytest.mark.parametrize("viewport", ["phone"])
def test_the_pages_work_at_phone_width(page, site, admin, viewport):
    record = site.records.create("ledgers", {"name": "Order 1", "line_items": two_groups()},
                                 admin)
    # the ledgers' catalog: kitchen_sink's widgets, priced by the ledger plugin's service
    site.registry.module("ledgers").features["line_items"]["catalog"] = "widgets"
    site.records.create("widgets", {"name": "Sprocket", "color": "teal"}, admin)
    log_in(page)
    page.goto(f"/m/ledgers/{record['id']}")
    expect(page.locator("table.li-document-totals")).to_contain_text("$281.12")
    wrap = page.locator(".li-table-wrap").first
    # the wide table scrolls inside its box; the page itself does not
    assert wrap.evaluate("el => el.scrollWidth > el.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    screenshot(page, "line-items-detail", viewport)

    page.get_by_role("link", name="Edit", exact=True).click()
    widget = page.locator("[data-li-line]").first
    expect(widget.get_by_label("Quantity")).to_have_value("3")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    widget.get_by_label("Quantity").fill("4")

    # a product picked from the catalog fills its line from the catalog's price service
    services = page.locator("[data-li-group]").nth(1)
    services.get_by_role("button", name="+ Add line").click()
    picked = services.locator("[data-li-line]").last
    picked.get_by_label("Name").fill("Spr")
    picked.get_by_role("option", name="Sprocket").click()
    expect(picked.get_by_label("Unit price")).to_have_value("12.50")
    expect(picked.get_by_label("Part number")).to_have_value("W-SPR")
    expect(picked.get_by_label("Tax code")).to_have_value("T3")
    screenshot(page, "line-items-edit", viewport)

    page.get_by_role("button", name="Save").click()
    # 4 x 19.99 = 79.96, the line's new extended price
    expect(page.locator("table.li-table").first).to_contain_text("$79.96")
    expect(page.locator("table.li-table").nth(1)).to_contain_text("W-SPR")
