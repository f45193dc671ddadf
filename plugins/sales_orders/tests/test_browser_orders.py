"""A quote made in Chromium: choosing its account fills the addresses and terms the user
left empty, and the billing-contact picker then offers that account's contacts first.
Screenshot: quote-from-account-desktop (test-artifacts/screenshots/)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


@pytest.mark.parametrize("viewport", ["desktop"])
def test_choosing_the_account_fills_the_quote_and_narrows_its_contacts(page, site, admin,
                                                                      viewport):
    records = site.records
    cafe = records.create("accounts", {
        "name": "Café Soleil", "terms": "net_45", "billing_address_street": "12 rue du Port",
        "billing_address_city": "Montréal", "shipping_address_city": "Longueuil"}, admin)
    other = records.create("accounts", {"name": "Brasserie du Port"}, admin)
    for account, first, last in ((other, "Anne", "Bernard"), (cafe, "Zoé", "Martin")):
        records.create("contacts", {"first_name": first, "last_name": last,
                                    "account_id": account["id"]}, admin)

    log_in(page)
    page.goto("/m/quotes/new")
    page.locator("#f_name").fill("Espresso bar")
    page.locator("#f_shipping_address_city").fill("Laval")  # the user's: kept
    page.locator("#f_account_id").fill("Café")
    page.get_by_role("option", name="Café Soleil").click()
    expect(page.locator("#f_billing_address_city")).to_have_value("Montréal")
    expect(page.locator("#f_billing_address_street")).to_have_value("12 rue du Port")
    expect(page.locator("#f_terms")).to_have_value("net_45")
    expect(page.locator("#f_shipping_address_city")).to_have_value("Laval")

    page.locator("#f_billing_contact_id").focus()  # the account's contact first
    expect(page.locator("[data-field=billing_contact_id] [role=option]").first
           ).to_have_text("Zoé Martin")
    page.get_by_role("option", name="Zoé Martin").click()
    screenshot(page, "quote-from-account", viewport)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_have_text("Espresso bar")
    [quote] = records.list("quotes", admin)
    assert (quote["billing_address_city"], quote["shipping_address_city"], quote["terms"]) == \
        ("Montréal", "Laval", "net_45")
