"""Web forms over real HTTP (the site served by uvicorn): a submission from the form's web
site creates the contact through the record service, assigned to the form's user, who gets
an email (aiosmtpd) from the job queue; every bad post is refused with a clear message and
creates nothing — missing fields, a honeypot hit, a flood from one address, an oversized
body, an unknown or inactive form, another web site, a missing, hasty or stale timestamp."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import sqlalchemy as sa

from core import jobs
from core.kernel.errors import ValidationError
from core.kernel.records import Query
from core.kernel.users import create_user
from core.web import throttle
from plugins.web_forms import forms
from tests.browser import live_server

SITE = "https://www.example.com"
FIELDS = "first_name\nlast_name\nemail1\ndescription"


@pytest.fixture
def sales(site, admin):
    """Sam, who receives the web site's contacts, and the "Contact us" form."""
    sam = create_user(site, "sam", "correct horse battery", display_name="Sam Seller")
    table = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == sam.id).values(email="sam@example.com"))
    form = site.records.create(forms.MODULE, {
        "name": "Contact us", "target_module": "contacts", "form_fields": FIELDS,
        "required_fields": "last_name\nemail1", "allowed_origin": SITE,
        "thank_you_url": f"{SITE}/thanks", "assign_to_id": sam.id}, admin)
    return {"sam": sam, "form": form}


@pytest.fixture
def http(site):
    with live_server(site) as base, httpx.Client(base_url=base) as client:
        yield client


def contacts(site, admin) -> list[dict]:
    return site.records.list("contacts", admin, Query(limit=None, sort="last_name"))


def test_a_design_is_checked_when_it_is_saved(site, admin):
    with pytest.raises(ValidationError) as caught:
        site.records.create(forms.MODULE, {
            "name": "Bad", "target_module": "contacts", "form_fields": "first_name\nshoe_size",
            "required_fields": "email1", "allowed_origin": "example.com"}, admin)
    assert {k: str(v) for k, v in caught.value.errors.items()} == {
        "form_fields": "Contacts have no field a form can ask for named shoe_size",
        "required_fields": "Not among the form's fields: email1",
        "allowed_origin": "Give the web site as https://www.example.com"}
    with pytest.raises(ValidationError) as caught:  # contacts need a last name
        site.records.create(forms.MODULE, {"name": "Short", "target_module": "contacts",
                                           "form_fields": "first_name"}, admin)
    assert str(caught.value.errors["required_fields"]) == \
        "Contacts cannot be saved without these: last_name (add them, required)"
    if "leads" not in site.registry.modules:
        with pytest.raises(ValidationError) as caught:
            site.records.create(forms.MODULE, {"name": "Leads", "target_module": "leads",
                                               "form_fields": "last_name"}, admin)
        assert str(caught.value.errors["target_module"]) == "This site has no leads module."


def test_a_submission_becomes_an_assigned_contact_and_its_assignee_is_mailed(
        site, admin, sales, smtp_inbox, http, web):
    form_id = sales["form"]["id"]
    # the administrator's page: the snippet to paste and its preview
    embed = web.get(f"/admin/web-forms/{form_id}/embed")
    assert embed.status_code == 200
    assert f'action="http://testserver/forms/{form_id}"' in embed.text.replace("&#34;", '"') \
        .replace("&quot;", '"')
    assert forms.HONEYPOT in embed.text and "data-preview" in embed.text
    # the browser's preflight for a script on the form's web site, and no other
    preflight = http.options(f"/forms/{form_id}", headers={
        "Origin": SITE, "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == SITE
    evil = http.options(f"/forms/{form_id}", headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    # a visitor's plain form post from the web site
    sent = http.post(f"/forms/{form_id}", headers={"Origin": SITE}, data={
        "first_name": "Zoé", "last_name": "Zimmer", "email1": "zoe@example.org",
        "description": "Please call me", forms.HONEYPOT: "", "assigned_user_id": admin.id})
    assert sent.status_code == 303 and sent.headers["location"] == f"{SITE}/thanks"
    assert sent.headers["access-control-allow-origin"] == SITE
    [zoe] = [c for c in contacts(site, admin) if c["last_name"] == "Zimmer"]
    assert (zoe["first_name"], zoe["email1"], zoe["description"]) == \
        ("Zoé", "zoe@example.org", "Please call me")
    # created through the record service as Sam, assigned to him (not to what was posted)
    assert zoe["assigned_user_id"] == sales["sam"].id and zoe["created_by"] == sales["sam"].id
    assert zoe["lead_source"] == "web_site"
    assert smtp_inbox.messages == []  # the mail is the job's, after the commit
    # in a thread of its own: procrastinate runs an event loop, and a browser test's
    # Playwright may hold this thread's
    with ThreadPoolExecutor(1) as worker:
        assert worker.submit(jobs.run_due_jobs, site).result() == 1
    [message] = smtp_inbox.messages
    assert message["To"] == "sam@example.com"
    assert message["Subject"] == "New Contact from the web form Contact us: Zoé Zimmer"
    assert "Email: zoe@example.org" in message.get_content()
    assert f"/m/contacts/{zoe['id']}" in message.get_content()
    assert "duplicate" not in message.get_content()
    # the same person again: the assignee is told whom it likely duplicates
    again = http.post(f"/forms/{form_id}", headers={"Origin": SITE}, data={
        "first_name": "Zoe", "last_name": "Zimmer", "email1": "ZOE@example.org"})
    assert again.status_code == 303
    with ThreadPoolExecutor(1) as worker:
        assert worker.submit(jobs.run_due_jobs, site).result() == 1
    twin_mail = smtp_inbox.messages[-1].get_content()
    assert "It may be a duplicate of:" in twin_mail and f"/m/contacts/{zoe['id']}" in twin_mail
    # a script's post (fetch) gets JSON
    fetched = http.post(f"/forms/{form_id}", headers={"Origin": SITE,
                                                       "Accept": "application/json"},
                        json={"last_name": "Young", "email1": "yann@example.org"})
    assert fetched.status_code == 201 and fetched.json()["ok"] is True
    assert fetched.headers["access-control-allow-origin"] == SITE


def test_bad_posts_are_refused_with_a_reason_and_create_nothing(site, admin, sales, http):
    form_id = sales["form"]["id"]
    before = len(contacts(site, admin))

    def post(data=None, form=form_id, **kwargs):
        return http.post(f"/forms/{form}", data=data, headers={
            "Accept": "application/json", **kwargs.pop("headers", {})}, **kwargs)

    missing = post({"first_name": "Ann"})
    assert missing.status_code == 422
    assert missing.json()["message"] == "Please fill in: Last name, Email."
    typed = post({"last_name": "Lee", "email1": "not an address"})
    assert typed.status_code == 422
    assert typed.json()["message"] == "Please correct: Email: 'not an address' is not an " \
        "email address."
    robot = post({"last_name": "Bot", "email1": "bot@example.org", forms.HONEYPOT: "http://x"})
    assert robot.status_code == 201  # told it worked...
    big = post(content=b"last_name=" + b"x" * (70 * 1024),
               headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert big.status_code == 413
    assert big.json()["message"] == "The form is too large (at most 64 KB)."
    unknown = post({"last_name": "Lee"}, form="no-such-form")
    assert unknown.status_code == 404
    assert unknown.json()["message"] == \
        "There is no such web form, or it no longer takes submissions."
    elsewhere = post({"last_name": "Lee", "email1": "a@example.org"},
                     headers={"Origin": "https://evil.example"})
    assert elsewhere.status_code == 403
    assert elsewhere.json()["message"] == "This form may not be sent from https://evil.example."
    site.records.update(forms.MODULE, form_id, {"active": False}, admin)
    inactive = post({"last_name": "Lee", "email1": "a@example.org"})
    assert inactive.status_code == 404
    assert len(contacts(site, admin)) == before  # ...and nothing was kept

    # the signed timestamp, when the form requires one
    site.records.update(forms.MODULE, form_id, {"active": True, "require_token": True}, admin)
    now = forms.clock()
    person = {"last_name": "Lee", "email1": "lee@example.org"}
    for token, said in (
            (None, "The form could not be checked. Reload the page and send it again."),
            (forms.token(site, form_id, now - 30).split(".")[0] + "." + "0" * 64,
             "The form could not be checked. Reload the page and send it again."),
            (forms.token(site, form_id, now),
             "The form was sent too quickly. Wait a moment and send it again."),
            (forms.token(site, form_id, now - 2 * 86_400),
             "The form has expired. Reload the page and send it again.")):
        refused = post({**person, **({forms.TOKEN: token} if token else {})})
        assert (refused.status_code, refused.json()["message"]) == (400, said)
    assert len(contacts(site, admin)) == before
    fresh = http.get(f"/forms/{form_id}/token", headers={"Origin": SITE})
    assert fresh.headers["access-control-allow-origin"] == SITE
    assert fresh.json()["token"].split(".")[0].isdigit()
    accepted = post({**person, forms.TOKEN: forms.token(site, form_id, now - 30)})
    assert accepted.status_code == 201
    assert len(contacts(site, admin)) == before + 1


def test_a_flood_from_one_address_is_cut_at_the_limit(site, admin, sales, http, monkeypatch):
    """200 posts in a minute from one address: the first 20 are taken, the rest refused."""
    monkeypatch.setattr(throttle, "clock", lambda: 1_800_000_030.0)  # mid-window, fixed
    form_id = sales["form"]["id"]
    statuses = []
    for i in range(200):
        answer = http.post(f"/forms/{form_id}", headers={"Accept": "application/json"},
                           data={"last_name": f"Flood {i:03}", "email1": f"f{i}@example.org"})
        statuses.append(answer.status_code)
    assert statuses.count(201) == web_forms_limit(site) == 20
    assert statuses.count(429) == 180 and set(statuses) == {201, 429}
    assert answer.json()["message"].startswith("Too many forms were sent from your address. "
                                               "Try again in ")
    assert int(answer.headers["retry-after"]) > 0
    table = site.records.table(site.registry.module("contacts"))
    with site.engine.connect() as conn:
        made = conn.execute(sa.select(sa.func.count()).where(
            table.c.last_name.like("Flood %"))).scalar()
    assert made == 20


def web_forms_limit(site) -> int:
    from plugins.web_forms import web
    return web._rule(site).limit


def test_the_demo_site_has_a_form_ready_to_embed(site, admin, web):
    import cli
    cli.load_demo(site, admin, 3, seed=1)
    [made] = site.records.list(forms.MODULE, admin)
    assert made["name"] == "Contact us" and made["target_module"] in ("leads", "contacts")
    page = web.get(f"/admin/web-forms/{made['id']}/embed")
    assert page.status_code == 200 and "HTML to paste into your web page" in page.text
    assert "Correct the form" not in page.text
