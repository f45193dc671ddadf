"""iCalendar in Chromium, on a phone and a desktop: the user makes their secret calendar
address from Preferences (shown once), then imports a bad .ics and sees the line at fault,
then a good one. Screenshots: ical-feed, ical-import-error (test-artifacts/screenshots/)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

BAD = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Example//Test//EN
BEGIN:VTIMEZONE
TZID:Office Time
BEGIN:STANDARD
DTSTART:19701025T030000
TZOFFSETFROM:+0200
TZOFFSETTO:+99xx
END:STANDARD
END:VTIMEZONE
BEGIN:VEVENT
UID:b-1@example.com
DTSTART;TZID=Office Time:20270310T090000
DTEND;TZID=Office Time:20270310T100000
SUMMARY:Budget review
END:VEVENT
END:VCALENDAR
"""


def test_a_user_makes_a_calendar_address_and_imports_a_calendar(page, site, admin, viewport,
                                                                tmp_path):
    log_in(page, "admin")
    page.goto("/preferences")
    section = page.locator("#calendar-feed")
    expect(section).to_contain_text("You have no calendar address.")
    section.get_by_role("button", name="Make my calendar address").click()
    feed = page.locator("#ical-feed-url")
    assert "/ical/feed/" in feed.input_value() and feed.input_value().endswith(".ics")
    screenshot(page, "ical-feed", viewport)
    bad = tmp_path / "bad.ics"
    bad.write_text(BAD)
    page.goto("/ical/import")
    page.set_input_files("#ical-file", str(bad))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#ical-error")).to_contain_text("Line 9: TZOFFSETTO")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "ical-import-error", viewport)
    good = tmp_path / "good.ics"
    good.write_text(BAD.replace("TZOFFSETTO:+99xx", "TZOFFSETTO:+0100"))
    page.set_input_files("#ical-file", str(good))
    page.get_by_role("button", name="Import").click()
    expect(page.locator("#ical-result")).to_contain_text("1 created")
    assert [m["name"] for m in site.records.list("meetings", admin)] == ["Budget review"]
