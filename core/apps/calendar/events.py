"""What the calendar shows: the planned activities of some users in a range, as the
calendar component's events.

Which modules are events is metadata: every module with ``features.activity`` whose
activity has an ``open`` status (something planned: calls, meetings, tasks — not notes or
emails, which are history only) and whose ``when`` field is a stored date or datetime.
Its other fields are read by convention, when the module has them: ``date_end`` (a
datetime: when it ends), ``duration_minutes`` (else how long it lasts), ``all_day``. A
``when`` of type date (a task's due date) is an all-day event.

Contract:

- ``read(site, reader, user_ids, start, end)``: one SELECT per kind, never per row. Each
  row carries the reader's access predicate as a column (``CASE WHEN <predicate>``,
  compiled by core.kernel.access, in SQL): a row the reader may see comes with its title
  and link; a row of a shown user that the reader may *not* see comes as a "Busy" block —
  its time only, no title, no id, not editable. So a Team-level user sees that a colleague
  is busy without learning with whom.
- **Invitations** (metadata, no import of the plugin that has them): a kind's *attendance*
  module is one with a related field to the kind, a user field, and a related field to
  the modules saying ``features: {invitable: true}`` (the activities plugin's
  ``invitees``). A shown user invited to an event (an attendance row naming them whose
  ``accept_status``, when the module has one, is not ``declined``) sees it in their
  calendar and in their column of the company view, as if it were theirs; the same
  access columns decide title or "Busy". Still one statement per kind: the owners' rows
  ``UNION ALL`` the events joined to the shown users' attendance rows (each half on its
  own index: owner, attendance user), merged here into one event per record with every
  column it belongs in.
- ``read(..., of=<invitable module>)``: the resource view — the columns are records of
  that module (meeting rooms), an event is in a column when an attendance row books that
  record for it.
- ``move(site, reader, fmt, module, id, start, end, all_day)``: the new times through
  ``RecordService.update`` (access checked, save rules run: a refused move raises
  ValidationError naming the field).

Times travel as the reader's wall-clock time without an offset ("floating", in the
component's words): the component only knows fixed UTC offsets, so a month crossing a
daylight-saving change would be an hour off for half its events with one offset. The
server converts both ways with the reader's time zone (i18n.Formatter).
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel.access import owner_field
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.fields import UTC
from core.kernel.registry import ModuleDef

BUSY = N_("Busy")
DEFAULT_MINUTES = 30  # a datetime event with neither end nor duration


@dataclass(frozen=True)
class Kind:
    module: ModuleDef
    when: str  # the start (or due) field
    dated: bool  # ``when`` is a date: an all-day event
    end: str | None  # a datetime field: when it ends
    duration: str | None  # an integer field: minutes
    all_day: str | None  # a checkbox field
    open_field: str | None
    open_values: tuple[str, ...]


def _has(module: ModuleDef, name: str, type_name: str) -> str | None:
    f = module.fields.get(name)
    return name if f is not None and f.stored and f.type.name == type_name else None


def kinds(registry) -> list[Kind]:
    """The modules the calendar shows (the module docstring), in registry order."""
    found = []
    for module in registry.modules.values():
        spec = module.features.get("activity")
        if not isinstance(spec, dict) or not spec.get("open"):
            continue
        when = module.fields.get(spec.get("when", ""))
        if when is None or not when.stored or when.type.name not in ("date", "datetime"):
            continue
        found.append(Kind(module, when.name, when.type.name == "date",
                          _has(module, "date_end", "datetime"),
                          _has(module, "duration_minutes", "integer"),
                          _has(module, "all_day", "checkbox"), spec["open"].get("field"),
                          tuple(spec["open"].get("values", ()))))
    return found


@dataclass(frozen=True)
class Attendance:
    module: ModuleDef
    activity: str  # the related field to the kind
    user: str | None  # the user field
    record: str | None  # the related field to the invitable modules
    record_type: str | None  # its module-name column
    answer: str | None  # accept_status, a dropdown: "declined" rows do not count


DECLINED = "declined"


_ATTENDANCE: dict[tuple[int, str], tuple[object, Attendance | None]] = {}


def attendance(registry, kind_name: str) -> Attendance | None:
    """The module saying who attends events of ``kind_name`` (module docstring); looked
    up once per registry (a plugin enabled or disabled makes a new registry)."""
    key = (id(registry), kind_name)
    cached = _ATTENDANCE.get(key)
    if cached is not None and cached[0] is registry:
        return cached[1]
    found = _attendance(registry, kind_name)
    if len(_ATTENDANCE) > 64:
        _ATTENDANCE.clear()
    _ATTENDANCE[key] = (registry, found)
    return found


def _attendance(registry, kind_name: str) -> Attendance | None:
    for module in registry.modules.values():
        fields = [f for f in module.fields.values() if f.stored and not f.system]
        activity = next((f.name for f in fields if f.type.name == "related"
                         and f.spec.get("module") == kind_name), None)
        record = next((f for f in fields if f.type.name == "related"
                       and f.spec.get("modules_with_feature") == "invitable"
                       and f.spec.get("type_field")), None)
        user = next((f.name for f in fields if f.type.name == "user"), None)
        if activity is None or record is None or user is None:
            continue
        return Attendance(module, activity, user, record.name, record.spec["type_field"],
                          _has(module, "accept_status", "dropdown"))
    return None


def kind_of(registry, name: str) -> Kind | None:
    return next((k for k in kinds(registry) if k.module.name == name), None)


def _utc(value):
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _floating(value: dt.datetime, tz) -> str:
    return value.astimezone(tz).replace(tzinfo=None).isoformat(timespec="seconds")


def _predicate(site, reader, module, action, table):
    access = site.records.access
    if access is None:
        return sa.true()
    return access.predicate(reader, module, action, table)


def statement(site, reader, kind: Kind, user_ids, start: dt.datetime, end: dt.datetime,
              tz=UTC, of: str = "users"):
    """The one SELECT of a kind: the shown users' rows in [start, end) (aware UTC), with
    ``seen`` and ``editable`` as the reader's predicates (module docstring). With an
    attendance module, also the events the shown users are invited to (``of="users"``) or
    that book the shown records of module ``of``; ``attendee`` names the invited one (NULL
    on an owner's row). None when ``of`` is a module and the kind has no attendance."""
    module = kind.module
    table = site.records.table(module)
    owner = table.c[owner_field(module)]
    when = table.c[kind.when]
    ids = list(user_ids)
    att = attendance(site.registry, module.name)
    if of != "users" and att is None:
        return None
    columns = [table.c.id, table.c.name, when.label("start"), owner.label("owner"),
               table.c.version,
               sa.case((_predicate(site, reader, module, "view", table), True),
                       else_=False).label("seen"),
               sa.case((_predicate(site, reader, module, "edit", table), True),
                       else_=False).label("editable")]
    for name, label in ((kind.end, "end"), (kind.duration, "minutes"),
                        (kind.all_day, "all_day"), (kind.open_field, "status")):
        # a column the kind lacks is NULL: every row has the same attributes
        columns.append(table.c[name].label(label) if name else sa.null().label(label))
    where = [table.c.deleted.is_(False)]
    if kind.dated:  # the reader's days: start and end are midnights on their clock
        where += [when >= start.astimezone(tz).date(), when < end.astimezone(tz).date()]
    else:
        # an event that starts before the range shows if it is still on at its start; a
        # day is the longest a call lasts, meetings say when they end
        if kind.end:
            where += [when < end, sa.or_(table.c[kind.end] > start, sa.and_(
                table.c[kind.end].is_(None), when >= start - dt.timedelta(days=1)))]
        else:  # the exact end (start + duration) is checked as the event is made
            where += [when < end, when >= start - dt.timedelta(days=1)]
    owned = sa.select(*columns, sa.null().label("attendee")).where(owner.in_(ids), *where)
    if att is None:
        return owned.order_by(when, table.c.id)
    inv = site.records.table(att.module).alias("attendance")
    on = [inv.c[att.activity] == table.c.id, inv.c.deleted.is_(False)]
    if att.answer:
        on.append(sa.func.coalesce(inv.c[att.answer], "") != DECLINED)
    if of == "users":
        on.append(inv.c[att.user].in_(ids))
        column = inv.c[att.user]
    else:
        on += [inv.c[att.record].in_(ids), inv.c[att.record_type] == of]
        column = inv.c[att.record]
    invited = sa.select(*columns, column.label("attendee")).select_from(
        table.join(inv, sa.and_(*on))).where(*where)
    if of != "users":
        return invited.order_by(when, table.c.id)
    # the owners' rows and the invited ones: two index-friendly halves of one statement
    both = sa.union_all(owned, invited).subquery("shown")
    return sa.select(both).order_by(both.c.start, both.c.id)


def read(site, reader, user_ids, start: dt.datetime, end: dt.datetime, tz, gettext,
         resources: bool = False, of: str = "users") -> list[dict]:
    """The component's events (module docstring). ``resources``: each event names its
    columns as ``resourceIds`` (the company view: its owner and its invited users among
    the shown; the resource view, ``of`` a module: the shown records it books)."""
    user_ids = list(dict.fromkeys(user_ids))
    if not user_ids:
        return []
    shown = set(user_ids)
    events = []
    busy = gettext(BUSY)
    with site.engine.connect() as conn:
        for kind in kinds(site.registry):
            label = str(kind.module.label_singular)
            query = statement(site, reader, kind, user_ids, start, end, tz, of)
            if query is None:
                continue
            merged: dict[str, dict] = {}  # an event once, with every column it is in
            for row in conn.execute(query):
                # its column: the owner's row, or an invited user's or booked resource's
                column = row.owner if row.attendee is None else row.attendee
                known = merged.get(row.id)
                if known is not None:  # invited too, or booking another shown resource
                    if resources and column in shown and column not in known["resourceIds"]:
                        known["resourceIds"].append(column)
                    continue
                event = _event(kind, row, tz, label, start)
                if event is None:
                    continue
                if not row.seen:
                    event = {"start": event["start"], "end": event["end"],
                             "allDay": event["allDay"], "title": busy, "editable": False,
                             "startEditable": False, "durationEditable": False,
                             "classNames": ["crbm-busy"], "extendedProps": {"busy": True}}
                if resources:
                    event["resourceIds"] = [column] if column in shown else []
                merged[row.id] = event
                events.append(event)
    for n, event in enumerate(e for e in events if e.get("extendedProps", {}).get("busy")):
        event["id"] = f"busy-{n}"
    return events


def _event(kind: Kind, row, tz, label: str, since: dt.datetime) -> dict | None:
    """The component's event of a row; None if it has no date or ended before ``since``."""
    start = row.start
    if start is None:
        return None
    name = kind.module.name
    closed = kind.open_field is not None and row.status not in kind.open_values
    event = {"id": f"{name}:{row.id}", "title": row.name or "",
             "classNames": [f"crbm-kind-{name}", "crbm-done"] if closed
             else [f"crbm-kind-{name}"], "editable": bool(row.editable),
             "extendedProps": {"module": name, "record": row.id, "url": f"/m/{name}/{row.id}",
                               "version": row.version, "kind": label}}
    if kind.dated:
        day = start if isinstance(start, dt.date) and not isinstance(start, dt.datetime) \
            else start.date()
        event.update(start=day.isoformat(), end=(day + dt.timedelta(days=1)).isoformat(),
                     allDay=True, durationEditable=False)
        return event
    start = _utc(start)
    all_day = bool(row.all_day)
    end = _utc(row.end)
    if end is None or end < start:
        minutes = row.minutes
        end = start + dt.timedelta(minutes=minutes if minutes else DEFAULT_MINUTES)
    if end <= since and not (all_day and start.astimezone(tz).date()
                             >= since.astimezone(tz).date()):
        return None  # over before the range begins (the SELECT reads a day early)
    if all_day:
        first = start.astimezone(tz).date()
        last = max(end.astimezone(tz).date(), first)
        event.update(start=first.isoformat(), end=(last + dt.timedelta(days=1)).isoformat(),
                     allDay=True)
    else:
        event.update(start=_floating(start, tz), end=_floating(end, tz), allDay=False)
        if not (kind.end or kind.duration):
            event["durationEditable"] = False
    return event


def _moment(fmt, text: str, name: str) -> dt.datetime:
    try:
        value = fmt.from_local_input(str(text)[:19])
    except ValueError:
        value = None
    if value is None:
        raise ValidationError({name: Message(N_("%(value)s is not a date and time"),
                                             value=repr(text))})
    return value


def move(site, reader, fmt, kind: Kind, record_id: str, start: str, end: str | None,
         all_day: bool, version: str | None = None) -> dict:
    """Save a dragged or resized event's new times (module docstring); the record as
    stored. Raises what RecordService.update raises."""
    values: dict = {}
    if kind.dated:
        try:
            values[kind.when] = dt.date.fromisoformat(str(start)[:10])
        except ValueError:
            raise ValidationError({kind.when: Message(N_("%(value)s is not a date"),
                                                      value=repr(start))}) from None
    else:
        begins = _moment(fmt, start, kind.when)
        ends = _moment(fmt, end, kind.end or kind.when) if end else None
        values[kind.when] = begins
        if kind.all_day and kind.all_day in kind.module.fields:
            values[kind.all_day] = bool(all_day)
        if ends is not None and kind.end:
            # an all-day event's end is exclusive in the component, inclusive here
            values[kind.end] = ends - dt.timedelta(days=1) if all_day else ends
        elif all_day and kind.end:  # a timed event dropped on the all-day row: that day
            values[kind.end] = begins
        elif ends is not None and kind.duration and not all_day:
            values[kind.duration] = max(int((ends - begins).total_seconds() // 60), 0)
    base = {"version": int(version)} if version and str(version).isdigit() else None
    return site.records.update(kind.module.name, record_id, values, reader, base=base)
