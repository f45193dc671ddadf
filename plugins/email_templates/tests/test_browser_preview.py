"""A template's "Preview against a record" in a real browser, on a phone and a desktop: the
button on the template's page, the record picked by typing its name, the subject, HTML and
text shown — nothing wider than the screen. Screenshot: the preview."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import TIMEOUT_MS, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


def test_preview_a_template_against_a_picked_record(page, viewport, server, site, admin):
    site.records.create("accounts", {"name": "Zephyr Logistics", "industry": "banking"}, admin)
    made = site.records.create("email_templates", {
        "name": "Check-in", "for_module": "accounts", "subject": "Call {{ name }} today",
        "body_html": "<p>{{ name }} works in {{ industry }}.</p><p><a href=\"{{ record_url }}\">"
                     "Open the account</a></p>"}, admin)
    log_in(page)
    page.goto(f"/m/email_templates/{made['id']}")
    page.get_by_role("link", name="Preview against a record").click()
    field = page.get_by_label("Record", exact=True)
    field.click()
    field.press_sequentially("Zep")
    suggestions = page.locator(".picker").filter(has=field).get_by_role("option")
    suggestions.filter(has_text="Zephyr Logistics").click()
    page.get_by_role("button", name="Preview").click()
    expect(page.locator("#preview-subject")).to_have_text("Call Zephyr Logistics today")
    expect(page.locator("#preview-html")).to_contain_text("Zephyr Logistics works in Banking.")
    expect(page.locator("#preview-text")).to_contain_text("Open the account (/m/accounts/")
    expect(field).to_have_value("Zephyr Logistics")  # the record by its name, not its id
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the preview scrolls sideways ({width} px)"
    screenshot(page, "email-template-preview", viewport)
