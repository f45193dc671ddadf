"""At run time: the scheduled scan (one statement per workflow, once per record and due
day), the webhook action against a real local HTTP server (signed as core.apps.webhooks
signs; a 500 retried, then delivered), create_record with the trigger's values, and a
recipient without an email address logged on the run history."""
from __future__ import annotations

import datetime as dt
import json
import threading
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import time_machine

from core.apps.webhooks.webhooks import signature
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from plugins.workflows import engine
from plugins.workflows.tests.conftest import make_workflow, runs
from plugins.workflows.tests.wf_probe import plugin as probe

T0 = dt.datetime(2031, 5, 12, 8, 0, tzinfo=dt.UTC)


def test_the_scheduled_scan_acts_once_per_record_and_day(wsite, admin, queue):
    make_workflow(wsite, admin, "wf_leads", [{"type": "wf_probe.mark", "label": "stale"}],
                  {"group": "all_of", "conditions": [
                      {"field": "temperature", "when": "current", "operator": "is",
                       "value": "hot"},
                      {"field": "contacted_on", "when": "current", "operator": "before",
                       "date": {"kind": "offset", "amount": -2, "unit": "days"}}]},
                  trigger="scheduled", name="Hot leads not contacted for two days")
    with time_machine.travel(T0, tick=False):
        stale = wsite.records.create("wf_leads", {"name": "Stale", "temperature": "hot",
                                                  "contacted_on": dt.date(2031, 5, 1)}, admin)
        wsite.records.create("wf_leads", {"name": "Fresh", "temperature": "hot",
                                          "contacted_on": dt.date(2031, 5, 11)}, admin)
        wsite.records.create("wf_leads", {"name": "Cold", "temperature": "cold",
                                          "contacted_on": dt.date(2031, 5, 1)}, admin)
        assert engine.process(wsite, T0) == "1 record(s) acted on"
        assert engine.process(wsite, T0 + dt.timedelta(minutes=15)) == "0 record(s) acted on"
        queue.drain()
    assert probe.MARKS == [(stale["id"], "stale")]
    with time_machine.travel(T0 + dt.timedelta(days=1), tick=False):
        engine.process(wsite, T0 + dt.timedelta(days=1))
        queue.drain()
    assert len(probe.MARKS) == 2  # the next day, once more


class Receiver(BaseHTTPRequestHandler):
    answers: typing.ClassVar[list[int]] = []
    received: typing.ClassVar[list[tuple[dict, bytes]]] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Receiver.received.append((dict(self.headers), body))
        self.send_response(Receiver.answers.pop(0) if Receiver.answers else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def receiver():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    Receiver.answers, Receiver.received = [], []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def test_a_webhook_answering_500_is_retried_then_delivered_signed(wsite, admin, queue,
                                                                   receiver):
    make_workflow(wsite, admin, "wf_leads",
                  [{"type": "webhook", "url": receiver, "secret": "s3cret"}])
    Receiver.answers = [500]
    lead = wsite.records.create("wf_leads", {"name": "Hooked"}, admin)
    [job] = queue.jobs
    queue.drain()
    assert len(queue.failures) == 1  # raised: the queue retries it
    [run] = runs(wsite, record_id=lead["id"])
    assert (run["status"], run["message"]) == ("pending", "retrying: webhook: HTTP 500")
    queue.jobs.append(job)  # the queue's retry
    queue.drain()
    [run] = runs(wsite, record_id=lead["id"])
    assert (run["status"], run["message"]) == ("done", "webhook: HTTP 200")
    headers, body = Receiver.received[-1]
    assert headers["X-CRBM-Signature"] == signature("s3cret", body)
    assert json.loads(body)["record"]["name"] == "Hooked"
    queue.jobs.append(job)  # a redelivery: nothing sent again
    queue.drain()
    assert len(Receiver.received) == 2


def test_create_record_fills_values_from_the_trigger(wsite, admin, queue):
    make_workflow(wsite, admin, "contacts", [
        {"type": "create_record", "module": "emails", "link_field": "parent_id",
         "values": {"name": "Follow up {{ last_name }}"}}], applies_to="new")
    contact = wsite.records.create("contacts", {"last_name": "Lovelace"}, admin)
    [created] = wsite.records.list("emails", SYSTEM_USER, Query(
        filters={"parent_id": contact["id"]}))
    assert created["name"] == "Follow up Lovelace"


def test_a_recipient_without_email_fails_the_run_with_the_reason(wsite, admin, queue):
    nomail = create_user(wsite, "nomail", "Sales-pass-word-1")
    note = wsite.records.create("email_templates", {
        "name": "Note", "for_module": "wf_leads", "language": "en", "subject": "{{ name }}",
        "body_html": "<p>{{ name }}</p>"}, admin)
    workflow = make_workflow(wsite, admin, "wf_leads", [
        {"type": "send_email", "template_id": note["id"], "to": [{"kind": "assigned_user"}]}])
    wsite.records.create("wf_leads", {"name": "Nobody", "assigned_user_id": nomail.id}, admin)
    queue.drain()
    [run] = runs(wsite, workflow_id=workflow["id"])
    assert run["status"] == "failed"
    assert run["message"] == "no recipient: assigned user: nomail has no email address"
    assert queue.failures == []


def test_a_template_broken_after_save_fails_the_run_with_the_reason(wsite, admin, queue):
    bob = create_user(wsite, "bob", "Sales-pass-word-1", email="bob@example.com")
    note = wsite.records.create("email_templates", {
        "name": "Note", "for_module": "wf_leads", "language": "en", "subject": "{{ name }}",
        "body_html": "<p>{{ name }}</p>"}, admin)
    workflow = make_workflow(wsite, admin, "wf_leads", [
        {"type": "send_email", "template_id": note["id"], "to": [{"kind": "assigned_user"}]}])
    table = wsite.records.table(wsite.registry.module("email_templates"))
    with wsite.engine.begin() as conn:  # broken behind the form's back
        conn.execute(table.update().values(body_html="<p>{{ vanished_field }}</p>"))
    wsite.records.create("wf_leads", {"name": "Broken", "assigned_user_id": bob.id}, admin)
    queue.drain()
    [run] = runs(wsite, workflow_id=workflow["id"])
    assert run["status"] == "failed" and "vanished_field" in run["message"]
    assert run["message"].startswith("template: ")
    assert queue.failures == []  # not retried: it cannot succeed later


def test_notify_tells_the_assigned_user_once(wsite, admin, queue):
    import sqlalchemy as sa
    bob = create_user(wsite, "bob", "Sales-pass-word-1")
    workflow = make_workflow(wsite, admin, "wf_leads", [
        {"type": "notify", "to": [{"kind": "assigned_user"}],
         "message": "{{ name }} is yours now"}], applies_to="new")
    lead = wsite.records.create("wf_leads", {"name": "Acme lead", "assigned_user_id": bob.id},
                                admin)
    [job] = queue.jobs
    queue.drain()
    run = runs(wsite, workflow_id=workflow["id"])[0]
    runs_table = wsite.records.table(wsite.registry.module("workflow_runs"))
    with wsite.engine.begin() as conn:  # as if the worker died before marking it done
        conn.execute(runs_table.update().values(status="pending"))
    queue.jobs.append(job)
    queue.drain()
    table = wsite.tables.tables["crbm_notifications"]
    with wsite.engine.connect() as conn:
        rows = conn.execute(sa.select(table.c.user_id, table.c.message, table.c.record_id)
                            ).all()
    assert run["message"] == "notified 1 user(s)", (run["status"], queue.failures)
    assert [tuple(r) for r in rows] == [(bob.id, "Acme lead is yours now", lead["id"])]
    assert run["message"] == "notified 1 user(s)"
