"""Access control in a real browser: an administrator shapes a role in the matrix editor
and gives records to a team; a sales rep then sees only their team's accounts, and no
Contacts at all. Screenshots: role matrix, the rep's list, the Teams: mass assign panel."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.apps.admin import access_admin as aa
from core.kernel.users import create_user
from tests.browser import TIMEOUT_MS, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)
REP_PASSWORD = "a rep's own password"


@pytest.fixture
def shop(site, admin):
    north = aa.create_team(site, "North")
    rep = create_user(site, "rep", REP_PASSWORD, display_name="Rita Rep")
    aa.set_team_members(site, north, add=[rep.id])
    for name, teams in (("Northwind Ltd", [north]), ("Southgate Inc", []), ("Nowhere Co", [])):
        site.records.create("accounts", {"name": name}, admin, teams=teams)
    return {"north": north, "rep": rep}


def test_admin_shapes_a_role_and_the_rep_sees_only_their_team(page, viewport, server, site,
                                                              shop):
    log_in(page)
    page.goto("/admin")
    page.get_by_role("link", name="Roles").first.click()
    page.get_by_role("link", name="Create role").click()
    page.get_by_label("Name").fill("Sales reps")
    page.get_by_role("button", name="Create role").click()
    expect(page.get_by_role("heading", name="Sales reps")).to_be_visible()
    for action in ("View", "List", "Edit", "Delete", "Export"):
        page.get_by_label(f"Accounts: {action}", exact=True).select_option("team")
    page.get_by_label("Contacts: Access", exact=True).select_option("disabled")
    screenshot(page, "access-role-matrix", viewport)
    page.get_by_role("button", name="Save matrix").click()
    expect(page.get_by_role("status")).to_contain_text("saved")
    expect(page.get_by_label("Accounts: Edit", exact=True)).to_have_value("team")
    role = next(r for r in aa.roles(site) if r["name"] == "Sales reps")
    assert aa.role_rules(site, role["id"])["accounts"].level("delete") == "team"
    aa.set_role_teams(site, role["id"], add=[shop["north"]])

    # the administrator puts Nowhere Co in the North team too, from the list
    page.goto("/m/accounts")
    page.get_by_role("row", name="Nowhere Co").get_by_role("checkbox").check()
    page.get_by_text("Teams: mass assign").click()
    page.get_by_label("Teams", exact=True).select_option(label="North")
    screenshot(page, "access-teams-mass-assign", viewport)
    page.get_by_role("button", name="Assign teams").click()
    expect(page.get_by_role("status")).to_have_text("Teams changed on 1 of 1 selected records.")
    page.get_by_role("button", name="Log out").click()

    log_in(page, "rep", REP_PASSWORD)
    page.goto("/m/accounts")
    rows = page.locator("table.records tbody tr")
    expect(rows).to_have_count(2)
    expect(page.get_by_role("link", name="Northwind Ltd")).to_be_visible()
    expect(page.get_by_role("link", name="Nowhere Co")).to_be_visible()
    expect(page.get_by_text("Southgate Inc")).to_have_count(0)
    expect(page.locator("nav.tabs").get_by_role("link", name="Contacts", exact=True)) \
        .to_have_count(0)
    expect(page.get_by_role("link", name="Admin", exact=True)).to_have_count(0)
    screenshot(page, "access-rep-list", viewport)
    page.goto("/m/contacts")
    expect(page.get_by_text("You do not have access to Contacts.")).to_be_visible()
