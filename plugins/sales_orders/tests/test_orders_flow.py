"""Order management end to end: a quote with two groups that needs approval, its PDF, a
sales order, two partial invoices, a payment across both, a credit note — and every
amount due and the account's balance exact, to the cent, against hand-computed figures.
Then the refusals that must leave all of that unchanged, and a quote mailed to a real SMTP
server with its PDF.
"""
import io
from decimal import Decimal

import pytest
from pypdf import PdfReader

from core.apps.documents import printing
from core.kernel.errors import ValidationError, VetoError
from core.kernel.i18n import Preferences, formatter
from plugins.invoices import api as invoicing
from plugins.quotes import plugin as quotes
from plugins.sales_orders import plugin as sales_orders
from tests.apps.documents.test_pdf import to_png

D = Decimal
FMT = formatter(Preferences())


@pytest.fixture
def shop(site, admin):
    """Taxes (GST 5 %, PST 7 %), an account, and quotes needing approval above 1,000."""
    records = site.records
    gst = records.create("tax_rates", {"name": "GST", "rate": "5"}, admin)
    pst = records.create("tax_rates", {"name": "PST", "rate": "7", "apply_order": 2}, admin)
    both = records.create("tax_codes", {"name": "GST+PST"}, admin)
    gst_only = records.create("tax_codes", {"name": "GST only"}, admin)
    for code, rate in ((both, gst), (both, pst), (gst_only, gst)):
        records.link("tax_codes", code["id"], "rates", rate["id"], admin)
    site.set_setting("orders", {"approve_quotes": True, "approval_threshold": "1000"})
    site.set_setting("company", {"name": "Northwind Supplies Ltd.",
                                 "address": "12 Harbour Street\nVancouver BC V6B 1A1",
                                 "footer_text": "Thank you for your business."})
    for module in ("quotes", "sales_orders", "invoices"):  # "smart convert" copies it
        site.studio.save_field(admin, module, "po_reference",
                               {"type": "text", "label": "PO reference"}, new=True)
    account = records.create("accounts", {"name": "Société Générale de Café",
                                          "email1": "achats@cafe.example"}, admin)
    return {"both": both["id"], "gst": gst_only["id"], "account": account["id"]}


def quote_lines(shop) -> list[dict]:
    return [
        {"name": "Equipment", "shipping": "25.00", "shipping_tax_code_id": shop["gst"],
         "lines": [
             # 2 x 1,200.00 = 2,400.00; GST 120.00, PST 168.00
             {"kind": "product", "name": "Laptop 14\"", "part_number": "LT-14",
              "quantity": "2", "unit_price": "1200.00", "list_price": "1300.00",
              "cost": "900.00", "tax_code_id": shop["both"]},
             # 2 x 150.00 = 300.00 - 10 % = 270.00; GST 13.50, PST 18.90
             {"kind": "product", "name": "Dock", "quantity": "2", "unit_price": "150.00",
              "cost": "100.00", "discount_kind": "percent", "discount_value": "10",
              "tax_code_id": shop["both"]},
             {"kind": "comment", "description": "Delivered and installed in one visit."}]},
        {"name": "Services", "lines": [
            # 3 x 80.00 = 240.00; GST 12.00
            {"kind": "service", "name": "Setup", "quantity": "3", "unit_price": "80.00",
             "tax_code_id": shop["gst"]}]},
    ]


def pdf_text(content: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def figures(site, admin, module, ids, *names):
    return [tuple(site.records.get(module, i, admin)[n] for n in names) for i in ids]


def test_quote_to_cash(site, admin, shop):
    records = site.records
    quote = records.create("quotes", {
        "name": "Office fit-out", "account_id": shop["account"], "po_reference": "PO-7781",
        "line_items": quote_lines(shop)}, admin)
    # Equipment: net 2,670.00 + shipping 25.00 + GST 134.75 (incl. 1.25 on shipping)
    # + PST 186.90 = 3,016.65; Services: 240.00 + GST 12.00 = 252.00
    assert quote["amount"] == D("3268.65") and quote["tax_total"] == D("333.65")
    assert quote["approval_status"] == "pending"  # over the 1,000 threshold

    # waiting for approval: neither printed nor emailed
    with pytest.raises(VetoError, match="waits for approval"):
        printing.render_record(site, "quotes", quote["id"], admin, "quote", FMT)
    quote = quotes.approve(site, admin, quote["id"])
    assert quote["approval_status"] == "approved" and quote["approved_by"] == admin.id
    _, content = printing.render_record(site, "quotes", quote["id"], admin, "quote", FMT)
    text = pdf_text(content)
    for expected in (quote["number"], "Société Générale de Café", "Northwind Supplies Ltd.",
                     "Laptop 14\"", "$2,400.00", "$3,268.65", "GST", "$146.75", "$186.90"):
        assert expected in text, expected

    # quote -> sales order: lines, totals and the custom field follow
    order = quotes.convert(site, admin, quote["id"], "sales_orders")
    assert order["amount"] == D("3268.65") and order["po_reference"] == "PO-7781"
    assert order["quote_id"] == quote["id"] and order["account_id"] == shop["account"]
    assert records.get("quotes", quote["id"], admin)["stage"] == "closed_accepted"
    lines = {line.name: line for line in records.feature_data("line_items", "sales_orders", order["id"],
                                                            admin).lines}

    # a partial invoice: one laptop and both docks (the order's shipping goes on it)
    first = sales_orders.invoice_order(site, admin, order["id"], {
        lines["Laptop 14\""].id: "1", lines["Dock"].id: "2"})
    # 1,200 + 270 + 25 shipping; GST 60 + 13.50 + 1.25; PST 84 + 18.90
    assert first["amount"] == D("1672.65") and first["po_reference"] == "PO-7781"
    assert first["sales_order_id"] == order["id"]
    # the rest: one laptop and the setup
    second = sales_orders.invoice_order(site, admin, order["id"])
    assert second["amount"] == D("1596.00")  # 1,200 + 84 + 60; 240 + 12
    assert records.get("sales_orders", order["id"], admin)["amount_invoiced"] == D("3268.65")
    with pytest.raises(sales_orders.InvoicingError, match="Nothing is left to invoice"):
        sales_orders.invoice_order(site, admin, order["id"])

    # one payment across both invoices
    payment = records.create("payments", {"account_id": shop["account"], "amount": "2000.00",
                                          "payment_method": "bank_transfer"}, admin)
    invoicing.allocate(site, admin, payment["id"], {first["id"]: "1672.65",
                                                    second["id"]: "327.35"})
    assert figures(site, admin, "invoices", [first["id"], second["id"]], "amount_due") == [
        (D("0"),), (D("1268.65"),)]
    assert records.get("payments", payment["id"], admin)["unallocated"] == D("0")

    # a credit note for one hour of setup on the second invoice: 80.00 + GST 4.00
    setup = next(line for line in records.feature_data("line_items", "invoices", second["id"], admin).lines
                 if line.name == "Setup")
    credit = invoicing.credit_invoice(site, admin, second["id"], invoicing.credit_lines(
        site, admin, second["id"], {setup.id: "1"}))
    assert credit["amount"] == D("84.00")
    assert records.get("invoices", second["id"], admin)["amount_due"] == D("1184.65")
    account = records.get("accounts", shop["account"], admin)
    assert account["balance_receivable"] == D("1184.65")

    # each standard document prints with its own figures and names
    def printed(module, record_id, form, picture=None):
        _, content = printing.render_record(site, module, record_id, admin, form, FMT)
        if picture:  # for a person to look at (test-artifacts/pdf)
            to_png(content, picture)
        return pdf_text(content)

    printed("quotes", quote["id"], "quote", "flow-quote")
    text = printed("invoices", second["id"], "invoice", "flow-invoice")
    assert second["number"] in text and "$1,596.00" in text and "$1,184.65" in text
    assert "Paid $327.35" in text and "Credited $84.00" in text  # so the amount due adds up
    assert "Société Générale de Café" in text and "Setup" in text
    text = printed("sales_orders", order["id"], "sales_order")
    assert order["number"] in text and "$3,268.65" in text and "Dock" in text
    text = printed("payments", payment["id"], "receipt")
    assert payment["number"] in text and "$2,000.00" in text
    assert first["number"] in text and "$1,672.65" in text and "$327.35" in text
    text = printed("accounts", shop["account"], "statement")
    assert second["number"] in text and "$1,184.65" in text  # open, with its payment
    assert payment["number"] in text and first["number"] not in text  # paid: not listed

    supplier = records.create("accounts", {"name": "東京支店 Components KK"}, admin)
    order_out = records.create("purchase_orders", {
        "name": "Docks restock", "supplier_id": supplier["id"],
        "line_items": [{"lines": [{"name": "Dock", "quantity": "10", "unit_price": "95.00",
                                   "tax_code_id": shop["gst"]}]}]}, admin)
    text = printed("purchase_orders", order_out["id"], "purchase_order")
    assert order_out["number"] in text and "東京支店" in text and "$997.50" in text

    # after approval, a change of the lines asks for approval again (on a quote not yet
    # converted: a converted one is final, plugins/quotes/tests/test_converted_quotes.py)
    other = records.create("quotes", {"name": "Second fit-out", "account_id": shop["account"],
                                      "line_items": quote_lines(shop)}, admin)
    assert quotes.approve(site, admin, other["id"])["approval_status"] == "approved"
    changed = quote_lines(shop)
    changed[1]["lines"][0]["quantity"] = "4"
    other = records.update("quotes", other["id"], {"line_items": changed}, admin)
    assert other["approval_status"] == "pending" and other["approved_by"] is None


def test_refusals_change_nothing(site, admin, shop):
    records = site.records
    quote = records.create("quotes", {"name": "Small order", "account_id": shop["account"],
                                      "line_items": quote_lines(shop)[1:]}, admin)
    assert quote["approval_status"] == "not_required"  # 252.00: under the threshold
    invoice = quotes.convert(site, admin, quote["id"], "invoices")
    payment = records.create("payments", {"account_id": shop["account"],
                                          "amount": "100.00"}, admin)

    def state():
        return (figures(site, admin, "quotes", [quote["id"]], "amount", "version", "stage"),
                figures(site, admin, "invoices", [invoice["id"]], "amount_due", "version"),
                figures(site, admin, "payments", [payment["id"]], "unallocated", "version"),
                records.get("accounts", shop["account"], admin)["balance_receivable"],
                [line.quantity for line in records.feature_data("line_items", "quotes", quote["id"],
                                                              admin).lines])
    before = state()

    negative = quote_lines(shop)[1:]
    negative[0]["lines"][0]["quantity"] = "-3"
    with pytest.raises(ValidationError) as caught:
        records.update("quotes", quote["id"], {"line_items": negative}, admin)
    assert str(caught.value.errors["line_items.1.1.quantity"]) == "must not be negative"

    with pytest.raises(ValidationError) as caught:  # the total comes from the lines only
        records.update("quotes", quote["id"], {"amount": "10.00"}, admin)
    assert str(caught.value.errors["amount"]) == "is read-only"

    with pytest.raises(ValidationError) as caught:  # more than the payment
        invoicing.allocate(site, admin, payment["id"], {invoice["id"]: "150.00"})
    assert "100.00" in str(caught.value)

    big = records.create("payments", {"account_id": shop["account"], "amount": "500.00"},
                         admin)
    before_big = figures(site, admin, "payments", [big["id"]], "unallocated", "version")
    with pytest.raises(ValidationError) as caught:  # more than the invoice owes
        invoicing.allocate(site, admin, big["id"], {invoice["id"]: "300.00"})
    assert "252.00" in str(caught.value)
    assert figures(site, admin, "payments", [big["id"]], "unallocated", "version") == before_big
    records.delete("payments", big["id"], admin)

    lost = records.create("quotes", {"name": "Lost", "account_id": shop["account"],
                                     "stage": "closed_lost"}, admin)
    with pytest.raises(quotes.QuoteError, match="a cancelled quote cannot be converted"):
        quotes.convert(site, admin, lost["id"], "sales_orders")
    assert records.get("quotes", lost["id"], admin)["stage"] == "closed_lost"

    with pytest.raises(ValidationError):  # approval is given by approving, not by editing
        records.update("quotes", quote["id"], {"approval_status": "approved"}, admin)
    assert state() == before


def test_a_quote_is_mailed_with_its_pdf(site, admin, shop, smtp_inbox):
    quote = site.records.create("quotes", {"name": "Coffee machines",
                                           "account_id": shop["account"],
                                           "line_items": quote_lines(shop)[1:]}, admin)
    sent = printing.email_record(site, "quotes", quote["id"], admin, "quote", FMT,
                                 to="achats@cafe.example", subject="Your quote",
                                 text="Please find our quote attached.")
    [message] = smtp_inbox.messages
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename() == f"{quote['number']}.pdf"
    assert "$252.00" in pdf_text(attachment.get_content())
    assert sent.to == ["achats@cafe.example"]
    history = site.records.related("accounts", shop["account"], "emails", admin)
    assert [h["name"] for h in history] == ["Your quote"]
