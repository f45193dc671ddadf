"""Reminders of calls and meetings as the assigned user meets them: an email (in their
language) and/or a notification N minutes before the start, exactly once per reminder even
with two job workers scanning and sending at the same time; nothing for a held meeting, a
cancelled reminder, or a start long past."""
import datetime as dt
import threading
import time

import pytest
import sqlalchemy as sa

from core import jobs
from core.apps.notifications import inbox
from core.jobs.worker import Worker
from core.kernel.users import create_user, save_preferences
from plugins.activities import reminders
from tests.pack_util import install_folder

START = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=10)


@pytest.fixture(autouse=True)
def _start_soon():
    """Ten minutes from the test's own now (a module constant would be from collection
    time, long past when a whole suite reaches this file)."""
    global START
    START = dt.datetime.now(dt.UTC).replace(second=0, microsecond=0) + dt.timedelta(minutes=10)


def wait_for(condition, seconds: float = 60, what: str = "the condition"):
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def marie(site):
    install_folder(site, "lang_fr")
    user = create_user(site, "marie", "correct horse battery", email="marie@example.com")
    save_preferences(site, user.id, {"language": "fr", "timezone": "Europe/Paris"})
    return user


@pytest.fixture
def fast_jobs(monkeypatch):
    monkeypatch.setenv("CRBM_JOBS_TICK", "0.05")
    monkeypatch.setenv("CRBM_JOBS_POLL", "0.05")


def meeting(site, admin, user, n, **more):
    values = {"name": f"Pipeline review {n}", "location": "Room 4", "date_start": START,
              "date_end": START + dt.timedelta(hours=1), "assigned_user_id": user.id,
              "reminder_minutes": 15, "reminder_email": True, "reminder_popup": True, **more}
    return values


def statuses(site):
    table = site.tables.tables[reminders.TABLE]
    with site.engine.connect() as conn:
        return [r.status for r in conn.execute(sa.select(table.c.status))]


def test_fifty_reminders_due_the_same_minute_make_exactly_fifty_emails_with_two_workers(
        site, make_site, admin, marie, smtp_inbox, fast_jobs):
    site.records.create_many("meetings", [meeting(site, admin, marie, n) for n in range(50)],
                             admin)
    other = make_site()  # a second process on the same database: its own queue engine
    workers = [Worker(site, concurrency=2, scheduler_tick=False).start(),
               Worker(other, concurrency=2, scheduler_tick=False).start()]
    try:
        now = dt.datetime.now(dt.UTC)
        claimed, barrier = [], threading.Barrier(4)

        def scan(on):
            barrier.wait()
            claimed.append(reminders.scan(on, now))

        threads = [threading.Thread(target=scan, args=(s,)) for s in (site, other) * 2]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sum(claimed) == 50  # every reminder claimed by exactly one scan
        wait_for(lambda: statuses(site).count("sent") == 50, what="50 reminders sent")
        # a redelivered job and another scan send nothing more
        table = site.tables.tables[reminders.TABLE]
        with site.engine.connect() as conn:
            some = conn.execute(sa.select(table.c.id).limit(3)).scalars().all()
        for reminder_id in some:
            assert reminders.send_job(other, {"id": reminder_id}) == "already taken"
        assert reminders.scan(other, now) == 0
        time.sleep(0.5)  # let any stray duplicate arrive before counting
    finally:
        for w in workers:
            w.stop()
        jobs.close(other)
    assert len(smtp_inbox.messages) == 50
    assert {m["To"] for m in smtp_inbox.messages} == {"marie@example.com"}
    subjects = sorted(m["Subject"] for m in smtp_inbox.messages)
    assert len(set(subjects)) == 50
    assert subjects[0].startswith("Rappel : Réunion « Pipeline review 0 »")  # her language
    body = smtp_inbox.messages[0].get_content()
    assert "Room 4" in body
    # and the bell: one notification each, in French
    page = inbox.page(site, marie, size=100)
    assert len(page.items) == 50
    assert page.items[0].message.startswith("Rappel : Réunion")


def test_no_reminder_for_a_held_meeting_a_past_start_or_no_reminder(site, admin, marie,
                                                                     smtp_inbox):
    site.records.create_many("meetings", [
        meeting(site, admin, marie, 1, status="held"),
        meeting(site, admin, marie, 2, reminder_minutes=None),
        meeting(site, admin, marie, 3, reminder_email=False, reminder_popup=False),
        meeting(site, admin, marie, 4, date_start=START - dt.timedelta(hours=3),
                date_end=START - dt.timedelta(hours=2)),
        meeting(site, admin, marie, 5, reminder_minutes=5),  # not yet: 10 minutes to go
    ], admin)
    assert reminders.scan(site, dt.datetime.now(dt.UTC)) == 0
    assert inbox.page(site, marie).items == []


def test_a_popup_only_reminder_notifies_once_and_mails_nothing(site, admin, marie, smtp_inbox):
    site.records.create("calls", {"name": "Call Acme back", "date_start": START,
                                  "assigned_user_id": marie.id, "reminder_minutes": 30,
                                  "reminder_popup": True}, admin)
    now = dt.datetime.now(dt.UTC)
    assert reminders.scan(site, now) == 1
    assert reminders.scan(site, now) == 0
    jobs.run_due_jobs(site)
    assert smtp_inbox.messages == []
    [note] = inbox.page(site, marie).items
    assert "Appel « Call Acme back »" in note.message and note.module == "calls"
    # moved later: a new time, a new reminder
    table = site.records.table(site.registry.module("calls"))
    with site.engine.connect() as conn:
        call_id = conn.execute(sa.select(table.c.id)).scalar()
    site.records.update("calls", call_id, {"date_start": START + dt.timedelta(minutes=5)}, admin)
    assert reminders.scan(site, now) == 1
    assert len(inbox.page(site, marie).items) == 2


def test_reminder_fields_are_checked(site, admin, marie):
    from core.kernel.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        site.records.create("meetings", meeting(site, admin, marie, 1, reminder_minutes=-5),
                            admin)
    assert set(caught.value.errors) == {"reminder_minutes"}
    assert site.records.count("meetings", admin) == 0
