"""Demo activities: for the first demo accounts (a handful whatever the demo's size) and
their contacts, the story of a sales relationship — calls and meetings in the last weeks
held (now and then not held), the next ones planned, tasks done and to do, notes. Times fall
in the company's work day (Admin → Company calendar); the same seed makes the same story.
Resources: three meeting rooms with their equipment, a projector and a conference phone;
planned meetings invite their assignee, the account's contacts and, in our office, a free
room (the demo goes through the same save rules: no double booking). The demo mails no
invitation. Colleagues: three users of the Sales and Support departments (signing in needs a
password an administrator gives them) share the accounts with the demo's user and the weekly
pipeline meeting, so the company calendar has people side by side."""
from __future__ import annotations

import datetime as dt
import secrets

from core.apps.calendar.settings import calendar_settings
from core.kernel.errors import NotFoundError
from core.kernel.records import Query, User
from core.kernel.users import create_user, get_user

ACCOUNTS = 12
PIPELINE = "Weekly pipeline review"
CALLS = ("Follow-up on the proposal", "Introductory call", "Support escalation",
         "Renewal check-in", "Pricing questions", "Reference call", "Onboarding kick-off")
MEETINGS = ("Quarterly business review", "Product demo", "Contract negotiation",
            "Technical workshop", "Site visit", "Executive lunch")
LOCATIONS = ("Their office", "Our office, room 2", "Video call", "Café near their office")
TASKS = ("Send the updated quote", "Prepare the demo environment", "Check credit terms",
         "Draft the statement of work", "Book the site visit", "Send meeting minutes",
         "Update the contact list")
NOTES = (("Buying process", "Decisions over 20k go to the CFO; budget is set in October."),
         ("Competitors", "They also talk to two competitors; price matters less than support."),
         ("Preferences", "Prefers calls in the morning; email summaries after every meeting."))


def _at(cal, day: dt.date, rng) -> dt.datetime:
    """A time in the company's work day on ``day``, on the half hour, stored as UTC."""
    start = cal.work_day_start.hour * 60 + cal.work_day_start.minute
    end = cal.work_day_end.hour * 60 + cal.work_day_end.minute - 60
    minutes = start + 30 * rng.randrange(max(1, (end - start) // 30))
    local = dt.datetime.combine(day, dt.time(minutes // 60, minutes % 60), tzinfo=cal.tz)
    return local.astimezone(dt.UTC)


COLLEAGUES = (("sophie.martin", "Sophie Martin", "Sales"), ("tom.becker", "Tom Becker", "Sales"),
              ("priya.nair", "Priya Nair", "Support"))


def _colleagues(site, user) -> list[User]:
    """The demo's colleagues (made once, without a usable password), and the demo user in
    the Sales department."""
    users = site.tables.tables["crbm_users"]
    out = []
    for username, name, department in COLLEAGUES:
        try:
            found = get_user(site, username)
        except NotFoundError:
            found = create_user(site, username, secrets.token_urlsafe(24) + "aA1!")
        with site.engine.begin() as conn:
            conn.execute(users.update().where(users.c.id == found.id).values(
                display_name=name, department=department,
                email=f"{username}@crbm-demo.example"))
        out.append(found)
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == user.id, users.c.department.is_(None))
                     .values(department="Sales"))
    return out


def load(site, user, rng) -> None:
    if site.records.count("calls", user, cap=0):
        return  # once
    team = [user, *_colleagues(site, user)]
    accounts = site.records.list("accounts", user, Query(fields=["id", "name"], sort="name",
                                                         limit=ACCOUNTS))
    if not accounts:
        return
    people: dict[str, list[dict]] = {}
    for c in site.records.list("contacts", user, Query(
            fields=["id", "account_id"], filters=[("account_id", "in",
                                                   [a["id"] for a in accounts])], limit=None)):
        people.setdefault(c["account_id"], []).append(c)
    cal = calendar_settings(site)
    today = cal.today()
    calls, meetings, tasks, notes, meeting_contacts = [], [], [], [], []
    for account in accounts:
        contacts = people.get(account["id"], [])

        def about(account=account, contacts=contacts) -> dict:
            """The record an activity is about: the account, or now and then a contact."""
            if contacts and rng.random() < 0.4:
                return {"parent_id": rng.choice(contacts)["id"], "parent_type": "contacts"}
            return {"parent_id": account["id"], "parent_type": "accounts"}

        # the demo user's accounts, and now and then a colleague's: the company calendar
        owner = user if rng.random() < 0.5 else rng.choice(team)
        base = {"assigned_user_id": owner.id}
        for days in (-rng.randint(20, 40), -rng.randint(3, 15), rng.randint(2, 20)):
            status = "planned" if days > 0 else rng.choice(("held", "held", "held", "not_held"))
            calls.append({**base, **about(), "account_id": account["id"],
                          "name": rng.choice(CALLS), "status": status,
                          "direction": rng.choice(("outbound", "outbound", "inbound")),
                          "date_start": _at(cal, today + dt.timedelta(days=days), rng),
                          "duration_minutes": rng.choice((10, 15, 15, 30, 45))})
        for days in (-rng.randint(10, 60), rng.randint(5, 30)):
            start = _at(cal, today + dt.timedelta(days=days), rng)
            meeting_contacts.append(contacts)
            meetings.append({**base, **about(), "name": rng.choice(MEETINGS),
                             "status": "planned" if days > 0 else "held",
                             "location": rng.choice(LOCATIONS), "date_start": start,
                             "date_end": start + dt.timedelta(minutes=rng.choice((30, 60, 90))),
                             **({"reminder_minutes": 15, "reminder_popup": True}
                                if days > 0 else {})})
        for done, days in ((True, -rng.randint(5, 30)), (False, rng.randint(1, 14))):
            contact = rng.choice(contacts)["id"] if contacts else None
            tasks.append({**base, **about(), "name": rng.choice(TASKS), "contact_id": contact,
                          "status": "completed" if done else rng.choice(
                              ("not_started", "in_progress", "pending_input")),
                          "priority": rng.choice(("high", "medium", "medium", "low")),
                          "date_start": today + dt.timedelta(days=days - 3),
                          "date_due": today + dt.timedelta(days=days)})
        subject, text = rng.choice(NOTES)
        notes.append({**base, **about(), "name": subject, "description": text})
    # the recurring ones (plugins/activities/recurrence.py): the team's weekly pipeline
    # meeting on Mondays for the quarter, a fortnightly call with the first account, and a
    # monthly report task; their occurrences are made on save
    monday = today - dt.timedelta(days=today.weekday())
    start = dt.datetime.combine(monday, dt.time(9, 30), tzinfo=cal.tz).astimezone(dt.UTC)
    meetings.append({"assigned_user_id": user.id, "name": PIPELINE,
                     "location": "Video call", "date_start": start,
                     "date_end": start + dt.timedelta(hours=1), "status": "planned",
                     "recurrence_rule": "FREQ=WEEKLY;BYDAY=MO;COUNT=13",
                     "recurrence_tz": str(cal.tz), "reminder_minutes": 10,
                     "reminder_popup": True})
    meeting_contacts.append([])  # the team only: invited below, with every coming week
    calls.append({"assigned_user_id": user.id, "parent_id": accounts[0]["id"],
                  "parent_type": "accounts", "account_id": accounts[0]["id"],
                  "name": f"Fortnightly check-in with {accounts[0]['name']}",
                  "direction": "outbound", "status": "planned", "duration_minutes": 30,
                  "date_start": _at(cal, today + dt.timedelta(days=1), rng),
                  "recurrence_rule": "FREQ=WEEKLY;INTERVAL=2;COUNT=8",
                  "recurrence_tz": str(cal.tz)})
    tasks.append({"assigned_user_id": user.id, "name": "Send the monthly sales report",
                  "priority": "medium", "status": "not_started",
                  "date_due": (today.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
                  - dt.timedelta(days=1),  # the last day of this month
                  "recurrence_rule": "FREQ=MONTHLY;BYMONTHDAY=-1;COUNT=6",
                  "recurrence_tz": str(cal.tz)})
    made = {}
    for module, rows in (("calls", calls), ("meetings", meetings), ("tasks", tasks),
                         ("notes", notes)):
        made[module] = site.records.create_many(module, rows, user)
    _invitees(site, user, rng, list(zip(made["meetings"], meetings, meeting_contacts)), team)


RESOURCES = (
    {"name": "Salle Lumière", "resource_type": "meeting_room", "location": "2nd floor",
     "capacity": 12, "has_tv": True, "has_projector": True, "has_screen": True,
     "has_conf_phone": True},
    {"name": "Salle Verte", "resource_type": "meeting_room", "location": "2nd floor",
     "capacity": 6, "has_screen": True, "has_pc": True},
    {"name": "Boardroom", "resource_type": "meeting_room", "location": "3rd floor",
     "capacity": 20, "has_tv": True, "has_projector": True, "has_screen": True,
     "has_pc": True, "has_conf_phone": True},
    {"name": "Mobile projector", "resource_type": "projector", "location": "IT desk"},
    {"name": "Polycom conference phone", "resource_type": "conference_phone",
     "location": "IT desk"},
)


def _invitees(site, user, rng, meetings, team) -> None:
    """Resources, then invitees of the planned meetings: the assignee, one or two of the
    account's contacts and, in our office, a free room; the whole team to the pipeline
    review (no contacts)."""
    from plugins.activities import invitations

    rooms = site.records.create_many("resources", [dict(r) for r in RESOURCES], user)
    booked: dict[str, list[tuple]] = {}
    rows = []
    for meeting_id, meeting, contacts in meetings:
        if meeting["status"] != "planned":
            continue
        rows.append({"meeting_id": meeting_id, "user_id": meeting["assigned_user_id"],
                     "accept_status": "accepted"})
        if meeting["name"] == PIPELINE:  # the team's own meeting
            rows += [{"meeting_id": meeting_id, "user_id": member.id,
                      "accept_status": rng.choice(("accepted", "accepted", "tentative"))}
                     for member in team if member.id != meeting["assigned_user_id"]]
        for contact in rng.sample(contacts, min(len(contacts), rng.choice((1, 2)))):
            rows.append({"meeting_id": meeting_id, "invitee_id": contact["id"],
                         "invitee_type": "contacts",
                         "accept_status": rng.choice(("none", "accepted", "tentative"))})
        if "Our office" in meeting["location"]:
            span = (meeting["date_start"], meeting["date_end"])
            for room in rooms[:3]:
                if all(not (s < span[1] and e > span[0]) for s, e in booked.get(room, [])):
                    booked.setdefault(room, []).append(span)
                    rows.append({"meeting_id": meeting_id, "invitee_id": room,
                                 "invitee_type": "resources", "accept_status": "accepted"})
                    break
    with invitations.quiet():
        site.records.create_many("invitees", rows, user)
