"""A meeting's invitees in Chromium, on a phone and a desktop: the Invitees subpanel lists the
people and the room with their answers, the invited user accepts with one tap, and a
double-booked room is refused on the form with the reason. Screenshots: invitees-phone,
invitees-desktop, invitees-refused-* (test-artifacts/screenshots/)."""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

START = dt.datetime(2027, 3, 10, 9, 0, tzinfo=dt.UTC)


def test_a_meeting_shows_its_invitees_and_the_user_accepts(page, site, admin, viewport):
    wile = site.records.create("contacts", {"first_name": "Wile", "last_name": "Coyote",
                                            "email1": "wile@acme.example"}, admin)
    room = site.records.create("resources", {"name": "Salle Lumière", "has_projector": True},
                               admin)
    review = site.records.create("meetings", {
        "name": "Quarterly business review", "date_start": START,
        "date_end": START + dt.timedelta(hours=1), "location": "Our office"}, admin)
    demo = site.records.create("meetings", {
        "name": "Product demo", "date_start": START, "date_end": START + dt.timedelta(hours=1),
        "location": "Our office"}, admin)
    site.records.create_many("invitees", [
        {"meeting_id": review["id"], "user_id": admin.id},
        {"meeting_id": review["id"], "invitee_id": wile["id"], "invitee_type": "contacts",
         "accept_status": "tentative"},
        {"meeting_id": review["id"], "invitee_id": room["id"], "invitee_type": "resources"}],
        admin)

    log_in(page, "admin")
    page.goto(f"/m/meetings/{review['id']}")
    page.locator("#sub-invitees summary h2").click()
    rows = page.locator("#sub-invitees .subpanel-rows")
    expect(rows).to_contain_text("Wile Coyote")
    expect(rows).to_contain_text("Salle Lumière")
    expect(rows).to_contain_text("Tentative")
    page.get_by_role("button", name="Accept").click()
    expect(page.locator(".flash")).to_contain_text("Your answer is recorded: Accepted.")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "invitees", viewport)

    # the room is taken at that time: adding it to the demo is refused with the reason
    page.goto(f"/m/invitees/new?meeting_id={demo['id']}&invitee_id={room['id']}"
              "&invitee_type=resources")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("body")).to_contain_text(
        "Salle Lumière is already booked for “Quarterly business review” at that time")
    screenshot(page, "invitees-refused", viewport)
    assert site.records.count("invitees", admin) == 3  # nothing saved

    # the organizer is invited to both: the demo's page warns, and both stay saved
    site.records.create("invitees", {"meeting_id": demo["id"], "user_id": admin.id}, admin)
    page.goto(f"/m/meetings/{demo['id']}")
    warning = page.get_by_role("link", name="Warning — busy at that time: admin "
                                            "(“Quarterly business review”)")
    expect(warning).to_be_visible()
    screenshot(page, "invitees-busy", viewport)
