"""Recurring calls, meetings and tasks (RFC 5545 RRULE; implementation guide §7.7, admin
section eleven: how many occurrences a scheduler run creates, how many days ahead).

The contract:

- A **series** is an ordinary record whose ``recurrence_rule`` holds RFC 5545 lines: one
  ``RRULE:`` (daily, weekly on days, monthly by day or by weekday, yearly; INTERVAL, UNTIL
  or COUNT) and any ``EXDATE:`` lines (exceptions). ``recurrence_tz`` is the organizer's
  time zone, set on the first save from the saving user's preferences: the rule is expanded
  in it (a 10:00 Europe/Paris meeting stays at 10:00 local across a DST change; stored in
  UTC, its UTC hour moves). The series record is itself the first occurrence. Rules are
  read by python-dateutil (``rrulestr``), never by hand; UNTIL is stored in UTC (``Z``) as
  RFC 5545 asks when the start has a time zone.
- **Occurrences** are ordinary records of the same module (every list, panel, access rule
  and calendar sees them) linked by ``recurrence_series_id``, each with
  ``recurrence_key = "<series id>@<start, UTC ISO>"``, a *unique* column: materialising twice
  creates nothing twice, and two materialisers racing cannot both insert one occurrence.
  They are made ahead of time, ``days_ahead`` days (site setting ``recurrence``,
  default 90), by the scheduled task ``activities.recurrence`` (at most ``per_run``
  occurrences a run, default 500) and on every save of a series (the next ``days_ahead``
  days at once). A series never has more than ``MAX_OCCURRENCES`` (1000) occurrences: a
  larger COUNT is refused naming the cap, an endless rule stops there (its description says
  so).
- Re-materialising (the series was edited) updates the future occurrences that follow the
  series, deletes the future ones its new rule no longer has and creates the missing ones.
  An occurrence edited on its own (the edit form, the API, the calendar's drag — any save
  through RecordService) is **detached** automatically (``recurrence_detached``, a
  ``crbm_before_save`` hook): re-materialisation leaves it alone. A deleted occurrence stays
  deleted (its key is kept), like an EXDATE.
- **This and following** (``split``, or the edit form's choice on an occurrence): the old
  series ends before the occurrence (UNTIL), the occurrence becomes a new series with the
  rule given, and the old series' later occurrences that had not been edited go.

Why materialised rows rather than expanding at read time: then a recurring meeting is a
meeting for every feature without any of them knowing about rules (reports, access,
panels, reminders, the API), at the price of a horizon, which 1CRM has too.
"""
from __future__ import annotations

import contextvars
import datetime as dt
import json
import re
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from dateutil import rrule as du
from markupsafe import escape

from core.kernel import i18n
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.fields import FieldError, FieldType, is_blank
from core.kernel.records import SYSTEM_USER

MODULES = ("meetings", "calls", "tasks")
TASK = "activities.recurrence"
SETTING = "recurrence"  # {"days_ahead": 90, "per_run": 500}
DEFAULT_DAYS_AHEAD = 90
DEFAULT_PER_RUN = 500
MAX_OCCURRENCES = 1000
SCOPE = "X-CRBM-SCOPE:FOLLOWING"  # a form's "this and following" rides on the rule's text
# Fields an occurrence does not take from its series, and changes that do not detach it
OWN = frozenset({"id", "created_at", "created_by", "modified_at", "modified_by", "version",
                 "deleted", "status", "date_start", "date_end", "date_due", "recurrence_rule",
                 "recurrence_tz", "recurrence_series_id", "recurrence_key",
                 "recurrence_detached", "recurrence_start",
                 "ical_sequence"})  # an occurrence's own iCalendar revision (invitees.py)
NOT_DETACHING = frozenset({"status", "modified_at", "modified_by", "version"})
_MATERIALISING = contextvars.ContextVar("crbm_materialising", default=False)
_FREQS = {"DAILY": du.DAILY, "WEEKLY": du.WEEKLY, "MONTHLY": du.MONTHLY, "YEARLY": du.YEARLY}
_DAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]
_DAY_NAMES = [N_("Monday"), N_("Tuesday"), N_("Wednesday"), N_("Thursday"), N_("Friday"),
              N_("Saturday"), N_("Sunday")]
_ORDINALS = {1: N_("first"), 2: N_("second"), 3: N_("third"), 4: N_("fourth"), -1: N_("last")}


# -- rules ---------------------------------------------------------------------------------

def _lines(text: str) -> list[str]:
    lines = [line.strip() for line in str(text).replace("\\n", "\n").splitlines() if line.strip()]
    return [line if ":" in line else f"RRULE:{line}" for line in lines]


def normalize_rule(text) -> str | None:
    """The rule as stored ("RRULE:..." and "EXDATE:..." lines), ``FieldError`` saying what is
    wrong; the scope marker of a form's "this and following" is kept at the front."""
    if is_blank(text):
        return None
    lines = _lines(text)
    scope = [line for line in lines if line.upper() == SCOPE]
    lines = [line for line in lines if line.upper() != SCOPE]
    rules = [line for line in lines if line.upper().startswith("RRULE:")]
    others = [line for line in lines if not line.upper().startswith(("RRULE:", "EXDATE"))]
    if len(rules) != 1 or others:
        raise FieldError(Message(N_("must be one RRULE line (and EXDATE lines), e.g. "
                                    "\"FREQ=WEEKLY;BYDAY=MO\"")))
    try:
        parsed = expand_rule("\n".join(lines), dt.datetime(2030, 1, 1, tzinfo=dt.UTC))
        first = parsed._rrule[0]
    except (ValueError, TypeError, IndexError) as exc:
        raise FieldError(Message(N_("is not a valid repeat rule: %(problem)s"),
                                 problem=str(exc))) from None
    if first._freq not in _FREQS.values():
        raise FieldError(Message(N_("repeats daily, weekly, monthly or yearly only")))
    if first._count is not None and first._count > MAX_OCCURRENCES:
        raise FieldError(Message(N_("repeats at most %(cap)s times: COUNT=%(count)s asks for "
                                    "more; choose an end date or a smaller count"),
                                 cap=MAX_OCCURRENCES, count=first._count))
    return "\n".join(scope + lines)


def expand_rule(text: str, start: dt.datetime) -> du.rruleset:
    """The rule's rruleset from ``start`` (aware: the series' local time zone)."""
    return du.rrulestr("\n".join(_lines(text)), dtstart=start, forceset=True, unfold=True)


def _zone(name) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ValueError, KeyError):
        return ZoneInfo("UTC")


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


def _anchor(module_name: str) -> str:
    return "date_due" if module_name == "tasks" else "date_start"


def series_start(module_name: str, record: dict) -> dt.datetime | None:
    """The series' first start, aware in its time zone (a task's: its due day at 00:00)."""
    value, tz = record.get(_anchor(module_name)), _zone(record.get("recurrence_tz"))
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return _utc(value).astimezone(tz)
    return dt.datetime.combine(value, dt.time(0), tzinfo=tz)


def occurrences(module_name: str, record: dict, *, until: dt.datetime | None = None,
                limit: int = MAX_OCCURRENCES) -> list[dt.datetime]:
    """The series' starts in UTC (its own first one included), up to ``until``, at most
    ``limit`` (never more than ``MAX_OCCURRENCES``)."""
    start = series_start(module_name, record)
    if start is None or not record.get("recurrence_rule"):
        return []
    out = []
    for when in expand_rule(record["recurrence_rule"], start):
        if until is not None and when > until or len(out) >= min(limit, MAX_OCCURRENCES):
            break
        out.append(when.astimezone(dt.UTC))
    return out


def with_until(text: str, until_utc: dt.datetime) -> str:
    """The rule ended at ``until_utc`` (UNTIL in UTC; a COUNT goes)."""
    lines = []
    for line in _lines(text):
        if line.upper().startswith("RRULE:"):
            parts = [p for p in line[6:].split(";")
                     if p and not p.upper().startswith(("UNTIL=", "COUNT="))]
            parts.append("UNTIL=" + until_utc.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
            line = "RRULE:" + ";".join(parts)
        lines.append(line)
    return "\n".join(lines)


# -- the rule in words ---------------------------------------------------------------------

def describe(fmt, text: str) -> str:
    """The rule as a sentence in ``fmt``'s language ("Every 2 weeks on Monday, 10 times")."""
    try:
        rule = expand_rule(text, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))._rrule[0]
    except (ValueError, TypeError, IndexError):
        return str(text)
    _, n = fmt.gettext, rule._interval
    words = {
        du.DAILY: fmt.ngettext("Every day", "Every %(num)s days", n),
        du.WEEKLY: fmt.ngettext("Every week", "Every %(num)s weeks", n),
        du.MONTHLY: fmt.ngettext("Every month", "Every %(num)s months", n),
        du.YEARLY: fmt.ngettext("Every year", "Every %(num)s years", n),
    }.get(rule._freq, str(text)) % {"num": n}
    told = str(text).upper()  # what the rule says (dateutil fills the rest from the start)
    if rule._freq == du.WEEKLY and rule._byweekday and "BYDAY" in told:
        days = ", ".join(_(_DAY_NAMES[d]) for d in sorted(rule._byweekday))
        words += " " + _("on %(days)s") % {"days": days}
    if rule._freq == du.MONTHLY and rule._bynweekday:
        day, nth = rule._bynweekday[0]
        words += " " + _("on the %(nth)s %(day)s") % {"nth": _(_ORDINALS.get(nth, str(nth))),
                                                         "day": _(_DAY_NAMES[day])}
    elif rule._freq == du.MONTHLY and rule._bynmonthday == (-1,) and not rule._bymonthday:
        words += " " + _("on the last day of the month")
    elif rule._freq == du.MONTHLY and rule._bymonthday and "BYMONTHDAY" in told:
        words += " " + _("on day %(day)s") % {"day": ", ".join(map(str, rule._bymonthday))}
    if rule._count:
        words += ", " + fmt.ngettext("once", "%(num)s times", rule._count) % {"num": rule._count}
    elif rule._until:
        words += ", " + _("until %(date)s") % {"date": fmt.date(_utc(rule._until))}
    else:
        words += " — " + _("occurrences are created ahead of time, at most %(cap)s in all") % {
            "cap": MAX_OCCURRENCES}
    exceptions = len(expand_rule(text, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))._exdate)
    if exceptions:
        words += " " + fmt.ngettext("(%(num)s exception)", "(%(num)s exceptions)",
                                    exceptions) % {"num": exceptions}
    return words


# -- the field type: the edit form's "Repeat" section --------------------------------------

class RecurrenceType(FieldType):
    """``type: recurrence``: RFC 5545 lines, built by the form's Repeat section (frequency,
    interval, weekdays, monthly by day or weekday, until or count), shown in words."""

    name = "recurrence"
    default_size = 2000
    widget = "recurrence_widget.html"
    stylesheet = "/static/recurrence.css"
    wide = True
    searchable = False
    json_kind = "string"
    filter_operators = frozenset({"empty", "not_empty", "eq"})

    def __init__(self, site=None):
        self.site = site  # an occurrence's form shows its series' rule

    def column_type(self, spec):
        return sa.Text()

    def normalize(self, value, spec):
        return normalize_rule(value)

    def _series_rule(self, values) -> str | None:
        series_id = values.get("recurrence_series_id")
        if not series_id or self.site is None:
            return None
        for name in MODULES:
            module = self.site.registry.modules.get(name)
            if module is None:
                continue
            table = self.site.records.table(module)
            with self.site.engine.connect() as conn:
                found = conn.execute(sa.select(table.c.recurrence_rule)
                                     .where(table.c.id == str(series_id))).scalar()
            if found:
                return found
        return None

    def display_text(self, fmt, f, value, record, options):
        return describe(fmt, value)

    def html(self, fmt, module, f, record, labels):
        return escape(describe(fmt, record[f.name]))

    def widget_context(self, f, value, values, fmt):
        state = {"freq": "", "interval": 1, "days": [], "monthly": "day", "end": "never",
                 "until": "", "count": "", "exdates": [], "occurrence":
                 bool(values.get("recurrence_series_id"))}
        try:
            text = normalize_rule(value or self._series_rule(values))
        except FieldError:
            text = None
        if text:
            rule = expand_rule(text, dt.datetime(2030, 1, 1, tzinfo=dt.UTC))._rrule[0]
            state.update(freq={v: k for k, v in _FREQS.items()}.get(rule._freq, ""),
                         interval=rule._interval,
                         days=[_DAYS[d] for d in rule._byweekday or ()
                               if "BYDAY" in text.upper()],
                         monthly="weekday" if rule._bynweekday else "day",
                         exdates=[line for line in _lines(text)
                                  if line.upper().startswith("EXDATE")])
            if rule._count:
                state.update(end="count", count=rule._count)
            elif rule._until:
                state.update(end="until", until=_utc(rule._until).astimezone(fmt.tz)
                             .date().isoformat())
        state["day_names"] = list(zip(_DAYS, _DAY_NAMES, strict=True))
        return state

    def read_form(self, form, f, fmt):
        freq = str(form.get(f"{f.name}__freq", "")).upper()
        if f"{f.name}__freq" not in form:
            raise KeyError(f.name)
        if not freq or form.get(f"{f.name}__scope") == "this":
            return None  # an occurrence edited alone keeps no rule of its own
        if freq not in _FREQS:
            raise FieldError(Message(N_("repeats daily, weekly, monthly or yearly only")))
        try:
            interval = int(form.get(f"{f.name}__interval") or 1)
        except ValueError:
            raise FieldError(Message(N_("the interval must be a whole number"))) from None
        if not 1 <= interval <= 999:
            raise FieldError(Message(N_("the interval must be between 1 and 999")))
        parts = [f"FREQ={freq}", f"INTERVAL={interval}"]
        days = [d for d in form.getlist(f"{f.name}__days") if d in _DAYS]
        typed = str(form.get("date_start") or form.get("date_due") or "")[:10]
        start = dt.date.fromisoformat(typed) if re.fullmatch(r"\d{4}-\d\d-\d\d", typed) \
            else None
        if freq == "WEEKLY" and days:
            parts.append("BYDAY=" + ",".join(days))
        # monthly by day: the start's (the RRULE default); by weekday: "the 2nd Tuesday"
        if freq == "MONTHLY" and start is not None and form.get(f"{f.name}__monthly") == "weekday":
            nth = (start.day - 1) // 7 + 1
            parts.append(f"BYDAY={nth if nth < 5 else -1}{_DAYS[start.weekday()]}")
        end = form.get(f"{f.name}__end")
        if end == "count":
            try:
                count = int(form.get(f"{f.name}__count") or 0)
            except ValueError:
                raise FieldError(Message(N_("the number of times must be a whole number"))) \
                    from None
            if count < 1:
                raise FieldError(Message(N_("the number of times must be at least 1")))
            parts.append(f"COUNT={count}")
        elif end == "until":
            try:
                day = dt.date.fromisoformat(str(form.get(f"{f.name}__until") or ""))
            except ValueError:
                raise FieldError(Message(N_("the end date is not a date"))) from None
            last = dt.datetime.combine(day, dt.time(23, 59, 59), tzinfo=fmt.tz)
            parts.append("UNTIL=" + last.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%SZ"))
        lines = ["RRULE:" + ";".join(parts)]
        lines += [line for line in form.getlist(f"{f.name}__exdate") if line]
        if form.get(f"{f.name}__scope") == "following":
            lines.insert(0, SCOPE)
        return "\n".join(lines)

    def form_input(self, form, f):
        try:
            return self.read_form(form, f, None) or ""
        except (KeyError, FieldError, AttributeError):
            return ""


# -- settings ------------------------------------------------------------------------------

def limits(site) -> tuple[int, int]:
    """(days ahead, occurrences per scheduler run), the administrator's (§7.7)."""
    found = site.settings.get(SETTING)
    found = found if isinstance(found, dict) else {}

    def number(key, default, top):
        try:
            return max(1, min(int(found.get(key, default)), top))
        except (TypeError, ValueError):
            return default
    return number("days_ahead", DEFAULT_DAYS_AHEAD, 3660), \
        number("per_run", DEFAULT_PER_RUN, 100_000)


# -- materialising -------------------------------------------------------------------------

def _table(site, module_name: str) -> sa.Table:
    return site.records.table(site.registry.module(module_name))


def _copied(module, series: dict) -> dict:
    return {f.name: series.get(f.name) for f in module.stored_fields
            if f.name not in OWN and f.type.writable(f.spec) and not f.name.startswith("_")}


def _key(series_id: str, start: dt.datetime) -> str:
    return f"{series_id}@{start.astimezone(dt.UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}"


def _occurrence_values(module_name: str, module, series: dict, start: dt.datetime) -> dict:
    values = _copied(module, series)
    values.update(recurrence_series_id=series["id"], recurrence_key=_key(series["id"], start),
                  recurrence_start=start, recurrence_detached=False)
    first = series_start(module_name, series)
    if module_name == "tasks":
        local = start.astimezone(first.tzinfo).date()
        values["date_due"] = local
        if series.get("date_start") is not None and series.get("date_due") is not None:
            values["date_start"] = local - (series["date_due"] - series["date_start"])
    else:
        values["date_start"] = start
        if module_name == "meetings" and series.get("date_end") is not None:
            values["date_end"] = start + (_utc(series["date_end"]) - _utc(series["date_start"]))
    return values


def materialise(site, module_name: str, series_ids=None, *, user=SYSTEM_USER, connection=None,
                now: dt.datetime | None = None, days_ahead: int | None = None,
                budget: int | None = None) -> int:
    """Make the occurrences of the series ``series_ids`` (None: every series of the module)
    due within ``days_ahead`` days of ``now``, at most ``budget`` in all; update and delete
    future ones as the series now says. Idempotent. Returns how many were created."""
    if connection is None:
        with site.engine.begin() as conn:
            return materialise(site, module_name, series_ids, user=user, connection=conn,
                               now=now, days_ahead=days_ahead, budget=budget)
    module = site.registry.module(module_name)
    table = _table(site, module_name)
    ahead, per_run = limits(site)
    now = now or dt.datetime.now(dt.UTC)
    horizon = now + dt.timedelta(days=days_ahead or ahead)
    budget = per_run if budget is None else budget
    stmt = sa.select(table).where(table.c.recurrence_rule.is_not(None),
                                  table.c.deleted.is_(False))
    if series_ids is not None:
        stmt = stmt.where(table.c.id.in_([str(i) for i in series_ids]))
    created = 0
    token = _MATERIALISING.set(True)
    try:
        for series in [dict(r) for r in connection.execute(stmt.order_by(table.c.id)).mappings()]:
            if budget - created <= 0:
                break
            created += _one(site, module_name, module, table, series, user, connection, now,
                            horizon, budget - created)
    finally:
        _MATERIALISING.reset(token)
    return created


def _one(site, module_name, module, table, series, user, conn, now, horizon, budget) -> int:
    existing = conn.execute(sa.select(
        table.c.id, table.c.recurrence_key, table.c.recurrence_detached, table.c.deleted,
        table.c.recurrence_start).where(table.c.recurrence_series_id == series["id"])).all()
    latest = max([_utc(r.recurrence_start) for r in existing if r.recurrence_start] or [horizon])
    starts = occurrences(module_name, series, until=max(horizon, latest))
    wanted = {_key(series["id"], s): s for s in starts[1:]}  # the first: the series itself
    known = {r.recurrence_key for r in existing}
    stale = [r.id for r in existing if not r.deleted and not r.recurrence_detached
             and r.recurrence_key not in wanted and r.recurrence_start
             and _utc(r.recurrence_start) >= now]
    follow = [r.id for r in existing if not r.deleted and not r.recurrence_detached
              and r.recurrence_key in wanted and _utc(r.recurrence_start) >= now]
    if stale:  # their keys go with them: the rule may want that time again later
        site.records.set_derived(module_name, {i: {"recurrence_key": None} for i in stale},
                                 connection=conn)
        site.records.delete_many(module_name, stale, SYSTEM_USER, connection=conn)
    if follow:
        site.records.update_many(module_name, follow, _copied(module, series), SYSTEM_USER,
                                 connection=conn)
    rows = [_occurrence_values(module_name, module, series, s)
            for key, s in wanted.items() if key not in known and s <= horizon][:budget]
    if rows:
        from plugins.activities import invitees

        made = site.records.create_many(module_name, rows, user, connection=conn)
        invitees.copy_to_occurrences(site, module_name, series["id"], made, conn)
    return len(rows)


def run_task(site, due) -> str:
    """The scheduled task: every module's series, within the administrator's limits."""
    per_run = limits(site)[1]
    made = 0
    for name in MODULES:
        if name in site.registry.modules and per_run - made > 0:
            made += materialise(site, name, now=_utc(due), budget=per_run - made)
    return f"created {made} occurrences"


# -- the save hooks ------------------------------------------------------------------------

def _user_zone(site, user, connection) -> str:
    prefs = getattr(user, "preferences", None)
    if prefs is not None and getattr(prefs, "timezone", None):
        return prefs.timezone
    users = site.tables.tables["crbm_users"]
    stored = connection.execute(sa.select(users.c.preferences)
                                .where(users.c.id == user.id)).scalar()
    try:
        zone = (json.loads(stored) or {}).get("timezone") if stored else None
    except ValueError:
        zone = None
    return zone or site.settings.get("timezone") or "UTC"


# a save's "this and following" between its before and after hooks, by (connection, record);
# a save refused in between leaves its entry, replaced by the record's next save
_SPLITS: dict[tuple[int, str], tuple] = {}


def _rest_of_count(site, module_name, series_id, pivot, rule, connection) -> str | None:
    """A split's rule: the series' own (the form shows it) with its COUNT less the
    occurrences before the pivot; a rule the user changed stays as it is."""
    table = _table(site, module_name)
    series = connection.execute(sa.select(table).where(table.c.id == series_id)).mappings() \
        .first()
    if not rule or series is None or pivot is None:
        return rule
    own = "\n".join(line for line in _lines(series["recurrence_rule"] or "")
                    if not line.upper().startswith("EXDATE"))
    count = re.search(r"COUNT=(\d+)", rule, re.IGNORECASE)
    if count is None or _lines(own) != [line for line in _lines(rule)
                                        if not line.upper().startswith("EXDATE")]:
        return rule
    before = len(occurrences(module_name, dict(series), until=_utc(pivot) - dt.timedelta(
        seconds=1)))
    return "\n".join(line for line in _lines(rule) if not line.upper().startswith("EXDATE")) \
        .replace(count.group(0), f"COUNT={max(1, int(count.group(1)) - before)}")


def before_save(site, module, batch, user, connection) -> None:
    """Detach edited occurrences; give a new series its time zone; start a split."""
    errors = {}
    for change in batch:
        record = change.record
        rule = record.get("recurrence_rule") or ""
        _SPLITS.pop((id(connection), record.get("id")), None)  # a refused save's, if any
        if rule.upper().startswith(SCOPE):
            series_id = record.get("recurrence_series_id")
            record["recurrence_rule"] = rule[len(SCOPE):].strip() or None
            if series_id and not change.is_new:
                record["recurrence_rule"] = _rest_of_count(
                    site, module.name, series_id, record.get("recurrence_start"),
                    record["recurrence_rule"], connection)
                _SPLITS[(id(connection), record["id"])] = (
                    series_id, record["id"], record.get("recurrence_start"))
                record.update(recurrence_series_id=None, recurrence_key=None,
                              recurrence_detached=False, recurrence_start=None)
                continue
        if record.get("recurrence_rule"):
            if record.get("recurrence_series_id") and "recurrence_rule" in change.changes:
                errors["recurrence_rule"] = Message(N_(
                    "this is one occurrence of a series: choose \"this and following\" to "
                    "change how it repeats"))
            if not record.get("recurrence_tz"):
                record["recurrence_tz"] = _user_zone(site, user, connection)
            elif record["recurrence_tz"] not in i18n.AVAILABLE_TIMEZONES:
                errors["recurrence_tz"] = Message(N_("%(value)s is not a time zone"),
                                                  value=repr(record["recurrence_tz"]))
            # (meetings and calls always have a start: required, or now for a new call)
            anchor = _anchor(module.name)  # (a task's due date; a start is required anyway)
            if record.get(anchor) is None:
                errors[anchor] = Message(N_("a repeating task needs a due date"))
        if _MATERIALISING.get() or change.is_new or not record.get("recurrence_series_id"):
            continue
        if set(change.changes) - NOT_DETACHING and not record.get("recurrence_detached"):
            record["recurrence_detached"] = True
    if errors:
        raise ValidationError(errors)


def after_save(site, module, batch, user, connection) -> None:
    """Materialise the series this save made or changed; finish a split."""
    splits = [_SPLITS.pop((id(connection), c.record["id"])) for c in batch
              if (id(connection), c.record["id"]) in _SPLITS]
    token = _MATERIALISING.set(True)
    try:
        for series_id, _occurrence_id, occurrence_start in splits:
            series = site.records.get(module.name, series_id, SYSTEM_USER, connection=connection,
                                      action=None)
            if series.get("recurrence_rule") and occurrence_start is not None:
                until = _utc(occurrence_start) - dt.timedelta(seconds=1)
                site.records.update(module.name, series_id,
                                    {"recurrence_rule": with_until(series["recurrence_rule"],
                                                                   until)},
                                    SYSTEM_USER, connection=connection)
                materialise(site, module.name, [series_id], connection=connection,
                            now=min(dt.datetime.now(dt.UTC), _utc(occurrence_start)))
    finally:
        _MATERIALISING.reset(token)
    if _MATERIALISING.get():
        return
    ids = [c.record["id"] for c in batch if c.record.get("recurrence_rule")
           and (c.is_new or set(c.changes) - NOT_DETACHING)]
    if ids:
        materialise(site, module.name, ids, user=user, connection=connection,
                    budget=MAX_OCCURRENCES * len(ids))


def split(site, module_name: str, occurrence_id: str, values: dict, user, *,
          rule: str | None = None) -> dict:
    """"This and following": the occurrence and the ones after it become a new series with
    ``values`` (and ``rule``, default the old series' rule); the old series ends before it."""
    table = _table(site, module_name)
    with site.engine.begin() as conn:
        series_id = conn.execute(sa.select(table.c.recurrence_series_id)
                                 .where(table.c.id == occurrence_id)).scalar()
        if not series_id:
            raise ValidationError({"recurrence_rule": Message(N_(
                "this record is not an occurrence of a series"))})
        if rule is None:  # the old series' rule (before_save takes off the COUNT done)
            rule = conn.execute(sa.select(table.c.recurrence_rule)
                                .where(table.c.id == series_id)).scalar()
        return site.records.update(module_name, occurrence_id,
                                   {**values, "recurrence_rule": f"{SCOPE}\n{rule}"}, user,
                                   connection=conn)


def before_delete(site, module, records, user, connection) -> None:
    """A deleted series takes its future occurrences along, except those edited alone
    (past ones are history: they stay, no longer linked)."""
    ids = [r["id"] for r in records if r.get("recurrence_rule")]
    if not ids:
        return
    table = _table(site, module.name)
    moment = dt.datetime.now(dt.UTC)
    rows = connection.execute(sa.select(table.c.id, table.c.recurrence_start).where(
        table.c.recurrence_series_id.in_(ids), table.c.deleted.is_(False),
        table.c.recurrence_detached.is_not(True))).all()
    future = [r.id for r in rows if r.recurrence_start and _utc(r.recurrence_start) >= moment]
    if future:
        site.records.delete_many(module.name, future, SYSTEM_USER, connection=connection)
