"""Webhooks end to end, against a real HTTP receiver on a local port.

The outbox is written in the save's transaction (a rolled-back save sends nothing, a save
does no network I/O), deliveries are signed over the exact body, retried with backoff
(an injected clock, no sleeping), logged, claimed so concurrent senders send each once,
limited to what the subscription's owner may view; the scheduler sends them by itself;
subscriptions are made through the API and the administration pages, and bad input there
is refused with nothing written.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import html
import json
import re
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.apps.admin import access_admin
from core.apps.oauth import oauth
from core.apps.webhooks import webhooks
from core.jobs import scheduler
from core.jobs.worker import Worker
from core.kernel.errors import ValidationError
from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "correct horse battery"
T0 = dt.datetime(2030, 1, 1, 12, 0, tzinfo=dt.UTC)


class Receiver:
    """A webhook endpoint: answers each POST with the next queued status (then 200) and
    keeps what it got."""

    def __init__(self):
        self.lock = threading.Lock()
        self.statuses: list[int] = []
        self.requests: list[tuple[dict, bytes]] = []  # (headers, body)
        handler = self._handler()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver.lock:
                    status = receiver.statuses.pop(0) if receiver.statuses else 200
                    receiver.requests.append(({k.lower(): v for k, v in self.headers.items()},
                                              body))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        return Handler

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    made = Receiver()
    yield made
    made.close()


def closed_port_url() -> str:
    """An address where nothing listens."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/dead"


def log_of(site, webhook_id) -> dict[str, dict]:
    """event -> its delivery (one of each in these tests)."""
    return {row["event"]: row for row in webhooks.deliveries(site, webhook_id)}


def verified(secret: str, headers: dict, body: bytes) -> bool:
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, headers["x-crbm-signature"])


def test_saved_changes_are_signed_delivered_and_retried(site, admin, receiver):
    sub = webhooks.subscribe(site, admin, receiver.url, "widgets",
                             ["created", "updated", "deleted"], ["color"])
    assert sub["secret"] and sub["events"] == ["created", "updated", "deleted"]
    widget = site.records.create("widgets", {"name": "Sprocket", "color": "red"}, admin)
    # the save wrote its delivery and returned: nothing went over the network
    [created] = webhooks.deliveries(site, sub["id"])
    assert (created["status"], created["attempts"], receiver.requests) == ("pending", 0, [])
    site.records.update("widgets", widget["id"], {"color": "blue"}, admin)
    site.records.update("widgets", widget["id"], {"name": "Big sprocket"}, admin)  # filtered out
    site.records.delete("widgets", widget["id"], admin)
    with pytest.raises(RuntimeError), site.engine.begin() as conn:  # a save rolled back
        site.records.create("widgets", {"name": "Ghost", "color": "grey"}, admin,
                            connection=conn)
        raise RuntimeError("changed my mind")
    assert sorted(log_of(site, sub["id"])) == ["created", "deleted", "updated"]

    receiver.statuses = [500, 500]
    outcome = webhooks.deliver_due(site, now=T0)  # created fails; the others wait with it
    assert (outcome.retrying, outcome.deferred, len(receiver.requests)) == (1, 2, 1)
    assert webhooks.deliver_due(site, now=T0 + dt.timedelta(seconds=20)).retrying == 0  # backoff
    assert webhooks.deliver_due(site, now=T0 + dt.timedelta(minutes=1)).retrying == 1
    outcome = webhooks.deliver_due(site, now=T0 + dt.timedelta(minutes=10))
    assert (outcome.delivered, outcome.retrying, outcome.failed) == (3, 0, 0)

    assert [b["event"] for b in receiver.bodies()] == \
        ["created", "created", "created", "updated", "deleted"]  # in the order they happened
    for headers, body in receiver.requests:
        assert verified(sub["secret"], headers, body)
        assert headers["content-type"] == "application/json"
        assert headers["x-crbm-delivery"] == json.loads(body)["id"]
        assert headers["x-crbm-event"] == json.loads(body)["event"]
    headers, body = receiver.requests[-1]
    assert not verified("another secret", headers, body)
    assert not verified(sub["secret"], headers, body.replace(b"Big", b"Small"))
    first, _, _, update, delete = receiver.bodies()
    assert first["record"]["name"] == "Sprocket" and first["record"]["color"] == "red"
    assert first["record_id"] == widget["id"] and first["module"] == "widgets"
    assert "changed" not in first and "deleted" not in first["record"]
    assert update["changed"] == ["color"] and update["record"]["color"] == "blue"
    assert delete["record"]["name"] == "Big sprocket"

    log = log_of(site, sub["id"])
    assert (log["created"]["status"], log["created"]["attempts"],
            log["created"]["last_status_code"], log["created"]["last_error"]) == \
        ("delivered", 3, 200, None)
    assert (log["updated"]["status"], log["updated"]["attempts"]) == ("delivered", 1)
    [listed] = webhooks.subscriptions(site)
    assert listed["last_status"] == "delivered"
    # the delivered log is pruned after 30 days
    today = dt.datetime.now(dt.UTC)
    assert webhooks.prune(site, today + dt.timedelta(days=29)) == 0
    assert webhooks.prune(site, today + dt.timedelta(days=31)) == 3


def test_dead_endpoints_access_and_concurrent_senders(site, admin, receiver):
    dead = webhooks.subscribe(site, admin, closed_port_url(), "widgets", ["created"])
    live = webhooks.subscribe(site, admin, receiver.url, "widgets", ["created"])
    limited = create_user(site, "limited", PASSWORD)
    role = access_admin.create_role(site, "Own widgets")
    access_admin.set_role_rules(site, role, {"widgets": ("enabled", {
        "view": "owner", "list": "owner", "edit": "owner", "delete": "owner"})})
    access_admin.set_role_users(site, role, add=[limited.id])
    # someone who is not an administrator may not make the server call a private address
    with pytest.raises(ValidationError) as refused:
        webhooks.subscribe(site, limited, receiver.url, "widgets", ["created"])
    assert "url" in refused.value.errors
    site.set_setting("webhooks_allow_private_urls", True)
    theirs = webhooks.subscribe(site, limited, receiver.url, "widgets", ["created"])

    site.records.create("widgets", {"name": "Admin's"}, admin)
    mine = site.records.create("widgets", {"name": "Limited's"}, limited)
    assert len(webhooks.deliveries(site, dead["id"])) == 2
    assert len(webhooks.deliveries(site, live["id"])) == 2
    [only] = webhooks.deliveries(site, theirs["id"])  # the record they may view
    assert only["record_id"] == mine["id"]

    site.set_setting("webhooks_max_attempts", 2)
    outcome = webhooks.deliver_due(site, now=T0)
    assert (outcome.delivered, outcome.retrying, outcome.deferred) == (3, 1, 1)
    webhooks.deliver_due(site, now=T0 + dt.timedelta(hours=1))
    failed = [d for d in webhooks.deliveries(site, dead["id"]) if d["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["attempts"] == 2
    assert failed[0]["last_status_code"] is None and "ConnectError" in failed[0]["last_error"]
    assert webhooks.retry(site, failed[0]["id"])  # "Retry now": one more attempt
    webhooks.deliver_due(site)
    again = {d["id"]: d for d in webhooks.deliveries(site, dead["id"])}[failed[0]["id"]]
    assert (again["status"], again["attempts"]) == ("failed", 3)
    assert [b["record"]["name"] for b in receiver.bodies()
            if b["record_id"] == mine["id"]] == ["Limited's", "Limited's"]

    # two senders at once: every delivery is sent exactly once
    webhooks.delete_subscription(site, dead["id"])
    receiver.requests.clear()
    site.records.create_many("widgets", [{"name": f"W{i}"} for i in range(30)], admin)
    start, outcomes = threading.Barrier(2), []

    def send():
        start.wait()
        outcomes.append(webhooks.deliver_due(site))

    senders = [threading.Thread(target=send) for _ in range(2)]
    for sender in senders:
        sender.start()
    for sender in senders:
        sender.join()
    ids = [b["id"] for b in receiver.bodies()]
    assert len(ids) == len(set(ids)) == 30
    assert sum(o.delivered for o in outcomes) == 30


def test_the_scheduler_sends_by_itself(site, admin, receiver, monkeypatch):
    """The embedded job worker (``crbm serve``'s) runs the webhooks.deliver task every
    second here (its default is every 5 s, the site setting webhooks_interval_seconds)."""
    monkeypatch.setenv("CRBM_JOBS_TICK", "0.1")
    webhooks.subscribe(site, admin, receiver.url, "widgets", ["created"])
    assert next(s for s in scheduler.states(site) if s.name == "webhooks.deliver").schedule \
        == "@every 5s"
    scheduler.configure(site, "webhooks.deliver", schedule="@every 1s")
    jobs = Worker(site).start()
    try:
        site.records.create("widgets", {"name": "Scheduled"}, admin)
        deadline = time.monotonic() + 10
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        jobs.stop()
    assert [b["record"]["name"] for b in receiver.bodies()] == ["Scheduled"]


# -- the API ------------------------------------------------------------------------------

def api(site, user) -> TestClient:
    client = TestClient(create_app(site), base_url="https://testserver")
    token = oauth.issue_access_token(site, user.id)["access_token"]
    client.headers["Authorization"] = f"Bearer {token}"
    return client


def count_rows(site, table: str) -> int:
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(
            site.tables.tables[table])).scalar()


def test_subscribing_through_the_api(site, admin, receiver):
    client = api(site, admin)
    created = client.post("/api/v1/webhooks", json={
        "url": receiver.url, "module": "widgets", "events": ["created", "updated"],
        "fields": ["color"]})
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["secret"] and sub["fields"] == ["color"] and sub["module"] == "widgets"
    assert created.headers["location"] == f"/api/v1/webhooks/{sub['id']}"
    site.records.create("widgets", {"name": "Via API"}, admin)
    webhooks.deliver_due(site)
    headers, body = receiver.requests[0]
    assert verified(sub["secret"], headers, body)

    listed = client.get("/api/v1/webhooks").json()["data"]
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0]
    assert listed[0]["last_status"] == "delivered"
    one = client.get(f"/api/v1/webhooks/{sub['id']}")
    assert one.status_code == 200 and "secret" not in one.json()
    [delivery] = client.get(f"/api/v1/webhooks/{sub['id']}/deliveries").json()["data"]
    assert (delivery["event"], delivery["status"], delivery["attempts"]) == \
        ("created", "delivered", 1)

    # a user sees only their own subscriptions, and others' answer 404
    other = create_user(site, "other", PASSWORD)
    theirs = api(site, other)
    assert theirs.get("/api/v1/webhooks").json()["data"] == []
    assert theirs.get(f"/api/v1/webhooks/{sub['id']}").status_code == 404
    assert theirs.delete(f"/api/v1/webhooks/{sub['id']}").status_code == 404
    assert TestClient(create_app(site), base_url="https://testserver") \
        .get("/api/v1/webhooks").status_code == 401

    # bad input: a problem object naming the field, nothing written
    before = count_rows(site, "crbm_webhooks")
    good = {"url": receiver.url, "module": "widgets", "events": ["created"]}
    for change, field in (({"url": "ftp://example.com/hook"}, "url"),
                          ({"url": "https://user:pw@example.com/hook"}, "url"),
                          ({"url": "/relative"}, "url"),
                          ({"module": "nonesuch"}, "module"),
                          ({"events": ["created", "exploded"]}, "events.1"),  # the item at fault
                          ({"events": []}, "events"),
                          ({"events": "created"}, "events"),
                          ({"fields": ["color", "nonesuch"]}, "fields"),
                          ({"secret": "mine"}, "secret"),
                          ({"active": "yes"}, "active")):
        response = client.post("/api/v1/webhooks", json={**good, **change})
        assert response.status_code == 422, (change, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], change
    for raw in (b"{not json", b"\xff\xfe", b""):
        response = client.post("/api/v1/webhooks", content=raw,
                               headers={"Content-Type": "application/json"})
        assert response.status_code == 400 and response.json()["status"] == 400
    assert client.post("/api/v1/webhooks", json=[good]).status_code == 422
    assert client.post("/api/v1/webhooks", content=b" " * 1_100_000,
                       headers={"Content-Type": "application/json"}).status_code == 413
    assert client.get(f"/api/v1/webhooks/{sub['id']}/deliveries?limit=0").status_code == 422
    assert count_rows(site, "crbm_webhooks") == before

    assert client.delete(f"/api/v1/webhooks/{sub['id']}").status_code == 204
    assert client.get(f"/api/v1/webhooks/{sub['id']}").status_code == 404
    assert count_rows(site, "crbm_webhook_deliveries") == 0


# -- the administration pages -------------------------------------------------------------

def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def text_of(response) -> str:
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", response.text)).split())


def signed_in(site, username: str) -> TestClient:
    client = TestClient(create_app(site))
    login = client.get("/login")
    response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": username,
                                           "password": PASSWORD})
    assert response.status_code == 200, response.text[:300]
    client.csrf = csrf_of(response.text)
    return client


def test_administering_webhooks(site, admin, receiver):
    create_user(site, "plain", PASSWORD)
    assert signed_in(site, "plain").get("/admin/webhooks").status_code == 403
    client = signed_in(site, "admin")
    assert "There are no webhooks yet." in text_of(client.get("/admin/webhooks"))
    form = client.get("/admin/webhooks/new")
    assert form.status_code == 200 and 'value="widgets"' in form.text

    refused = client.post("/admin/webhooks/new", data={
        "_csrf": client.csrf, "url": "ftp://example.com/x", "module": "widgets",
        "fields": "colour", "user_id": admin.id, "active": "1"})
    assert refused.status_code == 422
    assert "Nothing was saved" in text_of(refused)
    for message in ("must start with http:// or https://", "choose at least one event",
                    "Widgets has no field 'colour'"):
        assert message in html.unescape(refused.text), message
    assert 'value="ftp://example.com/x"' in refused.text  # what they typed stays
    assert count_rows(site, "crbm_webhooks") == 0

    made = client.post("/admin/webhooks/new", data={
        "_csrf": client.csrf, "url": receiver.url, "module": "widgets",
        "events": ["created", "updated"], "fields": "color", "user_id": admin.id,
        "active": "1"}, follow_redirects=False)
    assert made.status_code == 303
    page_url = made.headers["location"]
    [sub] = webhooks.subscriptions(site)
    detail = client.get(page_url)
    assert sub["secret"] in detail.text and "Nothing has been sent yet." in text_of(detail)
    assert receiver.url in text_of(client.get("/admin/webhooks"))

    receiver.statuses = [503]
    site.set_setting("webhooks_max_attempts", 1)
    record = site.records.create("widgets", {"name": "Logged"}, admin)
    webhooks.deliver_due(site)
    shown = text_of(client.get(page_url))
    assert "Failed" in shown and "HTTP 503" in shown and record["id"] in shown
    [delivery] = webhooks.deliveries(site, sub["id"])
    retried = client.post(f"{page_url}/deliveries/{delivery['id']}/retry",
                          data={"_csrf": client.csrf})
    assert "will be sent again" in text_of(retried)
    webhooks.deliver_due(site)
    shown = text_of(client.get(page_url))
    assert "Delivered" in shown and "Failed" not in shown
    assert [b["record"]["name"] for b in receiver.bodies()] == ["Logged", "Logged"]

    bad_edit = client.post(f"{page_url}/edit", data={
        "_csrf": client.csrf, "url": receiver.url, "module": "widgets", "events": ["nope"],
        "user_id": admin.id, "active": "1"})
    assert bad_edit.status_code == 422 and "unknown event" in html.unescape(bad_edit.text)
    assert webhooks.get_subscription(site, sub["id"])["events"] == ["created", "updated"]
    client.post(f"{page_url}/edit", data={
        "_csrf": client.csrf, "url": receiver.url, "module": "widgets", "events": ["deleted"],
        "fields": "", "user_id": admin.id})
    edited = webhooks.get_subscription(site, sub["id"])
    assert (edited["events"], edited["fields"], edited["active"]) == (["deleted"], None, False)
    client.post(f"{page_url}/secret", data={"_csrf": client.csrf})
    assert webhooks.get_subscription(site, sub["id"])["secret"] != sub["secret"]

    gone = client.post(f"{page_url}/delete", data={"_csrf": client.csrf})
    assert "was deleted" in text_of(gone) and webhooks.subscriptions(site) == []
    assert client.get(page_url).status_code == 404
