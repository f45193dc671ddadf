"""Notifications in a real browser (Chromium via Playwright), at phone and desktop widths:
the bell in the top bar with its unread count, the list it opens, marking one read and then
all. Screenshots go to test-artifacts/screenshots/notifications-*-<viewport>.png."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.apps.notifications import notify
from tests import browser as helpers
from tests.browser import at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_the_bell_counts_opens_the_list_and_marking_read_empties_it(page, server, site, admin,
                                                                     viewport):
    acme = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    notify(site, [admin.id], "Acme Corporation was assigned to you", module="accounts",
           record_id=acme["id"])
    notify(site, [admin.id], "Quote Q-1024 for Acme Corporation was approved by the sales "
           "manager and is ready to be sent to the customer")
    notify(site, [admin.id], "Weekly pipeline review moved to Thursday", url="/calendar")
    log_in(page)
    bell = page.locator("a.counted[href='/notifications']")
    expect(bell.locator(".nav-count")).to_have_text("3")
    expect(bell).to_be_visible()
    screenshot(page, "notifications-bell", viewport)

    bell.click()
    expect(page).to_have_url(at(server, "/notifications"))
    expect(page.get_by_role("heading", name="Notifications")).to_be_visible()
    rows = page.locator("li.notification")
    expect(rows).to_have_count(3)
    expect(page.locator("li.notification.unread")).to_have_count(3)
    expect(rows.first).to_contain_text("Weekly pipeline review moved to Thursday")
    expect(page.get_by_role("link", name="Acme Corporation was assigned to you")).to_have_attribute(
        "href", f"/m/accounts/{acme['id']}")
    screenshot(page, "notifications-list", viewport)

    rows.first.get_by_role("button", name="Mark read").click()
    expect(page.locator("li.notification.unread")).to_have_count(2)
    expect(bell.locator(".nav-count")).to_have_text("2")
    expect(page.get_by_text("2 unread")).to_be_visible()

    page.get_by_role("button", name="Mark all read").click()
    expect(page.get_by_role("status")).to_have_text("Notifications marked read.")
    expect(page.locator("li.notification.unread")).to_have_count(0)
    expect(bell.locator(".nav-count")).to_have_count(0)
    expect(page.get_by_role("button", name="Mark all read")).to_have_count(0)
    screenshot(page, "notifications-read", viewport)

    page.get_by_role("link", name="Acme Corporation was assigned to you").click()
    expect(page).to_have_url(at(server, f"/m/accounts/{acme['id']}"))


def test_a_notification_arriving_while_the_page_is_open_pops_up(page, server, site, admin,
                                                                 viewport):
    """A reminder (or any notification) made while the user is on a page comes to the
    screen at the bell's next poll — no reload: a pop-up linking to it, the count up."""
    log_in(page)
    bell = page.locator("a.counted[href='/notifications']")
    expect(bell).to_be_visible()
    page.evaluate("window.crbmPollNotifications()")  # the first poll: where "new" starts
    meeting = site.records.create("meetings", {
        "name": "Quarterly business review", "date_start": "2031-03-10T09:00:00+00:00",
        "date_end": "2031-03-10T10:00:00+00:00"}, admin)
    notify(site, [admin.id], "Reminder: Quarterly business review at 10:00",
           module="meetings", record_id=meeting["id"])
    page.evaluate("window.crbmPollNotifications()")  # what the minute's timer does
    toast = page.locator(".toasts .toast")
    expect(toast).to_have_count(1)
    expect(toast.get_by_role("link", name="Reminder: Quarterly business review at 10:00")
           ).to_have_attribute("href", f"/m/meetings/{meeting['id']}")
    expect(bell.locator(".nav-count")).to_have_text("1")
    screenshot(page, "notifications-popup", viewport)
    page.evaluate("window.crbmPollNotifications()")  # seen: no second pop-up
    expect(toast).to_have_count(1)
    toast.get_by_role("button", name="Dismiss").click()
    expect(toast).to_have_count(0)
