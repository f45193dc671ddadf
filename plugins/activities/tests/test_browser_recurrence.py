"""A weekly meeting made from the edit form's "Repeat" section in Chromium, on a phone and
a desktop: the detail page says the rule in words, the occurrences are listed, and editing
one occurrence offers "this occurrence only" (it is detached) or "this and following".
Screenshots: recurrence-form, recurrence-occurrence (test-artifacts/screenshots/)."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_a_weekly_meeting_from_the_form_and_one_occurrence_edited(page, site, admin, viewport):
    log_in(page, "admin")
    page.goto("/m/meetings/new")
    page.get_by_label("Subject").fill("Team sync")
    monday = dt.date.today() + dt.timedelta(days=7 - dt.date.today().weekday())
    page.locator("#f_date_start").fill(f"{monday}T10:00")  # within the 90 days made ahead
    page.locator("#f_date_end").fill(f"{monday}T10:30")
    page.get_by_label("Repeats").select_option("WEEKLY")
    page.locator("input[name=recurrence_rule__days][value=MO]").check()
    page.locator("input[name=recurrence_rule__days][value=TH]").check()
    page.locator("input[name=recurrence_rule__end][value=count]").check()
    page.get_by_label("Number of times").fill("6")
    screenshot(page, "recurrence-form", viewport)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Every week on Monday, Thursday, 6 times")
    table = site.records.table(site.registry.module("meetings"))
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.id, table.c.date_start).where(
            table.c.recurrence_series_id.is_not(None)).order_by(table.c.date_start)).all()
    assert len(rows) == 5
    # one occurrence: the form asks what the change is for; "this occurrence only"
    page.goto(f"/m/meetings/{rows[1].id}/edit")
    expect(page.get_by_text("This is one occurrence of a series")).to_be_visible()
    page.get_by_label("Location").fill("Room 7")
    screenshot(page, "recurrence-occurrence", viewport)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Room 7")
    edited = site.records.get("meetings", rows[1].id, admin)
    assert edited["recurrence_detached"] is True and edited["recurrence_rule"] is None
    # another: "this and the following" with the form's rule (the series' own)
    page.goto(f"/m/meetings/{rows[2].id}/edit")
    page.get_by_label("this and the following occurrences").check()
    page.get_by_label("Location").fill("Room 9")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Every week on Monday, Thursday, 3 times")
    first = site.records.get("meetings", rows[0].id, admin)  # the first's series: ended
    series = site.records.get("meetings", first["recurrence_series_id"], admin)
    assert "UNTIL=" in series["recurrence_rule"] and "COUNT" not in series["recurrence_rule"]
    with site.engine.connect() as conn:
        after = conn.execute(sa.select(table.c.location).where(
            table.c.recurrence_series_id == rows[2].id, table.c.deleted.is_(False))).all()
    assert [r.location for r in after] == ["Room 9", "Room 9"]
