"""User Activity Logging's settings (implementation guide §7.1.2, the Logging panel).

Stored as the site setting ``activity_tracking`` (JSON: ``level``, ``timeout_minutes``,
``grace_minutes``, ``keep_days``); ``activity_settings(site)`` reads it typed, a missing or
bad value falling back to its default; ``clean(form)`` checks what the admin page posts.

- ``level``, least to most collected: ``off`` (nothing recorded; the scheduler task still
  runs, so what was recorded ages out), ``login`` (when each user was active, and whether
  a request wrote: the time clock, Actions and Written), ``modules`` (also which module),
  ``records`` (also which record: Read and Written count records).
- ``timeout_minutes``: the longest pause still counted as working; a longer one ends a
  session at its last activity. ``grace_minutes``: credited to every session, for the time
  between the last click and actually leaving. No more than the timeout: a grace longer
  than the pause it stands for would credit more than a user who stayed.
- ``keep_days``: raw events older than this many days (company calendar) are deleted by
  the reporting task, once reported. The per-day figures the reports read are kept.

Default level: ``login``, not ``off``. A time sheet can only show what was recorded when
it happened, so a site that starts at ``off`` has empty reports for every day before an
administrator found the setting. ``login`` stores no more than the access log and the
session table already hold (who made a request, when), so it reveals nothing new.
"""
from __future__ import annotations

from dataclasses import dataclass

from core.kernel.errors import N_, Message

SETTING = "activity_tracking"
LEVELS = ("off", "login", "modules", "records")
LEVEL_LABELS = {"off": N_("Off"), "login": N_("Login duration"),
                "modules": N_("Modules used"), "records": N_("Records used")}
# (field, lowest, highest)
LIMITS = (("timeout_minutes", 1, 1440), ("grace_minutes", 0, 240), ("keep_days", 1, 3650))


@dataclass(frozen=True)
class ActivitySettings:
    level: str = "login"
    timeout_minutes: int = 15
    grace_minutes: int = 5
    keep_days: int = 90

    def at_least(self, level: str) -> bool:
        return LEVELS.index(self.level) >= LEVELS.index(level)

    def to_json(self) -> dict:
        return {"level": self.level, "timeout_minutes": self.timeout_minutes,
                "grace_minutes": self.grace_minutes, "keep_days": self.keep_days}


def _whole(value, low: int, high: int) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and low <= value <= high
    return value if ok else None


def activity_settings(site) -> ActivitySettings:
    """The settings, typed; a missing or unusable value is its default."""
    stored = site.settings.get(SETTING)
    stored = stored if isinstance(stored, dict) else {}
    values: dict = {}
    if stored.get("level") in LEVELS:
        values["level"] = stored["level"]
    for name, low, high in LIMITS:
        typed = _whole(stored.get(name), low, high)
        if typed is not None:
            values[name] = typed
    out = ActivitySettings(**values)
    if out.grace_minutes > out.timeout_minutes:  # stored by hand: keep a usable pair
        out = ActivitySettings(out.level, out.timeout_minutes, out.timeout_minutes,
                               out.keep_days)
    return out


def clean(form) -> tuple[dict, ActivitySettings | None, dict[str, Message]]:
    """(the form's values as typed, the settings they make or None, problems by field)."""
    values = {name: str(form.get(name) or "").strip()
              for name in ("level", *(name for name, _, _ in LIMITS))}
    errors: dict[str, Message] = {}
    if values["level"] not in LEVELS:
        errors["level"] = Message(N_("Choose one of the levels."))
    numbers: dict[str, int] = {}
    for name, low, high in LIMITS:
        text = values[name]
        number = int(text) if text.isdigit() and len(text) < 7 else None
        if number is None or not low <= number <= high:
            errors[name] = Message(N_("%(value)s is not a whole number from %(low)s to "
                                      "%(high)s"), value=repr(text), low=low, high=high)
        else:
            numbers[name] = number
    if "grace_minutes" in numbers and "timeout_minutes" in numbers \
            and numbers["grace_minutes"] > numbers["timeout_minutes"]:
        errors["grace_minutes"] = Message(N_("must not be longer than the timeout period "
                                             "(%(timeout)s minutes)"),
                                          timeout=numbers["timeout_minutes"])
    if errors:
        return values, None, errors
    return values, ActivitySettings(values["level"], **numbers), errors


def save(site, settings: ActivitySettings) -> None:
    site.set_setting(SETTING, settings.to_json())
