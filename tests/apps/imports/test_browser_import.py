"""The import wizard in a real browser, on a phone and a desktop: the list's "Import"
action, the upload step, the mapping screen (samples, proposed fields), the progress page
turning into the summary with the skipped row, and Manage Imported Data. Nothing wider than
the screen. Screenshots: the mapping screen and the summary."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core import jobs
from tests.browser import TIMEOUT_MS, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


def fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways ({width} px)"


def test_import_accounts_through_the_wizard(page, viewport, server, site, admin, tmp_path):
    path = tmp_path / "accounts.csv"
    path.write_text("Account name,Billing address: city,Type,Employees\n"
                    "Zürich Holding,Zürich,Customer,120\nGlobex,Springfield,Nope,40\n"
                    "Initech,Austin,partner,15\n", encoding="utf-8")
    log_in(page)
    page.goto("/m/accounts")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.get_by_role("heading", name="Import Accounts")).to_be_visible()
    page.get_by_label("File (CSV, Excel .xlsx or vCard .vcf)").set_input_files(str(path))
    page.get_by_role("button", name="Next").click()
    mapping = page.locator("table.import-mapping")
    expect(mapping).to_contain_text("Zürich Holding")
    expect(page.locator('tr[data-column="Type"] select')).to_have_value("account_type")
    expect(page.locator('tr[data-column="Employees"] select')).to_have_value("employees")
    fits(page)
    screenshot(page, "import-mapping", viewport)
    page.get_by_label("Save this mapping as").fill("Spreadsheet")
    page.get_by_role("button", name="Import", exact=True).click()
    expect(page.locator("#import-progress")).to_be_visible()
    jobs.run_due_jobs(site)  # the worker's part; the page polls and shows the summary
    expect(page.locator('[data-count="created"]')).to_have_text("2")
    expect(page.locator("#import-skipped")).to_contain_text("'Nope' is not one of the list's values")
    fits(page)
    screenshot(page, "import-summary", viewport)
    page.get_by_role("link", name="Accept or reject").click()
    expect(page.locator(".import-records")).to_contain_text("Initech")
    fits(page)
