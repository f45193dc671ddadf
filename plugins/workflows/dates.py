"""The calendar workflow date filters reckon with (implementation guide §7.5.5).

Every date filter works in **calendar days of the site's time zone**: "today", "the current
week", "the end of the fiscal quarter", "3 months before now" are days, worked out here from
one clock reading (``now``, an aware datetime) and the site's ``DateSettings`` (time zone,
first day of the week, first month of the fiscal year: the company calendar, Admin → Company
calendar). A date field is compared with those
days as it is; a date-and-time field (stored in UTC) by the day it falls on in the site's
time zone — so a range of days becomes the range of instants from the local midnight that
starts its first day to the one that ends its last (``day_start``): a comparison of the
column with two computed bounds, which an index serves, on every database, with no time zone
support needed in SQL.

Months are added as people count them: Jan 31 + 1 month is Feb 28 (29 in a leap year), the
same in Python (``add_months``) and in SQL (``DateShift``: PostgreSQL's and MariaDB's month
arithmetic clamp the same way; SQLite's does not, so there the clamped day is the smaller of
its overflowed one and the target month's last day).
"""
from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles

from core.apps.calendar.settings import calendar_settings
from core.kernel.errors import N_

PERIODS = ("day", "week", "month", "quarter", "year", "fiscal_quarter", "fiscal_year")
PERIOD_LABELS = {"day": N_("day"), "week": N_("week"), "month": N_("month"),
                 "quarter": N_("quarter"), "year": N_("year"),
                 "fiscal_quarter": N_("fiscal quarter"), "fiscal_year": N_("fiscal year")}
# an offset's unit -> (months, days) per step; fiscal quarters and years are as long as
# calendar ones (they differ only in where they start, which offsets do not ask)
UNITS = {"days": (0, 1), "weeks": (0, 7), "months": (1, 0), "quarters": (3, 0),
         "years": (12, 0), "fiscal_quarters": (3, 0), "fiscal_years": (12, 0)}


@dataclass(frozen=True)
class DateSettings:
    """How a site counts days: its time zone (IANA name), the first day of its weeks
    (0 Monday .. 6 Sunday) and the month its fiscal year starts in (1..12)."""

    timezone: str = "UTC"
    week_start: int = 0
    fiscal_year_start: int = 1

    @property
    def tz(self) -> ZoneInfo:
        return _zone(self.timezone)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def date_settings(site) -> DateSettings:
    """The company calendar (core.apps.calendar.settings, Admin → Company calendar) as the
    three things date filters need."""
    cal = calendar_settings(site)
    return DateSettings(cal.time_zone, cal.week_start, cal.fiscal_year_start)


def add_months(day: dt.date, months: int) -> dt.date:
    """``day`` moved by whole months, clamped to the target month's last day."""
    index = day.year * 12 + day.month - 1 + months
    year, month = divmod(index, 12)
    return dt.date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def shift(day: dt.date, amount: int, unit: str) -> dt.date:
    """``day`` moved by ``amount`` (signed) of ``unit`` (a key of ``UNITS``): months first."""
    months, days = UNITS[unit]
    if months:
        day = add_months(day, amount * months)
    return day + dt.timedelta(days=amount * days)


def period(name: str, today: dt.date, settings: DateSettings) -> tuple[dt.date, dt.date]:
    """(first day, last day) of the current ``name`` (a key of ``PERIODS``) around today."""
    if name == "day":
        return today, today
    if name == "week":
        first = today - dt.timedelta(days=(today.weekday() - settings.week_start) % 7)
        return first, first + dt.timedelta(days=6)
    if name in ("month", "quarter", "year"):
        start_month, length = {"month": (today.month, 1),
                               "quarter": (today.month - (today.month - 1) % 3, 3),
                               "year": (1, 12)}[name]
        first = dt.date(today.year, start_month, 1)
    else:  # fiscal: counted from the fiscal year's first month
        fiscal_start = settings.fiscal_year_start
        year = today.year if today.month >= fiscal_start else today.year - 1
        first = dt.date(year, fiscal_start, 1)
        length = 12
        if name == "fiscal_quarter":
            into = (today.month - fiscal_start) % 12
            first, length = add_months(first, into - into % 3), 3
    return first, add_months(first, length) - dt.timedelta(days=1)


def day_start(day: dt.date, tz: ZoneInfo) -> dt.datetime:
    """The instant (aware, UTC) the day starts at in ``tz``: its local midnight. Both the
    in-memory and the SQL paths compare a date-and-time with these instants, so they agree
    whatever the clock changes (a midnight a change skips counts with the offset before it)."""
    return dt.datetime.combine(day, dt.time(), tzinfo=tz).astimezone(dt.UTC)


def local_day(value: dt.datetime, tz: ZoneInfo) -> dt.date:
    """The day an instant falls on in ``tz`` (naive datetimes are taken as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(tz).date()


# -- a date column moved by months and days, in SQL (date columns only) ----------------------

class DateShift(sa.sql.functions.FunctionElement):
    """``column`` + ``months`` + ``days`` as a date, computed by the database; the amounts
    are whole numbers the caller checked (written into the SQL, never user text)."""

    type = sa.Date()
    inherit_cache = False  # the amounts are written into the SQL: no shared cache entry
    name = "crbm_date_shift"

    def __init__(self, column, months: int, days: int):
        self.months, self.days = int(months), int(days)
        super().__init__(column)


def _column(shift_, compiler, kw) -> str:
    return compiler.process(next(iter(shift_.clauses)), **kw)


@compiles(DateShift)
def _shift_default(shift_, compiler, **kw):  # PostgreSQL: interval arithmetic clamps months
    return (f"CAST({_column(shift_, compiler, kw)} + make_interval(0, {shift_.months}, 0, "
            f"{shift_.days}) AS DATE)")


@compiles(DateShift, "mysql")
@compiles(DateShift, "mariadb")
def _shift_mysql(shift_, compiler, **kw):
    return (f"DATE_ADD(DATE_ADD({_column(shift_, compiler, kw)}, INTERVAL {shift_.months} "
            f"MONTH), INTERVAL {shift_.days} DAY)")


@compiles(DateShift, "sqlite")
def _shift_sqlite(shift_, compiler, **kw):
    column = _column(shift_, compiler, kw)
    moved = column
    if shift_.months:  # SQLite overflows (Jan 31 + 1 month = Mar 2): take the month's end
        moved = (f"min(date({column}, '{shift_.months:+d} months'), "
                 f"date({column}, 'start of month', '{shift_.months + 1:+d} months', '-1 day'))")
    return f"date({moved}, '{shift_.days:+d} days')"
