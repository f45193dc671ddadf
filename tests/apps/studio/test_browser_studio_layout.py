"""The Studio's Layout Editor in a real browser, at phone and desktop widths: an administrator
drags a field from the Available Fields list into an empty position, drags one placed field
onto another (they swap), adds a section, names it, fills it through the select of an empty
position, adds and removes rows, removes a section and a field, changes a label in the Edit position dialog, saves, and the record's page shows
the result. The list editor reorders columns with the buttons. Screenshots: studio-layout,
studio-layout-list (test-artifacts/screenshots/<flow>-<viewport>.png)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

EDITOR = "/admin/studio/modules/accounts/layouts"


def slot(page, name: str):
    return page.locator(f'[data-stage] [data-slot="{name}"]')


def test_arrange_the_detail_layout_by_drag_and_drop(page, server, site, admin, viewport):
    site.studio.save_field(admin, "accounts", "fleet_size", {"type": "integer",
                                                             "label": "Fleet size"}, new=True)
    acme = site.records.create("accounts", {"name": "Acme", "account_type": "customer",
                                            "industry": "banking", "fleet_size": 12,
                                            "website": "https://acme.example"}, admin)
    # the admin starts from the three sections of the accounts plugin (no Sales terms)
    detail = site.registry.module("accounts").layouts["detail"]
    site.studio.save_layout(admin, "accounts", "detail",
                            [s for s in detail if s["label"] != "Sales terms"])
    log_in(page)
    page.goto(f"{EDITOR}/detail")
    expect(page.get_by_role("heading", name="Layout of Accounts: Detail view")).to_be_visible()
    custom = page.locator('[data-available] [data-group="custom"]')
    expect(custom.locator("[data-field]")).to_have_count(1)
    expect(custom).to_contain_text("Fleet size")

    # a custom field into the empty position beside Description: dragged on a desktop (the
    # Available Fields list stays in view beside the layout), chosen in that position's
    # select on a phone (the list is above the layout there)
    target = slot(page, "s2r3c1")
    expect(target.locator("select")).to_be_visible()
    if viewport == "desktop":
        target.evaluate("node => node.scrollIntoView({block: 'center'})")  # no scroll mid-drag
        page.locator('[data-available] [data-field="fleet_size"]').drag_to(target)
    else:
        target.locator("select").select_option("fleet_size")
    expect(slot(page, "s2r3c1").locator('[data-field="fleet_size"]')).to_be_visible()
    expect(custom.locator("[data-field]")).to_have_count(0)
    expect(page.locator("[data-status]").first).to_have_text("Unsaved changes")

    # a placed field onto another: Type and Industry swap
    slot(page, "s0r1c0").scroll_into_view_if_needed()
    slot(page, "s0r1c0").locator('[data-field="account_type"]').drag_to(slot(page, "s0r1c1"))
    expect(slot(page, "s0r1c0").locator("[data-field]")).to_have_attribute("data-field", "industry")
    expect(slot(page, "s0r1c1").locator("[data-field]")).to_have_attribute("data-field",
                                                                           "account_type")

    # a new section at the bottom, named, filled through its empty position's select
    page.get_by_role("button", name="+ Add section").click()
    sections = page.locator("[data-stage] section.studio-section")
    expect(sections).to_have_count(4)
    name = sections.nth(3).get_by_label("Section name")
    expect(name).to_be_focused()
    name.fill("Fleet")
    slot(page, "s3r0c0").locator("select").select_option("created_by")
    expect(slot(page, "s3r0c0").locator('[data-field="created_by"]')).to_be_visible()
    # ...and moved up above More information
    sections.nth(3).get_by_role("button", name="Move section Fleet up").click()
    expect(sections.nth(2).get_by_label("Section name")).to_have_value("Fleet")

    # rows come and go; a removed section's fields and a removed field go back to the list
    fleet = sections.nth(2)
    fleet.get_by_role("button", name="+ Add row").click()
    expect(fleet.locator(".studio-row")).to_have_count(2)
    fleet.get_by_role("button", name="Add a row above row 1").click()
    expect(fleet.locator(".studio-row")).to_have_count(3)
    expect(slot(page, "s2r1c0").locator('[data-field="created_by"]')).to_be_visible()
    fleet.get_by_role("button", name="Remove row 3").click()
    fleet.get_by_role("button", name="Remove row 1").click()
    expect(fleet.locator(".studio-row")).to_have_count(1)
    sections.nth(1).get_by_role("button", name="Remove section").click()
    expect(sections).to_have_count(3)
    standard = page.locator('[data-available] [data-group="standard"]')
    expect(standard.locator('[data-field="billing_address"]')).to_have_count(1)
    page.get_by_role("button", name="Remove Fax").click()
    expect(standard.locator('[data-field="phone_fax"]')).to_have_count(1)
    expect(slot(page, "s0r3c1").locator("select")).to_be_focused()  # keyboards stay put

    # the Edit position dialog: Website gets another label
    page.locator('[data-stage] [data-field="website"] .chip-label').click()
    dialog = page.get_by_role("dialog", name="Edit position")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_label("Field")).to_have_value("website")
    dialog.get_by_label("Label").fill("Web address")
    dialog.get_by_role("button", name="Apply").click()
    expect(dialog).to_be_hidden()
    expect(page.locator('[data-stage] [data-field="website"]')).to_contain_text("Web address")
    page.evaluate("window.scrollTo(0, 0)")  # the Available Fields list sticks while scrolling
    screenshot(page, "studio-layout", viewport)

    page.get_by_role("button", name="Save layout").first.click()
    expect(page).to_have_url(at(server, f"{EDITOR}/detail"))
    expect(page.get_by_role("status").filter(has_text="saved")).to_have_text(
        "The layout was saved.")
    expect(page.get_by_role("button", name="Restore default layout")).to_be_visible()
    expect(page.locator("[data-stage] section.studio-section").nth(1)
           .get_by_label("Section name")).to_have_value("Fleet")

    page.goto(f"/m/accounts/{acme['id']}")
    cards = page.locator("main section.card").filter(has=page.locator("dl.form-grid"))
    expect(cards.locator("h2")).to_have_text(["Overview", "Fleet", "More information"])
    overview = cards.nth(0).locator("dt")
    expect(overview.nth(2)).to_have_text("Industry")
    expect(overview.nth(3)).to_have_text("Type")
    expect(cards.nth(0)).to_contain_text("Web address")
    expect(cards.nth(0)).not_to_contain_text("Fax")
    expect(cards.nth(1).locator("dt")).to_have_text(["Created by"])
    expect(page.get_by_text("Billing address")).to_have_count(0)
    more = cards.nth(2)
    expect(more.locator("dt").last).to_have_text("Fleet size")
    expect(more).to_contain_text("12")


def test_reorder_list_columns_without_dragging(page, server, site, admin, viewport):
    site.records.create("accounts", {"name": "Acme", "website": "https://acme.example"}, admin)
    log_in(page)
    page.goto(f"{EDITOR}/list")
    items = page.locator("[data-stage] ol.studio-list > li")
    expect(items).to_have_count(6)
    page.get_by_role("button", name="Remove Billing address: city").click()
    page.get_by_role("button", name="Move Industry up").click()
    expect(page.get_by_role("button", name="Move Industry up")).to_be_focused()
    page.keyboard.press("Enter")  # again, from the keyboard
    page.get_by_label("Add a field").select_option("website")
    expect(items).to_have_count(6)
    expect(items.locator(".chip-label")).to_have_text(
        ["Industry", "Account name", "Type", "Office phone", "Assigned to", "Website"])
    # drag works here too: Website to the top
    items.nth(5).drag_to(items.nth(0))
    expect(items.first).to_have_attribute("data-field", "website")
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "studio-layout-list", viewport)
    page.get_by_role("button", name="Save layout").first.click()
    expect(page.get_by_role("status").filter(has_text="saved")).to_have_text(
        "The layout was saved.")

    page.goto("/m/accounts")
    if viewport == "desktop":
        headers = page.locator("table.records thead th:not(.check)")
        expect(headers).to_have_text(["Website", "Industry", "Account name", "Type",
                                      "Office phone", "Assigned to"])
    else:  # phones show each row as a card, the column names beside the values
        cells = page.locator("table.records tbody tr").first.locator("td[data-label]")
        expect(cells.first).to_have_attribute("data-label", "Website")
