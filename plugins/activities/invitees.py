"""Invitees of meetings and calls, resources' bookings, and the answers (issue 20).

Contract:

- An ``invitees`` record (modules/invitees.yaml) ties one meeting (``meeting_id``) or one
  call (``call_id``) to one invitee: a user (``user_id``) or a record of a module whose
  YAML says ``features: {invitable: true}`` (``invitee_id``/``invitee_type``: contacts,
  leads while that plugin is on, resources). Exactly one of each pair; an invitee once per
  activity. Its ``name`` is the invitee's, kept here. ``accept_status`` is none, accepted,
  tentative or declined.
- ``invitees_of(site, module_name, ids)``: per activity id the list of ``Invitee(kind, id,
  name, email, accept_status)`` — one statement for the invitee rows and one per invitee
  kind (users, then each invitable module), never one per row. For the calendar and the
  iCalendar code: ``invited_activities(site, module_name, user_ids)`` is the reverse (the
  activities a user is invited to).
- **Conflicts** (``crbm_before_save`` on invitees and meetings, so on every write path
  including the REST API): a resource already in an overlapping meeting that is not "not
  held" is refused with a ``ValidationError`` naming the resource and the other meeting;
  nothing is saved. One statement per batch finds the overlaps, after taking the resources'
  row locks (``records.lock``: two concurrent bookings of a room queue, the second sees the
  first). A user already busy is only a warning: ``busy_users`` answers it (the meeting's
  page shows it next to its buttons); it never refuses.
- **Answer links**: ``answer_token`` signs (HMAC-SHA256 with the site's secret) an invitee
  id and an answer; ``/invitations/<invitee id>/<answer>/<token>`` sets the answer without
  logging in (web.py). A meeting's invited user answers from its page (record actions).

Why a module rather than link tables: the answer is a value with a history; the record
service gives it access control, the change log, the save hooks (the conflict check) and
the API for free, and the meeting's page shows invitees as an ordinary subpanel.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import hmac
from collections import defaultdict
from typing import NamedTuple

import sqlalchemy as sa

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.records import SYSTEM_USER, now

MODULE = "invitees"
ACTIVITY_FIELDS = {"meetings": "meeting_id", "calls": "call_id"}
ANSWERS = ("none", "accepted", "tentative", "declined")


class Invitee(NamedTuple):
    kind: str  # "users" or an invitable module's name ("contacts", "leads", "resources")
    id: str  # the user's or the record's id
    name: str
    email: str | None
    accept_status: str
    invitee_record_id: str = ""  # the invitees row


class Conflict(NamedTuple):
    kind: str  # "users" or "resources"
    id: str
    name: str
    meeting_id: str
    meeting_name: str


def invitable_modules(site) -> list[str]:
    return [m.name for m in site.registry.modules.values() if m.features.get("invitable")]


def _reading(site, connection):
    return contextlib.nullcontext(connection) if connection is not None else site.engine.connect()


def _table(site, name):
    return site.tables.tables[site.registry.module(name).table]


def _email_column(module, table):
    """The module's first email field (contacts' and leads' ``email1``), if any."""
    for f in module.fields.values():
        if f.type.name == "email" and f.name in table.c:
            return table.c[f.name]
    return sa.null()


def _names_of(site, conn, kind: str, ids) -> dict[str, tuple[str, str | None]]:
    """{id: (name, email)} of users or of one module's records: one statement."""
    ids = sorted({str(i) for i in ids if i})
    if not ids:
        return {}
    if kind == "users":
        users = site.tables.tables["crbm_users"]
        rows = conn.execute(sa.select(users.c.id, sa.func.coalesce(
            users.c.display_name, users.c.username), users.c.email).where(users.c.id.in_(ids)))
        return {r[0]: (r[1], r[2]) for r in rows}
    if kind not in site.registry.modules:
        return {}
    module = site.registry.module(kind)
    table = _table(site, kind)
    if "name" in table.c:
        name = table.c.name
    else:
        parts = [table.c[p] for p in ("first_name", "last_name") if p in table.c]
        name = sa.func.trim(sa.func.coalesce(parts[0], "") + " " + sa.func.coalesce(
            parts[1], "")) if len(parts) == 2 else table.c.id
    rows = conn.execute(sa.select(table.c.id, name, _email_column(module, table))
                        .where(table.c.id.in_(ids)))
    return {r[0]: (r[1] or "", r[2]) for r in rows}


def invitees_of(site, module_name: str, ids, connection=None) -> dict[str, list[Invitee]]:
    """Each meeting's (or call's) invitees, by activity id; a live activity with none maps
    to ``[]``. Users first, then records, each by name. One statement for the invitee rows,
    one per kind for names and addresses. No access check: the caller passes the ids of
    activities its user may see (a calendar's, a feed's query already filtered them)."""
    field = ACTIVITY_FIELDS[module_name]
    ids = [str(i) for i in ids]
    out: dict[str, list[Invitee]] = {i: [] for i in ids}
    if not ids:
        return out
    table = _table(site, MODULE)
    with _reading(site, connection) as conn:
        rows = conn.execute(sa.select(table.c.id, table.c[field], table.c.user_id,
                                      table.c.invitee_id, table.c.invitee_type,
                                      table.c.accept_status)
                            .where(table.c[field].in_(ids), table.c.deleted.is_(False))).all()
        wanted: dict[str, set[str]] = defaultdict(set)
        for row in rows:
            kind = "users" if row.user_id else row.invitee_type
            wanted[kind].add(row.user_id or row.invitee_id)
        found = {kind: _names_of(site, conn, kind, who) for kind, who in wanted.items()}
    for row in rows:
        kind = "users" if row.user_id else row.invitee_type
        who = row.user_id or row.invitee_id
        name, email = found.get(kind, {}).get(who, ("", None))
        out[row[1]].append(Invitee(kind, who, name, email, row.accept_status or "none",
                                   row.id))
    for found_list in out.values():
        found_list.sort(key=lambda i: (i.kind != "users", (i.name or "").lower()))
    return out


def invited_activities(site, module_name: str, user_ids, connection=None
                       ) -> dict[str, list[tuple[str, str]]]:
    """{user id: [(activity id, accept_status)]}: the meetings (or calls) each user is
    invited to, whatever their assignee; one statement."""
    field = ACTIVITY_FIELDS[module_name]
    user_ids = [str(u) for u in user_ids]
    table = _table(site, MODULE)
    out: dict[str, list[tuple[str, str]]] = {u: [] for u in user_ids}
    with _reading(site, connection) as conn:
        for row in conn.execute(sa.select(table.c.user_id, table.c[field],
                                          table.c.accept_status)
                                .where(table.c.user_id.in_(user_ids), table.c[field].isnot(None),
                                       table.c.deleted.is_(False))):
            out[row[0]].append((row[1], row[2]))
    return out


# -- saving invitees ---------------------------------------------------------------------

def _problem(errors, batch, index, name, message):
    errors[name if len(batch) == 1 else f"row {index + 1}: {name}"] = message


def before_save_invitees(site, batch, connection) -> None:
    """Shape rules, duplicates, names, and the resources' conflicts."""
    errors: dict[str, Message] = {}
    table = _table(site, MODULE)
    for index, change in enumerate(batch):
        r = change.record
        if bool(r.get("meeting_id")) == bool(r.get("call_id")):
            _problem(errors, batch, index, "meeting_id",
                     Message(N_("give a meeting or a call (one of them)")))
        if bool(r.get("user_id")) == bool(r.get("invitee_id")):
            _problem(errors, batch, index, "user_id",
                     Message(N_("give a user or a contact, lead or resource (one of them)")))
        elif r.get("call_id") and r.get("invitee_type") == "resources":  # rooms are booked
            _problem(errors, batch, index, "invitee_id",  # for meetings; a call books none
                     Message(N_("a call books no resource: invite it to a meeting")))
    if errors:
        raise ValidationError(errors)
    # an invitee once per activity: in the batch and against what is stored (one statement)
    seen: dict[tuple, int] = {}
    keys = []
    for index, change in enumerate(batch):
        r = change.record
        key = (r.get("meeting_id") or r.get("call_id"), r.get("user_id") or r.get("invitee_id"))
        keys.append(key)
        if key in seen:
            _problem(errors, batch, index, "user_id" if r.get("user_id") else "invitee_id",
                     Message(N_("is already invited")))
        seen[key] = index
    activity = sa.func.coalesce(table.c.meeting_id, table.c.call_id)
    who = sa.func.coalesce(table.c.user_id, table.c.invitee_id)
    stored = connection.execute(sa.select(table.c.id, activity, who).where(
        activity.in_({k[0] for k in keys}), who.in_({k[1] for k in keys}),
        table.c.deleted.is_(False))).all()
    taken = {(a, w): i for i, a, w in stored}
    for index, change in enumerate(batch):
        other = taken.get(keys[index])
        if other is not None and other != change.record["id"]:
            r = change.record
            _problem(errors, batch, index, "user_id" if r.get("user_id") else "invitee_id",
                     Message(N_("is already invited")))
    if errors:
        raise ValidationError(errors)
    # names: one statement per kind
    wanted: dict[str, set[str]] = defaultdict(set)
    for change in batch:
        r = change.record
        wanted["users" if r.get("user_id") else r.get("invitee_type")].add(
            r.get("user_id") or r.get("invitee_id"))
    found = {kind: _names_of(site, connection, kind, ids) for kind, ids in wanted.items()}
    for change in batch:
        r = change.record
        kind = "users" if r.get("user_id") else r.get("invitee_type")
        r["name"] = (found.get(kind, {}).get(r.get("user_id") or r.get("invitee_id"))
                     or ("",))[0][:255] or None
    # resources: no double booking
    booked = [(c.record["meeting_id"], c.record["invitee_id"]) for c in batch
              if c.record.get("meeting_id") and c.record.get("invitee_type") == "resources"]
    if booked:
        # bookers of one resource queue here, so two saves cannot both find it free
        site.records.lock("resources", {r for _, r in booked}, connection=connection)
        meetings = _meeting_times(site, connection, {m for m, _ in booked})
        wanted_slots = [(meetings[m], r) for m, r in booked if m in meetings]
        clashes = _overlaps(site, connection, wanted_slots, kind="resources")
        _raise_clashes(batch, clashes, field="invitee_id",
                       row_of={(m, r): i for i, (m, r) in enumerate(
                           (c.record.get("meeting_id"), c.record.get("invitee_id"))
                           for c in batch)})


def _meeting_times(site, conn, ids) -> dict[str, dict]:
    table = _table(site, "meetings")
    return {r.id: dict(r._mapping) for r in conn.execute(
        sa.select(table.c.id, table.c.name, table.c.date_start, table.c.date_end,
                  table.c.status).where(table.c.id.in_(sorted(ids)),
                                        table.c.deleted.is_(False)))}


def _aware(value):
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _overlaps(site, conn, slots, *, kind: str) -> list[tuple[dict, str, Conflict]]:
    """Which of ``slots`` — (meeting {id, date_start, date_end, status}, invitee id) — clash
    with another live meeting, not "not held", that the same resource (or user) is invited
    to and whose time overlaps. One statement for the lot (the widest window, then exact
    pairs), plus the names."""
    slots = [(m, w) for m, w in slots if m.get("date_start") and m.get("date_end")
             and m.get("status") != "not_held"]
    if not slots:
        return []
    inv, meetings = _table(site, MODULE), _table(site, "meetings")
    who = inv.c.user_id if kind == "users" else inv.c.invitee_id
    lo = min(_aware(m["date_start"]) for m, _ in slots)
    hi = max(_aware(m["date_end"]) for m, _ in slots)
    rows = conn.execute(sa.select(who, meetings.c.id, meetings.c.name, meetings.c.date_start,
                                  meetings.c.date_end)
                        .join(meetings, meetings.c.id == inv.c.meeting_id)
                        .where(who.in_(sorted({w for _, w in slots})),
                               inv.c.deleted.is_(False), meetings.c.deleted.is_(False),
                               meetings.c.status != "not_held",
                               meetings.c.date_start < hi, meetings.c.date_end > lo)).all()
    # the batch's own slots clash with each other too
    candidates = [(r[0], r[1], r[2], _aware(r[3]), _aware(r[4])) for r in rows]
    candidates += [(w, m["id"], m.get("name"), _aware(m["date_start"]), _aware(m["date_end"]))
                   for m, w in slots]
    names = _names_of(site, conn, kind, {w for _, w in slots})
    out, seen = [], set()
    for meeting, w in slots:
        start, end = _aware(meeting["date_start"]), _aware(meeting["date_end"])
        for cw, cid, cname, cstart, cend in candidates:
            if cw == w and cid != meeting["id"] and cstart < end and cend > start \
                    and (meeting["id"], w) not in seen:
                seen.add((meeting["id"], w))
                out.append((meeting, w, Conflict(kind, w, names.get(w, ("",))[0], cid,
                                                 cname or "")))
    return out


def _raise_clashes(batch, clashes, *, field: str, row_of: dict) -> None:
    if not clashes:
        return
    errors: dict[str, Message] = {}
    for meeting, who, conflict in clashes:
        index = row_of.get((meeting["id"], who), 0)
        _problem(errors, batch, index, field, Message(
            N_("%(resource)s is already booked for “%(meeting)s” at that time"),
            resource=conflict.name, meeting=conflict.meeting_name))
    raise ValidationError(errors)


INVITATION_FIELDS = ("date_start", "date_end", "all_day", "location", "name", "description")


def invitation_changed(change) -> bool:
    """Whether an update changes what the meeting's invitation says: its time, place,
    subject or text, or it is called off ("not held" while still to come) or back on.
    Marking a meeting held changes nobody's calendar."""
    if change.is_new:
        return False
    if set(INVITATION_FIELDS) & set(change.changes):
        return True
    old, new = change.changes.get("status", (None, None))
    start = _aware(change.record.get("date_start"))
    return "not_held" in (old, new) and old != new and start is not None and \
        start > dt.datetime.now(dt.UTC)


def before_save_meetings(site, batch, connection) -> None:
    """A meeting moved (or brought back from "not held") must not double-book its
    resources; iCalendar's SEQUENCE moves when what an invitation says changes."""
    moved = [c for c in batch if not c.is_new and {
        "date_start", "date_end", "status", "all_day"} & set(c.changes)]
    for change in batch:
        if invitation_changed(change):
            change.record["ical_sequence"] = int(change.record.get("ical_sequence") or 0) + 1
    if not moved:
        return
    inv = _table(site, MODULE)
    rows = connection.execute(sa.select(inv.c.meeting_id, inv.c.invitee_id).where(
        inv.c.meeting_id.in_([c.record["id"] for c in moved]),
        inv.c.invitee_type == "resources", inv.c.deleted.is_(False))).all()
    if not rows:
        return
    site.records.lock("resources", {r for _, r in rows}, connection=connection)
    by_id = {c.record["id"]: c.record for c in moved}
    clashes = _overlaps(site, connection, [(by_id[m], r) for m, r in rows], kind="resources")
    index_of = {c.record["id"]: i for i, c in enumerate(batch)}
    _raise_clashes(batch, clashes, field="date_start",
                   row_of={(m, r): index_of[m] for m, r in rows})


def busy_users(site, meeting_ids, connection=None) -> dict[str, list[Conflict]]:
    """{meeting id: conflicts}: its invited users (and its assignee) already invited to —
    or assigned — another overlapping meeting. A warning, never a refusal. Set-based."""
    meeting_ids = [str(m) for m in meeting_ids]
    out: dict[str, list[Conflict]] = {m: [] for m in meeting_ids}
    inv = _table(site, MODULE)
    with _reading(site, connection) as conn:
        meetings = _meeting_times(site, conn, meeting_ids)
        rows = conn.execute(sa.select(inv.c.meeting_id, inv.c.user_id).where(
            inv.c.meeting_id.in_(meeting_ids), inv.c.user_id.isnot(None),
            inv.c.deleted.is_(False))).all()
        slots = [(meetings[m], u) for m, u in rows if m in meetings]
        for meeting, _user, conflict in _overlaps(site, conn, slots, kind="users"):
            out[meeting["id"]].append(conflict)
    return out


# -- answering -----------------------------------------------------------------------------

def answer_token(site, invitee_record_id: str, answer: str) -> str:
    key = str(site.config["secret_key"]).encode()
    return hmac.new(key, f"invitation:{invitee_record_id}:{answer}".encode(),
                    hashlib.sha256).hexdigest()[:32]


def answer_url(site, invitee_record_id: str, answer: str) -> str:
    base = str(site.settings.get("base_url") or "").rstrip("/")
    return (f"{base}/invitations/{invitee_record_id}/{answer}/"
            f"{answer_token(site, invitee_record_id, answer)}")


def token_ok(site, invitee_record_id: str, answer: str, token: str) -> bool:
    return answer in ANSWERS[1:] and hmac.compare_digest(
        answer_token(site, invitee_record_id, answer), str(token or ""))


def set_answer(site, invitee_record_id: str, answer: str) -> dict:
    """Record an invitee's answer as the system (the signed link is the right to do it);
    through the record service, so it is logged and announced like any change."""

    current = site.records.get(MODULE, invitee_record_id, SYSTEM_USER)
    if current.get("accept_status") == answer:
        return current
    return site.records.update(MODULE, invitee_record_id, {"accept_status": answer},
                               SYSTEM_USER, base=current)


# -- a series' invitees are its occurrences' (recurrence.py) -----------------------------------

def _copies(site, connection, module_name: str, pairs) -> None:
    """Invite to each occurrence what its series has: ``pairs`` of (occurrence id, invitee
    row). Answers start over; no mail (the series' invitation is the one sent). A room
    booked at an occurrence's time refuses the whole save, as a booking by hand would."""
    from plugins.activities import invitations

    field = ACTIVITY_FIELDS[module_name]
    rows = [{field: occurrence, "user_id": r.user_id, "invitee_id": r.invitee_id,
             "invitee_type": r.invitee_type, "accept_status": "none"} for occurrence, r in pairs]
    if rows:
        with invitations.quiet():
            site.records.create_many("invitees", rows, SYSTEM_USER, connection=connection)


def copy_to_occurrences(site, module_name: str, series_id: str, occurrence_ids,
                        connection) -> None:
    """New occurrences of a series get its invitees (one read, one batch)."""
    if module_name not in ACTIVITY_FIELDS or not occurrence_ids:
        return
    inv = _table(site, "invitees")
    rows = connection.execute(sa.select(inv.c.user_id, inv.c.invitee_id, inv.c.invitee_type)
                              .where(inv.c[ACTIVITY_FIELDS[module_name]] == str(series_id),
                                     inv.c.deleted.is_(False))).all()
    _copies(site, connection, module_name, [(o, r) for o in occurrence_ids for r in rows])


def follow_series(site, batch, connection) -> None:
    """Someone invited to a series is invited to its future occurrences not changed on
    their own (the ones changed alone keep their own invitees)."""
    new = [c.record for c in batch if c.is_new]
    for module_name, field in ACTIVITY_FIELDS.items():
        activities = _table(site, module_name)
        if "recurrence_series_id" not in activities.c:
            continue
        by_series: dict[str, list] = {}
        for r in new:
            if r.get(field):
                by_series.setdefault(str(r[field]), []).append(r)
        if not by_series:
            continue
        occurrences = connection.execute(sa.select(
            activities.c.id, activities.c.recurrence_series_id).where(
            activities.c.recurrence_series_id.in_(list(by_series)),
            activities.c.recurrence_detached.is_not(True), activities.c.deleted.is_(False),
            activities.c.date_start >= now()
        )).all()
        pairs = []
        for o in occurrences:
            for r in by_series[str(o.recurrence_series_id)]:
                pairs.append((o.id, _Invitee(r.get("user_id"), r.get("invitee_id"),
                                             r.get("invitee_type"))))
        _copies(site, connection, module_name, pairs)


@dataclasses.dataclass(frozen=True)
class _Invitee:
    user_id: str | None
    invitee_id: str | None
    invitee_type: str | None
