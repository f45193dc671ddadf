"""Activities: calls, meetings, tasks and notes about the records of any module that opts in
(user guide §1.2 "Activities" and "History"; implementation guide §7.7).

Provides:

- four modules (modules/*.yaml), each a kind of activity for core.apps.activities
  (``features.activity``: which statuses are open, which date the panels show):
  **calls** (direction, status Planned/Held/Not Held, start, duration in minutes, a direct
  account), **meetings** (location, start and end or all day, the same statuses),
  **tasks** (start and due dates, priority High/Medium/Low, status Not Started/In
  Progress/Completed/Pending Input/Deferred, a contact) and **notes** (a text and any
  number of attachments, always history). Their statuses, directions and priorities are protected
  dropdowns (dropdowns/activities.yaml): the panels and the reports to come rely on them.
- "Related to" on each (``parent_id``, a dynamic parent link declared with
  ``modules_with_feature: activities``): it may name a record of every module whose YAML
  says ``features: {activities: true}`` — accounts, contacts, opportunities today; a module
  that opts in later needs nothing from this plugin. Those modules' detail pages then show
  the **Activities** (open calls, meetings, tasks) and **History** (held or not held,
  completed or deferred, notes, emails) panels with quick creates prefilled with the record
  (core.apps.activities, core/web/templates/detail.html).
- save rules (``crbm_before_save``, once per batch): a new call without a start starts now
  (logging a call is a title and Save: two taps on a phone); a meeting ends after it starts (an
  all-day meeting may end the day it starts); a task is not due before it starts — a
  refused row names its field and nothing is saved.
- notes' attachments (attachments.py): files in the site's file store, size-limited and
  sniffed, served only to the note's readers; a file dropped on a record's History panel
  becomes a note about the record with the file attached.
- iCalendar (ical.py, ical_web.py): a meeting, call or task exported as .ics (detail page
  button, list mass action), a date range exported, .ics files imported all or nothing
  (create or update by UID, the ``ical_uid`` field of extends/ical_*.yaml), a per-user secret
  subscription feed and free/busy URL (§7.13), managed from the preferences page.
- demo activities around the demo accounts and their contacts: past calls and meetings
  held (a few not held), future ones planned, open and completed tasks, notes.

- **invitees** of meetings and calls (users, contacts, leads, resources) with their answer,
  and **resources** (meeting rooms with their equipment, projectors...): invitees.py —
  ``invitees_of`` for the calendar and iCalendar code, the conflict check at save (a
  resource is never double-booked; a busy user is a warning), signed answer links (web.py).
- **invitations** by mail with an iCalendar (.ics) request, update or cancel: invitations.py,
  sent by a job once the save has committed, once per invitee and revision.

- **recurrence** (recurrence.py): a "Repeat" rule (RFC 5545 RRULE) on calls, meetings and
  tasks, its occurrences made as ordinary records ahead of time (scheduled task
  ``activities.recurrence`` and on save), "this occurrence" and "this and following" edits.
- **reminders** (reminders.py): in the app and/or by email, N minutes before a call or a
  meeting, exactly once (scheduled task ``activities.reminders`` and a mail job).

Why one plugin for four modules: they are one feature in 1CRM and for a user (the panels
mix them), they share their statuses and their demo story; nobody removes notes but keeps
calls. The calendar's views and .ics import/export are other parts of issue 20.
"""
from __future__ import annotations

import datetime as dt

from core.kernel.errors import N_, Message, ValidationError
from core.kernel.hookspecs import for_modules, hookimpl
from core.kernel.hooktypes import AdminLink, ListAction, ScheduledTask
from core.web import exporting

__version__ = "0.1.0"


def _problem(errors: dict, batch, index: int, name: str, message: Message) -> None:
    errors[name if len(batch) == 1 else f"row {index + 1}: {name}"] = message


def _as_utc(value):
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


@hookimpl(specname="crbm_before_save")
@for_modules("calls")
def calls_start_now_unless_told(site, module, batch) -> None:
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    for change in batch:
        if change.is_new and change.record.get("date_start") is None:
            change.record["date_start"] = now


@hookimpl(specname="crbm_before_save")
@for_modules("meetings")
def meetings_end_after_they_start(site, module, batch) -> None:
    errors: dict[str, Message] = {}
    for index, change in enumerate(batch):
        start = _as_utc(change.record.get("date_start"))
        end = _as_utc(change.record.get("date_end"))
        if start is None or end is None:
            continue
        if change.record.get("all_day"):
            if end.date() < start.date():
                _problem(errors, batch, index, "date_end",
                         Message(N_("an all-day meeting cannot end before the day it starts")))
        elif end <= start:
            _problem(errors, batch, index, "date_end", Message(N_("must be after the start")))
    if errors:
        raise ValidationError(errors)


@hookimpl(specname="crbm_before_save")
@for_modules("meetings")
def meetings_keep_their_resources(site, module, batch, connection) -> None:
    from plugins.activities import invitees

    invitees.before_save_meetings(site, batch, connection)


@hookimpl(specname="crbm_before_save")
@for_modules("invitees")
def invitees_rules(site, module, batch, connection) -> None:
    from plugins.activities import invitees

    invitees.before_save_invitees(site, batch, connection)


@hookimpl(specname="crbm_after_save")
@for_modules("meetings")
def invitations_follow_their_meeting(site, module, batch, user, connection) -> None:
    from plugins.activities import invitations

    invitations.after_save_meetings(site, batch, connection)


@hookimpl(specname="crbm_after_save")
@for_modules("invitees")
def invitations_for_new_invitees(site, module, batch, user, connection) -> None:
    from plugins.activities import invitations

    invitations.after_save_invitees(site, batch, connection)


@hookimpl(specname="crbm_after_save")
@for_modules("invitees")
def invitees_follow_their_series(site, module, batch, user, connection) -> None:
    from plugins.activities import invitees

    invitees.follow_series(site, batch, connection)


@hookimpl(specname="crbm_after_delete")
@for_modules("meetings")
def invitations_cancelled_with_their_meeting(site, module, records, user, connection) -> None:
    from plugins.activities import invitations

    invitations.after_delete(site, [r["id"] for r in records], connection)


@hookimpl(specname="crbm_after_delete")
@for_modules("invitees")
def invitations_cancelled_for_the_uninvited(site, module, records, user, connection) -> None:
    from plugins.activities import invitations

    invitations.after_delete(site, [r.get("meeting_id") for r in records], connection)


@hookimpl
@for_modules("meetings")
def crbm_record_actions(site, module, record, user):
    from plugins.activities import web

    return web.meeting_actions(site, record, user)


@hookimpl(specname="crbm_before_save")
@for_modules("tasks")
def tasks_are_due_after_they_start(site, module, batch) -> None:
    errors: dict[str, Message] = {}
    for index, change in enumerate(batch):
        start, due = change.record.get("date_start"), change.record.get("date_due")
        if start is not None and due is not None and due < start:
            _problem(errors, batch, index, "date_due",
                     Message(N_("cannot be before the start date")))
    if errors:
        raise ValidationError(errors)


@hookimpl
def crbm_demo_data(site, user, size, rng, progress):
    from plugins.activities import demo

    demo.load(site, user, rng)


# -- tables, jobs and pages of invitations.py, attachments.py, reminders.py, web.py ------------
# (one hookimpl per hook name: a second function of the same name would replace the first)

@hookimpl
def crbm_tables(metadata):
    from plugins.activities import attachments, invitations, reminders

    invitations.tables(metadata)
    attachments.tables(metadata)
    reminders.tables(metadata)


@hookimpl
def crbm_file_references(site):
    from plugins.activities import attachments

    return [(attachments.TABLE, "file_key")]  # Maintenance keeps the notes' attachments


@hookimpl
def crbm_job_handlers(site):
    from plugins.activities import invitations, reminders

    return [*invitations.job_handlers(), *reminders.job_handlers()]


@hookimpl(tryfirst=True)  # before the generic /m/{module}/{id}/... routes
def crbm_web_routes(site):
    from starlette.routing import Route

    from plugins.activities import attachments, web
    from plugins.activities.recurrence_web import URL, limits_page

    return [*attachments.routes, *web.routes,
            Route(URL, limits_page, methods=["GET", "POST"])]


@hookimpl
def crbm_jinja_environment(site, env):
    from plugins.activities import attachments
    attachments.jinja(site, env)


@hookimpl
def crbm_api_actions(site):
    from plugins.activities import api_actions

    return api_actions.actions()


# -- recurrence and reminders (recurrence.py, reminders.py) ------------------------------------

@hookimpl
def crbm_field_types(site):
    from plugins.activities.recurrence import RecurrenceType
    return [RecurrenceType(site)]


@hookimpl(specname="crbm_before_save")
@for_modules("meetings", "calls", "tasks")
def occurrences_detach_when_edited(site, module, batch, user, connection) -> None:
    from plugins.activities import recurrence
    recurrence.before_save(site, module, batch, user, connection)


@hookimpl(specname="crbm_after_save")
@for_modules("meetings", "calls", "tasks")
def series_materialise_on_save(site, module, batch, user, connection) -> None:
    from plugins.activities import recurrence
    recurrence.after_save(site, module, batch, user, connection)


@hookimpl(specname="crbm_before_delete")
@for_modules("meetings", "calls", "tasks")
def series_take_their_future_occurrences(site, module, records, user, connection) -> None:
    from plugins.activities import recurrence
    recurrence.before_delete(site, module, records, user, connection)


@hookimpl
def crbm_scheduled_tasks(site):
    from plugins.activities import recurrence, reminders
    return [ScheduledTask(recurrence.TASK, N_("Create the occurrences of recurring activities"),
                          recurrence.run_task, "@every 1h"),
            ScheduledTask(reminders.TASK, N_("Send call and meeting reminders"),
                          reminders.run_task, "@every 1m")]


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Recurring activities"), "/admin/recurring-activities",
                      N_("How far ahead, and how many at a time, the occurrences of recurring "
                         "calls, meetings and tasks are made."))]


@hookimpl(specname="crbm_tables")
def ical_tables(metadata):
    from plugins.activities import ical

    ical.tables(metadata)


@hookimpl(specname="crbm_web_routes")
def ical_web_routes(site):
    from plugins.activities import ical_web

    return ical_web.routes


@hookimpl(specname="crbm_record_actions")
@for_modules("meetings", "calls", "tasks")  # ical.MODULES
def ical_record_actions(site, module, record, user):
    from core.web.actions import Action

    return [Action(N_("Export .ics"), f"/ical/export/{module.name}/{record['id']}.ics")]


@hookimpl(specname="crbm_list_actions")
@for_modules("meetings", "calls", "tasks")  # ical.MODULES
def ical_list_actions(site, module, user):
    if not site.access.can(user, module, "export"):
        return []
    exports = [ListAction(N_("Export .ics"), f"/ical/export/{module.name}")] \
        if exporting.may_export(site, user, module) else []  # the site's export setting too
    return [*exports, ListAction(N_("Import .ics…"), "/ical/import")]


@hookimpl(specname="crbm_jinja_environment")
def ical_jinja_environment(site, env):
    from plugins.activities import ical

    env.globals.setdefault("preference_sections", []).append("ical_preferences.html")
    env.globals["calendar_feed_status"] = lambda user: ical.feed_status(site, user.id)
