"""Forecast settings and periods (implementation guide 7.1.1: "Forecast period", "the number
of forecast periods (current period and into the future) to be retained", the month the
fiscal year starts in).

The setting ``forecasts`` (JSON in ``crbm_settings``): ``period`` (monthly | quarterly),
``future_periods`` (the current one and those after it) and ``history_periods`` (past ones
kept). The fiscal year's first month and "today" are the company calendar's
(core.apps.calendar.settings, Admin → Company calendar). ``forecast_settings(site)`` reads
them typed, with defaults; ``clean_settings(form)`` checks what the admin page posts.

Periods are counted from the fiscal year's first month: with a year starting in April, Q1
is April-June and the year 2026/27 runs from April 2026 to March 2027. Month arithmetic is
dateutil's ``relativedelta``. ``keep_periods`` (the scheduler task ``forecasts.periods``,
daily, and after the settings are saved) makes the window of periods exist: it creates the
missing ones through the record service and deletes those that fell out of the window —
past ones older than the history kept, and periods of the other kind or beyond the window
that nobody forecast in. Run twice, it changes nothing the second time.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from dateutil.relativedelta import relativedelta

from core.apps.calendar.settings import calendar_settings
from core.kernel.errors import N_, Message
from core.kernel.records import SYSTEM_USER, Query

SETTING = "forecasts"
KINDS = {"monthly": 1, "quarterly": 3}  # months a period lasts
MAX_PERIODS = 36
PERIODS, ENTRIES = "forecast_periods", "forecast_entries"


@dataclass(frozen=True)
class ForecastSettings:
    period: str = "quarterly"
    fiscal_year_start: int = 1  # the company calendar's, not stored in ``forecasts``
    future_periods: int = 4  # the current period and those after it
    history_periods: int = 4

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "fiscal_year_start"}


def forecast_settings(site) -> ForecastSettings:
    """The site's forecast settings; a missing or bad value keeps its default."""
    stored = site.settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    out = ForecastSettings()
    kind = stored.get("period")
    future = stored.get("future_periods")
    history = stored.get("history_periods")
    return ForecastSettings(
        period=kind if kind in KINDS else out.period,
        fiscal_year_start=calendar_settings(site).fiscal_year_start,
        future_periods=future if isinstance(future, int) and 1 <= future <= MAX_PERIODS
        else out.future_periods,
        history_periods=history if isinstance(history, int) and 0 <= history <= MAX_PERIODS
        else out.history_periods)


def clean_settings(form) -> tuple[dict, dict[str, Message]]:
    """The settings a form posts, and the problems keyed by field (nothing saved if any)."""
    values = {name: str(form.get(name) or "").strip() for name in
              ("period", "future_periods", "history_periods")}
    errors: dict[str, Message] = {}
    if values["period"] not in KINDS:
        errors["period"] = Message(N_("choose monthly or quarterly"))
    out: dict = {"period": values["period"]}
    for name, low, high in (("future_periods", 1, MAX_PERIODS),
                            ("history_periods", 0, MAX_PERIODS)):
        try:
            number = int(values[name])
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            errors[name] = Message(N_("%(value)s is not a whole number from %(low)s to "
                                      "%(high)s"), value=repr(values[name]), low=low, high=high)
        out[name] = number
    return out, errors


# -- the calendar ----------------------------------------------------------------------------

def period_start(day: dt.date, kind: str, fiscal_year_start: int) -> dt.date:
    """The first day of the ``kind`` period ``day`` falls in."""
    months_in = (day.month - fiscal_year_start) % 12
    year_start = dt.date(day.year if day.month >= fiscal_year_start else day.year - 1,
                         fiscal_year_start, 1)
    return year_start + relativedelta(months=months_in - months_in % KINDS[kind])


@dataclass(frozen=True)
class Period:
    name: str
    period_type: str
    start_date: dt.date
    end_date: dt.date
    fiscal_year: int  # the calendar year the fiscal year starts in


def period_at(start: dt.date, kind: str, fiscal_year_start: int) -> Period:
    """The period starting on ``start``: "2026-04" (monthly), "FY2026 Q1" (quarterly, a
    calendar fiscal year) or "FY2026/27 Q1" (a fiscal year across two calendar years)."""
    months_in = (start.month - fiscal_year_start) % 12
    fiscal_year = start.year if start.month >= fiscal_year_start else start.year - 1
    end = start + relativedelta(months=KINDS[kind]) - dt.timedelta(days=1)
    if kind == "monthly":
        name = f"{start:%Y-%m}"
    else:
        year = f"FY{fiscal_year}" if fiscal_year_start == 1 else \
            f"FY{fiscal_year}/{(fiscal_year + 1) % 100:02d}"
        name = f"{year} Q{months_in // 3 + 1}"
    return Period(name, kind, start, end, fiscal_year)


def window(today: dt.date, settings: ForecastSettings) -> list[Period]:
    """The periods to keep: ``history_periods`` before the current one, the current one and
    ``future_periods - 1`` after it, oldest first."""
    kind, months = settings.period, KINDS[settings.period]
    current = period_start(today, kind, settings.fiscal_year_start)
    return [period_at(current + relativedelta(months=months * step), kind,
                      settings.fiscal_year_start)
            for step in range(-settings.history_periods, settings.future_periods)]


def site_today(site, moment: dt.datetime | None = None) -> dt.date:
    """The day ``moment`` (default: now) is in the company's time zone."""
    return calendar_settings(site).today(moment)


def keep_periods(site, today: dt.date | None = None) -> str:
    """Make the settings' window of periods exist (module docstring); idempotent."""
    settings = forecast_settings(site)
    wanted = window(today or site_today(site), settings)
    existing = site.records.list(PERIODS, SYSTEM_USER, Query(
        fields=["id", "period_type", "start_date", "end_date"], limit=None))
    have = {(p["period_type"], p["start_date"]): p for p in existing}
    missing = [p for p in wanted if (p.period_type, p.start_date) not in have]
    if missing:
        site.records.create_many(PERIODS, [asdict(p) for p in missing], SYSTEM_USER)
    keys = {(p.period_type, p.start_date) for p in wanted}
    first = wanted[0].start_date
    outside = [p for p in existing if (p["period_type"], p["start_date"]) not in keys]
    used = {e["period_id"] for e in site.records.list(ENTRIES, SYSTEM_USER, Query(
        fields=["period_id"], filters=[("period_id", "in", [p["id"] for p in outside])],
        limit=None))} if outside else set()
    gone = [p["id"] for p in outside if p["end_date"] < first or p["id"] not in used]
    if gone:
        site.records.delete_many(PERIODS, gone, SYSTEM_USER)
    return f"{len(missing)} periods created, {len(gone)} removed"


def periods_task(site, due: dt.datetime) -> str:
    """The scheduled task's run: the window as of the due day, in the site's time zone (a
    run late or retried keeps the periods its due day had)."""
    return keep_periods(site, site_today(site, due))
