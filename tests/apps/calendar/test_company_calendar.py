"""The company calendar (core/apps/calendar/settings.py): defaults for a new site, the older
per-plugin keys read until the page is saved, and Admin → Company calendar through real HTTP
requests (refused values shown, nothing saved; non-administrators refused)."""
import datetime as dt

from core.apps.calendar.settings import CalendarSettings, calendar_settings
from core.kernel.users import create_user
from core.testing import signed_in

PASSWORD = "correct horse battery"
GOOD = {"time_zone": "Europe/Paris", "week_start": "6", "fiscal_year_start": "4",
        "work_day_start": "08:30", "work_day_end": "17:30"}


def test_defaults_then_the_older_keys_then_the_saved_setting(site, admin):
    assert calendar_settings(site) == CalendarSettings()
    assert calendar_settings(site).work_day_start == dt.time(8, 0)
    site.set_setting("timezone", "Pacific/Auckland")
    site.set_setting("forecasts", {"fiscal_year_start": 7})
    site.set_setting("workflows", {"week_start": 6, "fiscal_year_start": 4,
                                   "timezone": "Nowhere/Atlantis"})  # unknown: skipped
    assert calendar_settings(site) == CalendarSettings("Pacific/Auckland", 6, 7)
    # 2026-03-10 20:00 UTC is already the 11th in Auckland
    assert calendar_settings(site).today(dt.datetime(2026, 3, 10, 20, tzinfo=dt.UTC)) == \
        dt.date(2026, 3, 11)
    site.set_setting("calendar", {"time_zone": "UTC"})  # once saved, only it counts
    assert calendar_settings(site) == CalendarSettings()


def test_the_admin_page_saves_valid_values_and_refuses_bad_ones(site, admin):
    create_user(site, "clerk", PASSWORD)
    with signed_in(site, "clerk", PASSWORD) as web:
        assert web.get("/admin/calendar").status_code == 403
        assert web.post("/admin/calendar", data={"_csrf": web.csrf, **GOOD}).status_code == 403
    with signed_in(site, "admin") as web:
        assert "/admin/calendar" in web.get("/admin").text
        page = web.get("/admin/calendar")
        assert page.status_code == 200 and 'value="08:00"' in page.text
        bad = web.post("/admin/calendar", data={
            "_csrf": web.csrf, "time_zone": "Mars/Olympus", "week_start": "7",
            "fiscal_year_start": "0", "work_day_start": "25:00", "work_day_end": "09:00"})
        assert bad.status_code == 422
        for said in ("Mars/Olympus", "is not a whole number from 0 to 6",
                     "is not a whole number from 1 to 12", "is not a time written HH:MM"):
            assert said in bad.text
        backwards = web.post("/admin/calendar", data={**GOOD, "_csrf": web.csrf,
                                                      "work_day_end": "08:00"})
        assert backwards.status_code == 422 and "after the work day" in backwards.text
        assert calendar_settings(site) == CalendarSettings()  # nothing saved
        assert web.post("/admin/calendar", data=GOOD).status_code == 403  # no CSRF token
        saved = web.post("/admin/calendar", data={"_csrf": web.csrf, **GOOD})
        assert saved.status_code == 200 and "The company calendar was saved." in saved.text
    assert calendar_settings(site) == CalendarSettings(
        "Europe/Paris", 6, 4, dt.time(8, 30), dt.time(17, 30))
