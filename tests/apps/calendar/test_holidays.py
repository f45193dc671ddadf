"""Holiday sets (core/apps/calendar/holidays.py), the shipped holiday packs, the calendar pages, the JSON the
date fields ask for, and the Holidays preference, through real HTTP requests."""
import datetime as dt
import html
import json
import re
from pathlib import Path

import jsonschema
import pytest
import sqlalchemy as sa
import yaml
from starlette.testclient import TestClient

from core.apps.calendar import holidays
from core.apps.calendar.holidays import HolidaySet, problems
from core.kernel import users
from core.kernel.i18n import Preferences
from core.web.app import create_app
from tests.pack_util import SHIPPED, install_folder

PASSWORD = "correct horse battery"
PACKS = ("holidays_ca", "holidays_us", "holidays_uk", "holidays_fi")
PACK_SCHEMA = Path(__file__).resolve().parents[3] / "metadata" / "schema" / "pack.json"


def manifest(pack: str) -> dict:
    return yaml.safe_load((SHIPPED / pack / "pack.yaml").read_text())


def days(pack: str, year: int = 2027, language: str = "en") -> dict[str, str]:
    section = manifest(pack)["provides"]["holidays"]
    return {day.isoformat(): name for day, name in HolidaySet.from_section(section).days(year, language)}


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def text_of(response) -> str:
    """The page's visible text, tags removed, whitespace collapsed."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def links(response) -> set[str]:
    return {html.unescape(h) for h in re.findall(r'href="([^"]*)"', response.text)}


def cell(response, date: str) -> str:
    """The text of the month grid's cell for ``date`` (YYYY-MM-DD)."""
    found = re.search(r'<td[^>]*>\s*<time class="day-number" datetime="' + date + r'">(.*?)</td>',
                      response.text, re.DOTALL)
    assert found, f"no cell for {date}"
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def preferences_of(site, username: str) -> dict:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table.c.preferences).where(table.c.username == username)).one()
    return json.loads(row.preferences) if row.preferences else {}


def choose(site, user, **prefs) -> None:
    """Set a user's preferences directly (the form is tested on its own)."""
    users.save_preferences(site, user.id, {**preferences_of(site, user.username), **prefs})


@pytest.fixture
def client(site, admin):
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": "admin",
                                               "password": PASSWORD})
        assert response.status_code == 200
        yield client


@pytest.fixture
def canada(site, admin):
    """The Canadian pack installed and chosen by the admin."""
    install_folder(site, "holidays_ca")
    choose(site, admin, holidays="holidays_ca")


# -- the shipped packs ---------------------------------------------------------------------

@pytest.mark.parametrize("pack", PACKS)
def test_shipped_pack_is_a_valid_holiday_pack(pack):
    data = manifest(pack)
    jsonschema.validate(data, json.loads(PACK_SCHEMA.read_text()))
    assert data["name"] == pack and data["kind"] == "holiday" and data["version"] == "1.0.0"
    assert data["author"] == "CRBM developers" and data["title"] and data["description"]
    assert sorted(p.name for p in (SHIPPED / pack).iterdir()) == ["pack.yaml"]
    assert problems(data["provides"]["holidays"]) == []
    assert len(days(pack)) >= 8


@pytest.mark.parametrize("pack, expected", [
    ("holidays_ca", {"2027-07-01": "Canada Day", "2027-10-11": "Thanksgiving Day",
                     "2027-09-06": "Labour Day"}),  # Canadian English, not "Labor Day"
    ("holidays_us", {"2027-07-04": "Independence Day", "2027-07-05": "Independence Day (observed)",
                     "2027-11-25": "Thanksgiving Day"}),
    ("holidays_uk", {"2027-03-29": "Easter Monday", "2027-08-30": "Late Summer Bank Holiday",
                     "2027-12-28": "Boxing Day (observed)"}),
    ("holidays_fi", {"2027-06-26": "Midsummer Day", "2027-12-06": "Independence Day"}),
])
def test_shipped_packs_resolve_their_country(pack, expected):
    found = days(pack)
    assert {date: found.get(date) for date in expected} == expected
    assert list(found) == sorted(found)


def test_names_follow_the_language_where_the_library_has_it():
    assert days("holidays_ca", language="fr")["2027-07-01"] == "Fête du Canada"
    assert days("holidays_ca", language="fr_CA")["2027-10-11"] == "Action de grâce"
    assert days("holidays_fi", language="fi")["2027-12-06"] == "Itsenäisyyspäivä"
    assert days("holidays_fi", language="sv_FI")["2027-12-06"] == "Självständighetsdagen"
    # no German names for Finland: the country's own language, not the server's
    assert days("holidays_fi", language="de")["2027-12-06"] == "Itsenäisyyspäivä"
    assert days("holidays_fi", language="en_GB")["2027-12-06"] == "Independence Day"


def test_extra_days_are_merged_in_date_order():
    chosen = HolidaySet.from_section({
        "country": "CA", "subdivision": "ON", "label": "Head office",
        "extra": [{"date": "2027-08-13", "name": "Company picnic"},
                  {"date": "2027-07-01", "name": "Office closed"},
                  {"date": "2028-01-14", "name": "Stocktaking"}]})
    found = chosen.days(2027, "en")
    assert [d for d, _ in found] == sorted(d for d, _ in found)
    named = dict(found)
    assert named[dt.date(2027, 8, 13)] == "Company picnic"
    assert named[dt.date(2027, 7, 1)] == "Canada Day; Office closed"
    assert dt.date(2028, 1, 14) not in named
    assert dict(chosen.days(2028, "en"))[dt.date(2028, 1, 14)] == "Stocktaking"
    assert chosen.label == "Head office"


# -- checking a pack's section -------------------------------------------------------------

@pytest.mark.parametrize("section, expected", [
    ({"country": "XX"}, "country: 'XX' is not a country the holidays library knows"),
    ({}, "country: missing"),
    ({"country": "CA", "subdivision": "ZZ"}, "subdivision: 'ZZ' is not a subdivision of CA"),
    ({"country": "GB", "subdivision": "ON"}, "subdivision: 'ON' is not a subdivision of GB"),
    ({"country": "CA", "subdivision": True}, "subdivision: YAML read this as true/false"),
    ({"country": "CA", "extra": [{"date": "2027-02-30", "name": "Leap"}]},
     "extra[0].date: '2027-02-30' is not a date"),
    ({"country": "CA", "extra": [{"date": "15.02.2027", "name": "Day"}]},
     "extra[0].date: '15.02.2027' is not a date"),
    ({"country": "CA", "extra": [{"date": "2027-02-15"}]}, "extra[0].name: missing"),
    ({"country": "CA", "extra": {"date": "2027-02-15"}}, "extra: must be a list"),
    ({"country": "CA", "label": ""}, "label: must be a non-empty text"),
    ({"country": "CA", "region": "ON"}, "unknown key 'region'"),
    ("CA", "must be a mapping"),
])
def test_problems_say_what_is_wrong(section, expected):
    found = problems(section)
    assert any(message.startswith(expected) for message in found), found


def test_problems_list_the_known_subdivisions():
    [message] = problems({"country": "CA", "subdivision": "ZZ"})
    assert "ON" in message and "QC" in message
    assert problems({"country": "CA", "subdivision": "on"}) == []  # case does not matter
    assert problems({"country": "CA", "extra": [{"date": "2027-02-15", "name": "Day"}]}) == []


# -- the calendar pages --------------------------------------------------------------------

def test_year_page_lists_the_users_holidays(client, canada):
    response = client.get("/calendar/holidays?year=2027")
    assert response.status_code == 200
    rows = [" ".join(html.unescape(re.sub(r"<[^>]+>", " ", row)).split())
            for row in re.findall(r"<tr>(.*?)</tr>", response.text, re.DOTALL)]
    assert "Jul 1, 2027 Thursday Canada Day" in rows  # the user's (default, medium) format
    assert "Oct 11, 2027 Monday Thanksgiving Day" in rows
    assert "Feb 15, 2027 Monday Family Day" in rows
    assert "Holidays in 2027" in text_of(response) and "Canada (Ontario)" in text_of(response)
    assert "/calendar/holidays?year=2026" in links(response)
    assert "/calendar/holidays?year=2028" in links(response)


def test_year_page_uses_the_users_date_format(client, site, admin, canada):
    choose(site, admin, date_format="dd.MM.yyyy")
    assert "01.07.2027 Thursday Canada Day" in text_of(client.get("/calendar/holidays?year=2027"))


def test_month_grid_shows_the_holidays_on_their_days(client, canada):
    response = client.get("/calendar?year=2027&month=7")
    assert response.status_code == 200
    assert re.search(r"<h1[^>]*>July 2027</h1>", response.text)
    assert cell(response, "2027-07-01") == "1 Canada Day"
    assert cell(response, "2027-07-02") == "2"
    assert "/calendar?year=2027&month=6" in links(response)  # June
    assert "/calendar?year=2027&month=8" in links(response)  # August
    # an English (US) week starts on Sunday: July 2027 begins on a Thursday
    headers = re.findall(r'<th scope="col"><abbr title="(\w+)">', response.text)
    assert headers[0] == "Sunday" and headers[-1] == "Saturday"
    assert re.search(r'datetime="2027-06-27"', response.text)  # the grid opens on Sun 27 June
    assert "Canada Day" in text_of(response).split("Holidays this month")[1]


def test_month_grid_marks_today_in_the_users_time_zone(client):
    before = dt.datetime.now(dt.UTC).date()
    response = client.get("/calendar")
    after = dt.datetime.now(dt.UTC).date()
    marked = re.findall(r'<td[^>]*aria-current="date"[^>]*>\s*<time class="day-number" '
                        r'datetime="([\d-]+)"', response.text)
    assert marked and marked[0] in (before.isoformat(), after.isoformat())
    assert len(marked) == 1


def test_the_week_starts_where_the_users_locale_says(client, site, admin):
    choose(site, admin, language="en_GB")
    headers = re.findall(r'<th scope="col"><abbr title="(\w+)">',
                         client.get("/calendar?year=2027&month=7").text)
    assert headers[0] == "Monday" and headers[-1] == "Sunday"


def test_the_year_boundary_is_crossed_by_the_month_links(client):
    response = client.get("/calendar?year=2027&month=1")
    assert "/calendar?year=2026&month=12" in links(response)
    assert "December 2026" in text_of(response)
    assert "/calendar?year=2028&month=1" in links(client.get("/calendar?year=2027&month=12"))


YEAR_RANGE, MONTH_RANGE = "Choose a year between 1900 and 2200.", "Choose a month from 1 to 12."


@pytest.mark.parametrize("url, message", [
    ("/calendar?year=abc", YEAR_RANGE), ("/calendar?year=99999", YEAR_RANGE),
    ("/calendar?year=1899&month=12", YEAR_RANGE), ("/calendar?month=13", MONTH_RANGE),
    ("/calendar?month=0", MONTH_RANGE), ("/calendar?year=2027&month=July", MONTH_RANGE),
    ("/calendar/holidays?year=x", YEAR_RANGE), ("/calendar/holidays?year=-5", YEAR_RANGE),
])
def test_bad_calendar_addresses_get_a_clear_message(client, url, message):
    response = client.get(url)
    assert response.status_code == 400
    assert message in text_of(response)


def test_the_first_and_last_years_have_no_link_beyond(client):
    assert not any("year=1899" in link for link in links(client.get("/calendar?year=1900&month=1")))
    assert not any("year=2201" in link for link in links(client.get("/calendar/holidays?year=2200")))


def test_without_a_holiday_set_the_pages_say_how_to_choose_one(client, site):
    for url in ("/calendar?year=2027&month=7", "/calendar/holidays?year=2027"):
        response = client.get(url)
        assert response.status_code == 200
        assert "No holiday calendar is chosen, so no holidays are shown." in text_of(response)
        assert "an administrator can install a holiday pack" in text_of(response)
        assert "/preferences" in links(response)
    assert cell(client.get("/calendar?year=2027&month=7"), "2027-07-01") == "1"
    install_folder(site, "holidays_fi")  # now there is one to choose
    text = text_of(client.get("/calendar/holidays?year=2027"))
    assert "Choose the holidays of your country or region in your preferences." in text


def test_a_removed_pack_counts_as_no_choice(client, site, canada):
    assert "Canada Day" in client.get("/calendar/holidays?year=2027").text
    table = site.tables.tables["crbm_packs"]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.name == "holidays_ca").values(status="disabled"))
    site.reload()
    response = client.get("/calendar/holidays?year=2027")
    assert response.status_code == 200 and "Canada Day" not in response.text
    assert "No holiday calendar is chosen" in text_of(response)
    assert client.get("/calendar/holidays.json?year=2027").json() == []


def test_a_french_user_reads_french_names(client, site, admin, canada):
    install_folder(site, "lang_fr")  # a user reads French once the site speaks it
    choose(site, admin, language="fr")
    text = text_of(client.get("/calendar/holidays?year=2027"))
    assert "Fête du Canada" in text and "Action de grâce" in text
    assert "Canada Day" not in text
    month = client.get("/calendar?year=2027&month=7")
    assert cell(month, "2027-07-01") == "1 Fête du Canada"
    headers = re.findall(r'<th scope="col"><abbr title="(\w+)">', month.text)
    assert headers[0] == "lundi"  # a French week starts on Monday
    assert {"date": "2027-10-11", "name": "Action de grâce"} in \
        client.get("/calendar/holidays.json?year=2027").json()


def test_header_links_to_the_calendar(client):
    assert re.search(r'<a class="nav-entry" href="/calendar/agenda" title="Calendar">.*?'
                     r'<span class="nav-label">Calendar</span></a>', client.get("/").text)


# -- the JSON for date fields --------------------------------------------------------------

def test_json_lists_the_users_holidays_of_a_year(client, canada):
    response = client.get("/calendar/holidays.json?year=2027")
    assert response.status_code == 200
    found = response.json()
    assert {"date": "2027-07-01", "name": "Canada Day"} in found
    assert {"date": "2027-10-11", "name": "Thanksgiving Day"} in found
    assert [d["date"] for d in found] == sorted(d["date"] for d in found)
    assert all(d["date"].startswith("2027-") for d in found)
    assert {"date": "2028-07-01", "name": "Canada Day"} in \
        client.get("/calendar/holidays.json?year=2028").json()
    bad = client.get("/calendar/holidays.json?year=soon")
    assert bad.status_code == 400 and "Choose a year" in bad.json()["error"]


def test_json_is_empty_without_a_set_and_needs_a_login(client, site):
    assert client.get("/calendar/holidays.json?year=2027").json() == []
    with TestClient(create_app(site)) as stranger:
        response = stranger.get("/calendar/holidays.json?year=2027", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_pages_tell_the_date_fields_about_the_users_set(client, site, admin):
    assert "data-holidays=" not in client.get("/").text  # no set: nothing to fetch
    install_folder(site, "holidays_ca")
    choose(site, admin, holidays="holidays_ca")
    page = client.get("/")
    assert 'data-holidays="/calendar/holidays.json"' in page.text
    assert 'data-holiday-text="Holiday: {name}"' in page.text


# -- the Holidays preference ---------------------------------------------------------------

def preference_form(client) -> tuple[str, dict]:
    page = client.get("/preferences").text
    values = {"language": "en", "timezone": "UTC", "date_format": "medium",
              "time_format": "short", "number_locale": ""}
    return csrf_of(page), values


def test_holidays_preference_offers_enabled_holiday_packs(client, site, admin):
    install_folder(site, "holidays_ca")
    install_folder(site, "holidays_fi")
    page = client.get("/preferences").text
    select = re.search(r'<select id="pref-holidays" name="holidays".*?</select>', page, re.DOTALL)
    options = re.findall(r'<option value="([^"]*)"[^>]*>([^<]*)</option>', select.group(0))
    assert options == [("", "None"), ("holidays_ca", "Canada (Ontario)"), ("holidays_fi", "Finland")]

    token, values = preference_form(client)
    response = client.post("/preferences", data={"_csrf": token, **values, "holidays": "holidays_fi"},
                           follow_redirects=False)
    assert response.status_code == 303
    assert preferences_of(site, "admin")["holidays"] == "holidays_fi"
    assert re.search(r'<option value="holidays_fi" selected>', client.get("/preferences").text)
    assert "Itsenäisyyspäivä" not in client.get("/calendar/holidays?year=2027").text
    assert "Independence Day" in client.get("/calendar/holidays?year=2027").text

    response = client.post("/preferences", data={"_csrf": token, **values, "holidays": ""},
                           follow_redirects=False)
    assert response.status_code == 303 and preferences_of(site, "admin")["holidays"] is None


@pytest.mark.parametrize("chosen, message", [
    ("holidays_us", "That holiday calendar is not installed on this site."),  # not installed
    ("lang_fr", "That holiday calendar is not installed on this site."),
    ("../etc", "Unknown holiday set"),
])
def test_holidays_preference_refuses_what_is_not_offered(client, site, admin, chosen, message):
    install_folder(site, "holidays_ca")
    choose(site, admin, holidays="holidays_ca", timezone="Europe/Helsinki")
    before = preferences_of(site, "admin")
    token, values = preference_form(client)
    response = client.post("/preferences", data={"_csrf": token, **values,
                                                 "timezone": "Europe/Oslo", "holidays": chosen})
    assert response.status_code == 400
    assert re.search(r'name="holidays".*?' + re.escape(message), html.unescape(response.text),
                     re.DOTALL)
    assert preferences_of(site, "admin") == before  # nothing saved, not even the time zone


def test_for_user_finds_only_an_enabled_holiday_pack(site):
    chosen = Preferences(holidays="holidays_ca")
    assert holidays.for_user(site, chosen) is None  # not installed
    install_folder(site, "holidays_ca")
    found = holidays.for_user(site, chosen)
    assert found.country == "CA" and found.subdivision == "ON" and found.label == "Canada (Ontario)"
    assert holidays.for_user(site, Preferences()) is None  # nothing chosen
    table = site.tables.tables["crbm_packs"]
    with site.engine.begin() as conn:  # the same name, but not a holiday pack
        conn.execute(table.update().values(kind="theme"))
    site.reload()
    assert holidays.for_user(site, chosen) is None and holidays.choices(site) == []
