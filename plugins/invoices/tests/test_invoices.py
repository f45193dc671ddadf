"""Invoices, payments allocated across them, credit notes: every figure against amounts
worked out by hand, every refusal with nothing changed.

Taxes come from the test-only ledger plugin (F5: one 5% rate), so the figures do not
depend on a site's tax setup. The comments give the arithmetic.
"""
import datetime as dt
import html
import random
import re
import threading
from decimal import Decimal
from typing import NamedTuple

import pytest
from starlette.testclient import TestClient

from core.kernel.errors import ValidationError, VetoError
from core.kernel.records import Query
from core.kernel.site import Site
from core.kernel.users import create_user
from core.web.app import create_app
from plugins.invoices import api, plugin
from plugins.invoices.web import record_actions
from tests.plugins.ledger import plugin as ledger

D = Decimal
PASSWORD = "correct horse battery"


@pytest.fixture
def books(make_site):
    # (make_site: from the synced copy or server baseline, only the ledger's tables made)
    site = make_site(extra_plugins=[ledger])
    return site, create_user(site, "admin", PASSWORD, is_admin=True)


def service(name, quantity, price, tax=None) -> dict:
    return {"kind": "service", "name": name, "quantity": quantity, "unit_price": price,
            "tax_code_id": tax}


def invoice(site, user, account, *lines, currency="USD", **values) -> dict:
    return site.records.create("invoices", {
        "name": "Invoice", "account_id": account["id"], "amount_currency": currency,
        "line_items": [{"lines": list(lines)}], **values}, user)


def payment(site, user, account, amount, currency="USD") -> dict:
    return site.records.create("payments", {"account_id": account["id"], "amount": amount,
                                            "amount_currency": currency}, user)


def get(site, user, module, record) -> dict:
    return site.records.get(module, record["id"], user)


def snapshot(site, user) -> dict:
    """Every figure a refusal must leave as it was, and how many records there are."""
    out = {}
    for module, fields in (("invoices", ["number", "amount_due", "cancelled"]),
                           ("payments", ["number", "unallocated", "amount"]),
                           ("accounts", ["name", "balance_receivable"]),
                           ("payment_allocations", ["name", "amount"]),
                           ("credit_notes", ["number", "amount"])):
        out[module] = sorted(tuple(str(r[f]) for f in fields) for r in site.records.list(
            module, user, Query(fields=fields, limit=None)))
    return out


class Acme(NamedTuple):
    site: Site
    admin: object
    account: dict
    first: dict
    second: dict
    pay: dict
    allocations: list


@pytest.fixture
def acme(books):
    """Acme with two invoices, a payment across both (the second in part), and a credit
    note for part of the second invoice."""
    site, admin = books
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    # 3 x 19.99 = 59.97, 5% = 2.9985 -> 3.00; + 100.00 untaxed: 162.97
    first = invoice(site, admin, account, service("Widget setup", "3", "19.99", "F5"),
                    service("Installation", "1", "100.00"))
    # 2.5 x 40.00 = 100.00, 5% = 5.00: 105.00
    second = invoice(site, admin, account, service("Consulting", "2.5", "40.00", "F5"))
    pay = payment(site, admin, account, "200.00")
    allocations = api.allocate(site, admin, pay["id"], {first["id"]: D("162.97"),
                                                        second["id"]: "30.00"})
    return Acme(site, admin, account, first, second, pay, allocations)


def test_a_payment_across_two_invoices_and_a_credit_note_keep_every_figure_exact(acme):
    site, admin, account, first, second, pay, allocations = acme
    assert (first["number"], second["number"], pay["number"]) == \
        ("INV-0001", "INV-0002", "PAY-0001")
    assert first["amount"] == D("162.97") and second["amount"] == D("105.00")
    assert [a["name"] for a in allocations] == ["PAY-0001 > INV-0001", "PAY-0001 > INV-0002"]
    assert [a["amount_currency"] for a in allocations] == ["USD", "USD"]
    first, second = get(site, admin, "invoices", first), get(site, admin, "invoices", second)
    assert (first["amount_paid"], first["amount_due"]) == (D("162.97"), D("0"))
    assert (second["amount_paid"], second["amount_due"]) == (D("30.00"), D("75.00"))
    # 200.00 - 162.97 - 30.00
    assert get(site, admin, "payments", pay)["unallocated"] == D("7.03")
    # owed 0 + 75.00, less 7.03 received and not applied yet
    acme_now = get(site, admin, "accounts", account)
    assert (acme_now["balance_receivable"], acme_now["balance_receivable_currency"]) == \
        (D("67.97"), "USD")

    items = site.records.feature_data("line_items", "invoices", second["id"], admin)
    lines = api.credit_lines(site, admin, second["id"], {items.lines[0].id: "1"})
    note = api.credit_invoice(site, admin, second["id"], lines,
                              {"reason": "One hour billed twice"})
    # 1 x 40.00 = 40.00, 5% = 2.00: 42.00
    assert note["number"] == "CN-0001" and note["amount"] == D("42.00")
    assert note["account_id"] == account["id"] and note["name"] == "Credit note for INV-0002"
    [credited] = site.records.feature_data("line_items", "credit_notes", note["id"], admin).lines
    assert credited.source_line_id == items.lines[0].id and credited.quantity == D("1")
    second = get(site, admin, "invoices", second)
    # 105.00 - 30.00 paid - 42.00 credited
    assert (second["amount_credited"], second["amount_due"]) == (D("42.00"), D("33.00"))
    assert get(site, admin, "accounts", account)["balance_receivable"] == D("25.97")


def test_allocations_above_what_is_left_or_owed_are_refused_with_nothing_changed(acme):
    site, admin, account, _, second, pay, _ = acme
    before = snapshot(site, admin)
    with pytest.raises(ValidationError) as caught:
        api.allocate(site, admin, pay["id"], {second["id"]: "10.00"})
    assert caught.value.errors == {second["id"]: "allocating 10.00 USD from PAY-0001 is more "
                                                 "than its unallocated amount, 7.03 USD"}
    assert snapshot(site, admin) == before

    other = payment(site, admin, account, "100.00")
    before = snapshot(site, admin)
    with pytest.raises(ValidationError) as caught:
        api.allocate(site, admin, other["id"], {second["id"]: "75.01"})
    assert caught.value.errors == {second["id"]: "allocating 75.01 USD to INV-0002 is more "
                                                 "than its amount due, 75.00 USD"}
    # all or nothing: a good row does not go in beside a bad one
    cancelled = invoice(site, admin, account, service("Kit", "1", "10.00"), cancelled=True)
    before = snapshot(site, admin)
    with pytest.raises(ValidationError) as caught:
        api.allocate(site, admin, other["id"], {second["id"]: "5.00", cancelled["id"]: "5"})
    assert caught.value.errors == {cancelled["id"]: "INV-0003 is cancelled: it owes nothing"}
    assert snapshot(site, admin) == before
    # a single allocation, written directly, is checked the same way
    with pytest.raises(ValidationError) as caught:
        site.records.create("payment_allocations", {
            "payment_id": other["id"], "invoice_id": second["id"], "amount": "75.01"}, admin)
    assert caught.value.errors["amount"].startswith("allocating 75.01 USD to INV-0002")
    assert snapshot(site, admin) == before


def test_allocations_to_other_accounts_currencies_or_below_zero_are_refused(acme):
    site, admin, account, _, second, pay, _ = acme
    globex = site.records.create("accounts", {"name": "Globex"}, admin)
    theirs = invoice(site, admin, globex, service("Audit", "1", "500.00"))
    in_euros = invoice(site, admin, account, service("Audit", "1", "500.00"), currency="EUR")
    before = snapshot(site, admin)
    refusals = {
        theirs["id"]: "INV-0003 is another account's invoice: PAY-0001 pays only its own "
                      "account's invoices",
        in_euros["id"]: "INV-0004 is in EUR but PAY-0001 is in USD: a payment pays only "
                        "invoices in its own currency",
    }
    for invoice_id, message in refusals.items():
        with pytest.raises(ValidationError) as caught:
            api.allocate(site, admin, pay["id"], {invoice_id: "1.00"})
        assert caught.value.errors == {invoice_id: message}
    for amount in ("-5", "0", "0.001"):
        with pytest.raises(ValidationError) as caught:
            api.allocate(site, admin, pay["id"], {second["id"]: amount})
        assert caught.value.errors[second["id"]] in (
            "must be more than 0", "has more decimals than USD allows (2)")
    with pytest.raises(ValidationError) as caught:
        api.allocate(site, admin, pay["id"], {second["id"]: "lots"})
    assert caught.value.errors == {second["id"]: "'lots' is not an amount"}
    with pytest.raises(ValidationError):
        api.allocate(site, admin, pay["id"], {})
    for amount in ("-5", "0"):
        with pytest.raises(ValidationError) as caught:
            payment(site, admin, account, amount)
        assert caught.value.errors == {"amount": "must be more than 0"}
    assert snapshot(site, admin) == before


def test_credit_notes_above_the_amount_due_are_refused(acme):
    site, admin, _, first, second, _, _ = acme
    before = snapshot(site, admin)
    with pytest.raises(ValidationError) as caught:
        api.credit_invoice(site, admin, second["id"])  # the whole 105.00; 75.00 is owed
    assert caught.value.errors == {"line_items": "crediting 105.00 USD on INV-0002 is more "
                                                 "than its amount due, 75.00 USD"}
    with pytest.raises(ValidationError) as caught:  # the paid invoice owes nothing
        api.credit_invoice(site, admin, first["id"])
    assert "more than its amount due, 0.00 USD" in caught.value.errors["line_items"]
    items = site.records.feature_data("line_items", "invoices", second["id"], admin)
    with pytest.raises(ValidationError) as caught:  # 2.5 hours invoiced
        api.credit_lines(site, admin, second["id"], {items.lines[0].id: "3"})
    assert caught.value.errors == {items.lines[0].id: "crediting 3 of Consulting is more than "
                                                      "the 2.5 left to credit"}
    with pytest.raises(ValidationError) as caught:
        api.credit_lines(site, admin, second["id"], {items.lines[0].id: "-1"})
    assert caught.value.errors == {items.lines[0].id: "must not be negative"}
    assert snapshot(site, admin) == before

    lines = api.credit_lines(site, admin, second["id"], {items.lines[0].id: "1.5"})
    note = api.credit_invoice(site, admin, second["id"], lines)
    assert note["amount"] == D("63.00")  # 1.5 x 40.00 = 60.00 + 3.00
    with pytest.raises(ValidationError) as caught:  # one hour is left of the 2.5
        api.credit_lines(site, admin, second["id"], {items.lines[0].id: "1.5"})
    assert "the 1 left to credit" in caught.value.errors[items.lines[0].id]
    # cancelling the note gives its amount back
    site.records.update("credit_notes", note["id"], {"cancelled": True}, admin)
    assert get(site, admin, "invoices", second)["amount_due"] == D("75.00")
    assert api.credit_lines(site, admin, second["id"], {items.lines[0].id: "2.5"})


def test_a_cancelled_invoice_owes_nothing_and_one_with_payments_cannot_be_cancelled(acme):
    site, admin, account, _, second, pay, allocations = acme
    before = snapshot(site, admin)
    with pytest.raises(ValidationError) as caught:
        site.records.update("invoices", second["id"], {"cancelled": True}, admin)
    assert caught.value.errors == {"cancelled": "INV-0002 has 30.00 USD of payments allocated "
                                                "to it: remove its payments first"}
    with pytest.raises(VetoError, match="INV-0002: remove the payments"):
        site.records.delete("invoices", second["id"], admin)
    with pytest.raises(VetoError, match="PAY-0001: remove the allocations"):
        site.records.delete("payments", pay["id"], admin)
    assert snapshot(site, admin) == before

    # deleting an allocation gives both amounts back
    site.records.delete("payment_allocations", allocations[1]["id"], admin)
    assert get(site, admin, "invoices", second)["amount_due"] == D("105.00")
    assert get(site, admin, "payments", pay)["unallocated"] == D("37.03")
    assert get(site, admin, "accounts", account)["balance_receivable"] == D("67.97")  # 105 - 37.03
    # cancelled by its action only (issue 16: features.transitions), undone the same way
    site.records.transition("invoices", second["id"], "cancel", admin)
    assert get(site, admin, "invoices", second)["amount_due"] == D("0")
    assert get(site, admin, "accounts", account)["balance_receivable"] == D("-37.03")
    site.records.transition("invoices", second["id"], "restore", admin)
    assert get(site, admin, "accounts", account)["balance_receivable"] == D("67.97")


def test_edits_are_checked_again_and_the_figures_follow(acme):
    site, admin, account, first, second, pay, allocations = acme
    before = snapshot(site, admin)
    part = allocations[1]
    with pytest.raises(ValidationError) as caught:  # 30.00 + 7.03 left on the payment
        site.records.update("payment_allocations", part["id"], {"amount": "37.04"}, admin)
    assert caught.value.errors["amount"].endswith("its unallocated amount, 37.03 USD")
    with pytest.raises(ValidationError) as caught:
        site.records.update("payment_allocations", part["id"], {"invoice_id": first["id"]},
                            admin)
    assert "delete it and allocate again" in caught.value.errors["invoice_id"]
    with pytest.raises(ValidationError) as caught:
        site.records.update("payments", pay["id"], {"amount": "190.00"}, admin)
    assert caught.value.errors == {"amount": "PAY-0001's amount 190.00 USD is less than the "
                                             "192.97 USD already allocated from it"}
    with pytest.raises(ValidationError) as caught:  # lines below what was paid
        site.records.update("invoices", first["id"], {"line_items": [
            {"lines": [service("Installation", "1", "100.00")]}]}, admin)
    assert caught.value.errors == {"line_items": "INV-0001's total 100.00 USD is less than the "
                                                 "162.97 USD already paid and credited on it"}
    with pytest.raises(ValidationError) as caught:
        site.records.update("invoices", second["id"], {"amount_due": "0"}, admin)
    assert caught.value.errors == {"amount_due": "is worked out by CRBM and cannot be set"}
    with pytest.raises(ValidationError):
        site.records.update("accounts", account["id"], {"balance_receivable": "0"}, admin)
    assert snapshot(site, admin) == before

    site.records.update("payment_allocations", part["id"], {"amount": "37.03"}, admin)
    assert get(site, admin, "invoices", second)["amount_due"] == D("67.97")
    assert get(site, admin, "payments", pay)["unallocated"] == D("0")
    site.records.update("payments", pay["id"], {"amount": "250.00"}, admin)
    assert get(site, admin, "payments", pay)["unallocated"] == D("50.00")
    # more lines on the second invoice: 105.00 + 20.00
    site.records.update("invoices", second["id"], {"line_items": [{"lines": [
        service("Consulting", "2.5", "40.00", "F5"), service("Travel", "1", "20.00")]}]}, admin)
    assert get(site, admin, "invoices", second)["amount_due"] == D("87.97")  # 125 - 37.03
    assert get(site, admin, "accounts", account)["balance_receivable"] == D("37.97")  # - 50


def test_dates_terms_and_recording_a_payment(books):
    site, admin = books
    account = site.records.create("accounts", {"name": "Initech"}, admin)
    dated = invoice(site, admin, account, service("Fee", "1", "80.00"),
                    invoice_date="2026-01-10", terms="net_45")
    assert dated["due_date"] == dt.date(2026, 2, 24)
    at_once = invoice(site, admin, account, service("Fee", "1", "20.00"),
                      invoice_date="2026-01-10", terms="due_on_receipt")
    assert at_once["due_date"] == dt.date(2026, 1, 10)
    today = invoice(site, admin, account, service("Fee", "1", "20.00"))
    assert today["invoice_date"] == dt.date.today() and today["shipping_stage"] == "none"

    pay, allocation = api.record_payment(site, admin, dated["id"], {"amount": "50.00",
                                                                    "payment_method": "check"})
    assert (pay["amount"], pay["payment_method"], allocation["amount"]) == \
        (D("50.00"), "check", D("50.00"))
    assert get(site, admin, "invoices", dated)["amount_due"] == D("30.00")
    # a payment above the amount due pays it and keeps the rest
    pay, allocation = api.record_payment(site, admin, dated["id"], {"amount": "100.00"})
    assert allocation["amount"] == D("30.00")
    assert get(site, admin, "payments", pay)["unallocated"] == D("70.00")
    assert get(site, admin, "invoices", dated)["amount_due"] == D("0")
    with pytest.raises(ValidationError, match="INV-0001 owes nothing"):
        api.record_payment(site, admin, dated["id"])
    # 20.00 + 20.00 owed, 70.00 not applied
    assert get(site, admin, "accounts", account)["balance_receivable"] == D("-30.00")


def test_the_balance_stays_in_the_first_invoices_currency(books):
    site, admin = books
    account = site.records.create("accounts", {"name": "Umbrella"}, admin)
    invoice(site, admin, account, service("Fee", "1", "70.00"), currency="EUR")
    dollars = invoice(site, admin, account, service("Fee", "1", "1000"))
    payment(site, admin, account, "20.00", currency="EUR")
    assert get(site, admin, "invoices", dollars)["amount_due"] == D("1000")
    umbrella = get(site, admin, "accounts", account)
    assert (umbrella["balance_receivable"], umbrella["balance_receivable_currency"]) == \
        (D("50.00"), "EUR")


# -- pages -----------------------------------------------------------------------------------

def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


@pytest.fixture
def client(acme):
    site = acme.site
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": "admin",
                                               "password": PASSWORD})
        assert response.status_code == 200
        client.csrf = csrf_of(response.text)
        yield client


def test_the_allocate_page_allocates_or_shows_what_is_wrong(acme, client):
    site, admin, account, _, second, _, _ = acme
    third = invoice(site, admin, account, service("Support", "1", "50.00"))
    other = payment(site, admin, account, "100.00")
    page = client.get(f"/payments/{other['id']}/allocate")
    assert page.status_code == 200
    assert 'data-invoice="INV-0002"' in page.text and 'data-invoice="INV-0003"' in page.text
    assert 'data-invoice="INV-0001"' not in page.text  # paid: nothing to allocate to
    before = snapshot(site, admin)
    refused = client.post(f"/payments/{other['id']}/allocate", data={
        "_csrf": client.csrf, f"amount-{second['id']}": "80", f"amount-{third['id']}": "10"})
    assert refused.status_code == 422
    text = html.unescape(refused.text)
    assert "Nothing was saved." in text
    assert "allocating 80.00 USD to INV-0002 is more than its amount due, 75.00 USD" in text
    assert 'value="80"' in refused.text  # what they typed, to correct
    assert snapshot(site, admin) == before

    done = client.post(f"/payments/{other['id']}/allocate", data={
        "_csrf": client.csrf, f"amount-{second['id']}": "75.00", f"amount-{third['id']}": "10",
        "ignored": "1"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/m/payments/{other['id']}"
    assert get(site, admin, "payments", other)["unallocated"] == D("15.00")
    assert get(site, admin, "invoices", second)["amount_due"] == D("0")
    assert get(site, admin, "invoices", third)["amount_due"] == D("40.00")
    assert "PAY-0002 allocated to INV-0002, INV-0003." in client.get(done.headers["location"]).text
    forged = client.post(f"/payments/{other['id']}/allocate",
                         data={"_csrf": "forged", f"amount-{third['id']}": "1"})
    assert forged.status_code == 403
    assert get(site, admin, "invoices", third)["amount_due"] == D("40.00")


def test_record_payment_and_credit_note_pages(acme, client):
    site, admin, account, _, second, _, _ = acme
    form = client.get(f"/invoices/{second['id']}/payment")
    assert form.status_code == 200 and 'value="75.00"' in form.text
    refused = client.post(f"/invoices/{second['id']}/payment", data={
        "_csrf": client.csrf, "amount": "-3", "payment_date": "2026-03-01"})
    assert refused.status_code == 422 and "must be more than 0" in refused.text
    done = client.post(f"/invoices/{second['id']}/payment", data={
        "_csrf": client.csrf, "amount": "25", "payment_date": "2026-03-01",
        "payment_method": "bank_transfer", "reference": "TRF-1"}, follow_redirects=False)
    assert done.status_code == 303
    assert get(site, admin, "invoices", second)["amount_due"] == D("50.00")

    refused = client.post(f"/invoices/{second['id']}/credit-note", data={"_csrf": client.csrf})
    assert "crediting 105.00 USD on INV-0002 is more than its amount due, 50.00 USD" in \
        html.unescape(refused.text)
    assert site.records.count("credit_notes", admin) == 0
    third = invoice(site, admin, account, service("Support", "1", "50.00"))
    made = client.post(f"/invoices/{third['id']}/credit-note", data={"_csrf": client.csrf},
                       follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"].startswith("/m/credit_notes/")
    assert get(site, admin, "invoices", third)["amount_due"] == D("0")


def test_demo_documents_add_up(books):
    site, admin = books
    for name, currency in (("Alpha", "USD"), ("Beta", "EUR"), ("Gamma", "USD"),
                           ("Delta", "GBP")):
        site.records.create("accounts", {"name": name, "annual_revenue_currency": currency},
                            admin)
    seen = []
    plugin.crbm_demo_data(site, admin, 10, random.Random(7), lambda done, total: seen.append(
        (done, total)))
    assert seen[-1] == (12, 12)
    everything = Query(limit=None)
    invoices = site.records.list("invoices", admin, everything)
    payments = site.records.list("payments", admin, everything)
    assert (len(invoices), len(payments)) == (8, 3)
    assert site.records.count("payment_allocations", admin) == 3
    assert site.records.count("credit_notes", admin) == 1
    for inv in invoices:
        assert inv["amount_due"] == inv["amount"] - inv["amount_paid"] - inv["amount_credited"]
    for account in site.records.list("accounts", admin, everything):
        owed = sum(i["amount_due"] for i in invoices if i["account_id"] == account["id"])
        unapplied = sum(p["unallocated"] for p in payments if p["account_id"] == account["id"])
        assert account["balance_receivable"] == owed - unapplied, account["name"]
    delta = next(a for a in site.records.list("accounts", admin, everything)
                 if a["name"] == "Delta")
    assert delta["balance_receivable_currency"] == "GBP"


def test_the_generic_pages_and_the_buttons(acme, client):
    site, admin, account, first, second, pay, allocations = acme
    for url in ("/m/invoices", f"/m/invoices/{second['id']}", f"/m/invoices/{second['id']}/edit",
                "/m/payments", f"/m/payments/{pay['id']}", "/m/payments/new",
                f"/m/payment_allocations/{allocations[0]['id']}", "/m/credit_notes/new",
                f"/m/accounts/{account['id']}"):
        assert client.get(url).status_code == 200, url
    buttons = {module: [(a.label, a.url, a.post) for a in record_actions(  # this plugin's
        site, site.registry.module(module), get(site, admin, module, record), admin)]
        for module, record in (("invoices", second), ("payments", pay))}
    assert buttons["invoices"] == [
        ("Record payment", f"/invoices/{second['id']}/payment", False),
        ("Credit note", f"/invoices/{second['id']}/credit-note", True)]
    assert buttons["payments"] == [("Allocate", f"/payments/{pay['id']}/allocate", False)]
    detail = client.get(f"/m/invoices/{second['id']}").text
    assert f'href="/invoices/{second["id"]}/payment"' in detail
    assert f'action="/invoices/{second["id"]}/credit-note"' in detail
    paid = record_actions(site, site.registry.module("invoices"),
                          get(site, admin, "invoices", first), admin)
    assert paid == []  # nothing owed: nothing to pay or credit
    # a credit note made on the plain form takes the invoice's account and currency
    in_euros = invoice(site, admin, account, service("Audit", "1", "500.00"), currency="EUR")
    response = client.post("/m/credit_notes/new", data={
        "_csrf": client.csrf, "invoice_id": in_euros["id"], "reason": "Goodwill"},
        follow_redirects=False)
    assert response.status_code == 303
    [note] = site.records.list("credit_notes", admin, Query(limit=None))
    assert (note["account_id"], note["amount_currency"], note["amount"]) == \
        (account["id"], "EUR", D("0"))


@pytest.mark.server_db
def test_people_allocating_to_one_invoice_at_once_never_over_allocate_it(acme):
    site, admin, account, _, second, _, _ = acme
    payments = [payment(site, admin, account, "30.00") for _ in range(6)]
    barrier = threading.Barrier(len(payments))
    results = [None] * len(payments)

    def allocate(index):
        barrier.wait()
        try:
            results[index] = api.allocate(site, admin, payments[index]["id"],
                                          {second["id"]: "30.00"})
        except ValidationError as exc:
            results[index] = exc

    threads = [threading.Thread(target=allocate, args=(i,)) for i in range(len(payments))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(refused) == 4, results  # 75.00 owed: two of 30.00 fit
    assert all("more than its amount due" in r.errors[second["id"]] for r in refused)
    assert get(site, admin, "invoices", second)["amount_due"] == D("15.00")
    # 15.00 owed; 7.03 + 4 x 30.00 not applied
    assert get(site, admin, "accounts", account)["balance_receivable"] == D("-112.03")


def test_balance_changes_are_logged_versioned_and_announced(acme):
    """Figures the plugin keeps go through records.set_derived: a payment that moves the
    account's balance bumps the account's version, shows in its change log as done by
    the system, and queues a webhook event for the account — without its save hooks."""
    import json

    from core.apps.webhooks import webhooks
    from core.kernel.records import SYSTEM_USER

    site, admin, account, pay = acme.site, acme.admin, acme.account, acme.pay
    sub = webhooks.subscribe(site, admin, "https://example.com/hook", "accounts", ["updated"])
    before = get(site, admin, "accounts", account)
    payment(site, admin, account, "10.00")
    after = get(site, admin, "accounts", account)
    assert after["balance_receivable"] == before["balance_receivable"] - D("10.00")
    assert after["version"] == before["version"] + 1
    assert after["modified_by"] == before["modified_by"]  # the last person to edit it
    logged = [e for e in site.records.change_log("accounts", account["id"])
              if e["field"] == "balance_receivable"]
    assert (D(logged[-1]["old_value"]), D(logged[-1]["new_value"]), logged[-1]["changed_by"]) \
        == (D("67.97"), D("57.97"), SYSTEM_USER.id)
    [event] = webhooks.deliveries(site, sub["id"])
    body = json.loads(event["body"])
    assert (body["event"], body["record_id"], body["changed"]) == \
        ("updated", account["id"], ["balance_receivable"])
    assert D(body["record"]["balance_receivable"]) == D("57.97")
    # nothing moved, nothing written: saving the same payment again leaves the account be
    site.records.update("payments", pay["id"], {"amount": "200.00"}, admin)
    assert get(site, admin, "accounts", account)["version"] == after["version"]
