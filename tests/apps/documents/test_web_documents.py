"""Printing and mailing documents from their pages, through real HTTP requests: a quote
waiting for approval is refused with the reason, approved with its button, then printed
and mailed; bad requests get a clear answer and send nothing."""
import html
import re

import pytest
from starlette.testclient import TestClient

from core.web.app import create_app
from plugins.sales_orders.tests.test_orders_flow import pdf_text, quote_lines, shop  # noqa: F401 (fixture)

PASSWORD = "correct horse battery"


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


@pytest.fixture
def client(site, admin, shop):  # noqa: F811 (the flow test's fixture)
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text),
                                               "username": "admin", "password": PASSWORD})
        assert response.status_code == 200
        client.csrf = csrf_of(response.text)
        yield client


def flash_of(client, url: str) -> str:
    page = client.get(url).text
    found = re.search(r'class="flash[^"]*"[^>]*>(.*?)</', page, re.DOTALL)
    return re.sub(r"\s+", " ", found.group(1)).strip() if found else ""


def test_a_quote_is_approved_printed_and_mailed_from_its_page(site, admin, shop,  # noqa: F811
                                                              client, smtp_inbox):
    quote = site.records.create("quotes", {"name": "Office fit-out", "account_id": shop["account"],
                                           "line_items": quote_lines(shop)}, admin)
    page = client.get(f"/m/quotes/{quote['id']}").text
    for button in ("Approve", "Print PDF", "Email PDF", "Convert to sales order"):
        assert button in page

    # waiting for approval: the PDF is refused with the reason, back on the quote
    refused = client.get(f"/m/quotes/{quote['id']}/pdf/quote", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == f"/m/quotes/{quote['id']}"
    assert "waits for approval" in flash_of(client, f"/m/quotes/{quote['id']}")

    approved = client.post(f"/quotes/{quote['id']}/approve", data={"_csrf": client.csrf},
                           follow_redirects=False)
    assert approved.status_code == 303
    assert site.records.get("quotes", quote["id"], admin)["approval_status"] == "approved"

    printed = client.get(f"/m/quotes/{quote['id']}/pdf/quote")
    assert printed.status_code == 200 and printed.headers["content-type"] == "application/pdf"
    assert "$3,268.65" in pdf_text(printed.content)
    assert client.get(f"/m/quotes/{quote['id']}/pdf/no_such_form").status_code == 404

    form = client.get(f"/m/quotes/{quote['id']}/email/quote").text
    assert 'value="achats@cafe.example"' in form  # the account's address, to start with
    bad = client.post(f"/m/quotes/{quote['id']}/email/quote", data={
        "_csrf": client.csrf, "to": "not an address", "subject": "Your quote", "text": "Hi"})
    assert bad.status_code == 422 and "is not an email address" in bad.text
    assert smtp_inbox.messages == []
    sent = client.post(f"/m/quotes/{quote['id']}/email/quote", data={
        "_csrf": client.csrf, "to": "achats@cafe.example", "subject": "Your quote",
        "text": "Please find it attached."}, follow_redirects=False)
    assert sent.status_code == 303
    [message] = smtp_inbox.messages
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"{quote['number']}.pdf"
    page = client.get(f"/m/accounts/{shop['account']}").text
    assert 'id="sub-emails"' in page  # its History subpanel, whose rows come when opened
    history = client.get(f"/m/accounts/{shop['account']}/subpanel/emails?fragment=1").text
    assert "Your quote" in history


def test_converting_from_the_page_and_refusing_a_cancelled_quote(site, admin,
                                                                 shop, client):  # noqa: F811
    quote = site.records.create("quotes", {"name": "Setup", "account_id": shop["account"],
                                           "line_items": quote_lines(shop)[1:]}, admin)
    converted = client.post(f"/quotes/{quote['id']}/convert/sales_orders",
                            data={"_csrf": client.csrf}, follow_redirects=False)
    assert converted.status_code == 303 and "/m/sales_orders/" in converted.headers["location"]
    lost = site.records.create("quotes", {"name": "Lost", "account_id": shop["account"],
                                          "stage": "closed_lost"}, admin)
    refused = client.post(f"/quotes/{lost['id']}/convert/invoices",
                          data={"_csrf": client.csrf}, follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == f"/m/quotes/{lost['id']}"
    assert "a cancelled quote cannot be converted" in flash_of(client, f"/m/quotes/{lost['id']}")
    assert site.records.count("invoices", admin) == 0


def test_text_no_font_can_print_is_refused_with_what_and_where(site, admin, shop,  # noqa: F811
                                                               client, smtp_inbox):
    account = site.records.create("accounts", {"name": "Pharaoh 𓀀 Imports",
                                               "email1": "orders@pharaoh.example"}, admin)
    quote = site.records.create("quotes", {"name": "Papyrus", "account_id": account["id"],
                                           "line_items": quote_lines(shop)[1:]}, admin)
    # not a PDF with a blank where the customer's name should be: back on the quote, saying
    # which character of which text cannot be printed
    refused = client.get(f"/m/quotes/{quote['id']}/pdf/quote", follow_redirects=False)
    assert refused.status_code == 303 and refused.headers["location"] == f"/m/quotes/{quote['id']}"
    said = html.unescape(flash_of(client, f"/m/quotes/{quote['id']}"))
    assert said.startswith("This document was not made: no font here can print “𓀀” (U+13000")
    assert "in “Pharaoh 𓀀 Imports” (Account)" in said
    # nor is it mailed
    answer = client.post(f"/m/quotes/{quote['id']}/email/quote", data={
        "_csrf": client.csrf, "to": "orders@pharaoh.example", "subject": "Your quote",
        "text": "Attached."})
    assert answer.status_code == 422 and "U+13000" in answer.text
    assert smtp_inbox.messages == []
