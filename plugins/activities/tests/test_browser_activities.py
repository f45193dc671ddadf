"""An account's Activities and History panels in Chromium, on a phone and a desktop: the
panels open and show what is to do and what was done, and a call is logged from History in
two taps and a title. Screenshots: activities-phone, activities-desktop
(test-artifacts/screenshots/)."""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_an_account_shows_its_activities_and_logs_a_call(page, site, admin, viewport):
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    about = {"parent_id": acme["id"], "parent_type": "accounts"}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    site.records.create("calls", {"name": "Call the buyer", "status": "planned",
                                  "date_start": now + dt.timedelta(days=1), **about}, admin)
    site.records.create("tasks", {"name": "Send the quote", "status": "completed", **about},
                        admin)
    site.records.create("notes", {"name": "Buying process", "description": "CFO decides",
                                  **about}, admin)

    log_in(page, "admin")
    page.goto(f"/m/accounts/{acme['id']}")
    page.locator("#sub-activities summary h2").click()
    expect(page.locator("#sub-activities .subpanel-rows")).to_contain_text("Call the buyer")
    page.locator("#sub-history summary h2").click()
    history = page.locator("#sub-history .subpanel-rows")
    expect(history).to_contain_text("Send the quote")
    expect(history).to_contain_text("Buying process")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "activities", viewport)
    # log a call: History's "Create Call" is a held call about Acme
    page.locator("#sub-history a.button", has_text="Call").click()
    page.get_by_label("Subject").fill("Customer called back")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_contain_text("Acme")  # back on the account
    expect(history).to_contain_text("Customer called back")  # History stays open
    logged = site.records.list("calls", admin)
    held = [c for c in logged if c["name"] == "Customer called back"]
    assert held and held[0]["status"] == "held" and held[0]["parent_id"] == acme["id"]
