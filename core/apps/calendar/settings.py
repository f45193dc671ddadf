"""The company calendar (implementation guide §7.1.1): one site-wide answer to "what day is it
here, when does the week start, which month starts the fiscal year, when does a work day begin
and end" for everything that counts in days or periods — workflows' date filters, forecast
periods, an opportunity's close date, activities' "today".

Public API::

    from core.apps.calendar.settings import calendar_settings
    cal = calendar_settings(site)        # a CalendarSettings (frozen), defaults for a new site
    cal.tz, cal.today(), cal.week_start, cal.fiscal_year_start, cal.work_day_start ...

Stored as the site setting ``calendar`` (JSON: ``time_zone``, ``week_start`` 0 Monday .. 6
Sunday, ``fiscal_year_start`` 1..12, ``work_day_start`` / ``work_day_end`` "HH:MM"), edited on
Admin → Company calendar (``/admin/calendar``, web.py).

Why a company setting and not the user's: a user *sees* dates and times in their own time
zone (core.kernel.i18n Preferences); a scheduled rule, a forecast period or "closed today"
needs one day that is the same for everybody, the company's.

Before this setting existed, workflows kept ``workflows: {timezone, week_start,
fiscal_year_start}``, forecasts ``forecasts: {fiscal_year_start}`` and opportunities read a
bare ``timezone``. A site that never saved the Company calendar page still reads those keys,
field by field, as a fallback (``LEGACY``); the first save writes every field here and from
then on only ``calendar`` counts. Nothing is migrated in place: the old keys are left as they
were, harmless.
"""
from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.kernel.errors import N_, Message

SETTING = "calendar"
# field -> the older site settings it was read from, in order: (setting key, key inside or None)
LEGACY = {
    "time_zone": (("workflows", "timezone"), ("timezone", None)),
    "week_start": (("workflows", "week_start"),),
    "fiscal_year_start": (("forecasts", "fiscal_year_start"), ("workflows", "fiscal_year_start")),
}
WEEKDAYS = (N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
            N_("Saturday"), N_("Sunday"))
MONTHS = (N_("January"), N_("February"), N_("March"), N_("April"), N_("May"), N_("June"),
          N_("July"), N_("August"), N_("September"), N_("October"), N_("November"),
          N_("December"))
_HH_MM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")


@dataclass(frozen=True)
class CalendarSettings:
    """How the company counts days (the module docstring)."""

    time_zone: str = "UTC"
    week_start: int = 0  # 0 Monday .. 6 Sunday, as date.weekday()
    fiscal_year_start: int = 1  # the month, 1..12
    work_day_start: dt.time = dt.time(8, 0)
    work_day_end: dt.time = dt.time(18, 0)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    def today(self, moment: dt.datetime | None = None) -> dt.date:
        """The company's day at ``moment`` (an aware datetime; default now)."""
        return (moment or dt.datetime.now(dt.UTC)).astimezone(self.tz).date()

    def to_json(self) -> dict:
        return {"time_zone": self.time_zone, "week_start": self.week_start,
                "fiscal_year_start": self.fiscal_year_start,
                "work_day_start": f"{self.work_day_start:%H:%M}",
                "work_day_end": f"{self.work_day_end:%H:%M}"}


def _zone_ok(name) -> bool:
    try:
        return isinstance(name, str) and bool(name) and ZoneInfo(name).key == name
    except (ZoneInfoNotFoundError, ValueError):
        return False


def _time(value) -> dt.time | None:
    match = _HH_MM.fullmatch(value.strip()) if isinstance(value, str) else None
    return dt.time(int(match[1]), int(match[2])) if match else None


_CHECKS = {  # field -> the stored value typed, or None when it is unusable
    "time_zone": lambda v: v if _zone_ok(v) else None,
    "week_start": lambda v: v if isinstance(v, int) and not isinstance(v, bool)
    and 0 <= v <= 6 else None,
    "fiscal_year_start": lambda v: v if isinstance(v, int) and not isinstance(v, bool)
    and 1 <= v <= 12 else None,
    "work_day_start": _time,
    "work_day_end": _time,
}


def calendar_settings(site) -> CalendarSettings:
    """The company calendar, typed; a missing or bad value falls back to the older keys
    (``LEGACY``), then to the default (UTC, weeks from Monday, fiscal years from January,
    work days 08:00-18:00)."""
    settings = site.settings
    stored = settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    values = {}
    for field, check in _CHECKS.items():
        candidates = [stored.get(field)]
        if not stored:  # never saved: what the plugins kept before (module docstring)
            for key, inner in LEGACY.get(field, ()):
                old = settings.get(key)
                candidates.append(old.get(inner) if inner and isinstance(old, dict)
                                  else None if inner else old)
        typed = next((t for t in map(check, candidates) if t is not None), None)
        if typed is not None:
            values[field] = typed
    out = CalendarSettings(**values)
    if out.work_day_end <= out.work_day_start:  # stored by hand: keep a usable day
        out = CalendarSettings(out.time_zone, out.week_start, out.fiscal_year_start)
    return out


def clean(form) -> tuple[dict, dict[str, Message]]:
    """What the admin page posts, as the JSON to store, and the problems keyed by field
    (nothing is saved when there is one)."""
    text = {name: str(form.get(name) or "").strip() for name in _CHECKS}
    errors: dict[str, Message] = {}
    out: dict = {}
    if not _zone_ok(text["time_zone"]):
        errors["time_zone"] = Message(N_("%(value)s is not a time zone name such as "
                                         "Europe/Paris or America/Toronto"),
                                      value=repr(text["time_zone"]))
    out["time_zone"] = text["time_zone"]
    for name, low, high in (("week_start", 0, 6), ("fiscal_year_start", 1, 12)):
        number = int(text[name]) if text[name].isdigit() else None
        if number is None or not low <= number <= high:
            errors[name] = Message(N_("%(value)s is not a whole number from %(low)s to "
                                      "%(high)s"), value=repr(text[name]), low=low, high=high)
        out[name] = number
    for name in ("work_day_start", "work_day_end"):
        if _time(text[name]) is None:
            errors[name] = Message(N_("%(value)s is not a time written HH:MM, e.g. 08:30"),
                                   value=repr(text[name]))
        out[name] = text[name]
    start, end = _time(text["work_day_start"]), _time(text["work_day_end"])
    if start and end and end <= start:
        errors["work_day_end"] = Message(N_("must be after the work day's beginning"))
    if not errors:
        out["work_day_start"], out["work_day_end"] = f"{start:%H:%M}", f"{end:%H:%M}"
    return out, errors


def zone_names() -> list[str]:
    """Every IANA time zone name the system knows, sorted (the page's list)."""
    return sorted(available_timezones())
