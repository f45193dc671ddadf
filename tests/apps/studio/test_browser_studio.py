"""The Studio end to end in Chromium (the issue's acceptance flow), at desktop width: an
administrator creates a "Vehicles" module with make, model, year, VIN, purchase date, price,
a status dropdown, a calculated age and a field that shows only for sold vehicles; relates it
many-to-one to Accounts with a subpanel; arranges its layout by drag and drop; renames its
tab. A user who is not an administrator then creates a vehicle from an account, lists and
filters vehicles, edits one, and sees it in the account's subpanel.
Screenshots: studio-accept-* (test-artifacts/screenshots/)."""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import PASSWORD, at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


@pytest.fixture(params=["desktop"])
def viewport(request) -> str:
    """One width: the flow is long, and the phone layouts of each Studio page have their
    own browser tests (test_browser_studio_layout, test_web_studio_lists)."""
    return request.param


def create_field(page, name: str, kind: str, label: str, **inputs) -> None:
    page.goto("/admin/studio/modules/vehicles/fields/new")
    page.get_by_label("Data type").select_option(kind)
    page.get_by_label("Field name").fill(name)
    page.get_by_label("Field label").fill(label)
    for input_label, value in inputs.items():
        control = page.get_by_label(input_label.replace("_", " "))
        if control.evaluate("node => node.tagName") == "SELECT":
            control.select_option(value)
        else:
            control.fill(value)
    page.get_by_role("button", name="Create field").click()
    expect(page).to_have_url(re.compile(r".*/admin/studio/modules/vehicles(#.*)?$"))
    expect(page.locator("#fields")).to_contain_text(label)


def test_an_admin_designs_vehicles_and_a_user_works_with_them(page, server, site, admin,
                                                              viewport):
    from core.kernel.users import create_user
    create_user(site, "sam", PASSWORD)
    acme = site.records.create("accounts", {"name": "Acme Haulage"}, admin)
    log_in(page)

    # -- the module -----------------------------------------------------------------------
    page.goto("/admin/studio")
    page.get_by_role("link", name="Create module").click()
    page.get_by_label("Module name").fill("vehicles")
    page.get_by_label("Label (plural)").fill("Vehicles")
    page.get_by_label("Singular label").fill("Vehicle")
    page.get_by_label("Tab group").fill("Fleet")
    page.get_by_role("button", name=re.compile("^Create")).click()
    expect(page).to_have_url(at(server, "/admin/studio/modules/vehicles"))

    # a status list for it, made in the Dropdowns editor
    page.goto("/admin/studio/dropdowns")
    page.locator("#f-new-name").fill("vehicle_status_dom")
    page.get_by_role("button", name="Create dropdown").click()
    rows = page.locator("[data-dropdown-editor] tbody tr")
    page.get_by_role("button", name="Add row").click()
    expect(rows).to_have_count(2)
    for row, (value, label) in zip(rows.all(), [("available", "Available"), ("sold", "Sold")],
                                   strict=True):
        row.locator('input[name="value"]').fill(value)
        row.locator('input[name="label"]').fill(label)
    page.get_by_role("button", name="Save dropdown").click()
    expect(page.locator(".flash").first).to_be_visible()

    # -- the fields -----------------------------------------------------------------------
    create_field(page, "make", "text", "Make")
    create_field(page, "model", "text", "Model")
    page.goto("/admin/studio/modules/vehicles/fields/new")  # a year: no thousands separator
    page.get_by_label("Data type").select_option("integer")
    page.get_by_label("Field name").fill("year")
    page.get_by_label("Field label").fill("Year")
    page.get_by_label("Plain number").check()
    page.get_by_role("button", name="Create field").click()
    expect(page.locator("#fields")).to_contain_text("Year")
    create_field(page, "vin", "item_number", "VIN")
    create_field(page, "purchase_date", "date", "Purchase date")
    create_field(page, "price", "currency", "Price")
    create_field(page, "status", "dropdown", "Status", Dropdown_list="vehicle_status_dom",
                 Default_value="available")

    # the calculated age: the formula editor finds the mistake, with its place, before saving
    page.goto("/admin/studio/modules/vehicles/fields/new")
    page.get_by_label("Data type").select_option("calculated")
    page.get_by_label("Field name").fill("age")
    page.get_by_label("Field label").fill("Age")
    formula = page.locator("#f-formula")
    formula.fill("subtract(2026, yeer)")
    page.get_by_role("button", name="Check formula").click()
    expect(page.locator(".studio-field-form")).to_contain_text("unknown field 'yeer'")
    expect(page.locator(".studio-field-form")).to_contain_text("column 16")
    formula.fill("subtract(2026, ")
    page.locator('[data-insert="year"]').click()  # the fields list inserts at the cursor
    formula.press("End")
    formula.type(")")
    expect(formula).to_have_value("subtract(2026, year)")
    page.get_by_role("button", name="Check formula").click()
    page.get_by_label("Result format").select_option("integer")
    page.get_by_role("button", name="Create field").click()
    expect(page.locator("#fields")).to_contain_text("Age")

    # a field shown only when the status is "sold"
    page.goto("/admin/studio/modules/vehicles/fields/new")
    page.get_by_label("Data type").select_option("date")
    page.get_by_label("Field name").fill("sold_on")
    page.get_by_label("Field label").fill("Sold on")
    page.get_by_label("Show this field only when").select_option("status")
    page.locator('input[name="depends_values.status"][value="sold"]').check()
    page.get_by_role("button", name="Create field").click()
    expect(page.locator("#fields")).to_contain_text("Sold on")

    # -- many-to-one to Accounts, with a subpanel there; a list filter --------------------
    page.locator("#relationships summary, details.add-more summary").first.click()
    page.locator("#rel-kind").select_option("many_to_one")
    page.locator("#rel-other").select_option("accounts")
    page.locator('.studio-rel-form input[name="subpanel"]').check()
    page.get_by_role("button", name="Add relationship").click()
    expect(page.locator("#relationships")).to_contain_text("accounts")
    page.locator('#filters input[name="filters"][value="status"]').check()
    page.get_by_role("button", name="Save list filters").click()
    expect(page.locator('#filters input[name="filters"][value="status"]')).to_be_checked()
    page.goto("/admin/studio/modules/vehicles")
    screenshot(page, "studio-accept-designer", viewport)

    # -- the layout, by drag and drop ---------------------------------------------------------
    page.goto("/admin/studio/modules/vehicles/layouts/detail")
    stage = page.locator("[data-stage]")
    page.get_by_role("button", name="+ Add section").click()
    section = stage.locator("[data-section]").last
    section.locator("input").first.fill("Vehicle")
    section.get_by_role("button", name="+ Add row").click()
    slots = section.locator("[data-slot]")
    expect(slots).to_have_count(4)  # a new section's row and one more, two positions each
    # take make and model out of the default section, then drag them into the new one
    for name in ("make", "model", "vin", "account_id"):
        placed = stage.locator(f'[data-field="{name}"]').first
        placed.drag_to(page.locator("[data-available]"))
    for slot_index, name in enumerate(("make", "model", "vin", "account_id")):
        target = slots.nth(slot_index)
        target.evaluate("node => node.scrollIntoView({block: 'center'})")
        page.locator(f'[data-available] [data-field="{name}"]').drag_to(target)
        expect(target.locator(f'[data-field="{name}"]')).to_be_visible()
    # model onto make: they swap
    slots.nth(1).locator('[data-field="model"]').drag_to(slots.nth(0))
    expect(slots.nth(0).locator("[data-field]")).to_have_attribute("data-field", "model")
    expect(slots.nth(1).locator("[data-field]")).to_have_attribute("data-field", "make")
    # the new section first
    section.locator('[data-action="section-up"]').click()
    screenshot(page, "studio-accept-layout", viewport)
    page.get_by_role("button", name="Save layout").first.click()
    expect(page.locator(".flash").first).to_be_visible()

    # -- the tab's new name ---------------------------------------------------------------
    page.goto("/admin/studio/tabs/rename")
    page.locator('input[name="label_vehicles"]').fill("Fleet vehicles")
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.locator("nav.tabs")).to_contain_text("Fleet vehicles")
    page.get_by_role("button", name="Log out").click()

    # -- a user who is not an administrator ------------------------------------------------
    log_in(page, "sam")
    expect(page.locator("nav.tabs")).to_contain_text("Fleet vehicles")
    page.goto(f"/m/accounts/{acme['id']}")
    subpanel = page.locator("details.subpanel", has_text="Vehicles").filter(
        has=page.get_by_role("link", name="Create")).last
    subpanel.get_by_role("link", name="Create").click()
    page.locator('input[name="name"]').fill("Volvo FH16")
    page.get_by_label("Make").fill("Volvo")
    page.get_by_label("Model").fill("FH16")
    page.get_by_label("Year").fill("2019")
    page.get_by_label("VIN").fill("YV2RT40A5KB123456")
    page.get_by_label("Purchase date").fill("2019-05-02")
    page.get_by_label("Price", exact=True).fill("120000")
    sold_on = page.get_by_label("Sold on")
    expect(sold_on).to_be_hidden()  # the dependent field waits for "sold"
    page.get_by_label("Status").select_option("sold")
    expect(sold_on).to_be_visible()
    sold_on.fill("2025-10-01")
    page.get_by_role("button", name="Save").click()
    # back where it began, the vehicles subpanel opened (#sub-...) and showing the new one
    expect(page).to_have_url(at(server, f"/m/accounts/{acme['id']}#sub-[a-z_]+"))
    expect(page.locator("main")).to_contain_text("Volvo")

    # the vehicle itself: its calculated age, its layout
    page.goto("/m/vehicles")
    expect(page.locator("h1")).to_contain_text("Fleet vehicles")
    page.get_by_role("link", name=re.compile("Volvo|YV2RT|FH16")).first.click()
    main = page.locator("main")
    expect(main).to_contain_text("Vehicle")  # the new section
    expect(main).to_contain_text("Age")
    age = main.locator(".field-view", has=page.locator("dt", has_text=re.compile("^Age$")))
    expect(age.locator("dd")).to_have_text("7")
    year = main.locator(".field-view", has=page.locator("dt", has_text=re.compile("^Year$")))
    expect(year.locator("dd")).to_have_text("2019")
    expect(main).to_contain_text("Acme Haulage")
    screenshot(page, "studio-accept-vehicle", viewport)

    # listed and filtered
    site.records.create("vehicles", {"name": "Spare van", "make": "Ford",
                                     "status": "available"}, admin)
    page.goto("/m/vehicles")
    page.locator('select[name="f_status"]').select_option("sold")
    page.get_by_role("button", name="Filter").click()
    table = page.locator("table.records")
    expect(table).to_contain_text("Volvo")
    expect(table).not_to_contain_text("Spare van")

    # edited
    page.get_by_role("link", name=re.compile("Volvo|YV2RT|FH16")).first.click()
    page.get_by_role("link", name="Edit", exact=True).first.click()
    page.get_by_label("Model").fill("FH16 750")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("FH16 750")

    # and in the account's subpanel
    page.goto(f"/m/accounts/{acme['id']}")
    expect(page.locator("main")).to_contain_text("Volvo")
    screenshot(page, "studio-accept-account", viewport)
