"""Administration → Backups in a real browser, at phone and desktop widths: the settings
saved, a bad value shown at its field, the local backups listed with a download.
Screenshot: backups-<viewport>.png (test-artifacts/screenshots)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.apps.backup import backup
from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_the_backups_page(page, server, site, admin, viewport, tmp_path):
    log_in(page)
    page.goto("/admin")
    page.get_by_role("link", name="Backups").click()
    expect(page.get_by_role("heading", name="Backups", exact=True)).to_be_visible()
    page.get_by_label("Local backup folder").fill(str(tmp_path / "bk"))
    page.get_by_label("Backups to keep here").fill("0")
    # Enter submits with the form's first button, Save (a tap on Save, under a loaded CI
    # machine's phone emulation, was once taken by the field above it)
    page.get_by_label("Backups to keep here").press("Enter")
    expect(page.locator("#bk-keep-error")).to_have_text("A number from 1 to 1000.")
    page.get_by_label("Backups to keep here").fill("3")
    page.get_by_label("What to back up").select_option("config")
    page.get_by_label("Backups to keep here").press("Enter")
    expect(page.get_by_text("The backup settings were saved.")).to_be_visible()
    made = backup.make_backup(site, tmp_path / "bk", files="none")
    page.reload()
    expect(page.get_by_role("link", name=made.name)).to_be_visible()
    expect(page.get_by_label("What to back up")).to_have_value("config")
    # only the chosen remote's fields show
    expect(page.get_by_label("Bucket")).to_be_hidden()
    page.get_by_label("Copy each backup to").select_option("sftp")
    expect(page.get_by_label("Host", exact=True)).to_be_visible()
    expect(page.get_by_label("Bucket")).to_be_hidden()
    screenshot(page, "backups", viewport)
    with page.expect_download() as download:
        page.get_by_role("link", name=made.name).click()
    assert download.value.suggested_filename == made.name


def test_restoring_from_the_browser_after_the_proof_of_access(page, server, site, admin,
                                                              viewport):
    made = backup.make_backup(site, site.folder / "backups", files="none")
    log_in(page)
    page.goto("/admin/backups")
    page.get_by_role("link", name="Restore a backup…").click()
    key = page.locator("#rs-key").inner_text()
    expect(page.get_by_role("combobox")).to_have_count(0)  # nothing to choose before the proof
    (site.folder / "restore_key.txt").write_text(key)
    page.get_by_role("link", name="Check again").click()
    page.get_by_label("A backup in the local folder").select_option(made.name)
    page.get_by_role("button", name="Check the backup").click()
    expect(page.locator("#rs-manifest")).to_contain_text("every checksum matches")
    screenshot(page, "restore", viewport)
    page.get_by_role("button", name="Restore", exact=True).click()
    expect(page.locator("#rs-error")).to_have_text("Tick the confirmation to replace this site.")
