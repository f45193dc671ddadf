"""The guide's two workflow examples (§7.5.5) end to end: real email to a local SMTP server
(aiosmtpd), a fixed clock (time-machine) moved day by day, the engine's jobs put on the real
queue (``core.jobs.enqueue``, its key replacing the pending job for Unique) and run when due
by ``core.jobs.run_due_jobs`` — Huey on SQLite/MariaDB, procrastinate on PostgreSQL.

(a) "assigned leads that have a promising temperature which have been ignored for two days
cause a reminder email to be sent to the user to whom the lead is assigned" — leads do not
exist in CRBM yet: the test-only module ``wf_leads`` (wf_probe) stands in. Every save of a
promising assigned lead puts the reminder 2 days later, Unique: only a lead left alone for
two days gets it.
(b) Contacts, "5 quiet days": an action 5 days after the last activity date changes, Unique
— changed on days 1, 2 and 3, exactly one email, on day 8; without Unique, three.
"""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
import time_machine

from core import jobs
from core.kernel.users import create_user
from core.testing import smtp_server
from plugins.workflows.tests.conftest import make_workflow, runs

DAY1 = dt.datetime(2031, 3, 3, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def inbox(wsite):
    """The shared test SMTP server, the workflow site (not ``site``) pointed at it."""
    with smtp_server() as box:
        wsite.set_setting("smtp", box.settings())
        yield box


@pytest.fixture
def due(wsite):
    """Run the jobs due at the (fixed) current time, through the site's real queue."""
    yield lambda: jobs.run_due_jobs(wsite)
    jobs.close(wsite)


@pytest.fixture
def bob(wsite):
    return create_user(wsite, "bob", "Sales-pass-word-1", email="bob@example.com",
                       display_name="Bob Seller")


def template(site, user, module, subject):
    return site.records.create("email_templates", {
        "name": subject, "for_module": module, "language": "en", "subject": subject,
        "body_html": "<p>{{ assigned_user.name }}, have a look at {{ name }}.</p>"}, user)


def on_day(day: int, hour: int = 9):
    return time_machine.travel(DAY1 + dt.timedelta(days=day - 1, hours=hour - 9), tick=False)


def test_a_promising_lead_ignored_for_two_days_reminds_its_assigned_user(
        wsite, admin, bob, inbox, due):
    reminder = template(wsite, admin, "wf_leads", "Reminder: {{ name }} is waiting")
    make_workflow(wsite, admin, "wf_leads", [
        {"type": "send_email", "template_id": reminder["id"], "to": [{"kind": "assigned_user"}],
         "delay": {"amount": 2, "unit": "days"}, "unique": True}],
        {"group": "all_of", "conditions": [
            {"field": "temperature", "when": "current", "operator": "one_of",
             "value": ["warm", "hot"]},
            {"field": "assigned_user_id", "when": "current", "operator": "not_empty"}]},
        name="Promising leads ignored for two days")
    with on_day(1):
        hot = wsite.records.create("wf_leads", {"name": "Hot Inc", "temperature": "hot",
                                                "assigned_user_id": bob.id}, admin)
        wsite.records.create("wf_leads", {"name": "Cold Ltd", "temperature": "cold",
                                          "assigned_user_id": bob.id}, admin)
        due()
    with on_day(2):  # someone works on it: the reminder moves
        wsite.records.update("wf_leads", hot["id"], {"status": "contacted"}, admin)
        due()
    with on_day(3, hour=12):
        due()
        assert inbox.messages == []  # 2 days after day 1, but it was touched on day 2
    with on_day(4, hour=9):
        due()
    [message] = inbox.messages
    assert message["To"] == "bob@example.com"
    assert message["Subject"] == "Reminder: Hot Inc is waiting"
    assert "Bob Seller, have a look at Hot Inc." in message.get_body(("plain",)).get_content()
    statuses = sorted(r["status"] for r in runs(wsite, record_id=hot["id"]))
    assert statuses == ["cancelled", "done"]
    table = wsite.tables.tables["crbm_jobs"]
    with wsite.engine.connect() as conn:  # the queue's own record: replaced, then run
        assert sorted(conn.execute(sa.select(table.c.status)).scalars()) == ["cancelled", "done"]
    with on_day(9):
        due()
    assert len(inbox.messages) == 1


@pytest.mark.parametrize("unique, expected_days", [(True, [8]), (False, [6, 7, 8])])
def test_five_quiet_days(wsite, admin, bob, inbox, due, unique, expected_days):
    quiet = template(wsite, admin, "contacts", "Five quiet days with {{ name }}")
    make_workflow(wsite, admin, "contacts", [
        {"type": "send_email", "template_id": quiet["id"], "to": [{"kind": "assigned_user"}],
         "delay": {"amount": 5, "unit": "days"}, "unique": unique}],
        {"group": "all_of", "conditions": [
            {"field": "last_activity_on", "when": "changed"}]},
        name="5 quiet days", applies_to="existing")
    with on_day(1):
        contact = wsite.records.create("contacts", {"first_name": "Ada", "last_name": "Quiet",
                                                    "assigned_user_id": bob.id}, admin)
    sent_on = []
    for day in range(1, 12):
        with on_day(day):
            if day <= 3:
                wsite.records.update("contacts", contact["id"],
                                     {"last_activity_on": (DAY1 + dt.timedelta(day - 1)).date()},
                                     admin)
            before = len(inbox.messages)
            due()
            sent_on += [day] * (len(inbox.messages) - before)
    assert sent_on == expected_days
    assert {m["Subject"] for m in inbox.messages} == {"Five quiet days with Ada Quiet"}
    assert all(m["To"] == "bob@example.com" for m in inbox.messages)


def test_a_redelivered_send_job_does_not_send_twice(wsite, admin, bob, inbox, queue):
    from plugins.email_templates.render import message_id_for
    note = template(wsite, admin, "wf_leads", "New lead {{ name }}")
    make_workflow(wsite, admin, "wf_leads", [
        {"type": "send_email", "template_id": note["id"], "to": [{"kind": "assigned_user"}]}],
        applies_to="new")
    lead = wsite.records.create("wf_leads", {"name": "Once", "assigned_user_id": bob.id},
                                admin)
    [job] = queue.jobs
    queue.drain()
    queue.jobs.append(job)  # the queue delivers it again (a worker lost after the send)
    queue.drain()
    [message] = inbox.messages
    [run] = runs(wsite, record_id=lead["id"])
    assert run["status"] == "done"
    assert message["Message-ID"] == message_id_for(wsite, run["id"])  # keyed on the run
