"""Quotes and sales orders declare their status's life cycle (issue 16, item 9,
``features.transitions`` in their YAML): the stage moves freely while the document is
open, closes only through its actions (a quote also by converting it), and a closed
document's status changes by no form, PATCH or mass update — refused naming the field,
from and to, with nothing saved."""
from decimal import Decimal

import pytest

from core.kernel.errors import ValidationError
from plugins.line_items.tests.test_web_line_items import form_values
from plugins.quotes import plugin as quotes
from plugins.sales_orders.tests.test_orders_flow import quote_lines, shop  # noqa: F401 (fixture)
from tests.api_util import bearer
from tests.api_util import client as api_client
from tests.apps.documents.test_web_documents import client, flash_of  # noqa: F401 (fixture)

CASES = {  # module -> status field, an open value, a free move, the closing action
    "quotes": ("stage", "draft", "negotiation", "mark_lost", "closed_lost",
               "Stage goes from Negotiation to Closed Lost only through \u201cMark lost\u201d"),
    "sales_orders": ("status", "ordered", "in_manufacturing", "close",
                     "closed_shipped_invoiced",
                     ("Status goes from In Manufacturing to Closed - Shipped and Invoiced "
                      "only through \u201cClose\u201d")),
}


@pytest.fixture
def document(site, admin, shop, request):  # noqa: F811
    return site.records.create(request.param, {
        "name": "Setup", "account_id": shop["account"],
        "line_items": quote_lines(shop)[1:]}, admin)


@pytest.mark.parametrize("document", list(CASES), indirect=True)
def test_the_status_closes_only_through_its_action_on_the_form_and_the_api(
        site, admin, document, client):  # noqa: F811
    module = "quotes" if document["number"].startswith("QUO") else "sales_orders"
    field, first, free, action, closed, refusal = CASES[module]
    assert document[field] == first
    # open values: a plain edit, as before
    site.records.update(module, document["id"], {field: free}, admin)
    before = site.records.get(module, document["id"], admin)
    page = f"/m/{module}/{document['id']}"
    data = form_values(client.get(f"{page}/edit").text)
    refused = client.post(f"{page}/edit", data={**data, field: closed, "_csrf": client.csrf},
                          follow_redirects=False)
    assert refused.status_code == 422 and refusal in refused.text.replace("&#8220;", "\u201c")\
        .replace("&#8221;", "\u201d")
    auth = bearer(site, admin)
    with api_client(site) as api:
        patched = api.patch(f"/api/v1/{module}/{document['id']}", headers=auth,
                            json={field: closed})
        assert patched.status_code == 422 and refusal in patched.text
        with pytest.raises(ValidationError):  # mass update, imports
            site.records.update_many(module, [document["id"]], {field: closed}, admin)
        assert site.records.get(module, document["id"], admin) == before  # nothing saved

        # the action: a button on the page, and an API action
        assert f"{page}/transition/{action}" in client.get(page).text
        done = client.post(f"{page}/transition/{action}", data={"_csrf": client.csrf},
                           follow_redirects=False)
        assert done.status_code == 303
        assert site.records.get(module, document["id"], admin)[field] == closed
        again = api.post(f"/api/v1/{module}/{document['id']}/actions/{action}", headers=auth)
        assert again.status_code == 422 and "is not possible while" in again.text
        # a closed document goes back by no form or PATCH
        patched = api.patch(f"/api/v1/{module}/{document['id']}", headers=auth,
                            json={field: first})
        assert patched.status_code == 422 and "only through \u201cReopen\u201d" in patched.text
        reopened = api.post(f"/api/v1/{module}/{document['id']}/actions/reopen", headers=auth)
        assert reopened.status_code == 200, reopened.text
        assert reopened.json()[field] in (first, "draft")
    log = [(e["field"], e["new_value"]) for e in site.records.change_log(module, document["id"])]
    assert (field, closed) in log


def test_a_quote_is_accepted_by_converting_it_once(site, admin, shop):  # noqa: F811
    quote = site.records.create("quotes", {"name": "Setup", "account_id": shop["account"],
                                           "line_items": quote_lines(shop)[1:]}, admin)
    with pytest.raises(ValidationError) as caught:  # not by an edit
        site.records.update("quotes", quote["id"], {"stage": "closed_accepted"}, admin)
    assert caught.value.errors == {"stage": "Stage goes from Draft to Closed Accepted only "
                                            "through \u201cMark accepted\u201d"}
    quotes.convert(site, admin, quote["id"], "sales_orders")
    assert site.records.get("quotes", quote["id"], admin)["stage"] == "closed_accepted"
    with pytest.raises(quotes.QuoteError, match="already converted"):
        quotes.convert(site, admin, quote["id"], "invoices")
    auth = bearer(site, admin)
    with api_client(site) as api:  # an accepted quote is final: no reopen, no other close
        for action in ("reopen", "mark_lost", "accept"):
            refused = api.post(f"/api/v1/quotes/{quote['id']}/actions/{action}", headers=auth)
            assert refused.status_code == 422, (action, refused.text)
    lost = site.records.create("quotes", {"name": "Lost", "account_id": shop["account"],
                                          "stage": "closed_lost"}, admin)
    with pytest.raises(quotes.QuoteError, match="cancelled quote cannot be converted"):
        quotes.convert(site, admin, lost["id"], "sales_orders")


def test_an_invoice_is_cancelled_only_through_its_action(site, admin, shop,  # noqa: F811
                                                         client):  # noqa: F811
    invoice = site.records.create("invoices", {
        "name": "Setup", "account_id": shop["account"],
        "line_items": quote_lines(shop)[1:]}, admin)
    refusal = "Cancelled goes from No to Yes only through \u201cCancel invoice\u201d"
    page = f"/m/invoices/{invoice['id']}"
    before = site.records.get("invoices", invoice["id"], admin)
    data = form_values(client.get(f"{page}/edit").text)
    refused = client.post(f"{page}/edit", data={**data, "cancelled": "1",
                                                "_csrf": client.csrf}, follow_redirects=False)
    assert refused.status_code == 422
    assert refusal in refused.text.replace("&#8220;", "\u201c").replace("&#8221;", "\u201d")
    auth = bearer(site, admin)
    with api_client(site) as api:
        patched = api.patch(f"/api/v1/invoices/{invoice['id']}", headers=auth,
                            json={"cancelled": True})
        assert patched.status_code == 422 and refusal in patched.text
        assert site.records.get("invoices", invoice["id"], admin) == before  # nothing saved
        # the button cancels it; it then owes nothing; the API action undoes it
        assert f"{page}/transition/cancel" in client.get(page).text
        done = client.post(f"{page}/transition/cancel", data={"_csrf": client.csrf},
                           follow_redirects=False)
        assert done.status_code == 303
        cancelled = site.records.get("invoices", invoice["id"], admin)
        assert cancelled["cancelled"] is True and cancelled["amount_due"] == 0
        patched = api.patch(f"/api/v1/invoices/{invoice['id']}", headers=auth,
                            json={"cancelled": False})
        assert patched.status_code == 422
        assert "only through \u201cUndo cancellation\u201d" in patched.text
        restored = api.post(f"/api/v1/invoices/{invoice['id']}/actions/restore", headers=auth)
        assert restored.status_code == 200, restored.text
        assert restored.json()["cancelled"] is False
        assert Decimal(restored.json()["amount_due"]) == before["amount_due"]
        again = api.post(f"/api/v1/invoices/{invoice['id']}/actions/restore", headers=auth)
        assert again.status_code == 422 and "is not possible while Cancelled is No" in again.text


def test_free_values_and_checkbox_states_are_checked_against_the_field(tmp_path,
                                                                       database_url):
    from core.kernel.registry import MetadataError
    from core.kernel.site import Site, create_site
    from tests.kernel.test_transitions import TICKETS, plugin_with

    free = TICKETS.replace("field: status, actions:", "field: status, free: [open, shut], "
                           "actions:")
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "a", database_url),
             extra_plugins=[plugin_with(tmp_path / "free", free)])
    assert "$.features.transitions.free: 'shut' is not an option of 'status'" \
        in str(caught.value)
    boxed = TICKETS.replace("field: status, actions: [", "field: done, actions: [\n"
                            "      {name: finish, label: Finish, from: [false], to: true},\n"
                            "      {name: undo, label: Undo, from: [true], to: 'no'},")\
        .replace("\n  status: {", "\n  done: {type: checkbox}\n  status: {")
    with pytest.raises(MetadataError) as caught:
        Site(create_site(tmp_path / "b", database_url),
             extra_plugins=[plugin_with(tmp_path / "boxed", boxed)])
    problems = str(caught.value)
    assert "$.features.transitions.actions[1].to: 'no' is not an option of 'done'" in problems
    assert "actions[0]" not in problems and "actions[2]" in problems  # open: not a boolean
