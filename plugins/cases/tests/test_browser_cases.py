"""Cases in Chromium, on a phone and a desktop: the customer rates a closed case through the
survey link from the email (signed out), and the agent finds the case in the list and sees
the stars on it. Screenshots: case-survey-<viewport>, case-detail-<viewport>
(test-artifacts/screenshots/)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from core import jobs
from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_the_customer_rates_a_closed_case_and_the_agent_sees_it(page, site, admin, viewport,
                                                                  smtp_inbox):
    site.set_setting("cases", {"surveys": True})
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Roe",
                                            "email1": "jane@acme.example",
                                            "account_id": acme["id"]}, admin)
    case = site.records.create("cases", {"name": "Printer prints blank pages",
                                         "account_id": acme["id"], "contact_id": jane["id"],
                                         "priority": "p1"}, admin)
    site.records.update("cases", case["id"], {"status": "closed",
                                              "resolution": "Replaced the toner."}, admin)
    jobs.run_due_jobs(site)
    [mail] = [m for m in smtp_inbox.messages if "/survey/" in m.get_body(("plain",)).get_content()]
    link = re.search(r"(/survey/\S+)", mail.get_body(("plain",)).get_content()).group(1)

    page.goto(link)  # the customer: not signed in
    expect(page.locator("h1")).to_have_text("How did we do?")
    page.locator("input[name=rating][value='4']").check()
    page.locator("textarea[name=comment]").fill("Quick and friendly.")
    screenshot(page, "case-survey", viewport)
    page.get_by_role("button", name="Send my rating").click()
    expect(page.locator("h1")).to_have_text("Thank you")

    log_in(page, "admin")
    page.goto("/m/cases")
    expect(page.locator("main")).to_contain_text("Printer prints blank pages")
    page.locator(f"a[href='/m/cases/{case['id']}']").first.click()
    expect(page.locator("main")).to_contain_text("★★★★☆")
    expect(page.locator("main")).to_contain_text("Quick and friendly.")
    screenshot(page, "case-detail", viewport)
