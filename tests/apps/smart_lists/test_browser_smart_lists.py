"""Smart lists in Chromium, desktop and phone: filter the deals, save the list as a smart
list with a KPI, see its tab and the KPI strip; reorder its columns with the chooser's
arrows (no JavaScript involved). Screenshots: the list with its tab and KPIs, and the
column chooser open."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.apps.board.deals import plugin as deals_plugin
from tests.apps.smart_lists.test_smart_lists import DEALS
from tests.browser import TIMEOUT_MS, VIEWPORTS, live_server, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def deals_page(browser, viewport, make_site, admin_of_site):
    site = make_site(extra_plugins=[deals_plugin])
    admin = admin_of_site(site)
    for name, stage, amount, code, probability, _ in DEALS:
        site.records.create("deals", {"name": name, "stage": stage, "amount": amount,
                                      "amount_currency": code, "probability": probability},
                            admin)
    with live_server(site) as base:
        context = browser.new_context(base_url=base, **VIEWPORTS[viewport])
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture
def admin_of_site():
    from core.kernel.users import create_user
    from tests.browser import PASSWORD
    return lambda site: create_user(site, "admin", PASSWORD, is_admin=True)


def test_a_filtered_list_saved_as_a_smart_list_shows_its_tab_and_kpi(deals_page, viewport):
    page = deals_page
    log_in(page)
    page.goto("/m/deals")
    page.locator("form.filters select[name=f_stage]").select_option("prospecting")
    page.locator("form.filters").get_by_role("button", name="Filter").click()
    expect(page.locator("table.records tbody tr")).to_have_count(2)
    page.locator("#save-list summary").click()
    dialog = page.locator("#save-list")
    dialog.get_by_label("Name", exact=True).fill("Prospects")
    dialog.locator("select[name=kpi]").first.select_option("sum:amount")
    dialog.locator("select[name=kpi]").nth(1).select_option("avg:probability")
    dialog.get_by_label("Everyone").check()
    dialog.get_by_role("button", name="Save").click()
    tab = page.locator(".smart-tabs a[aria-current=page]")
    expect(tab).to_have_text("Prospects")
    expect(page.locator(".flash")).to_have_text("Smart list Prospects saved.")
    strip = page.locator(".kpi-strip")
    expect(strip.locator(".kpi").first).to_contain_text("Sum of Amount")
    expect(strip.locator(".kpi").first.locator("dd")).to_have_text("$5,000.00")
    expect(strip.locator(".kpi").nth(1).locator("dd")).to_have_text("15%")
    expect(page.locator("table.records tbody tr")).to_have_count(2)
    screenshot(page, "smart-list", viewport)
    # the "All" tab: every deal, no KPIs of the smart list
    page.locator(".smart-tabs").get_by_role("link", name="All").click()
    expect(page.locator("table.records tbody tr")).to_have_count(5)
    expect(page.locator(".kpi-strip")).to_have_count(0)
    # back on the tab: move "Stage" to the front with the chooser's arrows
    page.locator(".smart-tabs").get_by_role("link", name="Prospects").click()
    page.locator("#list-settings summary").click()
    chooser = page.locator("#list-settings")
    for _ in range(2):  # Deal name, Account, Stage, ...: two steps up
        chooser.get_by_role("button", name="Move Stage up").click()
        expect(page.locator("#list-settings[open]")).to_have_count(1)
    expect(page.locator(".smart-tabs a[aria-current=page]")).to_have_text("Prospects")
    screenshot(page, "smart-list-columns", viewport)
    first = page.locator("table.records thead th[scope=col]").first
    expect(first).to_have_text("Stage")
