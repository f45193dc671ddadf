"""Duplicates in a real browser, on a phone and a desktop: the create form warns about a
likely duplicate with a link to it and saves on "Save anyway"; the list's "Find
duplicates" shows the group with its "Merge" link; the merge page (records side by side, a
radio per field, nothing wider than the screen) merges into the record kept. Screenshots:
the warning, the groups, the merge page."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser import TIMEOUT_MS, at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


def fits(page) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page scrolls sideways ({width} px)"


def test_warn_on_create_then_find_and_merge(page, viewport, server, site, admin):
    acme = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Doe",
                                            "account_id": acme["id"], "title": "CFO",
                                            "email1": "jane.doe@acme.example"}, admin)
    log_in(page)
    page.goto("/m/contacts/new")
    page.get_by_label("First name").fill("Jane")
    page.get_by_label("Last name").fill("Doe")
    page.get_by_label("Email", exact=True).fill("Jane.Doe@ACME.example")
    page.get_by_label("Office phone").fill("+1 212 555 0142")
    page.get_by_role("button", name="Save").click()
    warning = page.locator(".duplicates-warning")
    expect(warning).to_contain_text("looks like a record that already exists")
    expect(warning.get_by_role("link", name="Jane Doe")).to_have_attribute(
        "href", f"/m/contacts/{jane['id']}")
    expect(warning).to_contain_text("same email")
    fits(page)
    screenshot(page, "duplicates-warning", viewport)
    page.get_by_role("button", name="Save anyway").click()
    expect(page.get_by_role("status")).to_contain_text("Contact Jane Doe created.")

    page.goto("/m/contacts")
    page.locator("input[data-select-page]:visible").first.check()
    page.get_by_role("button", name="Find duplicates").click()
    group = page.locator(".duplicate-group")
    expect(group).to_have_count(1)
    expect(group).to_contain_text("2 records")
    fits(page)
    screenshot(page, "duplicates-groups", viewport)
    group.get_by_role("link", name="Merge").click()

    expect(page.get_by_role("heading", name="Merge Contacts")).to_be_visible()
    # Jane, the oldest, is kept; the phone only the new record has is offered from it,
    # and Jane's title stays hers
    expect(page.locator(f"tr.survivor input[value='{jane['id']}']")).to_be_checked()
    expect(page.locator("tr[data-field='phone_work']").get_by_label("+1 212 555 0142")) \
        .to_be_checked()
    expect(page.locator("tr[data-field='title']").get_by_label("CFO")).to_be_checked()
    fits(page)
    screenshot(page, "duplicates-merge", viewport)
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Merge").click()
    expect(page).to_have_url(at(server, f"/m/contacts/{jane['id']}"))
    expect(page.get_by_role("status")).to_have_text("2 records merged into Jane Doe.")
    expect(page.locator("main")).to_contain_text("+1 212 555 0142")
    expect(page.locator("main")).to_contain_text("CFO")
    assert [c["id"] for c in site.records.list("contacts", admin)] == [jane["id"]]
