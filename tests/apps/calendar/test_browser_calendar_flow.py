"""Issue 20's acceptance flow in Chromium, on a phone and a desktop: a weekly meeting made
on the meeting form's Repeat section, a contact, a colleague and a room invited on the
invitee form; the occurrences in the week and month views next to a holiday of the
installed holiday pack; one occurrence dragged to another day (only that one moves, and
it leaves its series); the same room refused for a second meeting at the same time, with
the reason on the form; the company view with both users side by side; the resource
view with the room's bookings. Screenshots: calendar-flow-*-<viewport>.png."""
from __future__ import annotations

import datetime as dt
import types

import pytest
import sqlalchemy as sa
from playwright.sync_api import expect

from core.apps.calendar import holidays
from core.kernel.users import create_user
from tests import browser as helpers
from tests.apps.calendar.test_browser_agenda import switch
from tests.apps.calendar.test_browser_holidays import choose_holidays
from tests.browser import box_of, log_in, screenshot
from tests.pack_util import install_folder

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def next_holiday(site) -> tuple[dt.date, str]:
    """The pack's first holiday two weeks from today or later (the test runs any day)."""
    chosen = holidays.for_user(site, types.SimpleNamespace(holidays="holidays_ca"))
    soon = dt.date.today() + dt.timedelta(days=14)
    return next((day, name) for year in (soon.year, soon.year + 1)
                for day, name in chosen.days(year) if day >= soon)


def invite(page, meeting_id: str, **prefill) -> None:
    query = "&".join(f"{k}={v}" for k, v in prefill.items())
    page.goto(f"/m/invitees/new?meeting_id={meeting_id}&{query}")
    page.get_by_role("button", name="Save").click()


def test_a_weekly_meeting_with_a_room_through_the_calendar(page, server, site, admin,
                                                           viewport):
    install_folder(site, "holidays_ca")
    choose_holidays(site, admin, "holidays_ca")
    site.set_setting("recurrence", {"days_ahead": 400})  # the holiday may be months away
    holiday, holiday_name = next_holiday(site)
    monday = holiday - dt.timedelta(days=holiday.weekday())  # the company's weeks: Monday
    first = monday - dt.timedelta(days=6)  # a Tuesday: the series' first, a week earlier
    ann = create_user(site, "ann", helpers.PASSWORD)
    wile = site.records.create("contacts", {"first_name": "Wile", "last_name": "Coyote",
                                            "email1": "wile@acme.example"}, admin)
    room = site.records.create("resources", {"name": "Salle Lumière"}, admin)

    log_in(page)
    page.goto("/m/meetings/new")
    page.get_by_label("Subject").fill("Weekly pipeline")
    page.locator("#f_date_start").fill(f"{first}T10:00")
    page.locator("#f_date_end").fill(f"{first}T11:00")
    page.get_by_label("Repeats").select_option("WEEKLY")
    page.locator("input[name=recurrence_rule__days][value=TU]").check()
    page.locator("input[name=recurrence_rule__end][value=count]").check()
    page.get_by_label("Number of times").fill("4")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("main")).to_contain_text("Every week on Tuesday, 4 times")
    series_id = page.url.rstrip("/").split("/")[-1]
    invite(page, series_id, invitee_id=wile["id"], invitee_type="contacts")
    invite(page, series_id, invitee_id=room["id"], invitee_type="resources")
    invite(page, series_id, user_id=ann.id)
    page.goto(f"/m/meetings/{series_id}")
    page.locator("#sub-invitees summary h2").click()
    for name in ("Wile Coyote", "Salle Lumière", "ann"):
        expect(page.locator("#sub-invitees .subpanel-rows")).to_contain_text(name)

    table = site.records.table(site.registry.module("meetings"))

    def stored():
        with site.engine.connect() as conn:
            return conn.execute(sa.select(table.c.id, table.c.date_start,
                                          table.c.recurrence_detached).where(
                table.c.deleted.is_(False), table.c.name == "Weekly pipeline")
                .order_by(table.c.date_start)).all()
    before = stored()
    assert [r.date_start.date() for r in before] == [first + dt.timedelta(weeks=n)
                                                      for n in range(4)]

    # the week of the holiday: the occurrence and the holiday; the month: the occurrences
    second = first + dt.timedelta(weeks=1)
    page.goto(f"/calendar/agenda?date={second}")
    switch(page, "Week")
    occurrence = page.locator(".ec-event", has_text="Weekly pipeline")
    expect(occurrence).to_have_count(1)
    expect(page.locator(".crbm-holiday-label").first).to_contain_text(holiday_name.split(";")[0])
    screenshot(page, "calendar-flow-week", viewport)
    switch(page, "Month")
    # the month's events come in a fetch after the switch: wait for a second occurrence
    expect(page.locator(".ec-event", has_text="Weekly pipeline").nth(1)).to_be_visible()
    expect(page.locator(".crbm-holiday-label").first).to_be_visible()
    screenshot(page, "calendar-flow-month", viewport)

    # drag the second occurrence from Tuesday to Thursday: only it moves, and is detached
    switch(page, "Week")
    box = box_of(occurrence)
    thursday = box_of(page.locator(".ec-time-grid .ec-body .ec-day").nth(3))
    start = (box["x"] + box["width"] / 2, box["y"] + 8)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 5, start[1] + 5, steps=3)
    page.mouse.move(thursday["x"] + thursday["width"] / 2, start[1], steps=8)
    page.mouse.up()
    expect(page.locator(".agenda-message")).to_have_text("Moved.")
    after = {r.id: r for r in stored()}
    moved = after[before[1].id]
    assert moved.date_start.date() == second + dt.timedelta(days=2)
    assert moved.date_start.time() == dt.time(10, 0) and moved.recurrence_detached
    for row in (before[0], before[2], before[3]):
        assert after[row.id].date_start == row.date_start and not after[row.id].recurrence_detached
    page.reload()
    page.wait_for_load_state()  # the calendar's script has run
    switch(page, "Week")
    # the week's events come in a fetch after the switch, from a server that shares two
    # cores with two other suites in CI: more time than one wait on the page
    expect(page.locator(".ec-event", has_text="Weekly pipeline")).to_have_count(
        1, timeout=3 * helpers.TIMEOUT_MS)
    screenshot(page, "calendar-flow-moved", viewport)

    # the room is taken on the third Tuesday at 10: a second meeting cannot book it
    third = first + dt.timedelta(weeks=2)
    at_ten = dt.datetime.combine(third, dt.time(10, 30), dt.UTC)
    vendor = site.records.create("meetings", {
        "name": "Vendor demo", "status": "planned", "date_start": at_ten,
        "date_end": at_ten + dt.timedelta(hours=1), "assigned_user_id": ann.id}, admin)
    invite(page, vendor["id"], invitee_id=room["id"], invitee_type="resources")
    expect(page.locator("body")).to_contain_text(
        "Salle Lumière is already booked for “Weekly pipeline” at that time")
    screenshot(page, "calendar-flow-refused", viewport)
    booked = site.records.table(site.registry.module("invitees"))
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(booked).where(
            booked.c.meeting_id == vendor["id"])).scalar() == 0

    # the company view: admin and ann side by side, the meeting in both columns (ann is
    # invited), the vendor demo in ann's
    page.goto(f"/calendar/agenda?view=company&u={admin.id}&u={ann.id}&date={third}")
    expect(page.locator("#agenda")).to_contain_text("ann")
    expect(page.locator("#agenda")).to_contain_text("admin")
    expect(page.locator(".ec-event", has_text="Weekly pipeline")).to_have_count(2)
    expect(page.locator(".ec-event", has_text="Vendor demo")).to_have_count(1)
    screenshot(page, "calendar-flow-company", viewport)

    # the resource view: the room's column has the meeting, not the unbooked vendor demo
    page.get_by_role("navigation", name="Calendars").get_by_role("link", name="Resources").click()
    page.goto(page.url + f"&date={third}")
    expect(page.locator("h1")).to_have_text("Resource calendar")
    expect(page.locator("#agenda")).to_contain_text("Salle Lumière")
    expect(page.locator(".ec-event", has_text="Weekly pipeline")).to_have_count(1)
    expect(page.locator(".ec-event", has_text="Vendor demo")).to_have_count(0)
    screenshot(page, "calendar-flow-resources", viewport)
