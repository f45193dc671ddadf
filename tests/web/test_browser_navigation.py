"""The top bar as people use it (issue 25, point 5): on a desktop the module groups are one
row of menus — a click opens a group, its modules with their icons, Escape or a click
elsewhere closes it, and the group of the page's module is marked; on a phone the groups
are a drawer behind "Menu", every module one tap away. The plugins' entries (calendar,
mail, notifications...) are icons whose words screen readers and tooltips still carry.
Screenshots: navigation-menu-desktop.png, navigation-drawer-phone.png."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_modules_are_grouped_menus_on_a_desktop_and_a_drawer_on_a_phone(page, server, site,
                                                                          admin, viewport):
    log_in(page)
    bar = page.locator("header.topbar")
    sales = page.locator(".tab-group").filter(
        has=page.locator(".tab-group-label").get_by_text("Sales", exact=True))
    # (hidden links are not in the accessibility tree: found by their address)
    accounts = page.locator('nav.tabs a[href="/m/accounts"]')
    cases = page.locator('nav.tabs a[href="/m/cases"]')
    # the module's icon, from the vendored Lucide sprite, beside its name
    expect(accounts.locator("svg use")).to_have_attribute(
        "href", "/static/vendor/lucide/sprite.svg#building")
    calendar = page.get_by_role("link", name="Calendar", exact=True)
    expect(calendar).to_have_attribute("title", "Calendar")

    if viewport == "desktop":
        assert bar.bounding_box()["height"] < 70  # one row, nine groups and all
        expect(accounts).to_be_hidden()
        sales.locator("button").click()
        expect(sales.locator("button")).to_have_attribute("aria-expanded", "true")
        expect(accounts).to_be_visible()
        screenshot(page, "navigation-menu", viewport)
        page.keyboard.press("Escape")
        expect(accounts).to_be_hidden()
        # one group open at a time; a click elsewhere closes it
        sales.locator("button").click()
        page.get_by_role("button", name="Support").click()
        expect(accounts).to_be_hidden()
        expect(cases).to_be_visible()
        page.locator("main h1").click()
        expect(cases).to_be_hidden()
        sales.locator("button").click()
    else:
        expect(accounts).to_be_hidden()
        page.get_by_text("Menu").click()
        expect(accounts).to_be_visible()
        expect(cases).to_be_visible()
        screenshot(page, "navigation-drawer", viewport)
    accounts.click()
    expect(page.get_by_role("heading", name="Accounts", exact=True)).to_be_visible()
    expect(sales).to_have_class("tab-group current")
    expect(page.locator(".tab-group.current")).to_have_count(1)
    calendar.click()
    expect(page).to_have_url(f"{server}/calendar/agenda")
