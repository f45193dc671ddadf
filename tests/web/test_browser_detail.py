"""Issue 17's light detail page in Chromium, on a desktop and a phone: an account shows its
subpanels closed with their counts; opening one fetches and shows its rows; the browser
remembers it open for the next account; the subpanel's own page (where its link leads
without JavaScript). Screenshots: detail-subpanels-closed, detail-subpanel-open,
detail-subpanel-page (test-artifacts/screenshots/)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_subpanels_show_counts_and_open_to_their_rows(page, site, admin, viewport):
    r = site.records
    acme = r.create("accounts", {"name": "Acme Haulage", "industry": "transportation",
                                 "billing_address_city": "Leeds"}, admin)
    for first, last, title in (("Wile E.", "Coyote", "Engineer"), ("Road", "Runner", "Courier"),
                               ("Pepe", "Le Pew", "Buyer")):
        r.create("contacts", {"first_name": first, "last_name": last, "title": title,
                              "account_id": acme["id"]}, admin)
    r.create("quotes", {"name": "Fleet renewal", "stage": "draft", "account_id": acme["id"]},
             admin)
    r.create("emails", {"name": "Welcome aboard", "account_id": acme["id"]}, admin)
    other = r.create("accounts", {"name": "Globex"}, admin)
    r.create("contacts", {"first_name": "Hank", "last_name": "Scorpio",
                          "account_id": other["id"]}, admin)

    log_in(page)
    page.goto(f"/m/accounts/{acme['id']}")
    contacts, quotes, bills = (page.locator(f"#sub-{name}")
                               for name in ("contacts", "quotes", "bills"))
    expect(contacts.locator(".count")).to_have_text("3")
    expect(quotes.locator(".count")).to_have_text("1")
    expect(bills.locator(".count")).to_have_text("0")
    expect(bills.get_by_role("link", name="Create")).to_be_visible()  # closed, still there
    expect(contacts.get_by_role("link", name="Coyote")).to_have_count(0)  # not read yet
    screenshot(page, "detail-subpanels-closed", viewport)

    with page.expect_response(lambda r: r.url.endswith("/panels/state")):  # remembered
        contacts.get_by_role("heading", name="Contacts").click()  # open it: the rows come
    for name in ("Wile E. Coyote", "Road Runner", "Pepe Le Pew"):
        expect(contacts.get_by_role("link", name=name)).to_be_visible()
    expect(contacts).to_contain_text("Courier")
    expect(contacts).not_to_contain_text("Scorpio")
    screenshot(page, "detail-subpanel-open", viewport)
    contacts.get_by_role("link", name="Road Runner").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Road Runner")

    # the next account opens with Contacts open, as this browser left it
    page.goto(f"/m/accounts/{other['id']}")
    panel = page.locator("#sub-contacts")
    expect(panel.get_by_role("link", name="Hank Scorpio")).to_be_visible()
    expect(page.locator("#sub-quotes .count")).to_have_text("0")
    with page.expect_response(lambda r: r.url.endswith("/panels/state")):
        panel.get_by_role("heading", name="Contacts").click()  # closed again: remembered too
    page.goto(f"/m/accounts/{acme['id']}")
    expect(page.locator("#sub-contacts")).not_to_have_attribute("open", "")

    # without JavaScript a subpanel's link leads to its own page: the same rows, Create
    page.goto(f"/m/accounts/{acme['id']}/subpanel/contacts")
    expect(page.get_by_role("heading", level=1)).to_have_text("Contacts")
    expect(page.get_by_role("link", name="Acme Haulage").first).to_be_visible()
    expect(page.get_by_role("link", name="Road Runner")).to_be_visible()
    expect(page.get_by_role("link", name="Create")).to_be_visible()
    screenshot(page, "detail-subpanel-page", viewport)
