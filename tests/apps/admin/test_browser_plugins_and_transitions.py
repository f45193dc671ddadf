"""Issue 16's two new screens in Chromium: Admin → Plugins (disable a plugin, its module
leaves the navigation, enable it again) and a quote's status actions (the stage's next
steps as buttons; Mark lost closes it, Reopen brings it back).
Screenshots: admin-plugins, quote-transitions (test-artifacts/screenshots/)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_an_administrator_disables_and_enables_a_plugin(page, site, admin, viewport):
    log_in(page)
    page.goto("/admin/plugins")
    row = page.locator("tr[data-plugin=purchases]")
    expect(row).to_contain_text("Enabled")
    screenshot(page, "admin-plugins", viewport)
    row.get_by_role("button", name="Disable").click()
    expect(page.locator("body")).to_contain_text("Plugin purchases disabled")
    expect(page.locator("tr[data-plugin=purchases]")).to_contain_text("Disabled")
    assert "purchase_orders" not in site.registry.modules
    page.locator("tr[data-plugin=purchases]").get_by_role("button", name="Enable").click()
    expect(page.locator("tr[data-plugin=purchases]")).to_contain_text("Enabled")
    assert "purchase_orders" in site.registry.modules


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_quote_offers_its_next_steps_and_closes_only_through_them(page, site, admin,
                                                                    viewport):
    account = site.records.create("accounts", {"name": "Café Soleil"}, admin)
    quote = site.records.create("quotes", {"name": "Espresso bar",
                                           "account_id": account["id"]}, admin)
    log_in(page)
    page.goto(f"/m/quotes/{quote['id']}")
    for label in ("Mark accepted", "Mark lost", "Mark dead"):
        expect(page.get_by_role("button", name=label)).to_be_visible()
    expect(page.get_by_role("button", name="Reopen")).to_have_count(0)
    # the history opens with its creation, empty values shown as such (not "None")
    expect(page.locator("td[data-label=Field]", has_text="Created")).to_be_visible()
    expect(page.locator("td").filter(has_text=re.compile(r"^\s*None\s*$"))).to_have_count(0)
    screenshot(page, "quote-transitions", viewport)
    page.get_by_role("button", name="Mark lost").click()
    expect(page.get_by_role("button", name="Reopen")).to_be_visible()
    assert site.records.get("quotes", quote["id"], admin)["stage"] == "closed_lost"
    page.get_by_role("button", name="Reopen").click()
    expect(page.get_by_role("button", name="Mark lost")).to_be_visible()
    assert site.records.get("quotes", quote["id"], admin)["stage"] == "draft"
