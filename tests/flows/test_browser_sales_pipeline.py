"""The sales pipeline end to end, as a new customer's first week goes (issue 19's flow):

a visitor sends the web site's "Contact us" form (real HTTP) → a lead is made, assigned per
"Assign New Leads To", and its assignee is mailed (aiosmtpd) → the lead is converted into an
account, a contact and an opportunity on the convert page → the opportunity is dragged
across three stages of the board in Chromium (a mouse on a desktop, a finger on a phone) →
a quote is made from it with its "Create quote" button → it is closed won, which dates it
today. Every step shows in the change logs. Screenshots: the board and the forecast page.
"""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from playwright.sync_api import expect

from core import jobs
from core.kernel.records import Query
from core.kernel.users import create_user
from plugins.web_forms import forms
from tests.apps.board.test_browser_board import touch_drag
from tests.browser import TIMEOUT_MS, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)

SITE = "https://www.example.com"
THREE_STAGES = ("qualification", "needs_analysis", "value_proposition")


def run_jobs(site) -> int:
    # in a thread of its own: the queue's engine may run an event loop, and Playwright holds
    # this thread's
    with ThreadPoolExecutor(1) as worker:
        return worker.submit(jobs.run_due_jobs, site).result()


def log_of(site, module, record_id) -> set[tuple[str, str | None]]:
    return {(e["field"], e["new_value"]) for e in site.records.change_log(module, record_id)}


def moved(response) -> bool:
    """The board's answer to a move (its script shows the card where it lands at once)."""
    return response.url.endswith("/board/move") and response.request.method == "POST"


def stage_column(page, value):
    return page.locator(f'.board-column[data-column="{value}"]')


def test_a_web_lead_becomes_a_won_deal_with_a_quote(site, admin, smtp_inbox, server, page,
                                                     viewport):
    # Sam receives new leads; the web site's form names nobody, so "Assign New Leads To" does
    sam = create_user(site, "sam", "correct horse battery", display_name="Sam Seller")
    users = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == sam.id).values(email="sam@example.com"))
    site.set_setting("leads", {"assign_new_leads_to": sam.id, "business_model": "b2b"})
    form = site.records.create(forms.MODULE, {
        "name": "Contact us", "target_module": "leads",
        "form_fields": "first_name\nlast_name\naccount_name\nemail1\ndescription",
        "required_fields": "last_name\nemail1", "allowed_origin": SITE}, admin)

    # 1. the visitor's post, over real HTTP from the web site
    sent = httpx.post(f"{server}/forms/{form['id']}", headers={"Origin": SITE}, data={
        "first_name": "Ada", "last_name": "Lovelace", "account_name": "Analytical Engines",
        "email1": "ada@engines.example", "description": "Forty machines, please",
        forms.HONEYPOT: ""})
    assert sent.status_code == 303, sent.text
    [lead] = site.records.list("leads", admin, Query(filters=[("last_name", "eq", "Lovelace")],
                                                     fields=["id", "assigned_user_id",
                                                             "status", "lead_source"]))
    assert (lead["assigned_user_id"], lead["status"], lead["lead_source"]) == \
        (sam.id, "new", "web_site")
    assert run_jobs(site) >= 1
    [mail] = [m for m in smtp_inbox.messages if m["To"] == "sam@example.com"]
    assert "Lovelace" in mail["Subject"] and f"/m/leads/{lead['id']}" in mail.get_content()

    # 2. converted on its page: account, contact and opportunity in one go
    log_in(page)
    page.goto(f"/m/leads/{lead['id']}")
    page.get_by_role("link", name="Convert lead").click()
    page.get_by_label("Create an opportunity").check()
    page.get_by_label("Opportunity name").fill("Analytical Engines - 40 machines")
    page.get_by_label("Amount").fill("40000")
    page.get_by_label("Expected close date").fill(
        (dt.date.today() + dt.timedelta(days=60)).isoformat())
    page.get_by_label("Sales stage").select_option("prospecting")
    page.get_by_role("button", name="Convert", exact=True).click()
    expect(page.get_by_role("heading", name="Ada Lovelace")).to_be_visible()
    lead = site.records.get("leads", lead["id"], admin)
    assert lead["status"] == "converted" and lead["converted_contact_id"]
    [deal] = site.records.list("opportunities", admin, Query(
        filters=[("lead_id", "eq", lead["id"])],
        fields=["id", "account_id", "sales_stage", "probability", "amount"]))
    assert deal["account_id"] == lead["converted_account_id"]
    assert (deal["sales_stage"], deal["probability"]) == ("prospecting", 10)

    # 3. across three stages of the board
    page.goto("/m/opportunities/board")
    card = page.locator("[data-card]", has_text="Analytical Engines - 40 machines")
    expect(stage_column(page, "prospecting").locator("[data-card]")).to_have_count(1)
    screenshot(page, "pipeline-board", viewport)
    for stage in THREE_STAGES:
        target = stage_column(page, stage)
        card.scroll_into_view_if_needed()
        with page.expect_response(moved) as answer:
            if viewport == "phone":  # a finger on the card's grip, lifted over the next column
                touch_drag(page, card.locator(".board-grip"), target.locator(".board-cards"))
            else:
                card.drag_to(target.locator(".board-cards"))
        assert answer.value.ok
        expect(target.locator("[data-card]", has_text="Analytical Engines")).to_have_count(1)
        expect(target.locator("[data-count]")).to_have_text("1")
    expect(card.locator(".board-weight")).to_have_text("30%")  # the card drawn again
    deal = site.records.get("opportunities", deal["id"], admin)
    assert (deal["sales_stage"], deal["probability"]) == ("value_proposition", 30)
    screenshot(page, "pipeline-board-moved", viewport)

    # 4. a quote from the deal: the new-quote form comes filled in
    page.goto(f"/m/opportunities/{deal['id']}")
    page.get_by_role("link", name="Create quote").click()
    page.get_by_role("button", name="Save").first.click()
    expect(page.get_by_role("heading", name="Analytical Engines - 40 machines")).to_be_visible()
    [quote] = site.records.list("quotes", admin, Query(
        filters=[("opportunity_id", "eq", deal["id"])], fields=["id", "account_id"]))
    assert quote["account_id"] == deal["account_id"]

    # 5. won, by the card's "Move to…" (the keyboard's way): closing dates it today
    page.goto("/m/opportunities/board")
    with page.expect_response(moved) as answer:
        card.get_by_label("Move to…").select_option("closed_won")
    assert answer.value.ok
    expect(stage_column(page, "closed_won").locator("[data-card]", has_text="Analytical")) \
        .to_have_count(1)
    deal = site.records.get("opportunities", deal["id"], admin)
    assert (deal["sales_stage"], deal["probability"], deal["forecast_category"]) == \
        ("closed_won", 100, "closed")
    assert deal["date_closed"] == dt.date.today()  # the site's zone is UTC here

    # every step in the change logs
    assert {("status", "converted"), ("converted_account_id", deal["account_id"])} \
        <= log_of(site, "leads", lead["id"])
    deal_log = log_of(site, "opportunities", deal["id"])
    assert {("sales_stage", s) for s in (*THREE_STAGES, "closed_won")} <= deal_log
    assert ("date_closed", dt.date.today().isoformat()) in deal_log

    # the forecast page shows Sam's won deal... to the administrator viewing Sam
    page.goto(f"/forecasts?user={admin.id}")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    screenshot(page, "pipeline-forecast", viewport)
