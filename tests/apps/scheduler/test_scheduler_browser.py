"""The Scheduler page in Chromium at desktop and phone (390 px) widths: each task's form
shows the fields its kind uses (webhook deliveries "every 5 seconds", a task hourly at :17),
nothing wider than the screen; screenshots in test-artifacts/screenshots."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.jobs import scheduler
from tests.browser import TIMEOUT_MS, log_in, screenshot

pytestmark = pytest.mark.browser

SIZES = {"desktop": {"viewport": {"width": 1440, "height": 900}},
         "phone390": {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                      "has_touch": True}}


@pytest.mark.parametrize("size", list(SIZES))
def test_the_scheduler_page_shows_each_kinds_fields(site, admin, browser, server, size):
    scheduler.configure(site, "jobs.prune", schedule="17 * * * *")
    context = browser.new_context(base_url=server, **SIZES[size])
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        log_in(page)
        page.goto("/admin/scheduler")
        webhooks = page.locator("#task-webhooks\\.deliver form.schedule-form")
        expect(webhooks.locator("[name=kind]")).to_have_value("seconds")
        expect(webhooks.locator("[name=seconds]")).to_have_value("5")
        expect(webhooks.locator("[name=seconds]")).to_be_visible()
        expect(webhooks.locator("[name=cron]")).to_be_hidden()
        prune = page.locator("#task-jobs\\.prune form.schedule-form")
        expect(prune.locator("[name=kind]")).to_have_value("hourly")
        expect(prune.locator("[name=minute]")).to_have_value("17")
        expect(prune.locator("[name=time]")).to_be_hidden()
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= SIZES[size]["viewport"]["width"], width
        screenshot(page, "admin-scheduler", size)
    finally:
        context.close()
