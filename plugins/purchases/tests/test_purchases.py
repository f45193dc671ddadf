"""Purchases: purchase orders -> bills -> bill payments allocated across bills.

One story, with every figure worked out by hand (half up per step, GST 5% on the
hardware lines):

PO-0001 (Northwind) = 543.75
  Hardware (shipping 15.00)
    Bench vise   10 x 12.50 = 125.00             GST 6.25
    Drill press   4 x 40.00 = 160.00 - 10.00     GST 7.50
  Services
    (comment) On site
    Installation  3 x 80.00 = 240.00             no tax
  125.00 + 150.00 + 15.00 + 240.00 + 6.25 + 7.50 = 543.75

BILL-0001 = 6 vises + 1 drill press, and the hardware's shipping (its first bill):
  75.00 + (40.00 - 2.50 discount in proportion) + 15.00 + 3.75 + 1.88 (1.875) = 133.13
BILL-0002 = the rest: 4 vises, 3 drill presses, the installation (shipping billed once):
  50.00 + (120.00 - 7.50) + 240.00 + 2.50 + 5.63 (5.625) = 410.63
  (the bills add up to 543.76: each bill rounds its own tax)

BPAY-0001 of 500.00 pays BILL-0001 in full (133.13) and 300.00 of BILL-0002:
  BILL-0001 due 0.00, BILL-0002 due 410.63 - 300.00 = 110.63,
  BPAY-0001 unallocated 500.00 - 433.13 = 66.87,
  Northwind's balance payable 110.63 - 66.87 = 43.76.
"""
import re
from decimal import Decimal

import pytest
from starlette.testclient import TestClient

from core.kernel.errors import NotFoundError, ValidationError, VetoError
from core.kernel.records import Query
from core.web.app import create_app
from plugins.purchases import demo
from plugins.purchases.plugin import allocate_bill_payment, bill_from_order, left_to_bill

D = Decimal
PASSWORD = "correct horse battery"


def make(site, user, module: str, **values) -> dict:
    return site.records.create(module, values, user)


def get(site, user, module: str, record_id: str) -> dict:
    return site.records.get(module, record_id, user)


def order_lines(gst_id: str) -> list[dict]:
    return [
        {"name": "Hardware", "shipping": "15.00", "lines": [
            {"name": "Bench vise", "part_number": "WV-150", "quantity": "10",
             "unit_price": "12.50", "tax_code_id": gst_id},
            {"name": "Drill press", "quantity": "4", "unit_price": "40.00",
             "discount_kind": "amount", "discount_value": "10.00", "tax_code_id": gst_id},
        ]},
        {"name": "Services", "lines": [
            {"kind": "comment", "description": "On site"},
            {"kind": "service", "name": "Installation", "quantity": "3", "unit_price": "80.00"},
        ]},
    ]


@pytest.fixture
def books(site, admin):
    """Two suppliers, GST 5%, PO-0001 of Northwind, and its two bills."""
    gst_rate = make(site, admin, "tax_rates", name="GST 5%", rate="5")
    gst = make(site, admin, "tax_codes", name="GST")
    site.records.link("tax_codes", gst["id"], "rates", gst_rate["id"], admin)
    northwind = make(site, admin, "accounts", name="Northwind Supply", terms="net_30")
    contoso = make(site, admin, "accounts", name="Contoso Parts")
    order = make(site, admin, "purchase_orders", name="Workshop equipment",
                 supplier_id=northwind["id"], line_items=order_lines(gst["id"]))
    lines = {line.name: line for line in
             site.records.feature_data("line_items", "purchase_orders", order["id"], admin).lines}
    return {"northwind": northwind, "contoso": contoso, "order": order, "lines": lines,
            "gst": gst}


def billed_in_full(site, admin, books) -> tuple[dict, dict]:
    lines, order = books["lines"], books["order"]
    first = bill_from_order(site, admin, order["id"], {lines["Bench vise"].id: "6",
                                                       lines["Drill press"].id: D(1)})
    return first, bill_from_order(site, admin, order["id"])


def ledger(site, admin) -> dict:
    """Every figure the ledger keeps, and how many documents there are: a refusal must
    leave all of it as it was."""
    def rows(module, fields):
        return sorted(tuple(r[f] for f in fields) for r in site.records.list(
            module, admin, Query(fields=list(fields), limit=None)))

    return {"bills": rows("bills", ["number", "amount", "amount_paid", "amount_due",
                                    "cancelled"]),
            "payments": rows("bill_payments", ["number", "amount", "unallocated"]),
            "allocations": rows("bill_payment_allocations", ["name", "amount"]),
            "balances": rows("accounts", ["name", "balance_payable",
                                          "balance_payable_currency"])}


# -- the story -----------------------------------------------------------------------------

def test_partial_bills_then_a_payment_across_both_keep_every_figure_exact(site, admin, books):
    order, lines, northwind = books["order"], books["lines"], books["northwind"]
    assert order["number"] == "PO-0001" and order["amount"] == D("543.75")
    assert order["status"] == "draft" and order["order_date"] is not None
    assert order["terms"] == "net_30"  # the supplier's

    first = bill_from_order(site, admin, order["id"], {lines["Bench vise"].id: "6",
                                                       lines["Drill press"].id: D(1)})
    assert first["number"] == "BILL-0001" and first["amount"] == D("133.13")
    assert first["amount_due"] == D("133.13") and first["amount_paid"] == 0
    assert first["supplier_id"] == northwind["id"] and first["purchase_order_id"] == order["id"]
    assert first["name"] == "Workshop equipment" and first["terms"] == "net_30"
    assert (first["due_date"] - first["bill_date"]).days == 30
    items = site.records.feature_data("line_items", "bills", first["id"], admin)
    assert [g.name for g in items.groups] == ["Hardware"]  # nothing of the services yet
    assert [(line.name, line.quantity, line.source_line_id) for line in items.lines] == [
        ("Bench vise", 6, lines["Bench vise"].id), ("Drill press", 1, lines["Drill press"].id)]
    assert items.lines[1].discount == D("2.50") and items.groups[0].shipping == D("15.00")
    with site.engine.connect() as conn:
        assert left_to_bill(site, conn, order["id"]) == {
            lines["Bench vise"].id: 4, lines["Drill press"].id: 3, lines["Installation"].id: 3}

    # more than is left is refused, naming the line, the order and what is left
    with pytest.raises(ValidationError) as refused:
        bill_from_order(site, admin, order["id"], {lines["Bench vise"].id: "5"})
    assert refused.value.errors == {lines["Bench vise"].id: (
        "billing 5 of Bench vise is more than the 4 left to bill on PO-0001")}

    second = bill_from_order(site, admin, order["id"])  # all that is left
    assert second["number"] == "BILL-0002" and second["amount"] == D("410.63")
    items = site.records.feature_data("line_items", "bills", second["id"], admin)
    assert [g.name for g in items.groups] == ["Hardware", "Services"]
    assert [(line.kind, line.quantity) for line in items.lines] == [
        ("product", 4), ("product", 3), ("comment", 0), ("service", 3)]
    assert items.groups[0].shipping == 0  # billed once, on the first bill

    # over-billing: nothing is left, and a hand-edited bill cannot bill more either
    before = ledger(site, admin)
    with pytest.raises(ValidationError) as refused:
        bill_from_order(site, admin, order["id"])
    assert refused.value.errors == {"quantities": "PO-0001 has nothing left to bill"}
    with pytest.raises(ValidationError) as refused:
        bill_from_order(site, admin, order["id"], {lines["Installation"].id: "1"})
    assert "more than the 0 left to bill on PO-0001" in str(refused.value)
    more = site.records.feature_data("line_items", "bills", second["id"], admin).as_input()
    more[0]["lines"][0]["quantity"] = "5"
    with pytest.raises(ValidationError) as refused:
        site.records.update("bills", second["id"], {"line_items": more}, admin)
    assert refused.value.errors == {
        "line_items": "Bench vise on PO-0001: 11 billed is more than the 10 ordered"}
    assert ledger(site, admin) == before

    payment = make(site, admin, "bill_payments", supplier_id=northwind["id"], amount="500.00",
                   payment_method="bank_transfer", reference="TRF-1")
    assert payment["number"] == payment["name"] == "BPAY-0001"
    assert payment["unallocated"] == D("500.00") and payment["payment_date"] is not None
    made = allocate_bill_payment(site, admin, payment["id"], {
        first["id"]: D("133.13"), second["id"]: "300.00"})
    assert [(a["name"], a["amount"], a["amount_currency"]) for a in made] == [
        ("BPAY-0001 > BILL-0001", D("133.13"), "USD"),
        ("BPAY-0001 > BILL-0002", D("300.00"), "USD")]

    first, second = get(site, admin, "bills", first["id"]), get(site, admin, "bills", second["id"])
    assert (first["amount_paid"], first["amount_due"]) == (D("133.13"), D("0.00"))
    assert (second["amount_paid"], second["amount_due"]) == (D("300.00"), D("110.63"))
    assert second["amount_due_currency"] == "USD"
    assert get(site, admin, "bill_payments", payment["id"])["unallocated"] == D("66.87")
    supplier = get(site, admin, "accounts", northwind["id"])
    assert (supplier["balance_payable"], supplier["balance_payable_currency"]) == \
        (D("43.76"), "USD")
    assert get(site, admin, "accounts", books["contoso"]["id"])["balance_payable"] in (None, 0)

    # deleting an allocation gives its amount back to the bill, the payment, the balance
    site.records.delete("bill_payment_allocations", made[1]["id"], admin)
    assert get(site, admin, "bills", second["id"])["amount_due"] == D("410.63")
    assert get(site, admin, "bill_payments", payment["id"])["unallocated"] == D("366.87")
    # 410.63 - 366.87
    assert get(site, admin, "accounts", northwind["id"])["balance_payable"] == D("43.76")
    # a smaller payment amount, then a larger one, moves unallocated and the balance
    site.records.update("bill_payments", payment["id"], {"amount": "133.13"}, admin)
    assert get(site, admin, "bill_payments", payment["id"])["unallocated"] == 0
    assert get(site, admin, "accounts", northwind["id"])["balance_payable"] == D("410.63")
    # an unpaid bill deleted owes nothing any more
    site.records.delete("bills", second["id"], admin)
    assert get(site, admin, "accounts", northwind["id"])["balance_payable"] == 0


# -- refusals leave everything as it was ---------------------------------------------------

@pytest.fixture
def paid(site, admin, books):
    """The story up to its end: two bills, BPAY-0001 allocated across both."""
    first, second = billed_in_full(site, admin, books)
    payment = make(site, admin, "bill_payments", supplier_id=books["northwind"]["id"],
                   amount="500.00")
    allocations = allocate_bill_payment(site, admin, payment["id"], {
        first["id"]: "133.13", second["id"]: "300.00"})
    return books | {"first": first, "second": second, "payment": payment,
                    "allocations": allocations}


def refused(site, admin, call, exception=ValidationError):
    """Run ``call``, expect it refused, check the ledger did not move; the error."""
    before = ledger(site, admin)
    with pytest.raises(exception) as caught:
        call()
    assert ledger(site, admin) == before
    return caught.value


def test_over_allocating_a_payment_or_a_bill_is_refused(site, admin, paid):
    payment, second = paid["payment"], paid["second"]
    error = refused(site, admin, lambda: allocate_bill_payment(
        site, admin, payment["id"], {second["id"]: "70.00"}))
    assert error.errors == {second["id"]: (
        "allocating 70.00 USD from BPAY-0001 is more than its unallocated amount, 66.87 USD")}
    # the same rule for any writer, through the allocation module itself
    error = refused(site, admin, lambda: make(
        site, admin, "bill_payment_allocations", bill_payment_id=payment["id"],
        bill_id=second["id"], amount="66.88"))
    assert error.errors == {"amount": (
        "allocating 66.88 USD from BPAY-0001 is more than its unallocated amount, 66.87 USD")}
    # a second payment may pay the bill, but no more than its amount due
    other = make(site, admin, "bill_payments", supplier_id=paid["northwind"]["id"],
                 amount="200.00")
    error = refused(site, admin, lambda: allocate_bill_payment(
        site, admin, other["id"], {second["id"]: "110.64"}))
    assert error.errors == {second["id"]: (
        "allocating 110.64 USD to BILL-0002 is more than its amount due, 110.63 USD")}
    error = refused(site, admin, lambda: make(
        site, admin, "bill_payment_allocations", bill_payment_id=other["id"],
        bill_id=second["id"], amount="110.64"))
    assert error.errors == {"amount": (
        "allocating 110.64 USD to BILL-0002 is more than its amount due, 110.63 USD")}
    # raising an allocation is checked the same way
    error = refused(site, admin, lambda: site.records.update(
        "bill_payment_allocations", paid["allocations"][1]["id"], {"amount": "366.88"}, admin))
    assert "more than its unallocated amount" in str(error)
    # all or nothing: the good allocation of a refused request is not made either
    error = refused(site, admin, lambda: allocate_bill_payment(
        site, admin, other["id"], {second["id"]: "100.00", paid["first"]["id"]: "1.00"}))
    assert error.errors == {paid["first"]["id"]: (
        "allocating 1.00 USD to BILL-0001 is more than its amount due, 0.00 USD")}


def test_other_supplier_other_currency_cancelled_bill_and_bad_amounts_are_refused(
        site, admin, paid):
    payment, northwind = paid["payment"], paid["northwind"]
    line = [{"lines": [{"name": "Bolts", "quantity": "1", "unit_price": "20.00"}]}]
    contoso_bill = make(site, admin, "bills", name="Bolts", supplier_id=paid["contoso"]["id"],
                        line_items=line)
    euro_bill = make(site, admin, "bills", name="Bolts", supplier_id=northwind["id"],
                     amount_currency="EUR", line_items=line)
    void_bill = make(site, admin, "bills", name="Bolts", supplier_id=northwind["id"],
                     cancelled=True, line_items=line)
    assert void_bill["amount_due"] == 0 and euro_bill["amount_due"] == D("20.00")
    # the balance stays in USD (its first bill's currency): the euro bill is left out
    assert get(site, admin, "accounts", northwind["id"])["balance_payable"] == D("43.76")

    cases = {
        contoso_bill["id"]: "BILL-0003 is another supplier's bill: BPAY-0001 pays only its "
                            "own supplier's bills",
        euro_bill["id"]: "BILL-0004 is in EUR but BPAY-0001 is in USD: a payment pays only "
                         "bills in its own currency",
        void_bill["id"]: "BILL-0005 is cancelled: it owes nothing",
    }
    for bill_id, message in cases.items():
        error = refused(site, admin, lambda b=bill_id: allocate_bill_payment(
            site, admin, payment["id"], {b: "10.00"}))
        assert error.errors == {bill_id: message}
        error = refused(site, admin, lambda b=bill_id: make(
            site, admin, "bill_payment_allocations", bill_payment_id=payment["id"],
            bill_id=b, amount="10.00"))
        assert error.errors == {"bill_id": message}

    second = paid["second"]["id"]
    for amount, message in (("-5", "must be more than 0"), ("0", "must be more than 0"),
                            ("1.005", "has more decimals than USD allows (2)")):
        error = refused(site, admin, lambda a=amount: allocate_bill_payment(
            site, admin, payment["id"], {second: a}))
        assert error.errors == {second: message}
    error = refused(site, admin, lambda: allocate_bill_payment(
        site, admin, payment["id"], {second: "ten"}))
    assert error.errors == {second: "'ten' is not an amount"}
    error = refused(site, admin, lambda: make(site, admin, "bill_payments",
                                              supplier_id=northwind["id"], amount="-10"))
    assert error.errors == {"amount": "must be more than 0"}
    error = refused(site, admin, lambda: site.records.update(
        "bill_payments", payment["id"], {"amount": "-1"}, admin))
    assert error.errors == {"amount": "must be more than 0"}
    # a payment cannot shrink below what it has allocated
    error = refused(site, admin, lambda: site.records.update(
        "bill_payments", payment["id"], {"amount": "400"}, admin))
    assert error.errors == {"amount": (
        "BPAY-0001's amount 400.00 USD is less than the 433.13 USD already allocated from it")}


def test_bills_and_payments_with_allocations_keep_them_consistent(site, admin, paid):
    first, payment = paid["first"], paid["payment"]
    error = refused(site, admin, lambda: site.records.update(
        "bills", first["id"], {"cancelled": True}, admin))
    assert error.errors == {"cancelled": "BILL-0001 has payments allocated to it "
                                         "(BPAY-0001 > BILL-0001): remove them first"}
    error = refused(site, admin, lambda: site.records.update(
        "bills", first["id"], {"supplier_id": paid["contoso"]["id"]}, admin))
    assert "before changing its supplier or currency" in error.errors["supplier_id"]
    error = refused(site, admin, lambda: site.records.delete("bills", first["id"], admin),
                    VetoError)
    assert str(error) == "BILL-0001: remove the payments of a bill before deleting it"
    error = refused(site, admin, lambda: site.records.delete(
        "bill_payments", payment["id"], admin), VetoError)
    assert str(error) == "BPAY-0001: remove the allocations of a payment before deleting it"
    # a bill's total may not fall below what was paid on it
    fewer = site.records.feature_data("line_items", "bills", first["id"], admin).as_input()
    fewer[0]["lines"][0]["quantity"] = "1"
    error = refused(site, admin, lambda: site.records.update(
        "bills", first["id"], {"line_items": fewer}, admin))
    assert error.errors == {"line_items": (
        "BILL-0001's total 67.51 USD is less than the 133.13 USD already paid on it")}
    # the worked-out figures are not anyone's to type
    for module, record_id, name in (("bills", first["id"], "amount_due"),
                                    ("bill_payments", payment["id"], "unallocated"),
                                    ("accounts", paid["northwind"]["id"], "balance_payable")):
        error = refused(site, admin, lambda m=module, r=record_id, n=name: site.records.update(
            m, r, {n: "1.00"}, admin))
        assert error.errors == {name: "is worked out by CRBM and cannot be set"}


def test_a_cancelled_order_is_not_billed_and_bad_quantities_are_refused(site, admin, books):
    order, lines = books["order"], books["lines"]
    error = refused(site, admin, lambda: bill_from_order(
        site, admin, order["id"], {lines["Bench vise"].id: "-1"}))
    assert error.errors == {lines["Bench vise"].id: "Bench vise: the quantity must not be "
                                                    "negative"}
    error = refused(site, admin, lambda: bill_from_order(
        site, admin, order["id"], {lines["Bench vise"].id: "lots", "nope": "1"}))
    assert error.errors == {lines["Bench vise"].id: "'lots' is not a number",
                            "nope": "'nope' is not a priced line of PO-0001"}
    error = refused(site, admin, lambda: bill_from_order(
        site, admin, order["id"], {lines["Bench vise"].id: "0"}))
    assert error.errors == {"quantities": "choose a quantity to bill on at least one line of "
                                          "PO-0001"}
    site.records.update("purchase_orders", order["id"], {"status": "cancelled"}, admin)
    error = refused(site, admin, lambda: bill_from_order(site, admin, order["id"]), VetoError)
    assert str(error) == "PO-0001 is cancelled: it cannot be billed"


def test_a_cancelled_bill_frees_its_quantities_for_another(site, admin, books):
    order, lines = books["order"], books["lines"]
    first = bill_from_order(site, admin, order["id"])
    site.records.update("bills", first["id"], {"cancelled": True}, admin)
    assert get(site, admin, "bills", first["id"])["amount_due"] == 0
    second = bill_from_order(site, admin, order["id"])
    assert second["amount"] == D("543.75")  # all of it again, shipping included
    # un-cancelling the first would bill everything twice
    error = refused(site, admin, lambda: site.records.update(
        "bills", first["id"], {"cancelled": False}, admin))
    assert "Bench vise on PO-0001: 20 billed is more than the 10 ordered" in \
        error.errors["line_items"]
    assert lines  # (the lines were the order's)


def test_the_payment_needs_edit_rights_and_the_bills_must_be_visible(site, admin, paid):
    with pytest.raises(NotFoundError):
        allocate_bill_payment(site, admin, "no-such-payment", {paid["second"]["id"]: "1"})
    error = refused(site, admin, lambda: allocate_bill_payment(
        site, admin, paid["payment"]["id"], {"no-such-bill": "1"}))
    assert error.errors == {"no-such-bill": "no such bill"}


def test_demo_data_makes_a_consistent_ledger(site, admin):
    make(site, admin, "accounts", name="Alpha Tools")
    make(site, admin, "accounts", name="Beta Metals")
    steps = []
    demo.load(site, admin, None, lambda done, total: steps.append((done, total)))
    assert steps[-1][0] == steps[-1][1]
    [bill] = site.records.list("bills", admin, Query(fields=["amount", "amount_due"]))
    assert bill["amount"] == D("235.00") and bill["amount_due"] == D("35.00")  # 75 + 160
    [payment] = site.records.list("bill_payments", admin, Query(fields=["unallocated"]))
    assert payment["unallocated"] == 0
    alpha = site.records.list("accounts", admin, Query(filters={"name": "Alpha Tools"},
                                                       fields=["balance_payable"]))
    assert alpha[0]["balance_payable"] == D("35.00")


# -- the pages -----------------------------------------------------------------------------

def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


@pytest.fixture
def client(site, admin):
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": "admin",
                                               "password": PASSWORD})
        assert response.status_code == 200
        client.csrf = csrf_of(response.text)
        yield client


def test_create_bill_page_bills_the_chosen_quantities(client, site, admin, books):
    order, lines = books["order"], books["lines"]
    detail = client.get(f"/m/purchase_orders/{order['id']}")
    assert f'href="/purchase_orders/{order["id"]}/bill"' in detail.text
    page = client.get(f"/purchase_orders/{order['id']}/bill")
    assert page.status_code == 200
    assert f'name="qty-{lines["Bench vise"].id}"' in page.text and 'value="10"' in page.text
    form = {"_csrf": client.csrf, f"qty-{lines['Bench vise'].id}": "11",
            f"qty-{lines['Drill press'].id}": "", f"qty-{lines['Installation'].id}": "0"}
    too_many = client.post(f"/purchase_orders/{order['id']}/bill", data=form)
    assert too_many.status_code == 422
    assert "billing 11 of Bench vise is more than the 10 left to bill on PO-0001" in \
        too_many.text
    assert site.records.count("bills", admin) == 0
    form[f"qty-{lines['Bench vise'].id}"] = "6"
    made = client.post(f"/purchase_orders/{order['id']}/bill", data=form,
                       follow_redirects=False)
    assert made.status_code == 303
    [bill] = site.records.list("bills", admin, Query(fields=["amount"]))
    assert made.headers["location"] == f"/m/bills/{bill['id']}"
    assert bill["amount"] == D("93.75")  # 6 x 12.50 + 15.00 shipping + 3.75 GST


def test_allocation_page_allocates_or_shows_why_not(client, site, admin, paid):
    payment, first, second = paid["payment"], paid["first"], paid["second"]
    other = make(site, admin, "bill_payments", supplier_id=paid["northwind"]["id"],
                 amount="150.00")
    detail = client.get(f"/m/bill_payments/{other['id']}")
    assert f'href="/bill_payments/{other["id"]}/allocate"' in detail.text
    page = client.get(f"/bill_payments/{other['id']}/allocate")
    assert page.status_code == 200
    assert 'data-bill="BILL-0002"' in page.text and 'data-bill="BILL-0001"' not in page.text

    url = f"/bill_payments/{other['id']}/allocate"
    too_much = client.post(url, data={"_csrf": client.csrf, f"amount-{second['id']}": "120"})
    assert too_much.status_code == 422
    assert "allocating 120.00 USD to BILL-0002 is more than its amount due, 110.63 USD" in \
        too_much.text
    assert get(site, admin, "bills", second["id"])["amount_due"] == D("110.63")
    no_csrf = client.post(url, data={f"amount-{second['id']}": "100"})
    assert no_csrf.status_code == 403

    done = client.post(url, data={"_csrf": client.csrf, f"amount-{second['id']}": "110.63"},
                       follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/m/bill_payments/{other['id']}"
    assert get(site, admin, "bills", second["id"])["amount_due"] == 0
    assert get(site, admin, "bill_payments", other["id"])["unallocated"] == D("39.37")
    # 0 owed on the bills, 66.87 + 39.37 paid and unallocated: the company is owed 106.24
    assert get(site, admin, "accounts", paid["northwind"]["id"])["balance_payable"] == \
        D("-106.24")
    for url in (f"/m/bill_payments/{payment['id']}", f"/m/bills/{first['id']}",
                f"/m/purchase_orders/{paid['order']['id']}", "/m/bills", "/m/bill_payments",
                "/m/purchase_orders", f"/m/accounts/{paid['northwind']['id']}",
                f"/m/bill_payment_allocations/{paid['allocations'][0]['id']}"):
        assert client.get(url).status_code == 200, url
