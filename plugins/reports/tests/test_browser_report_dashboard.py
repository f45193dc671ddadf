"""A saved report on the home dashboard, in Chromium on a phone and a desktop: an
administrator builds a grouped report with a bar chart in the report builder, adds it to
a new dashboard of theirs through "Add a dashlet", and a click on one bar of the dashlet's chart
lists exactly that group's records. Screenshot: dashboard-report-<viewport>
(test-artifacts/screenshots/)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from plugins.reports.tests.test_browser_reports import BAR_MIDDLE
from plugins.reports.tests.test_web import world  # noqa: F401  (the fixture)
from tests import browser as helpers
from tests.browser import at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def build_report(page) -> str:
    """"Pipeline by industry" (the deals' amounts summed by their account's industry, a bar
    chart of the sums) built and saved in the report builder; its page's path."""
    page.goto("/reports/new?module=accounts")
    page.get_by_label("Name").fill("Pipeline by industry")
    chosen = page.locator("[data-rows=c] [data-row]:not([hidden]) select[data-field-select]")
    for index in range(chosen.count()):  # out with the module's list columns
        chosen.nth(index).select_option("")
    page.locator("#c0-key").select_option("opportunities.amount")
    page.locator("#c0-aggregate").select_option("sum")
    page.locator("#c1-key").select_option("id")
    page.locator("#c1-aggregate").select_option("count")
    page.locator("#g0-key").select_option("industry")
    page.get_by_label("Chart type").select_option("bar")
    page.get_by_label("Chart column").select_option("0")
    page.get_by_role("button", name="Save and run").click()
    expect(page.locator("h1")).to_have_text("Pipeline by industry")
    return re.sub(r"^https?://[^/]+", "", page.url).split("?")[0]


def test_a_report_added_to_the_dashboard_drills_into_a_bar(page, site, admin, viewport,
                                                           server, world):  # noqa: F811
    log_in(page)
    report_path = build_report(page)

    page.goto("/")  # a dashboard of its own for the report: "+", named "Reports"
    page.locator(".dash-newtab summary").click()
    page.get_by_label("Name of the new dashboard").fill("Reports")
    page.get_by_role("button", name="Create").click()
    expect(page.locator(".dash-tabs a[aria-current=page]")).to_have_text("Reports")
    page.locator(".dash-add summary").click()  # "Add a dashlet": the report as its option
    choice = page.locator("form.dash-choice").filter(
        has=page.locator("input[name=type][value='reports.report']"))
    choice.get_by_role("combobox", name="Report").select_option(label="Pipeline by industry")
    choice.get_by_role("button", name="Add “Report”").click()

    dashlet = page.locator("[data-type='reports.report']")
    expect(dashlet.locator("table.dash-table")).to_contain_text("$1,750.00")
    holder = dashlet.locator(".dash-chart")
    expect(holder.locator("svg path").first).to_be_attached()  # ECharts drew it
    expect(dashlet.get_by_role("link", name="Open the report “Pipeline by industry” →")) \
        .to_have_attribute("href", report_path)
    holder.scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "dashboard-report", viewport)

    x, y = holder.evaluate(BAR_MIDDLE)  # the middle of the Banking bar
    holder.click(position={"x": x, "y": y})
    expect(page).to_have_url(at(server, re.escape(report_path) + r"/records\?g0=banking"))
    expect(page.locator("h1")).to_have_text("Industry: Banking")
    expect(page.locator("table.report-table tbody a")).to_have_text(["Alpha", "Beta"])
    expect(page.locator("[data-count]")).to_have_text("2 records")
