"""The administrator's system-support pages in a real browser, at phone and desktop widths:
System log (a mark point set, then only what came after it), Diagnostics (the bundle
downloaded), Storage utilization (measured now) and Maintenance (the schema checked).
Screenshots: system-log-, diagnostics-, storage-, maintenance-<viewport>.png."""
from __future__ import annotations

import logging
import zipfile

import pytest
from playwright.sync_api import expect

from core.apps.logs import setup
from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


@pytest.fixture
def logged(site):
    before = list(logging.getLogger().handlers), logging.getLogger().level
    setup.configure(site)
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "crbm", False)]:
        handler.close()
    root.handlers[:], root.level = before


def test_the_system_log_and_diagnostics(page, server, site, admin, viewport, logged, tmp_path):
    log_in(page)
    logging.getLogger("crbm.mail").error("the mail server refused the login")
    page.goto("/admin")
    page.get_by_role("link", name="System log").click()
    expect(page.get_by_role("heading", name="System log", exact=True)).to_be_visible()
    expect(page.get_by_text("the mail server refused the login")).to_be_visible()
    page.get_by_label("Note for the mark point").fill("before the import")
    page.get_by_role("button", name="Set a mark point").click()
    expect(page.get_by_text("A mark point was written to the log.")).to_be_visible()
    expect(page.get_by_text("Mark point set by admin: before the import")).to_be_visible()
    expect(page.get_by_text("the mail server refused the login")).to_have_count(0)
    page.get_by_label("Since the last mark point").uncheck()
    page.get_by_label("Search", exact=True).fill("refused")
    page.get_by_role("button", name="Show").click()
    expect(page.get_by_text("the mail server refused the login")).to_be_visible()
    screenshot(page, "system-log", viewport)

    page.goto("/admin/diagnostics")
    expect(page.get_by_role("heading", name="Diagnostics")).to_be_visible()
    screenshot(page, "diagnostics", viewport)
    with page.expect_download() as download:
        page.get_by_role("link", name="Download the diagnostic bundle").click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    assert "log.jsonl" in zipfile.ZipFile(saved).namelist()


def test_storage_and_maintenance(page, server, site, admin, viewport):
    log_in(page)
    page.goto("/admin")
    page.get_by_role("link", name="Storage utilization").click()
    expect(page.get_by_text("Not measured yet.")).to_be_visible()
    page.get_by_role("button", name="Measure now").click()
    expect(page.get_by_text("The storage was measured.")).to_be_visible()
    expect(page.locator("#st-database")).to_be_visible()
    screenshot(page, "storage", viewport)

    page.goto("/admin")
    page.get_by_role("link", name="Maintenance").click()
    page.get_by_role("button", name="Check the schema").click()
    expect(page.locator("#mt-schema")).to_be_visible()
    screenshot(page, "maintenance", viewport)
