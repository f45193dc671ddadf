"""A plugin's field type in Chromium: the test rating plugin's five radio stars, chosen by
their accessible names and with the keyboard, saved, then shown in the list and filtered.
Screenshots: field-type-rating-edit-*, field-type-rating-list-* (test-artifacts/screenshots/)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core.kernel.records import Query
from tests import browser as helpers
from tests.browser import log_in, screenshot
from tests.plugins.rating import plugin as rating

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


@pytest.fixture
def site(make_site):
    """A site with the rating plugin (the browser fixtures serve this one)."""
    return make_site(extra_plugins=[rating])


@pytest.mark.parametrize("viewport", ["desktop", "phone"])
def test_a_rating_is_chosen_with_the_stars_and_shown_in_the_list(page, site, admin, viewport):
    site.records.create_many("reviews", [{"name": "Alpha", "stars": 2},
                                         {"name": "Gamma", "stars": 5}], admin)
    log_in(page)
    page.goto("/m/reviews/new")
    page.locator("#f_name").fill("Beta")
    group = page.get_by_role("radiogroup", name="Stars")
    expect(group).to_be_visible()
    group.locator("label", has_text="3 of 5 stars").click()  # the third star
    expect(group.get_by_label("3 of 5 stars")).to_be_checked()
    page.keyboard.press("ArrowRight")  # radios move with the arrow keys: 4 stars
    expect(group.get_by_label("4 of 5 stars")).to_be_checked()
    screenshot(page, "field-type-rating-edit", viewport)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("h1")).to_have_text(re.compile("Beta"))
    expect(page.get_by_role("img", name="4 of 5 stars")).to_have_text("★★★★☆")
    assert {r["name"]: r["stars"] for r in site.records.list("reviews", admin, Query())} == \
        {"Alpha": 2, "Beta": 4, "Gamma": 5}

    page.goto("/m/reviews")
    expect(page.get_by_role("img", name="2 of 5 stars")).to_have_text("★★☆☆☆")
    page.locator("select[name=f_stars]").select_option(label="★★★★ or more")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("img", name=re.compile("of 5 stars"))).to_have_count(2)
    expect(page.get_by_role("img", name="2 of 5 stars")).to_have_count(0)
    screenshot(page, "field-type-rating-list", viewport)
