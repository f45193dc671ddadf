"""The forecast page in Chromium, on a phone and a desktop: a manager reads their team's
pipeline, enters a committed figure for a report and sees the chart. Screenshots:
forecast-phone, forecast-desktop (test-artifacts/screenshots/)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.kernel.users import create_user
from plugins.forecasts import periods
from plugins.forecasts.tests.test_forecasts import reports_to
from tests import browser as helpers
from tests.browser import PASSWORD, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_a_manager_enters_a_forecast_for_a_report(page, site, admin, viewport):
    max_, rita = create_user(site, "max", PASSWORD), create_user(site, "rita", PASSWORD)
    reports_to(site, rita, max_)
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    today = periods.site_today(site)
    site.records.create_many("opportunities", [
        {"name": name, "account_id": acme["id"], "amount": amount, "sales_stage": stage,
         "date_closed": today, "assigned_user_id": owner.id}
        for name, amount, stage, owner in (
            ("Rockets", "20000", "negotiation_review", rita),
            ("Anvils", "5000", "closed_won", rita), ("Magnets", "8000", "prospecting", max_))],
        admin)
    periods.keep_periods(site)

    log_in(page, "max")
    page.goto("/forecasts")
    expect(page.locator("h1")).to_contain_text("max")
    total = page.locator("tr[data-user=total]")
    expect(total).to_contain_text("$28,000.00")   # open: 20,000 + 8,000
    expect(total).to_contain_text("$16,800.00")   # weighted: 16,000 + 800
    expect(total).to_contain_text("$5,000.00")    # closed won
    page.get_by_label("Committed: rita").fill("17500")
    page.get_by_role("button", name="Save").click()
    expect(page.locator(".flash")).to_contain_text("The forecast was saved.")
    expect(page.get_by_label("Committed: rita")).to_have_value("17500.00")
    expect(page.locator("svg.forecast-chart")).to_be_visible()
    # nothing wider than the phone's screen
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "forecast", viewport)
    assert site.records.list("forecast_entries", admin)[0]["committed"] == 17500
