"""Upgrades & Customization in a real browser, at phone and desktop widths: an
administrator uploads a module pack, reads its checks, installs it, opens the new module,
then uninstalls it through the confirmation page. Screenshots: packs-check, packs-result,
packs-remove, packs-list, packs-refused (test-artifacts/screenshots/<flow>-<viewport>.png)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.apps.packs.test_web_packs import VEHICLES, fleet, pack_zip
from tests.browser import at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def step_result(page, step: str):
    """The Result cell of ``step`` (on a phone a cell's name includes its column label)."""
    return page.locator(f"table.pack-steps tr[data-step={step}] td").nth(1)


def test_upload_install_open_and_uninstall_a_pack(page, server, admin, viewport, tmp_path):
    filename, data = fleet(tmp_path)
    pack_file = tmp_path / filename
    pack_file.write_bytes(data)
    log_in(page)

    page.goto("/admin")
    page.get_by_role("link", name="Upgrades & Customization").click()
    expect(page.get_by_role("heading", name="Upgrades & Customization")).to_be_visible()
    expect(page.get_by_text("No packs are installed yet.")).to_be_visible()
    page.get_by_label("Pack file (.zip)").set_input_files(str(pack_file))
    page.get_by_role("button", name="Upload and check").click()

    # the check: every step passed, and what the install would change
    expect(page).to_have_url(at(server, "/admin/packs/upload/[0-9a-f]{32}"))
    expect(page.get_by_role("heading", name="Check: Fleet pack")).to_be_visible()
    for step in ("unpack", "validate", "compatibility", "permission"):
        expect(step_result(page, step)).to_have_text("✓ Passed")
    changes = page.locator("ul.pack-changes li")
    expect(changes.filter(has_text="new module: vehicles")).to_have_count(1)
    expect(changes.filter(has_text="create table vehicles")).to_have_count(1)
    screenshot(page, "packs-check", viewport)

    page.get_by_role("button", name="Install").click()
    expect(page.get_by_role("heading", name="Installed: Fleet pack")).to_be_visible()
    expect(page.get_by_role("status")).to_have_text("The pack was installed; every step passed.")
    expect(page.locator("table.pack-steps tbody tr")).to_have_count(10)
    for step in ("files", "registry", "schema", "hook", "history", "cleanup"):
        expect(step_result(page, step)).to_have_text("✓ Passed")
    screenshot(page, "packs-result", viewport)

    page.get_by_role("main").get_by_role("link", name="Vehicles").click()
    expect(page).to_have_url(at(server, "/m/vehicles"))
    expect(page.get_by_role("heading", name="Vehicles", exact=True)).to_be_visible()

    page.goto("/admin/packs")
    row = page.locator("tr[data-pack=fleet]")
    expect(row).to_contain_text("Enabled")
    screenshot(page, "packs-list", viewport)
    row.get_by_role("link", name="Uninstall").click()
    expect(page).to_have_url(at(server, "/admin/packs/fleet/remove#mode-uninstall"))
    expect(page.get_by_role("heading", name="Remove Fleet pack")).to_be_visible()
    modes = page.get_by_role("radio")
    expect(modes).to_have_count(3)
    for index in range(3):
        expect(modes.nth(index)).not_to_be_checked()  # a destructive choice is never made for you
    expect(page.locator("#mode-purge")).to_contain_text("drop table vehicles (0 rows)")
    screenshot(page, "packs-remove", viewport)

    page.get_by_role("button", name="Apply the chosen removal").click()  # nothing chosen
    expect(page).to_have_url(at(server, "/admin/packs/fleet/remove#mode-uninstall"))  # stays
    page.get_by_label("Uninstall").check()
    page.get_by_role("button", name="Apply the chosen removal").click()
    expect(page.get_by_role("status")).to_have_text("Pack fleet was uninstalled.")
    expect(page.locator("ul.pack-changes")).to_contain_text("keep table vehicles and its data")

    page.goto("/m/vehicles")
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
    page.goto("/admin/packs")
    expect(page.locator("tr[data-pack=fleet]")).to_contain_text("Uninstalled (data kept)")
    expect(page.locator("tr[data-pack=fleet]").get_by_role("link", name="Purge")).to_be_visible()
    assert not re.search("Uninstall\\b", page.locator("tr[data-pack=fleet] .buttons").inner_text())


def test_a_refused_pack_says_why_and_offers_no_install(page, server, admin, viewport, tmp_path):
    filename, data = pack_zip(tmp_path, files={"modules/vehicles.yaml": VEHICLES,
                                               "plugin.py": "# hooks\n"})
    pack_file = tmp_path / filename
    pack_file.write_bytes(data)
    log_in(page)
    page.goto("/admin/packs")
    page.get_by_label("Pack file (.zip)").set_input_files(str(pack_file))
    page.get_by_role("button", name="Upload and check").click()

    expect(step_result(page, "permission")).to_have_text("✗ Failed")
    alert = page.get_by_role("alert")
    expect(alert).to_contain_text("This pack cannot be installed. Nothing was changed on this site.")
    expect(alert).to_contain_text("contains Python code (plugin.py)")
    expect(page.get_by_role("button", name="Install")).to_have_count(0)
    screenshot(page, "packs-refused", viewport)

    page.get_by_role("button", name="Discard the upload").click()
    expect(page).to_have_url(at(server, "/admin/packs"))
    expect(page.get_by_role("status")).to_contain_text(f"The upload {filename} was discarded.")
    expect(page.get_by_text("No packs are installed yet.")).to_be_visible()
