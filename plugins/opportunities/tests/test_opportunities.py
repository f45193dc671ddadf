"""The opportunities plugin as a salesperson meets it: the probability and forecast category
follow the stage unless they say otherwise, closing a deal dates it today (a company
setting), contacts take a role on a deal, and a quote is made from a deal."""
import datetime as dt
import re
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
import time_machine

from core.kernel.errors import ValidationError
from core.kernel.records import Query
from plugins.opportunities import plugin


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme Corporation"}, admin)


def deal(site, admin, account, **values):
    return site.records.create("opportunities", {"name": "Rockets", "account_id": account["id"],
                                                 "amount": "12000", **values}, admin)


def test_probability_and_forecast_category_follow_the_stage(site, admin, acme):
    made = deal(site, admin, acme)
    assert (made["sales_stage"], made["probability"], made["forecast_category"]) == \
        ("prospecting", 10, "pipeline")
    assert made["amount"] == Decimal(12000) and made["amount_currency"] == "USD"
    moved = site.records.update("opportunities", made["id"],
                                {"sales_stage": "proposal_price_quote"}, admin, base=made)
    assert moved["probability"] == 65
    # the user's own figure, given with the stage, wins; later saves keep it
    mine = site.records.update("opportunities", made["id"], {"sales_stage": "negotiation_review",
                                                             "probability": 70}, admin, base=moved)
    assert mine["probability"] == 70
    mine = site.records.update("opportunities", made["id"], {"next_step": "Sign"}, admin,
                               base=mine)
    assert mine["probability"] == 70
    mine = site.records.update("opportunities", made["id"], {"forecast_category": "commit"},
                               admin, base=mine)
    lost = site.records.update("opportunities", made["id"], {"sales_stage": "closed_lost"},
                               admin, base=mine)
    assert (lost["probability"], lost["forecast_category"]) == (0, "omitted")
    reopened = site.records.update("opportunities", made["id"], {"sales_stage": "qualification"},
                                   admin, base=lost)
    assert (reopened["probability"], reopened["forecast_category"]) == (20, "pipeline")
    # given at creation, they are kept
    given = deal(site, admin, acme, sales_stage="qualification", probability=35,
                 forecast_category="best_case")
    assert (given["probability"], given["forecast_category"]) == (35, "best_case")
    # the change log tells it
    log = site.records.change_log("opportunities", made["id"])
    assert {"sales_stage", "probability", "forecast_category"} <= {e["field"] for e in log}


def test_bad_values_are_refused_with_the_field_named(site, admin, acme):
    with pytest.raises(ValidationError) as caught:
        site.records.create("opportunities", {"name": "No account", "sales_stage": "won",
                                              "probability": 120}, admin)
    assert set(caught.value.errors) == {"account_id", "sales_stage", "probability"}
    assert site.records.count("opportunities", admin) == 0


def test_closing_sets_the_close_date_to_today_in_the_site_time_zone(site, admin, acme):
    site.set_setting("calendar", {"time_zone": "Pacific/Auckland"})
    # 2026-03-10 20:00 UTC is already the 11th in Auckland
    with time_machine.travel(dt.datetime(2026, 3, 10, 20, 0, tzinfo=dt.UTC), tick=False):
        made = deal(site, admin, acme, date_closed="2026-06-30")
        both = deal(site, admin, acme, date_closed="2026-06-30")
        ids = [made["id"], both["id"]]
        site.records.update_many("opportunities", ids, {"sales_stage": "closed_won"}, admin)
        rows = site.records.list("opportunities", admin, Query(
            filters=[("id", "in", ids)], fields=["date_closed", "probability"]))
        assert {(r["date_closed"], r["probability"]) for r in rows} == \
            {(dt.date(2026, 3, 11), 100)}
        # a date given in the same save is the user's; an import of a past deal keeps its date
        third = deal(site, admin, acme)
        third = site.records.update("opportunities", third["id"], {
            "sales_stage": "closed_lost", "date_closed": "2026-02-01"}, admin, base=third)
        assert third["date_closed"] == dt.date(2026, 2, 1)
        past = deal(site, admin, acme, sales_stage="closed_won", date_closed="2025-11-30")
        assert past["date_closed"] == dt.date(2025, 11, 30)
        undated = deal(site, admin, acme, sales_stage="closed_won")
        assert undated["date_closed"] == dt.date(2026, 3, 11)
        # the company setting off: the date stays
        site.set_setting(plugin.SETTING, {"auto_close_date": False})
        kept = deal(site, admin, acme, date_closed="2026-06-30")
        kept = site.records.update("opportunities", kept["id"], {"sales_stage": "closed_won"},
                                   admin, base=kept)
        assert kept["date_closed"] == dt.date(2026, 6, 30)


def test_contacts_with_their_roles_on_both_pages(site, admin, acme):
    made = deal(site, admin, acme)
    ada, bob = site.records.create_many("contacts", [
        {"first_name": "Ada", "last_name": "Lovelace", "account_id": acme["id"]},
        {"first_name": "Bob", "last_name": "Babbage", "account_id": acme["id"]}], admin)
    site.records.create_many("opportunity_contacts", [
        {"opportunity_id": made["id"], "contact_id": ada, "contact_role": "primary_decision_maker"},
        {"opportunity_id": made["id"], "contact_id": bob, "contact_role": "technical_evaluator"},
    ], admin)
    panel = site.records.related("opportunities", made["id"], "contacts", admin,
                                 Query(labels=True))
    assert sorted((r["contact_id__label"], r["contact_role"]) for r in panel) == [
        ("Ada Lovelace", "primary_decision_maker"), ("Bob Babbage", "technical_evaluator")]
    theirs = site.records.related("contacts", ada, "opportunities", admin, Query(labels=True))
    assert [(r["opportunity_id__label"], r["contact_role"]) for r in theirs] == \
        [("Rockets", "primary_decision_maker")]
    # once per deal; a role from the list
    with pytest.raises(ValidationError) as caught:
        site.records.create("opportunity_contacts", {"opportunity_id": made["id"],
                                                     "contact_id": ada}, admin)
    assert caught.value.errors == {"contact_id": "this contact is already linked to this "
                                                 "opportunity"}
    with pytest.raises(ValidationError) as caught:
        site.records.create("opportunity_contacts", {
            "opportunity_id": made["id"], "contact_id": ada, "contact_role": "boss"}, admin)
    assert "contact_role" in caught.value.errors
    # the link is named after the contact, renamed with them; it goes with either side
    site.records.update("contacts", ada, {"first_name": "Augusta"}, admin)
    panel = site.records.related("opportunities", made["id"], "contacts", admin)
    assert sorted(r["name"] for r in panel) == ["Augusta Lovelace", "Bob Babbage"]
    site.records.delete("contacts", bob, admin)
    assert [r["contact_id"] for r in site.records.related(
        "opportunities", made["id"], "contacts", admin)] == [ada]
    site.records.delete("opportunities", made["id"], admin)
    assert site.records.count("opportunity_contacts", admin) == 0


def test_pages_show_the_roles_and_the_account_subpanel(site, admin, acme, web):
    made = deal(site, admin, acme)
    ada = site.records.create("contacts", {"first_name": "Ada", "last_name": "Lovelace"}, admin)
    site.records.create("opportunity_contacts", {"opportunity_id": made["id"], "contact_id":
                                                 ada["id"], "contact_role": "influencer"}, admin)
    page = web.get(f"/m/opportunities/{made['id']}/subpanel/contacts?fragment=1").text
    assert "Ada Lovelace" in page and "Influencer" in page
    page = web.get(f"/m/contacts/{ada['id']}/subpanel/opportunities?fragment=1").text
    assert "Rockets" in page and "Influencer" in page
    page = web.get(f"/m/accounts/{acme['id']}/subpanel/opportunities?fragment=1").text
    assert "Rockets" in page and "Prospecting" in page


def test_a_quote_made_from_an_opportunity(site, admin, acme, web):
    made = deal(site, admin, acme)
    detail = web.get(f"/m/opportunities/{made['id']}").text
    link = re.search(r'href="(/m/quotes/new\?[^"]+)"', detail).group(1).replace("&amp;", "&")
    params = parse_qs(urlparse(link).query)
    assert params["opportunity_id"] == [made["id"]] and params["account_id"] == [acme["id"]]
    form = web.get(link).text
    assert f'value="{made["id"]}"' in form and f'value="{acme["id"]}"' in form
    assert 'value="Acme Corporation"' in form and 'value="Rockets"' in form  # the pickers' text
    response = web.post(link, data={"_csrf": web.csrf, "name": "Rockets", "account_id":
                                    acme["id"], "opportunity_id": made["id"],
                                    "stage": "draft"}, follow_redirects=False)
    assert response.status_code == 303, response.text
    [quote] = site.records.related("opportunities", made["id"], "quotes", admin)
    assert quote["opportunity_id"] == made["id"] and quote["name"] == "Rockets"
    assert response.headers["location"] == f"/m/quotes/{quote['id']}"  # to add its lines
    page = web.get(f"/m/opportunities/{made['id']}/subpanel/quotes?fragment=1").text
    assert quote["number"] in page
    # deleting the deal leaves the quote, without it
    site.records.delete("opportunities", made["id"], admin)
    assert site.records.get("quotes", quote["id"], admin)["opportunity_id"] is None


def test_the_close_date_setting_page(site, admin, web):
    page = web.get(plugin.URL)
    assert page.status_code == 200 and 'name="auto_close_date" value="1" checked' in page.text
    assert web.post(plugin.URL, data={}).status_code == 403  # no CSRF token
    saved = web.post(plugin.URL, data={"_csrf": web.csrf}, follow_redirects=False)
    assert saved.status_code == 303 and not plugin.auto_close_date(site)
    assert 'value="1" checked' not in web.get(plugin.URL).text
    web.post(plugin.URL, data={"_csrf": web.csrf, "auto_close_date": "1"})
    assert plugin.auto_close_date(site)
    assert plugin.URL in web.get("/admin").text


def test_demo_pipeline(site, admin, web):
    import cli

    cli.load_demo(site, admin, 6, seed=1)
    rows = site.records.list("opportunities", admin, Query(limit=None))
    assert len(rows) == 24
    assert {r["sales_stage"] for r in rows} == {v for v, _ in [
        (o["value"], 0) for o in site.registry.dropdowns["sales_stage_dom"]]}
    today = dt.date.today()
    assert all(r["date_closed"] > today for r in rows if not r["sales_stage"].startswith("closed"))
    assert site.records.count("opportunity_contacts", admin) > 10
    # the pipeline's board: a column per sales stage but closed lost, with its cards
    board = web.get("/m/opportunities/board")
    assert board.status_code == 200
    shown = re.findall(r'<section class="board-column" data-column="([^"]*)"', board.text)
    assert shown == [o["value"] for o in site.registry.dropdowns["sales_stage_dom"]
                     if o["value"] != "closed_lost"]
    assert board.text.count('class="board-card-title"') == \
        sum(r["sales_stage"] != "closed_lost" for r in rows)
