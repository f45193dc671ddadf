"""iCalendar (RFC 5545) for activities: export, import, subscription feeds and free/busy.

Contract:

- ``vevent(site, module_name, record, tz)`` / ``vtodo(site, record, tz)``: one meeting or
  call as a VEVENT, one task as a VTODO (``icalendar`` components). Public so the invitation
  emails (invitations.py, METHOD:REQUEST/CANCEL) can build on the same event later. The
  UID is the record's ``ical_uid`` (kept from an import) else ``<id>@crbm``; DTSTART/DTEND
  are in the organizer's — the assigned user's — time zone, and ``calendar()`` adds the
  VTIMEZONE of every zone used (``Calendar.add_missing_timezones``). An all-day meeting is
  a DATE range (DTEND exclusive). A series (recurrence.py: ``recurrence_rule``, "RRULE:" and
  "EXDATE" lines; or a plain ``rrule`` field) carries its RRULE and EXDATEs, in the series'
  zone (``recurrence_tz``); its materialised occurrences are left out when the series is in
  the same file (the RRULE stands for them), and an occurrence edited on its own is the
  series' UID with a RECURRENCE-ID (its original start), as RFC 5545 says. On import an
  RRULE becomes the series' rule and a RECURRENCE-ID updates the matching occurrence.
- ``import_ics(site, user, data)``: every VEVENT and VTODO of a file created, or updated
  when its UID is already on a record the user may edit (``ical_uid``, indexed; or the
  ``<id>@crbm`` of one of ours), **all or nothing in one transaction**. The file is
  checked line by line first (each content line parsed and its value decoded with
  icalendar's own types; BEGIN/END nesting; each VTIMEZONE complete and usable; each TZID
  defined in the file or known to zoneinfo), so a refusal names the line and the reason
  (``ImportProblem``) and nothing is written. A file over ``MAX_BYTES`` is refused unread.
- feeds: a per-user secret token (``crbm_calendar_feeds``), shown once when made and stored
  as its SHA-256 only (as the OAuth refresh tokens and password-reset tokens are: a random
  256-bit token needs no slow hash, and a hash lets the URL be looked up). Regenerating
  replaces it, revoking deletes it. ``/ical/feed/<token>.ics`` lists the activities of
  ``FEED_SELECTORS`` (assigned to the owner, or invited and not declined: invitees.py)
  read through ``site.records.list`` **as the owner**: the access predicate in SQL, so the
  feed never shows what its owner may not see.
- free/busy (implementation guide §7.13): ``/ical/freebusy/<token>.vfb`` answers a
  VFREEBUSY of the owner's busy times (meetings and calls not cancelled, no titles) for a
  range (``start``/``end``, default: 30 days back, 90 ahead); ``?email=`` answers for the
  active user with that email address instead (Outlook's "Search location"
  ``...?email=%NAME%@%SERVER%``); a PUT of a VFREEBUSY to the owner's URL ("Publish at my
  location") is kept and merged into what the URL answers (busy from another calendar).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import re
import secrets
import uuid
import zoneinfo
from collections.abc import Callable, Iterable

import icalendar
import sqlalchemy as sa
from icalendar.parser import Contentline

from core.kernel.database import ID
from core.kernel.errors import N_, CrbmError, Message, NotFoundError, ValidationError
from core.kernel.fields import UTCDateTime
from core.kernel.i18n import Preferences
from core.kernel.records import Query, User

MODULES = {"meetings": "VEVENT", "calls": "VEVENT", "tasks": "VTODO"}
MAX_BYTES = 2 * 1024 * 1024  # an export of several years of a busy calendar fits easily
PRODID = "-//CRBM//Activities//EN"
UID_SUFFIX = "@crbm"
FEEDS = "crbm_calendar_feeds"
FEED_DAYS_BACK = 180
DAY = dt.timedelta(days=1)
MAX_FEED_ROWS = 5000  # per module: a feed is read by a calendar client every few minutes

# the fields a series keeps its rule in: recurrence.py's, or a plain one
RULE_FIELDS = ("recurrence_rule", "rrule")
TASK_PRIORITY = {"high": 1, "medium": 5, "low": 9}
TASK_STATUS = {"not_started": "NEEDS-ACTION", "in_progress": "IN-PROCESS",
               "pending_input": "NEEDS-ACTION", "completed": "COMPLETED",
               "deferred": "CANCELLED"}
TASK_STATUS_BACK = {"NEEDS-ACTION": "not_started", "IN-PROCESS": "in_progress",
                    "COMPLETED": "completed", "CANCELLED": "deferred"}


class ImportProblem(CrbmError):
    """A file refused: ``line`` (1-based, of the file as sent) and ``message``."""

    def __init__(self, line: int | None, message: Message):
        self.line, self.message = line, message
        super().__init__(str(message) if line is None else f"line {line}: {message}")


# -- tables ------------------------------------------------------------------------------------

def tables(metadata: sa.MetaData) -> None:
    """One feed token per user (its hash), and the free/busy a user's other calendar
    (Outlook) published here."""
    sa.Table(
        FEEDS, metadata,
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),  # sha256
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime()),
        sa.Column("published_freebusy", sa.Text),  # a VFREEBUSY PUT to the user's URL
        sa.Column("published_at", UTCDateTime()),
    )


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def new_feed_token(site, user_id: str) -> str:
    """A new secret for the user's feed and free/busy URLs (the old one stops working);
    returned once, stored hashed."""
    token = secrets.token_urlsafe(32)
    table = site.tables.tables[FEEDS]
    with site.engine.begin() as conn:
        if conn.execute(sa.select(table.c.user_id).where(table.c.user_id == user_id)).first():
            conn.execute(table.update().where(table.c.user_id == user_id).values(
                token_hash=sha256(token), created_at=now(), last_used_at=None))
        else:
            conn.execute(table.insert().values(user_id=user_id, token_hash=sha256(token),
                                               created_at=now()))
    return token


def revoke_feed(site, user_id: str) -> bool:
    table = site.tables.tables[FEEDS]
    with site.engine.begin() as conn:
        return conn.execute(table.delete().where(table.c.user_id == user_id)).rowcount > 0


def feed_status(site, user_id: str) -> dict | None:
    """{created_at, last_used_at} of the user's feed, None without one."""
    table = site.tables.tables[FEEDS]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table.c.created_at, table.c.last_used_at).where(
            table.c.user_id == user_id)).mappings().first()
    return dict(row) if row else None


def _user_row(conn, site, where):
    users = site.tables.tables["crbm_users"]
    return conn.execute(sa.select(users.c.id, users.c.username, users.c.is_admin,
                                  users.c.email, users.c.preferences)
                        .where(where, users.c.active.is_(True))).first()


def user_by_token(site, token: str):
    """The active user whose feed token this is (NotFoundError otherwise), noting its use."""
    table = site.tables.tables[FEEDS]
    with site.engine.begin() as conn:
        found = conn.execute(sa.select(table.c.user_id).where(
            table.c.token_hash == sha256(token or ""))).first()
        row = _user_row(conn, site, site.tables.tables["crbm_users"].c.id == found.user_id) \
            if found else None
        if row is None:
            raise NotFoundError("no calendar feed with that address")
        conn.execute(table.update().where(table.c.user_id == row.id).values(
            last_used_at=now()))
    return row


def user_by_email(site, email: str):
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = _user_row(conn, site, sa.func.lower(users.c.email) == (email or "").strip().lower())
    if row is None:
        raise NotFoundError("no user with that email address")
    return row


def as_user(row) -> User:
    return User(row.id, row.username, bool(row.is_admin))


def user_zone(preferences_json) -> zoneinfo.ZoneInfo:
    try:
        prefs = json.loads(preferences_json) if preferences_json else {}
    except ValueError:
        prefs = {}
    try:
        return zoneinfo.ZoneInfo(Preferences.from_dict(prefs).timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


def zones_of(site, user_ids: Iterable[str | None]) -> dict[str, zoneinfo.ZoneInfo]:
    """The time zone of each of these users (one query)."""
    ids = {i for i in user_ids if i}
    if not ids:
        return {}
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(users.c.id, users.c.preferences).where(
            users.c.id.in_(ids))).all()
    return {row.id: user_zone(row.preferences) for row in rows}


# -- building ------------------------------------------------------------------------------

def _utc(value):
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)
    return value


def _date(value) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def uid_of(record: dict) -> str:
    return record.get("ical_uid") or f"{record['id']}{UID_SUFFIX}"


def _common(component, record: dict) -> None:
    component.add("uid", uid_of(record))
    component.add("dtstamp", now())
    component.add("summary", record.get("name") or "")
    if record.get("description"):
        component.add("description", record["description"])
    if record.get("created_at"):
        component.add("created", _utc(record["created_at"]))
    if record.get("modified_at"):
        component.add("last-modified", _utc(record["modified_at"]))
    if record.get("ical_sequence") is not None:  # a meeting's, as its invitations say
        component.add("sequence", int(record["ical_sequence"]))
    elif record.get("version") is not None:
        component.add("sequence", max(int(record["version"]) - 1, 0))


def vevent(site, module_name: str, record: dict, tz: dt.tzinfo) -> icalendar.Event:
    """A meeting or a call as a VEVENT, its times in ``tz`` (the organizer's zone)."""
    event = icalendar.Event()
    _common(event, record)
    start = _utc(record.get("date_start"))
    if module_name == "calls":
        end = start + dt.timedelta(minutes=int(record.get("duration_minutes") or 0)) \
            if start else None
    else:
        end = _utc(record.get("date_end"))
    if record.get("all_day") and start is not None:
        first = start.astimezone(tz).date()
        last = end.astimezone(tz).date() if end else first
        event.add("dtstart", first)
        event.add("dtend", max(last, first) + dt.timedelta(days=1))  # exclusive
    elif start is not None:
        event.add("dtstart", start.astimezone(tz))
        if end is not None:
            event.add("dtend", end.astimezone(tz))
    if record.get("location"):
        event.add("location", record["location"])
    if record.get("status") == "not_held":
        event.add("status", "CANCELLED")
    elif record.get("status"):
        event.add("status", "CONFIRMED")
    rule = next((record[f] for f in RULE_FIELDS if record.get(f)), None)
    if rule and not record.get("recurrence_series_id"):
        add_rule(event, rule)
    event.add("x-crbm-module", module_name)
    return event


def add_rule(component, text: str) -> None:
    """The "RRULE:" and "EXDATE…:" lines of a stored rule as properties (other lines, such
    as a form's scope marker, are not iCalendar)."""
    for line in str(text).replace("\\n", "\n").splitlines():
        line = line.strip()
        if not line:
            continue
        name, params, value = Contentline(line if ":" in line else f"RRULE:{line}").parts()
        if name.upper() == "RRULE":
            component.add("rrule", icalendar.vRecur.from_ical(value))
        elif name.upper() == "EXDATE":
            dates = icalendar.vDDDLists.from_ical(value, params.get("TZID"))
            component.add("exdate", [_utc(d) for d in dates])


def rule_text(component) -> str | None:
    """A VEVENT's RRULE and EXDATEs as recurrence.py stores them (EXDATE in UTC)."""
    if component.get("RRULE") is None:
        return None
    rules = component.get("RRULE")
    rules = rules if isinstance(rules, list) else [rules]
    lines = [f"RRULE:{rules[0].to_ical().decode()}"]
    exdates = component.get("EXDATE") or []
    for prop in exdates if isinstance(exdates, list) else [exdates]:
        for when in prop.dts:
            value = when.dt
            lines.append("EXDATE:" + (_utc(value).strftime("%Y%m%dT%H%M%SZ")
                                      if isinstance(value, dt.datetime)
                                      else value.strftime("%Y%m%d")))
    return "\n".join(lines)


def vtodo(site, record: dict, tz: dt.tzinfo) -> icalendar.Todo:
    """A task as a VTODO (dates, priority 1/5/9, status)."""
    todo = icalendar.Todo()
    _common(todo, record)
    if _date(record.get("date_start")):
        todo.add("dtstart", _date(record["date_start"]))
    if _date(record.get("date_due")):
        todo.add("due", _date(record["date_due"]))
    if record.get("priority") in TASK_PRIORITY:
        todo.add("priority", TASK_PRIORITY[record["priority"]])
    if record.get("status") in TASK_STATUS:
        todo.add("status", TASK_STATUS[record["status"]])
    if record.get("status") == "completed" and record.get("modified_at"):
        todo.add("completed", _utc(record["modified_at"]))
    return todo


def new_calendar(name: str | None = None) -> icalendar.Calendar:
    cal = icalendar.Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    if name:
        cal.add("x-wr-calname", name)
    return cal


def calendar(site, items: Iterable[tuple[str, dict]], name: str | None = None
             ) -> icalendar.Calendar:
    """A VCALENDAR of ``(module_name, record)`` pairs, each in its assigned user's zone,
    with the VTIMEZONE of each zone used (from a year before the first event to a year
    after the last)."""
    items = list(items)
    zones = zones_of(site, (r.get("assigned_user_id") for _, r in items))
    cal = new_calendar(name)
    days = []
    here = {(m, r["id"]): r for m, r in items}
    for module_name, record in items:
        tz = _known(record.get("recurrence_tz")) or zones.get(record.get("assigned_user_id")) \
            or zoneinfo.ZoneInfo("UTC")
        series = here.get((module_name, record.get("recurrence_series_id")))
        if series is not None and not record.get("recurrence_detached"):
            continue  # the series' RRULE stands for it
        if MODULES.get(module_name) == "VTODO":
            component = vtodo(site, record, tz)
        else:
            component = vevent(site, module_name, record, tz)
        if series is not None and record.get("recurrence_start"):
            component["UID"] = icalendar.vText(uid_of(series))
            original = _utc(record["recurrence_start"])
            component.add("recurrence-id", original.astimezone(tz)
                          if isinstance(component.decoded("DTSTART", None), dt.datetime)
                          else original.astimezone(tz).date())
        cal.add_component(component)
        days += [d for d in (_date(_utc(record.get("date_start"))),
                             _date(record.get("date_due"))) if d]
    if days:
        cal.add_missing_timezones(first_date=min(days) - dt.timedelta(days=366),
                                  last_date=max(days) + dt.timedelta(days=366))
    return cal


def records_in_range(site, user, start: dt.datetime, end: dt.datetime, *,
                     assigned_to: str | None = None, limit: int | None = None
                     ) -> list[tuple[str, dict]]:
    """The user's visible meetings, calls and tasks between start and end (one query per
    module, access in SQL); ``assigned_to``: only those assigned to that user."""
    out = []
    for module_name in MODULES:
        if module_name not in site.registry.modules:
            continue
        when = "date_due" if module_name == "tasks" else "date_start"
        low, high = (start.date(), end.date()) if module_name == "tasks" else (start, end)
        filters = [(when, "gte", low), (when, "lt", high)]
        if assigned_to:
            filters.append(("assigned_user_id", "eq", assigned_to))
        out += [(module_name, r) for r in site.records.list(
            module_name, user, Query(filters=filters, sort=when, limit=limit))]
    return out


# -- subscription feed -----------------------------------------------------------------------

# Which records of a module are on a user's feed: each selector gives the filters of one
# query (None: nothing from this module); the feed is their union, read as the user. The
# invitees' part of issue 20 is read by ``_invited`` below.
FeedSelector = Callable[[object, str, User], list | None]


def _assigned(site, module_name: str, user: User) -> list | None:
    return [("assigned_user_id", "eq", user.id)]


def _invited(site, module_name: str, user: User) -> list | None:
    """The meetings and calls the user is invited to and has not declined (invitees.py,
    the invitees' part of issue 20, when it is there)."""
    try:
        from plugins.activities import invitees
    except ImportError:
        return None
    if module_name not in invitees.ACTIVITY_FIELDS or invitees.MODULE not in \
            site.registry.modules:
        return None
    ids = [activity for activity, answer in invitees.invited_activities(
        site, module_name, [user.id]).get(user.id, []) if answer != "declined"]
    return [("id", "in", ids)] if ids else None


FEED_SELECTORS: list[FeedSelector] = [_assigned, _invited]


def feed_records(site, owner: User, since: dt.datetime) -> list[tuple[str, dict]]:
    out, seen = [], set()
    for module_name in MODULES:
        if module_name not in site.registry.modules:
            continue
        when = "date_due" if module_name == "tasks" else "date_start"
        low = since.date() if module_name == "tasks" else since
        for selector in FEED_SELECTORS:
            filters = selector(site, module_name, owner)
            if filters is None:
                continue
            for record in site.records.list(module_name, owner, Query(
                    filters=[*filters, (when, "gte", low)], sort=when,
                    limit=MAX_FEED_ROWS)):
                if (module_name, record["id"]) not in seen:
                    seen.add((module_name, record["id"]))
                    out.append((module_name, record))
    return out


def feed(site, token: str) -> bytes:
    row = user_by_token(site, token)
    owner = as_user(row)
    items = feed_records(site, owner, now() - dt.timedelta(days=FEED_DAYS_BACK))
    return calendar(site, items, name=f"CRBM — {row.username}").to_ical()


# -- free/busy ---------------------------------------------------------------------------------

def busy_periods(site, owner: User, start: dt.datetime, end: dt.datetime
                 ) -> list[tuple[dt.datetime, dt.datetime]]:
    """The owner's busy times (UTC) overlapping [start, end): the meetings and calls of
    their feed (``FEED_SELECTORS``) not cancelled ("not held"), read as the owner; merged
    when they overlap. Only times leave this function, never a subject."""
    periods = []
    for module_name, when, fields in (
            ("meetings", [("date_start", "lt", end), ("date_end", "gt", start - DAY)],
             ["date_start", "date_end", "all_day"]),
            ("calls", [("date_start", "lt", end), ("date_start", "gt", start - DAY)],
             ["date_start", "duration_minutes"])):
        if module_name not in site.registry.modules:
            continue
        for selector in FEED_SELECTORS:
            filters = selector(site, module_name, owner)
            if filters is None:
                continue
            for r in site.records.list(module_name, owner, Query(
                    filters=[*filters, ("status", "ne", "not_held"), *when],
                    fields=fields, limit=None)):
                begin = _utc(r["date_start"])
                if module_name == "calls":
                    finish = begin + dt.timedelta(minutes=int(r["duration_minutes"] or 0))
                else:
                    finish = _utc(r["date_end"]) + (DAY if r["all_day"] else dt.timedelta())
                if finish > begin:
                    periods.append((begin, finish))
    return merge([(max(a, start), min(b, end)) for a, b in periods if b > start and a < end])


def merge(periods):
    out = []
    for a, b in sorted(periods):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def published_busy(site, user_id: str, start, end) -> list[tuple[dt.datetime, dt.datetime]]:
    """The busy periods of the VFREEBUSY the user's other calendar published here."""
    table = site.tables.tables[FEEDS]
    with site.engine.connect() as conn:
        text = conn.execute(sa.select(table.c.published_freebusy).where(
            table.c.user_id == user_id)).scalar()
    if not text:
        return []
    out = []
    for component in icalendar.Calendar.from_ical(text).walk("VFREEBUSY"):
        values = component.get("freebusy") or []
        for period in values if isinstance(values, list) else [values]:
            if str(period.params.get("FBTYPE", "BUSY")).upper() == "FREE":
                continue
            a, b = period.dt
            out.append((_utc(a), _utc(a + b if isinstance(b, dt.timedelta) else b)))
    return [(max(a, start), min(b, end)) for a, b in out if b > start and a < end]


def freebusy(site, row, start: dt.datetime, end: dt.datetime, organizer_email=None) -> bytes:
    """A VCALENDAR with one VFREEBUSY of the user ``row`` for [start, end)."""
    periods = merge(busy_periods(site, as_user(row), start, end)
                    + published_busy(site, row.id, start, end))
    cal = new_calendar()
    cal.add("method", "PUBLISH")
    fb = icalendar.FreeBusy()
    fb.add("uid", f"freebusy-{row.id}{UID_SUFFIX}")
    fb.add("dtstamp", now())
    fb.add("dtstart", start)
    fb.add("dtend", end)
    if row.email:
        fb.add("organizer", f"mailto:{row.email}")
    for a, b in periods:
        fb.add("freebusy", (a, b), parameters={"FBTYPE": "BUSY"})
    cal.add_component(fb)
    return cal.to_ical()


def publish_freebusy(site, token: str, data: bytes) -> None:
    """Keep a VFREEBUSY PUT to the user's URL (checked like any import)."""
    row = user_by_token(site, token)
    lines = check_ics(data)
    cal = icalendar.Calendar.from_ical(_text(data))
    if not cal.walk("VFREEBUSY"):
        raise ImportProblem(lines[0][0] if lines else 1, Message(N_(
            "the file holds no VFREEBUSY")))
    table = site.tables.tables[FEEDS]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.user_id == row.id).values(
            published_freebusy=_text(data), published_at=now()))


# -- reading a file ----------------------------------------------------------------------------

def _text(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise ImportProblem(None, Message(N_(
            "the file is too large (%(size)s KB; at most %(limit)s KB)"),
            size=len(data) // 1024, limit=MAX_BYTES // 1024))
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise ImportProblem(line, Message(N_("this is not text (UTF-8): it cannot be a "
                                             "calendar or a card"))) from None


def unfold(text: str) -> list[tuple[int, str]]:
    """Content lines with the number of the file line each starts on."""
    out: list[tuple[int, str]] = []
    for number, raw in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"),
                                 start=1):
        if raw[:1] in (" ", "\t") and out:
            out[-1] = (out[-1][0], out[-1][1] + raw[1:])
        elif raw.strip():
            out.append((number, raw))
    return out


@dataclasses.dataclass
class Block:
    name: str
    line: int
    props: list = dataclasses.field(default_factory=list)  # (line, name, params, value)
    children: list = dataclasses.field(default_factory=list)

    def first(self, name):
        return next((p for p in self.props if p[1] == name), None)


def structure(lines: list[tuple[int, str]], top: str, what: Message) -> Block:
    """BEGIN/END nesting and each line's name, parameters and value, or the line at
    fault; ``top``: the one component the file must begin with."""
    if not lines or lines[0][1].strip().upper() != f"BEGIN:{top}":
        raise ImportProblem(lines[0][0] if lines else 1, what)
    stack: list[Block] = []
    root = None
    for number, text in lines:
        try:
            name, params, value = Contentline(text).parts()
        except ValueError as exc:
            raise ImportProblem(number, Message(N_("this line cannot be read (%(reason)s)"),
                                                reason=str(exc))) from None
        name = name.upper()
        if root is not None and not stack:
            raise ImportProblem(number, Message(N_("text after END:%(name)s"), name=top))
        if name == "BEGIN":
            block = Block(str(value).upper(), number)
            if stack:
                stack[-1].children.append(block)
            else:
                root = block
            stack.append(block)
        elif name == "END":
            if str(value).upper() != stack[-1].name:
                raise ImportProblem(number, Message(N_(
                    "END:%(found)s where END:%(expected)s was expected"),
                    found=str(value).upper(), expected=stack[-1].name))
            stack.pop()
        else:
            stack[-1].props.append((number, name, params, value))
    if stack:
        raise ImportProblem(lines[-1][0], Message(N_("the file ends before END:%(name)s"),
                                                  name=stack[-1].name))
    return root


def _decode(number: int, name: str, params, value):
    try:
        return icalendar.Calendar.types_factory.for_property(
            name, params.get("VALUE")).from_ical(value)
    except Exception as exc:  # noqa: BLE001 - every library reason is the user's answer
        raise ImportProblem(number, Message(N_("%(name)s: %(reason)s"), name=name,
                                            reason=str(exc) or exc.__class__.__name__)) from None


def check_ics(data: bytes) -> Block:
    """The file's structure after every check that can name a line."""
    root = structure(unfold(_text(data)), "VCALENDAR", Message(N_(
        "this is not an iCalendar file: it should begin with BEGIN:VCALENDAR")))
    zones: set[str] = set()

    def walk(block: Block):
        for number, name, params, value in block.props:
            if not name.startswith("X-") and name not in ("IANA",):
                _decode(number, name, params, value)
        if block.name == "VTIMEZONE":
            tzid = block.first("TZID")
            if tzid is None or not str(tzid[3]).strip():
                raise ImportProblem(block.line, Message(N_("a VTIMEZONE without its TZID")))
            parts = [c for c in block.children if c.name in ("STANDARD", "DAYLIGHT")]
            if not parts:
                raise ImportProblem(block.line, Message(N_(
                    "the VTIMEZONE %(tzid)s has neither STANDARD nor DAYLIGHT"),
                    tzid=tzid[3]))
            for part in parts:
                for needed in ("DTSTART", "TZOFFSETFROM", "TZOFFSETTO"):
                    if part.first(needed) is None:
                        raise ImportProblem(part.line, Message(N_(
                            "the VTIMEZONE %(tzid)s: %(part)s without %(name)s"),
                            tzid=tzid[3], part=part.name, name=needed))
            zones.add(str(tzid[3]))
        for child in block.children:
            walk(child)

    walk(root)

    def check_tzids(block: Block):
        for number, name, params, value in block.props:
            tzid = params.get("TZID")
            if tzid and str(tzid) not in zones and not _known_zone(str(tzid)):
                raise ImportProblem(number, Message(N_(
                    "%(name)s: the time zone %(tzid)s is neither defined in the file "
                    "(VTIMEZONE) nor known"), name=name, tzid=str(tzid)))
        for child in block.children:
            check_tzids(child)

    check_tzids(root)
    return root


def _known(name) -> zoneinfo.ZoneInfo | None:
    return zoneinfo.ZoneInfo(str(name)) if name and _known_zone(str(name)) else None


def _known_zone(name: str) -> bool:
    try:
        zoneinfo.ZoneInfo(name)
        return True
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False


# -- importing ---------------------------------------------------------------------------------

@dataclasses.dataclass
class Imported:
    created: dict[str, int]
    updated: dict[str, int]

    @property
    def total(self) -> int:
        return sum(self.created.values()) + sum(self.updated.values())


def _as_datetime(value, tz) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return (value.replace(tzinfo=tz) if value.tzinfo is None else value).astimezone(dt.UTC)
    return dt.datetime.combine(value, dt.time(), tz).astimezone(dt.UTC)


def _values_of(site, component, tz, block: Block, zones: dict | None = None
               ) -> tuple[str, dict]:
    """(module name, record values) of a VEVENT or VTODO. ``zones``: the file's own
    VTIMEZONEs by TZID — icalendar keeps the first definition of a TZID it ever parsed for
    the whole process, so a time in a zone this file defines is re-read in that one."""
    def decoded(name):
        value = component.decoded(name)
        tzid = component[name].params.get("TZID") if name in component else None
        if isinstance(value, dt.datetime) and tzid and zones and str(tzid) in zones:
            value = value.replace(tzinfo=None).replace(tzinfo=zones[str(tzid)])
        return value

    def need(name, message, **params):
        if component.get(name) is None or str(component.get(name)).strip() == "":
            raise ImportProblem(block.line, Message(message, **params))

    text = {k: str(component.get(k)) for k in ("SUMMARY", "DESCRIPTION", "LOCATION")
            if component.get(k) is not None}
    need("SUMMARY", N_("the %(kind)s has no SUMMARY (its subject)"), kind=block.name)
    values = {"name": text["SUMMARY"][:255], "description": text.get("DESCRIPTION")}
    if block.name == "VTODO":
        start = decoded("DTSTART") if component.get("DTSTART") is not None else None
        due = decoded("DUE") if component.get("DUE") is not None else None
        values.update(
            date_start=_as_datetime(start, tz).astimezone(tz).date() if start else None,
            date_due=_as_datetime(due, tz).astimezone(tz).date() if due else None)
        priority = int(component.get("PRIORITY") or 0)
        values["priority"] = "high" if 1 <= priority <= 4 else "low" if priority >= 6 \
            else "medium"
        if str(component.get("STATUS") or "").upper() in TASK_STATUS_BACK:
            values["status"] = TASK_STATUS_BACK[str(component["STATUS"]).upper()]
        return "tasks", values
    need("DTSTART", N_("the event has no DTSTART (its start)"))
    start = decoded("DTSTART")
    all_day = not isinstance(start, dt.datetime)
    if component.get("DTEND") is not None:
        end = decoded("DTEND")
    elif component.get("DURATION") is not None:
        end = start + component.decoded("DURATION")
    else:
        end = start + (dt.timedelta(days=1) if all_day else dt.timedelta(hours=1))
    if all_day:
        end = end - dt.timedelta(days=1) if end > start else start  # DTEND is exclusive
    module_name = "calls" if str(component.get("X-CRBM-MODULE") or "") == "calls" and \
        "calls" in site.registry.modules else "meetings"
    begin, finish = _as_datetime(start, tz), _as_datetime(end, tz)
    values["date_start"] = begin
    cancelled = str(component.get("STATUS") or "").upper() == "CANCELLED"
    if module_name == "calls":
        values["duration_minutes"] = min(max(int((finish - begin).total_seconds() // 60), 0),
                                         1440)
        if cancelled:
            values["status"] = "not_held"
        _rule_values(site, module_name, component, values)
        return module_name, values
    values.update(date_end=finish, all_day=all_day, location=text.get("LOCATION"))
    if cancelled:
        values["status"] = "not_held"
    _rule_values(site, module_name, component, values)
    return module_name, values


def _rule_values(site, module_name, component, values) -> None:
    """The series' rule (and zone) when the module keeps one and this is not an override."""
    fields = site.registry.module(module_name).fields
    field = next((f for f in RULE_FIELDS if f in fields), None)
    if field is None or component.get("RECURRENCE-ID") is not None:
        return
    text = rule_text(component)
    if text:
        values[field] = text if field == "recurrence_rule" else text.split("\n")[0][6:]
        tzid = component["DTSTART"].params.get("TZID")
        if "recurrence_tz" in fields and tzid and _known_zone(str(tzid)):
            values["recurrence_tz"] = str(tzid)


def import_ics(site, user, data: bytes, zone: dt.tzinfo | None = None) -> Imported:
    """Create or update (by UID) every VEVENT and VTODO of ``data``, all or nothing.
    Floating times and dates are read in ``zone`` (the importing user's)."""
    tz = zone or zoneinfo.ZoneInfo("UTC")
    root = check_ics(data)
    blocks = [b for b in root.children if b.name in ("VEVENT", "VTODO")]
    try:
        cal = icalendar.Calendar.from_ical(_text(data))
    except ValueError as exc:
        raise ImportProblem(root.line, Message(N_("this calendar cannot be read (%(reason)s)"),
                                               reason=str(exc))) from None
    components = [c for c in cal.subcomponents if c.name in ("VEVENT", "VTODO")]
    zones = {}
    for block, vtimezone in zip([b for b in root.children if b.name == "VTIMEZONE"],
                                cal.walk("VTIMEZONE"), strict=False):
        try:
            zones[str(vtimezone["TZID"])] = vtimezone.to_tz(lookup_tzid=False)
        except Exception as exc:  # noqa: BLE001 - whatever makes the zone unusable
            raise ImportProblem(block.line, Message(N_(
                "the VTIMEZONE %(tzid)s cannot be used (%(reason)s)"), tzid=str(vtimezone["TZID"]),
                reason=str(exc) or exc.__class__.__name__)) from None
    rows = []
    for block, component in zip(blocks, components, strict=True):
        try:
            module_name, values = _values_of(site, component, tz, block, zones)
        except ImportProblem:
            raise
        except (ValueError, TypeError, KeyError) as exc:
            raise ImportProblem(block.line, Message(N_("%(kind)s: %(reason)s"),
                                                    kind=block.name, reason=str(exc))) from None
        if module_name not in site.registry.modules:
            raise ImportProblem(block.line, Message(N_("%(kind)s: this site has no module "
                                                       "for it"), kind=block.name))
        module = site.registry.module(module_name)
        if site.access is not None and not site.access.can(user, module, "edit"):
            raise ImportProblem(block.line, Message(N_(
                "%(kind)s: you may not create or change %(module)s"), kind=block.name,
                module=module.label))
        uid = str(component.get("UID") or "").strip() or f"{uuid.uuid4()}{UID_SUFFIX}"
        rid = None
        if component.get("RECURRENCE-ID") is not None:  # one occurrence of a series, changed
            rid = _as_datetime(component.decoded("RECURRENCE-ID"), tz)
        rows.append((block, module_name, uid[:230], values, rid))
    if not rows:
        raise ImportProblem(root.line, Message(N_("the calendar holds no event and no task")))
    return _write(site, user, rows)


def existing_by_uid(site, user, module_name, uids, conn) -> dict[str, dict]:
    """The records the user may edit whose UID (ical_uid, or our own ``<id>@crbm``) is
    among ``uids`` (two queries)."""
    out = {}
    ours = [u.removesuffix(UID_SUFFIX) for u in uids if u.endswith(UID_SUFFIX)]
    series = "recurrence_series_id" in site.registry.module(module_name).fields
    fields = ["id", "ical_uid", "version", *(["recurrence_series_id"] if series else [])]
    for filters in ([("ical_uid", "in", list(uids))], [("id", "in", ours)] if ours else None):
        if filters is None:
            continue
        for r in site.records.list(module_name, user, Query(
                filters=filters, fields=fields, limit=None), action="edit", connection=conn):
            key = r["ical_uid"] or f"{r['id']}{UID_SUFFIX}"
            # a series' occurrences may carry its UID: the series is the one a UID names
            if key not in out or (out[key].get("recurrence_series_id")
                                  and not r.get("recurrence_series_id")):
                out[key] = r
    return out


def _stamp(when: dt.datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ")


def _write(site, user, rows) -> Imported:
    """Series and single items first, then the changed occurrences (RECURRENCE-ID): each
    updates the occurrence its series materialised at that start, or, without one, is a
    record of its own (UID ``<uid>#<start>``)."""
    created: dict[str, int] = {}
    updated: dict[str, int] = {}
    rows = sorted(rows, key=lambda row: row[4] is not None)
    with site.engine.begin() as conn:
        found: dict[tuple, dict] = {}
        by_module: dict[str, list[str]] = {}
        for _, module_name, uid, _, rid in rows:
            by_module.setdefault(module_name, []).append(uid if rid is None
                                                         else f"{uid}#{_stamp(rid)}")
        for module_name, uids in by_module.items():
            found.update({(module_name, k): v for k, v in existing_by_uid(
                site, user, module_name, uids, conn).items()})
        for block, module_name, uid, values, rid in rows:
            key = uid if rid is None else f"{uid}#{_stamp(rid)}"
            current = found.get((module_name, key))
            series = found.get((module_name, uid)) if rid is not None else None
            if current is None and series is not None and \
                    "recurrence_series_id" in site.registry.module(module_name).fields:
                current = next(iter(site.records.list(module_name, user, Query(filters=[
                    ("recurrence_series_id", "eq", series["id"]),
                    ("recurrence_start", "eq", rid)], fields=["id"], limit=1),
                    action="edit", connection=conn)), None)
            try:
                if current:
                    site.records.update(module_name, current["id"], values, user,
                                        connection=conn)
                    updated[module_name] = updated.get(module_name, 0) + 1
                else:
                    record = site.records.create(module_name, {**values, "ical_uid": key},
                                                 user, connection=conn)
                    found[(module_name, key)] = record
                    created[module_name] = created.get(module_name, 0) + 1
            except ValidationError as exc:
                field, reason = next(iter(exc.errors.items()))
                raise ImportProblem(block.line, Message(N_(
                    "%(kind)s %(name)s: %(field)s: %(reason)s"), kind=block.name,
                    name=repr(values.get("name")), field=field, reason=reason)) from None
    return Imported(created, updated)


def parse_when(value: str | None, tz, default: dt.datetime) -> dt.datetime:
    """A range bound from a query string: a date (midnight in ``tz``) or an ISO time."""
    if not value:
        return default
    value = value.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
        return dt.datetime.combine(dt.date.fromisoformat(value), dt.time(), tz).astimezone(dt.UTC)
    parsed = dt.datetime.fromisoformat(value)
    return _utc(parsed.replace(tzinfo=tz) if parsed.tzinfo is None else parsed)
