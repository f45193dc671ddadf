"""Outgoing mail in a real browser: an administrator sets up the mail server at Admin →
Outgoing mail and sends a test message that reaches a real SMTP server (aiosmtpd); before
that, "Forgot your password?" says reset by email is not available. Then "Log out
everywhere" on Preferences. Screenshots: the mail settings with the test result, the
honest forgot-password page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.apps.documents.test_web_admin_mail import (
    SMTP_PASSWORD,
    SMTP_USER,
    inbox,  # noqa: F401 (the fixture)
)
from tests.browser import TIMEOUT_MS, at, log_in, screenshot

pytestmark = [pytest.mark.browser,
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]
expect.set_options(timeout=TIMEOUT_MS)


def test_an_administrator_sets_up_mail_and_sends_a_test_message(page, viewport, server, site,
                                                                admin, inbox):  # noqa: F811
    page.goto("/password/forgot")
    expect(page.get_by_role("alert")).to_have_text(
        "Password reset by email is not available on this site. Ask an administrator to set "
        "a new password for you.")
    screenshot(page, "mail-forgot-unavailable", viewport)

    log_in(page)
    page.goto("/admin")
    page.get_by_role("link", name="Outgoing mail").click()
    page.get_by_label("Mail server (SMTP)").fill("127.0.0.1")
    page.get_by_label("Port").fill(str(inbox.port))
    page.get_by_label("User name").fill(SMTP_USER)
    page.get_by_label("Password", exact=True).fill(SMTP_PASSWORD)
    page.get_by_label("From address").fill("crm@example.com")
    page.get_by_label("From name").fill("Example Ltd")
    page.get_by_label("Site address").fill(server)
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status").first).to_have_text(
        "The outgoing mail settings were saved.")
    expect(page.get_by_label("Password", exact=True)).to_have_value("")

    page.get_by_label("Send the test to").fill("it@example.com")
    page.get_by_role("button", name="Send a test message").click()
    expect(page.locator("#mail-test-result")).to_contain_text(
        "A test message was sent to it@example.com.")
    screenshot(page, "mail-settings-tested", viewport)
    assert [m["Subject"] for m in inbox.messages] == ["CRBM test message"]

    page.goto("/preferences")
    page.get_by_role("button", name="Log out everywhere").click()
    expect(page).to_have_url(at(server, "/login"))
    expect(page.get_by_role("status")).to_have_text(
        "You were logged out everywhere. Log in again to continue.")
