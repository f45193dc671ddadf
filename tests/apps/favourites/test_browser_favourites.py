"""Favourites in Chromium, desktop and phone: star a deal from its detail page, follow the
top bar's Favourites link to find it there (and under Recently viewed), remove it from
that page. Screenshots: the starred record's page and the favourites page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.apps.board.deals import plugin as deals_plugin
from tests.browser import PASSWORD, TIMEOUT_MS, VIEWPORTS, live_server, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def deal_page(browser, viewport, make_site):
    from core.kernel.users import create_user
    site = make_site(extra_plugins=[deals_plugin])
    admin = create_user(site, "admin", PASSWORD, is_admin=True)
    deal = site.records.create("deals", {"name": "Northern lights"}, admin)
    with live_server(site) as base:
        context = browser.new_context(base_url=base, **VIEWPORTS[viewport])
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page, f"/m/deals/{deal['id']}"
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def test_a_starred_record_is_found_again_on_the_favourites_page(deal_page, viewport):
    page, url = deal_page
    log_in(page)
    page.goto(url)
    page.get_by_role("button", name="Add to favourites").click()
    expect(page.get_by_text("Northern lights is in your favourites.")).to_be_visible()
    expect(page.get_by_role("button", name="Remove from favourites")).to_be_visible()
    screenshot(page, "favourites-detail", viewport)
    page.goto("/")
    page.locator('a.nav-entry[href="/favourites"]').click()
    expect(page.get_by_role("heading", name="Favourites", level=1)).to_be_visible()
    favourites = page.locator("section.favourites")
    expect(favourites.get_by_role("heading", name="Deals")).to_be_visible()
    expect(favourites.get_by_role("link", name="Northern lights")).to_be_visible()
    expect(page.locator("section.recent").get_by_role("link", name="Northern lights")) \
        .to_be_visible()
    screenshot(page, "favourites-page", viewport)
    favourites.get_by_role("button", name="Remove Northern lights from favourites").click()
    expect(page.get_by_text("No favourites yet.", exact=False)).to_be_visible()
