"""Holidays in a real browser (Chromium via Playwright), at phone and desktop widths: the
"Holiday: <name>" hint beside a date field, choosing a holiday set in the preferences, and the
calendar pages. Screenshots go to test-artifacts/screenshots/holidays-*-<viewport>.png."""
from __future__ import annotations

import json

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from core.kernel import users
from tests import browser as helpers
from tests.browser import at, log_in, screenshot
from tests.pack_util import install_folder

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def choose_holidays(site, user, pack: str) -> None:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        stored = conn.execute(sa.select(table.c.preferences).where(table.c.id == user.id)).scalar()
    users.save_preferences(site, user.id, {**json.loads(stored or "{}"), "holidays": pack})


def test_a_date_field_names_the_holiday_picked(page, server, site, admin, viewport):
    install_folder(site, "holidays_ca")
    choose_holidays(site, admin, "holidays_ca")
    contact = site.records.create("contacts", {"first_name": "Jane", "last_name": "Doe"}, admin)
    log_in(page)
    page.goto(f"/m/contacts/{contact['id']}/edit")
    birthdate = page.get_by_label("Birthdate")
    hint = page.locator(".holiday-hint")
    expect(hint).to_have_count(1)  # one date field on this form
    expect(hint).to_have_text("")

    birthdate.fill("2027-07-01")
    expect(hint).to_have_text("Holiday: Canada Day")
    expect(birthdate).to_have_accessible_description("Holiday: Canada Day")
    screenshot(page, "holidays-date-hint", viewport)
    birthdate.fill("2027-07-02")
    expect(hint).to_have_text("")
    birthdate.fill("2028-12-26")  # another year: fetched when first needed
    expect(hint).to_have_text("Holiday: Boxing Day")

    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(at(server, f"/m/contacts/{contact['id']}"))
    page.goto(f"/m/contacts/{contact['id']}/edit")  # a saved holiday is named on arrival
    expect(page.locator(".holiday-hint")).to_have_text("Holiday: Boxing Day")


def test_choose_a_holiday_set_and_browse_the_calendar(page, server, site, admin, viewport):
    install_folder(site, "holidays_ca")
    install_folder(site, "holidays_fi")
    log_in(page)
    page.get_by_role("link", name="Calendar").click()  # the agenda, which names no set either
    expect(page).to_have_url(at(server, "/calendar/agenda"))
    expect(page.get_by_text("No holiday calendar is chosen, so no holidays are shown.")).to_be_visible()
    page.goto("/calendar")  # the holidays' month grid
    expect(page.get_by_text("No holiday calendar is chosen, so no holidays are shown.")).to_be_visible()
    screenshot(page, "holidays-none", viewport)
    page.get_by_role("link", name="Go to preferences").click()

    page.get_by_label("Holidays").select_option(label="Canada (Ontario)")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Preferences saved.")

    page.goto("/calendar?year=2027&month=7")
    expect(page.get_by_role("heading", name="July 2027")).to_be_visible()
    canada_day = page.locator("td:has(time[datetime='2027-07-01'])")
    expect(canada_day).to_contain_text("Canada Day")
    expect(page.locator(".month-holidays")).to_contain_text("Canada Day")
    screenshot(page, "holidays-month", viewport)

    page.get_by_role("link", name="August 2027").click()
    expect(page.get_by_role("heading", name="August 2027")).to_be_visible()
    expect(page.locator(".month-holidays")).to_contain_text("No holidays this month.")
    page.get_by_role("link", name="All holidays of 2027").click()
    expect(page).to_have_url(at(server, r"/calendar/holidays\?year=2027"))
    expect(page.locator("table.holidays tbody tr")).to_have_count(11)
    expect(page.locator("table.holidays tbody tr").filter(has_text="Thanksgiving Day")) \
        .to_contain_text("Oct 11, 2027")
    screenshot(page, "holidays-year", viewport)
