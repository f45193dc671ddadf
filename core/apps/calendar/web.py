"""The calendar: a month grid and a year's holidays, both showing the signed-in user's
holiday set (core.apps.calendar.holidays, chosen in the preferences), and the JSON the date fields ask
for to say "Holiday: ..." beside a chosen date (crbm.js)."""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from babel import Locale, UnknownLocaleError, dates
from babel.core import get_global
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.apps.calendar import holidays
from core.kernel import i18n
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import formatter

MIN_YEAR, MAX_YEAR = 1900, 2200  # a business calendar; keeps every grid inside dt.date's range
BAD_YEAR = Message(N_("Choose a year between %(min)s and %(max)s."), min=MIN_YEAR, max=MAX_YEAR)
BAD_MONTH = Message(N_("Choose a month from 1 to 12."))


@dataclass(frozen=True)
class Day:
    date: dt.date
    in_month: bool
    today: bool
    weekend: bool
    holiday: str | None  # its name, in the user's language


def _fmt(request: Request) -> i18n.Formatter:
    """The user's locale, time zone and formats, for the handler's own work (the page is
    rendered with the formatter the templates choose, catalogs of language packs and all)."""
    return getattr(request.state, "fmt", None) or formatter(request.state.user.preferences)


def _number(request: Request, name: str, default: int, low: int, high: int,
            message: Message) -> int:
    """A whole number from the query string, or a 400 page saying what is allowed."""
    text = request.query_params.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise HTTPException(400, message)
    return value


def _today(fmt: i18n.Formatter) -> dt.date:
    return dt.datetime.now(fmt.tz).date()  # the user's day, not the server's


def week_locale(prefs: i18n.Preferences) -> Locale:
    """The locale whose week (first day, weekend) the user lives by: their language's
    region, else their number format's, else the region the language is most used in
    ("en" -> US: weeks start on Sunday; "fr" -> France: Monday)."""
    language = Locale.parse(prefs.language)
    if language.territory:
        return language
    if prefs.number_locale and Locale.parse(prefs.number_locale).territory:
        return Locale.parse(prefs.number_locale)
    likely = get_global("likely_subtags").get(language.language)
    try:
        return Locale.parse(likely) if likely else language
    except (UnknownLocaleError, ValueError):
        return language


def month_grid(year: int, month: int, first_weekday: int, weekend: set[int], today: dt.date,
               named: dict[dt.date, str]) -> list[list[Day]]:
    """Whole weeks (Monday = 0 ... Sunday = 6 in ``first_weekday`` and ``weekend``) covering
    the month; holidays are named on the month's own days only."""
    first = dt.date(year, month, 1)
    day = first - dt.timedelta(days=(first.weekday() - first_weekday) % 7)
    weeks = []
    while (day.year, day.month) <= (year, month):
        week = []
        for _ in range(7):
            in_month = day.month == month
            week.append(Day(day, in_month, day == today, day.weekday() in weekend,
                            named.get(day) if in_month else None))
            day += dt.timedelta(days=1)
        weeks.append(week)
    return weeks


def _user_set(request: Request) -> holidays.HolidaySet | None:
    return holidays.for_user(request.app.state.site, request.state.user.preferences)


def _hint(request: Request, chosen: holidays.HolidaySet | None) -> dict:
    """For the hint shown without a holiday set: whether the site has one to choose."""
    return {"can_choose": chosen is None and bool(holidays.choices(request.app.state.site))}


@page()
def month_view(request: Request, form):
    fmt = _fmt(request)
    today = _today(fmt)
    year = _number(request, "year", today.year, MIN_YEAR, MAX_YEAR, BAD_YEAR)
    month = _number(request, "month", today.month if year == today.year else 1, 1, 12, BAD_MONTH)
    week = week_locale(fmt.prefs)
    # the reader's own first day (preferences) over their locale's
    first_weekday = int(fmt.prefs.week_start or week.first_week_day)
    span = (week.weekend_end - week.weekend_start) % 7  # Sat..Sun: 1; Fri..Sat elsewhere
    weekend = {(week.weekend_start + i) % 7 for i in range(span + 1)}
    chosen = _user_set(request)
    named: dict[dt.date, str] = {}
    if chosen is not None:
        named = dict(chosen.days(year, fmt.prefs.language))
    first = dt.date(year, month, 1)
    previous = (year, month - 1) if month > 1 else (year - 1, 12)
    following = (year, month + 1) if month < 12 else (year + 1, 1)
    headers = [(fmt.locale.days["stand-alone"]["abbreviated"][(first_weekday + i) % 7],
                fmt.locale.days["stand-alone"]["wide"][(first_weekday + i) % 7]) for i in range(7)]
    weeks = month_grid(year, month, first_weekday, weekend, today, named)
    in_month = sorted((d, name) for d, name in named.items() if d.month == month)
    return request.app.state.templates.render(
        request, "calendar.html", holiday_set=chosen, weeks=weeks, headers=headers,
        year=year, month=month, title=dates.format_date(first, "LLLL y", locale=fmt.locale),
        previous=_link(*previous, fmt), following=_link(*following, fmt),
        showing_today=(year, month) == (today.year, today.month), month_holidays=in_month,
        **_hint(request, chosen))


def _link(year: int, month: int, fmt: i18n.Formatter) -> tuple[str, str] | None:
    """(URL, month name) of another month's page; None past the years offered."""
    if not MIN_YEAR <= year <= MAX_YEAR:
        return None
    return (f"/calendar?year={year}&month={month}",
            dates.format_date(dt.date(year, month, 1), "LLLL y", locale=fmt.locale))


@page()
def holidays_view(request: Request, form):
    fmt = _fmt(request)
    year = _number(request, "year", _today(fmt).year, MIN_YEAR, MAX_YEAR, BAD_YEAR)
    chosen = _user_set(request)
    days = chosen.days(year, fmt.prefs.language) if chosen is not None else []
    rows = [(day, dates.format_date(day, "EEEE", locale=fmt.locale), name) for day, name in days]
    return request.app.state.templates.render(
        request, "calendar_holidays.html", holiday_set=chosen, year=year, rows=rows,
        previous=year - 1 if year > MIN_YEAR else None,
        following=year + 1 if year < MAX_YEAR else None, **_hint(request, chosen))


@page()
def holidays_json(request: Request, form):
    """[{date: "YYYY-MM-DD", name}] of the user's set for ``year`` ([] without a set)."""
    fmt = _fmt(request)
    try:
        year = _number(request, "year", _today(fmt).year, MIN_YEAR, MAX_YEAR, BAD_YEAR)
    except HTTPException:
        return JSONResponse({"error": fmt.gettext(BAD_YEAR.template) % BAD_YEAR.params}, 400)
    chosen = _user_set(request)
    days = chosen.days(year, fmt.prefs.language) if chosen is not None else []
    # no-cache: a changed preference shows at once, yet the browser may revalidate
    return JSONResponse([{"date": day.isoformat(), "name": name} for day, name in days],
                        headers={"Cache-Control": "private, no-cache"})


routes = [
    Route("/calendar", month_view),
    Route("/calendar/holidays", holidays_view),
    Route("/calendar/holidays.json", holidays_json),
]
