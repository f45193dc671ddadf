"""Meeting invitations by mail, with an iCalendar attachment (RFC 5545/5546, issue 20).

Contract:

- ``meeting_event(meeting, organizer, attendees, tz_name, sequence)``: the VEVENT of a
  meeting (``icalendar.Event``), ical.py's ``vevent`` — the same UID ``<meeting id>@crbm``
  (or the imported one), times and a series' RRULE as an export —, with
  SEQUENCE its ``ical_sequence`` (moved by invitees.py when the time, place, subject or
  status change), DTSTART/DTEND with the TZID of the organizer's time zone (a DATE for an
  all-day meeting), ORGANIZER, one ATTENDEE per invitee with an address (PARTSTAT from the
  answer, RSVP). Small and public, for the .ics import/export code to share.
- ``invitation_ics(...)``: a VCALENDAR with METHOD REQUEST (or CANCEL), the VEVENT and its
  VTIMEZONE, as bytes.
- After a meeting's save that changes its invitation (time, place, subject, text; called
  off as "not held" while still to come, or back on: ``invitees.invitation_changed``) or
  an invitee added, and after a meeting or an invitee is deleted, one job
  ``activities.invitations`` per meeting is enqueued once the transaction commits
  (``core.jobs.after_commit``, keyed by meeting: edits in a row make one job). The job
  mails each invitee with an address — users, contacts, leads — a REQUEST for the
  meeting's current revision, and a CANCEL to those uninvited, or to everyone when the
  meeting is deleted or called off. What was sent is kept in ``activities_invitation_mail``
  (meeting, address, revision, method): a redelivered or repeated job sends nothing twice;
  the Message-ID is derived from the same key, so a mail sent just before a crash is the
  same message if sent again.

The mail's words are in the organizer's language (their preferences).
"""
from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import hashlib
import json
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import sqlalchemy as sa

from core.kernel.errors import N_
from core.kernel.hooktypes import JobHandler

JOB = "activities.invitations"
TABLE = "activities_invitation_mail"
PARTSTAT = {"none": "NEEDS-ACTION", "accepted": "ACCEPTED", "tentative": "TENTATIVE",
            "declined": "DECLINED"}
PRODID = "-//CRBM//Activities//EN"


def tables(metadata: sa.MetaData) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("meeting_id", sa.String(36), primary_key=True),
             sa.Column("address", sa.String(255), primary_key=True),
             sa.Column("sequence", sa.Integer, primary_key=True),
             sa.Column("method", sa.String(10), primary_key=True),
             sa.Column("sent_at", sa.DateTime, nullable=False))


# -- iCalendar -----------------------------------------------------------------------------

def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _aware(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value


def meeting_event(meeting: dict, organizer: tuple[str, str | None] | None,
                  attendees, tz_name: str | None, sequence: int | None = None,
                  *, stamp: dt.datetime | None = None):
    """The meeting's VEVENT: ical.py's (the same UID, times, RRULE of a series as an export
    or the feed gives: a client that has both sees one event), plus what an invitation
    adds. ``meeting``: the record (``cancelled`` set for a CANCEL); ``organizer``: (name,
    email); ``attendees``: ``invitees.Invitee``-like (kind, id, name, email,
    accept_status) — those without an address are left out; ``tz_name``: the organizer's
    time zone (DTSTART's TZID)."""
    import icalendar

    from plugins.activities import ical

    event = ical.vevent(None, "meetings", meeting, _zone(tz_name))
    for name in ("DTSTAMP", "SEQUENCE", "STATUS"):  # an invitation's own
        event.pop(name, None)
    event.add("dtstamp", stamp or dt.datetime.now(dt.UTC).replace(microsecond=0))
    event.add("sequence", int(sequence if sequence is not None
                              else meeting.get("ical_sequence") or 0))
    event.add("status", "CANCELLED" if meeting.get("cancelled") else "CONFIRMED")
    if organizer and organizer[1]:
        who = icalendar.vCalAddress(f"mailto:{organizer[1]}")
        who.params["CN"] = icalendar.vText(organizer[0] or organizer[1])
        event.add("organizer", who)
    for person in attendees:
        if person.kind == "resources":  # a room or equipment: no mailbox, its own id
            who = icalendar.vCalAddress(f"urn:uuid:{person.id}")
            who.params["CUTYPE"] = icalendar.vText("RESOURCE")
            who.params["CN"] = icalendar.vText(person.name or "")
            who.params["ROLE"] = icalendar.vText("NON-PARTICIPANT")
            event.add("attendee", who, encode=0)
            continue
        if not person.email:
            continue
        who = icalendar.vCalAddress(f"mailto:{person.email}")
        who.params["CN"] = icalendar.vText(person.name or person.email)
        who.params["ROLE"] = icalendar.vText("REQ-PARTICIPANT")
        who.params["PARTSTAT"] = icalendar.vText(PARTSTAT.get(person.accept_status,
                                                              "NEEDS-ACTION"))
        who.params["RSVP"] = icalendar.vText("TRUE")
        event.add("attendee", who, encode=0)
    return event


def invitation_ics(event, method: str = "REQUEST") -> bytes:
    """A VCALENDAR for a mail (RFC 6047): METHOD, the event and its VTIMEZONE."""
    import icalendar

    calendar = icalendar.Calendar()
    calendar.add("prodid", PRODID)
    calendar.add("version", "2.0")
    calendar.add("method", method)
    calendar.add_component(event)
    calendar.add_missing_timezones()
    return calendar.to_ical()


# -- enqueueing ----------------------------------------------------------------------------

_QUIET = contextvars.ContextVar("activities_invitations_quiet", default=False)


@contextlib.contextmanager
def quiet():
    """Saves in this block mail no invitation (the demo's meetings)."""
    token = _QUIET.set(True)
    try:
        yield
    finally:
        _QUIET.reset(token)


def _enqueue(site, connection, meeting_ids) -> None:
    from core import jobs

    if _QUIET.get():
        return
    for meeting_id in sorted({str(m) for m in meeting_ids if m}):
        jobs.after_commit(site, connection, JOB, {"meeting_id": meeting_id},
                          key=f"{JOB}:{meeting_id}")


def after_save_meetings(site, batch, connection) -> None:
    from plugins.activities.invitees import invitation_changed

    _enqueue(site, connection, [c.record["id"] for c in batch if invitation_changed(c)])


def after_save_invitees(site, batch, connection) -> None:
    """A new invitee is invited; a changed answer changes nobody's invitation."""
    _enqueue(site, connection, [c.record.get("meeting_id") for c in batch
                                if c.is_new or "meeting_id" in c.changes])


def after_delete(site, meeting_ids, connection) -> None:
    """A meeting deleted, or invitees removed from theirs: the job mails the CANCELs."""
    _enqueue(site, connection, meeting_ids)


# -- the job ---------------------------------------------------------------------------------

def _organizer(site, conn, user_id):
    users = site.tables.tables["crbm_users"]
    row = conn.execute(sa.select(users.c.display_name, users.c.username, users.c.email,
                                 users.c.preferences).where(users.c.id == user_id)).first() \
        if user_id else None
    return dict(row._mapping) if row else None


def _tz_of(site, organizer: dict | None) -> str:
    try:
        prefs = json.loads(organizer["preferences"]) if organizer and organizer[
            "preferences"] else {}
    except ValueError:
        prefs = {}
    if prefs.get("timezone"):
        return prefs["timezone"]
    from core.apps.calendar.settings import calendar_settings
    return calendar_settings(site).time_zone


def _message_id(site, key: str) -> str:
    smtp = site.settings.get("smtp")
    sender = str(smtp.get("from_address") or "") if isinstance(smtp, dict) else ""
    domain = sender.rpartition("@")[2].strip(" >") or "crbm.invalid"
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:40]}@{domain}>"


def send_invitations(site, payload: dict) -> str:
    """Mail what the meeting's invitees have not had yet (see the module's docstring)."""
    from core.apps.documents import mail
    from core.kernel import i18n
    from plugins.activities import invitees as inv

    meeting_id = str(payload["meeting_id"])
    meetings = site.tables.tables[site.registry.module("meetings").table]
    rows_t = site.tables.tables[site.registry.module("invitees").table]
    sent_t = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        meeting = conn.execute(sa.select(meetings).where(meetings.c.id == meeting_id)).first()
        if meeting is None:
            return "no such meeting"
        meeting = dict(meeting._mapping)
        rows = conn.execute(sa.select(rows_t.c.id, rows_t.c.user_id, rows_t.c.invitee_id,
                                      rows_t.c.invitee_type, rows_t.c.accept_status,
                                      rows_t.c.deleted)
                            .where(rows_t.c.meeting_id == meeting_id)).all()
        kinds: dict[str, set] = {}
        for r in rows:
            kinds.setdefault("users" if r.user_id else r.invitee_type, set()).add(
                r.user_id or r.invitee_id)
        found = {k: inv._names_of(site, conn, k, ids) for k, ids in kinds.items()}
        organizer = _organizer(site, conn, meeting.get("assigned_user_id"))
        history = {(r.address, r.sequence, r.method) for r in conn.execute(
            sa.select(sent_t.c.address, sent_t.c.sequence, sent_t.c.method)
            .where(sent_t.c.meeting_id == meeting_id))}
    people: dict[str, tuple] = {}  # address -> (Invitee, live); a live row wins
    rooms = sorted(found.get("resources", {}).get(r.invitee_id, ("",))[0] for r in rows
                   if r.invitee_type == "resources" and not r.deleted)
    if rooms:  # where to go: the place and the rooms booked
        meeting["location"] = " — ".join(x for x in (meeting.get("location"),
                                                      ", ".join(rooms)) if x)
    booked = []  # the resources, ATTENDEE;CUTYPE=RESOURCE in what is sent (mailed to nobody)
    for r in rows:
        kind = "users" if r.user_id else r.invitee_type
        name, email = found.get(kind, {}).get(r.user_id or r.invitee_id, ("", None))
        if kind == "resources" and not r.deleted:
            booked.append(inv.Invitee(kind, r.invitee_id, name, None, "accepted", r.id))
        if not email:
            continue
        live = not r.deleted and not meeting["deleted"] and meeting["status"] != "not_held"
        person = inv.Invitee(kind, r.user_id or r.invitee_id, name, email,
                             r.accept_status or "none", r.id)
        if email.lower() not in people or live:
            people[email.lower()] = (person, live)
    if not people:
        return "nobody to mail"
    if not mail.is_configured(site.settings):
        return "no mail: outgoing mail is not set up"
    sequence = int(meeting.get("ical_sequence") or 0)
    tz_name = _tz_of(site, organizer)
    organizer_pair = ((organizer["display_name"] or organizer["username"], organizer["email"])
                      if organizer else None)
    attendees = [p for p, live in people.values() if live] + booked
    try:
        prefs = json.loads(organizer["preferences"]) if organizer and organizer[
            "preferences"] else None
    except ValueError:
        prefs = None
    tr = i18n.gettext_for(i18n.Preferences.from_dict(prefs), site.locale_dirs)
    start_local = _aware(meeting["date_start"]).astimezone(_zone(tz_name))
    when = start_local.strftime("%Y-%m-%d %H:%M") + f" ({tz_name})"
    sent = 0
    for address, (person, live) in sorted(people.items()):
        if live:
            method = "REQUEST"
            if (address, sequence, method) in history:
                continue
        else:
            requested = [s for a, s, m in history if a == address and m == "REQUEST"]
            cancelled = [s for a, s, m in history if a == address and m == "CANCEL"]
            if not requested or (cancelled and max(cancelled) >= max(requested)):
                continue
            method = "CANCEL"
            sequence_sent = max(sequence, max(requested))
        seq = sequence if method == "REQUEST" else sequence_sent
        event = meeting_event({**meeting, "cancelled": method == "CANCEL"}, organizer_pair,
                              attendees if method == "REQUEST" else [person], tz_name, seq)
        ics = invitation_ics(event, method)
        subject, lines = _words(site, tr, meeting, person, method, seq, when)
        mail.send_mail(site, person.email, subject, "\n".join(lines) + "\n",
                       attachments=[_attachment(mail, method, ics)],
                       message_id=_message_id(site, f"{meeting_id}:{address}:{seq}:{method}"))
        with site.engine.begin() as conn:
            conn.execute(sent_t.insert().values(
                meeting_id=meeting_id, address=address, sequence=seq, method=method,
                sent_at=dt.datetime.now(dt.UTC).replace(tzinfo=None)))
        sent += 1
    return f"mailed {sent}"


def _attachment(mail, method: str, ics: bytes):
    return mail.Attachment("invite.ics" if method == "REQUEST" else "cancel.ics", ics,
                           "text/calendar")


def _words(site, tr, meeting, person, method, sequence, when):
    from plugins.activities import invitees as inv

    values = {"name": meeting.get("name") or "", "when": when}
    if method == "CANCEL":
        subject = tr.gettext("Cancelled: %(name)s") % values
        return subject, [tr.gettext("The meeting “%(name)s” on %(when)s is cancelled.")
                         % values]
    subject = (tr.gettext("Invitation: %(name)s") if sequence == 0
               else tr.gettext("Updated invitation: %(name)s")) % values
    lines = [tr.gettext("You are invited to “%(name)s” on %(when)s.") % values]
    if meeting.get("location"):
        lines.append(tr.gettext("Location: %(location)s") % {"location": meeting["location"]})
    lines.append("")
    for answer, label in (("accepted", N_("Accept")), ("tentative", N_("Tentative")),
                          ("declined", N_("Decline"))):
        lines.append(f"{tr.gettext(label)}: {inv.answer_url(site, person.invitee_record_id, answer)}")
    return subject, lines


def job_handlers() -> list[JobHandler]:
    return [JobHandler(JOB, send_invitations, retries=5)]
