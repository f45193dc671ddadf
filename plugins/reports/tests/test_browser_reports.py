"""Reports in Chromium, on a phone and a desktop: an administrator builds a report with a bar
chart in the builder, runs it, and selects a bar: the group's records are listed, exactly
those. Screenshots: report-builder-<viewport>, report-<viewport>, report-records-<viewport>
(test-artifacts/screenshots/)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from plugins.reports.tests.test_web import world  # noqa: F401  (the fixture)
from tests import browser as helpers
from tests.browser import at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

# where the Banking bar is (half its height, 1,750 / 2), in the chart's own coordinates
BAR_MIDDLE = """(holder) => {
  const chart = echarts.getInstanceByDom(holder);
  const across = chart.getOption().yAxis[0].type === "category";
  return chart.convertToPixel({ seriesIndex: 0 }, across ? [875, 0] : [0, 875]);
}"""


def test_a_bar_chart_report_built_run_and_drilled_into(page, site, admin, viewport, server,
                                                       world):  # noqa: F811
    log_in(page)
    page.goto("/reports/new?module=accounts")
    page.get_by_label("Name").fill("Pipeline by industry")
    # a new report starts with the module's list columns: out with them (only one blank
    # row shows, "Add a column" shows the next)
    chosen = page.locator("[data-rows=c] [data-row]:not([hidden]) select[data-field-select]")
    for index in range(chosen.count()):
        chosen.nth(index).select_option("")
    expect(page.locator("#c7-key")).to_be_hidden()
    page.locator("#c0-key").select_option("opportunities.amount")
    # the aggregates that fit a relationship's amount: no plain value, a sum
    expect(page.locator("#c0-aggregate option[value='']")).to_be_disabled()
    page.locator("#c0-aggregate").select_option("sum")
    page.locator("#c1-key").select_option("id")
    page.locator("#c1-aggregate").select_option("count")
    page.locator("#g0-key").select_option("industry")
    page.get_by_label("Chart type").select_option("bar")
    page.get_by_label("Chart column").select_option("0")
    screenshot(page, "report-builder", viewport)
    page.get_by_role("button", name="Save and run").click()

    expect(page.locator("h1")).to_have_text("Pipeline by industry")
    expect(page.locator("tr.total")).to_contain_text("$5,750.00")
    holder = page.locator("[data-report-chart]")
    expect(holder.locator("svg")).to_be_visible()
    expect(holder.locator("svg path").first).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "report", viewport)

    report_url = page.url
    x, y = holder.evaluate(BAR_MIDDLE)
    box = helpers.box_of(holder)
    page.mouse.click(box["x"] + x, box["y"] + y)
    expect(page).to_have_url(at(server, re.escape(report_url[len(server):]) +
                                r"/records\?g0=banking"))
    expect(page.locator("h1")).to_have_text("Industry: Banking")
    names = page.locator("table.report-table tbody a")
    expect(names).to_have_text(["Alpha", "Beta"])
    expect(page.locator("[data-count]")).to_have_text("2 records")
    screenshot(page, "report-records", viewport)
    page.locator("[data-back]").click()
    expect(page.locator("h1")).to_have_text("Pipeline by industry")


@pytest.mark.parametrize("chart", ["stacked_bar", "line", "donut", "funnel"])
def test_every_chart_type_draws_and_its_segments_open_their_records(
        page, site, admin, viewport, server, world, chart):  # noqa: F811
    """Screenshots: report-<chart>-<viewport>."""
    from plugins.reports.tests.test_web import report

    levels = [{"via": "account_id", "field": "industry"}] + \
        ([{"field": "account_id"}] if chart == "stacked_bar" else [])
    report_id = report(site, admin, {"module": "opportunities", "columns": [
        {"field": "amount", "aggregate": "sum"}, {"field": "id", "aggregate": "count"}],
        "group_by": levels, "chart": {"type": chart, "column": 0}}, name=f"Deals ({chart})")
    log_in(page)
    page.goto(f"/reports/{report_id}")
    holder = page.locator("[data-report-chart]")
    expect(holder.locator("svg path").first).to_be_attached()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, f"report-{chart}", viewport)
    urls = holder.evaluate("""(holder) => echarts.getInstanceByDom(holder).getOption()
        .series.flatMap((s) => s.data).filter(Boolean).map((d) => d.url)""")
    assert urls and all(u.startswith(f"/reports/{report_id}/records?g0=") for u in urls)


def test_a_name_with_markup_is_text_in_the_chart_and_its_tooltip(page, site, admin, viewport):
    from plugins.reports.tests.test_web import report

    evil = '<img src=x onerror="window.__owned=1">'
    site.records.create("accounts", {"name": evil, "employees": 5}, admin)
    report_id = report(site, admin, {"module": "accounts", "columns": [
        {"field": "employees", "aggregate": "sum"}], "group_by": [{"field": "name"}],
        "chart": {"type": "bar", "column": 0}})
    log_in(page)
    page.goto(f"/reports/{report_id}")
    holder = page.locator("[data-report-chart]")
    expect(holder.locator("svg path").first).to_be_attached()
    holder.evaluate("""(holder) => echarts.getInstanceByDom(holder).dispatchAction(
        { type: "showTip", seriesIndex: 0, dataIndex: 0 })""")
    expect(holder.locator("div").filter(has_text="onerror").last).to_be_visible()
    assert holder.locator("img").count() == 0
    assert page.evaluate("window.__owned") is None
    expect(page.get_by_role("link", name=evil)).to_be_visible()  # the table's, as text
