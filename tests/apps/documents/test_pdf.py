"""PDF forms (core/apps/documents/forms.py, pdf.py, fonts.py) and the standard document forms.

Each standard form is rendered from a realistic context (accents, Japanese through the
fallback font, a 40-line invoice over two pages) and read back with pypdf: the numbers and
names a customer relies on must be in the text. The quote and the invoice are also turned
into PNG pages (test-artifacts/pdf/, or $CRBM_ARTIFACTS/pdf) for a person to look at.
"""
from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import pypdf
import pytest
from fpdf.output import OutputProducer
from PIL import Image, ImageDraw, ImageFont

from core.apps.documents import fonts, forms, pdf
from core.kernel.errors import NotFoundError
from core.kernel.plugins import SHIPPED_PLUGINS
from tests.needs import missing

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = Path(os.environ.get("CRBM_ARTIFACTS", REPO / "test-artifacts")) / "pdf"
STANDARD_FORMS = {
    "quote": SHIPPED_PLUGINS / "quotes" / "pdf" / "quote.yaml",
    "sales_order": SHIPPED_PLUGINS / "sales_orders" / "pdf" / "sales_order.yaml",
    "invoice": SHIPPED_PLUGINS / "invoices" / "pdf" / "invoice.yaml",
    "receipt": SHIPPED_PLUGINS / "invoices" / "pdf" / "receipt.yaml",
    "statement": SHIPPED_PLUGINS / "invoices" / "pdf" / "statement.yaml",
    "purchase_order": SHIPPED_PLUGINS / "purchases" / "pdf" / "purchase_order.yaml",
}


# -- sample contexts (what the documents' code hands to render) ------------------------------

def money(amount: Decimal) -> str:
    return f"€{amount:,.2f}"


def make_logo(folder: Path) -> str:
    """A small company logo: a navy badge with the initials."""
    image = Image.new("RGB", (420, 120), "white")
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((0, 10, 100, 110), radius=18, fill=(31, 58, 95))
    draw.polygon([(22, 88), (50, 30), (78, 88)], fill=(242, 184, 75))
    font = ImageFont.truetype(str(fonts.DEJAVU / "DejaVuSans-Bold.ttf"), 64)
    draw.text((122, 22), "ACME", fill=(31, 58, 95), font=font)
    path = folder / "logo.png"
    image.save(path)
    return str(path)


PRODUCTS = [
    ("Industrial widget", "WDG-100", "Zinc-plated steel, 40 mm"),
    ("Hex bolt M8 × 40", "BLT-0840", ""),
    ("Conveyor belt, 2 m", "CNV-2000", "Reinforced rubber; fits series 200 frames"),
    ("Bearing 6204-2RS", "BRG-6204", "Sealed deep groove ball bearing"),
    ("Gear motor 0.37 kW", "MTR-037", ""),
    ("Installation (hours)", "SRV-INST", "On-site installation by a certified technician"),
]


def line_items(count: int) -> dict:
    """``count`` lines in two groups, with a comment line, priced in euros."""
    groups, total, lines_made = [], Decimal(0), 0
    tax_total = Decimal(0)
    for group_name, share in (("Mechanical parts", count // 2), ("Services — 東京支店", count)):
        lines, subtotal = [], Decimal(0)
        while lines_made < share:
            name, part, description = PRODUCTS[lines_made % len(PRODUCTS)]
            quantity = Decimal(lines_made % 7 + 1)
            unit = Decimal("12.50") + lines_made * Decimal("3.75")
            list_price = unit + Decimal("2.00")
            ext = quantity * unit
            subtotal += ext
            lines.append({"kind": "service" if part.startswith("SRV") else "product",
                          "name": name, "part_number": part, "description": description,
                          "quantity": str(quantity), "unit_price": money(unit),
                          "list_price": money(list_price), "discount": "5%",
                          "ext_price": money(ext), "net_price": money(ext), "tax_code": "S"})
            lines_made += 1
            if lines_made == 3:
                lines.append({"kind": "comment", "name": "",
                              "description": "Delivered to the loading dock, gate 3."})
        tax = (subtotal * Decimal("0.20")).quantize(Decimal("0.01"))
        tax_total += tax
        total += subtotal
        groups.append({"name": group_name, "lines": lines, "subtotal": money(subtotal),
                       "discount": "", "shipping": "", "taxes": [{"name": "VAT 20%",
                                                                   "amount": money(tax)}],
                       "total": money(subtotal)})
    grand = total + tax_total + Decimal("45.00")
    return {"groups": groups, "show_list_prices": False, "show_pretax_totals": True,
            "totals": {"subtotal": money(total), "discount": "", "net": money(total),
                       "shipping": money(Decimal("45.00")),
                       "taxes": [{"name": "VAT", "percent": "20%", "label": "VAT 20%",
                                  "amount": money(tax_total)}],
                       "total": money(grand)}}


def grand_total(items: dict) -> Decimal:
    return Decimal(items["totals"]["total"].lstrip("€").replace(",", ""))


def context(tmp_path: Path, title: str, lines: int = 8, **record) -> dict:
    items = line_items(lines)
    return {
        "company": {"name": "Acme Industrie SARL",
                    "address_lines": ["12 rue de la Paix", "75002 Paris", "France"],
                    "phone": "+33 1 23 45 67 89", "email": "billing@acme.example",
                    "website": "www.acme.example", "tax_information": "VAT FR 12 345678901",
                    "logo": make_logo(tmp_path), "footer_text": "Thank you for your business.",
                    "link": "https://www.acme.example/pay"},
        "document": {"title": title},
        "record": {"number": "INV-1042", "name": "Spring order", "terms": "Net 30",
                   "invoice_date": "24 Nov 2026", "due_date": "24 Dec 2026",
                   "valid_until": "24 Dec 2026", "quote_date": "24 Nov 2026",
                   "order_date": "24 Nov 2026", "expected_date": "15 Dec 2026",
                   "amount_due": items["totals"]["total"], "status": "Sent",
                   "terms_text": "Payment is due within 30 days. Late payments bear interest "
                                 "at three times the legal rate and a fixed fee of €40.",
                   "billing_address_lines": ["29 boulevard Haussmann", "75009 Paris",
                                             "France"],
                   "shipping_address_lines": ["東京支店", "1-1 Marunouchi, Chiyoda-ku",
                                              "Tokyo 100-0005", "Japan"],
                   **record},
        "account": {"name": "Société Générale"},
        "contact": {"name": "Amélie Durand"},
        "line_items": items,
        "labels": {"quantity": "Qty"},
        "today": "24 Nov 2026",
        # the statement's and the receipt's
        "invoices": [
            {"number": "INV-1040", "date": "2 Oct 2026", "due_date": "1 Nov 2026",
             "total": "€1,200.00", "amount_due": "€450.00",
             "payments": [{"number": "PAY-0311", "date": "15 Oct 2026", "amount": "€500.00"},
                          {"number": "PAY-0330", "date": "30 Oct 2026", "amount": "€250.00"}]},
            {"number": "INV-1042", "date": "24 Nov 2026", "due_date": "24 Dec 2026",
             "total": items["totals"]["total"], "amount_due": items["totals"]["total"],
             "payments": []},
        ],
        "balance": money(Decimal("450.00") + grand_total(items)),
        "payment": {"number": "PAY-0347", "date": "26 Nov 2026", "method": "Bank transfer",
                    "amount": "€1,650.00",
                    "allocations": [{"invoice_number": "INV-1040", "invoice_date": "2 Oct 2026",
                                     "amount": "€450.00"},
                                    {"invoice_number": "INV-1042", "invoice_date": "24 Nov 2026",
                                     "amount": "€1,200.00"}]},
    }


# -- helpers ---------------------------------------------------------------------------------

def text_of(data: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(data))
    return "\n".join(page.extract_text() for page in reader.pages)


def pages_of(data: bytes) -> int:
    return len(pypdf.PdfReader(io.BytesIO(data)).pages)


def to_png(data: bytes, name: str) -> list[Path]:
    """The pages as PNG files in the artifacts folder (for a person to look at)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    source = ARTIFACTS / f"{name}.pdf"
    source.write_bytes(data)
    for old in ARTIFACTS.glob(f"{name}-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "60", str(source), str(ARTIFACTS / name)],
                   check=True, timeout=60)
    return sorted(ARTIFACTS.glob(f"{name}-*.png"))


def render_standard(name: str, ctx: dict) -> bytes:
    form = forms.load_form(STANDARD_FORMS[name])
    assert form.name == name
    return pdf.render(form, ctx)


def write_form(folder: Path, text: str, name: str = "sample") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(f"name: {name}\n{text}")
    return path


def problems_of(path: Path) -> list[str]:
    with pytest.raises(forms.PdfFormError) as caught:
        forms.load_form(path)
    return [str(problem) for problem in caught.value.problems]


def fonts_in(data: bytes) -> set[str]:
    reader = pypdf.PdfReader(io.BytesIO(data))
    names = set()
    for page in reader.pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            names.add(str(font.get_object()["/BaseFont"]))
    return names


# -- the standard forms ----------------------------------------------------------------------

def test_the_schema_is_valid_and_documents_every_property():
    schema = forms.SCHEMA
    forms.jsonschema.Draft202012Validator.check_schema(schema)
    undocumented = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, spec in (node.get("properties") or {}).items():
                if "description" not in spec:
                    undocumented.append(f"{where}.{name}")
            for key, value in node.items():
                if key != "if":  # a condition (`type` is ...), not properties
                    walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for index, item in enumerate(node):
                walk(item, f"{where}[{index}]")
    walk(schema, "$")
    assert not undocumented


@pytest.mark.parametrize("name", sorted(STANDARD_FORMS))
def test_every_standard_form_loads(name):
    form = forms.load_form(STANDARD_FORMS[name])
    assert form.name == name and form.title.endswith("(standard)")


def test_a_forty_line_invoice_spans_pages_with_its_numbers_and_names(tmp_path):
    ctx = context(tmp_path, "Invoice", lines=40)
    data = render_standard("invoice", ctx)
    pages = pages_of(data)
    assert pages >= 2
    text = text_of(data)
    total = ctx["line_items"]["totals"]["total"]
    for expected in ("Invoice", "INV-1042", "Société Générale", "Attn: Amélie Durand",
                     "29 boulevard Haussmann", "東京支店", "Services — 東京支店",
                     "Tokyo 100-0005", "24 Dec 2026", "Net 30", "Amount due", total,
                     "VAT 20%", "Shipping", "€45.00", "Delivered to the loading dock, gate 3.",
                     "Hex bolt M8 × 40", "BLT-0840", "Acme Industrie SARL",
                     "VAT FR 12 345678901", "https://www.acme.example/pay",
                     "Thank you for your business.", "Late payments bear interest",
                     f"Page 1 of {pages}", f"Page {pages} of {pages}"):
        assert expected in text, expected
    assert text.count(total) >= 3  # amount due box, total row, amount due row
    later = pypdf.PdfReader(io.BytesIO(data)).pages[1].extract_text()
    assert "Invoice INV-1042" in later  # the header of the following pages
    assert "Qty" in later and "Unit price" in later  # the table's heading row again


def test_list_prices_show_only_when_asked(tmp_path):
    ctx = context(tmp_path, "Quote", lines=4, number="QUO-0042")
    assert "List price" not in text_of(render_standard("quote", ctx))
    ctx["line_items"]["show_list_prices"] = True
    text = text_of(render_standard("quote", ctx))
    assert "List price" in text and "€14.50" in text  # the first line's list price


def test_the_quote_shows_its_validity_total_and_a_place_to_sign(tmp_path):
    ctx = context(tmp_path, "Quote", lines=8, number="QUO-0042")
    text = text_of(render_standard("quote", ctx))
    for expected in ("Quote", "QUO-0042", "Valid until", "24 Dec 2026", "Société Générale",
                     ctx["line_items"]["totals"]["total"], "Subtotal: Mechanical parts",
                     "Accepted by"):
        assert expected in text, expected
    assert "Amount due" not in text


def test_the_sales_order_and_the_purchase_order(tmp_path):
    ctx = context(tmp_path, "Sales order", number="SO-0007", purchase_order="PO-99812",
                  due_date="3 Dec 2026")
    text = text_of(render_standard("sales_order", ctx))
    for expected in ("Sales order", "SO-0007", "PO-99812", "3 Dec 2026", "BILL TO",
                     ctx["line_items"]["totals"]["total"]):
        assert expected in text, expected

    ctx = context(tmp_path, "Purchase order", number="PO-0311", shipping_address_lines=[])
    del ctx["account"]
    ctx["supplier"] = {"name": "Müller Zulieferung GmbH",
                       "billing_address_lines": ["Industriestraße 5", "70565 Stuttgart"]}
    text = text_of(render_standard("purchase_order", ctx))
    for expected in ("Purchase order", "PO-0311", "SUPPLIER", "Müller Zulieferung GmbH",
                     "Industriestraße 5", "Expected by", "15 Dec 2026", "SHIP TO",
                     ctx["line_items"]["totals"]["total"]):
        assert expected in text, expected
    ship_to = text[text.index("SHIP TO"):]
    assert "Acme Industrie SARL" in ship_to  # no delivery address: our own


def test_the_receipt_lists_the_payment_and_where_it_went(tmp_path):
    ctx = context(tmp_path, "Receipt")
    text = text_of(render_standard("receipt", ctx))
    for expected in ("Receipt", "PAY-0347", "26 Nov 2026", "Bank transfer", "€1,650.00",
                     "RECEIVED FROM", "Société Générale", "INV-1040", "€450.00", "INV-1042",
                     "€1,200.00", "Total received"):
        assert expected in text, expected

    ctx["payment"]["allocations"] = []
    assert "held as a credit" in text_of(render_standard("receipt", ctx))

    # without the payment block, the payment record's own fields
    ctx["payment"] = {}
    ctx["record"].update(number="PAY-0400", payment_date="1 Dec 2026", payment_method="Cheque",
                         amount="€99.00")
    text = text_of(render_standard("receipt", ctx))
    for expected in ("PAY-0400", "1 Dec 2026", "Cheque", "€99.00"):
        assert expected in text, expected


def test_the_statement_lists_open_invoices_with_their_payments(tmp_path):
    ctx = context(tmp_path, "Statement")
    text = text_of(render_standard("statement", ctx))
    for expected in ("Statement", "Open invoices", "INV-1040", "1 Nov 2026", "€1,200.00",
                     "Payment PAY-0311", "− €500.00", "Payment PAY-0330", "INV-1042",
                     "Balance due", ctx["balance"]):
        assert expected in text, expected
    assert text.index("PAY-0311") < text.index("INV-1042")  # under the invoice it paid

    ctx["invoices"] = []
    assert "Nothing is due" in text_of(render_standard("statement", ctx))

    # printed from the account itself: the record is the account
    ctx["record"] = {"name": "Société Générale", "billing_address_lines": ["1 rue A"]}
    del ctx["account"]
    text = text_of(render_standard("statement", ctx))
    assert "Société Générale" in text and "1 rue A" in text


def test_the_quote_and_the_invoice_as_pictures(tmp_path):
    """For a person to look at: test-artifacts/pdf/{quote,invoice}-<page>.png."""
    if shutil.which("pdftoppm") is None:
        missing("pdftoppm is not installed: apt-get install poppler-utils (.ci/run does it)")
    quote = to_png(render_standard("quote", context(tmp_path, "Quote", lines=8,
                                                    number="QUO-0042")), "quote")
    invoice = to_png(render_standard("invoice", context(tmp_path, "Invoice", lines=40)),
                     "invoice")
    assert len(quote) == 1 and len(invoice) >= 2
    for png in quote + invoice:
        with Image.open(png) as image:
            assert image.size[0] > 400
            assert len(image.convert("L").getcolors(maxcolors=256) or ()) > 20  # not blank


def test_only_the_fonts_a_document_uses_are_embedded(tmp_path):
    ctx = context(tmp_path, "Invoice")
    assert any("WenQuanYi" in name for name in fonts_in(render_standard("invoice", ctx)))
    ctx["record"]["shipping_address_lines"] = ["1 Main Street"]
    for group in ctx["line_items"]["groups"]:
        group["name"] = "Services"
    assert not any("WenQuanYi" in name for name in fonts_in(render_standard("invoice", ctx)))



class FpdfOwnFontWriting(fonts.Producer):
    """fonts.Producer writing the fonts with fpdf2's own code (from the same cut fonts)."""

    def _add_fonts(self, *args):
        for font in self.fpdf.fonts.values():
            if isinstance(font.ttfont, fonts.EmbeddedFont):
                font.ttfont = font.ttfont.ttfont()
        return OutputProducer._add_fonts(self, *args)


def font_objects(data: bytes) -> dict[str, tuple]:
    """Each embedded font by name: what a viewer reads of it (widths, the glyph of each
    code, the text of each code)."""
    found = {}
    for page in pypdf.PdfReader(io.BytesIO(data)).pages:
        for font in (page["/Resources"].get("/Font") or {}).values():
            font = font.get_object()
            cid = font["/DescendantFonts"][0].get_object()
            found[str(font["/BaseFont"])] = (
                list(cid["/W"]), cid["/DW"], cid["/CIDToGIDMap"].get_object().get_data(),
                font["/ToUnicode"].get_object().get_data())
    return found


def test_fonts_are_written_as_fpdf2_writes_them(tmp_path):
    """fonts.py writes the embedded fonts itself, following fpdf2 2.8's steps: the same
    document written by fpdf2's own code must read the same (the guard of that copy when
    fpdf2 is updated)."""
    form = forms.load_form(STANDARD_FORMS["invoice"])
    ctx = context(tmp_path, "Invoice", lines=40)  # two pages, a fallback font (東京)

    def written(producer) -> bytes:
        document = pdf._Document(form, ctx)
        document.build()
        return bytes(document.output(output_producer_class=producer))

    ours, theirs = written(fonts.Producer), written(FpdfOwnFontWriting)
    assert text_of(ours) == text_of(theirs)
    assert len(font_objects(ours)) >= 3  # regular, bold, the fallback
    assert font_objects(ours) == font_objects(theirs)

# -- scripts: CRBM's own fonts, whatever the machine has -----------------------------------

SUPPLIERS = {"Chinese": "北京华为技术有限公司", "Japanese": "株式会社トヨタ自動車 東京支店",
             "Cyrillic": "ООО «Ромашка»", "Greek": "Ελληνικά Προϊόντα Α.Ε.",
             "Korean": "삼성전자 주식회사"}


def test_the_fonts_come_with_crbm_not_with_the_machine():
    for family in fonts.BUILTIN_FAMILIES.values():
        for path in family.values():
            assert path.is_file() and not str(path).startswith("/usr/share/fonts"), path


@pytest.mark.parametrize("script", sorted(SUPPLIERS))
def test_a_supplier_name_in_any_supported_script_prints(tmp_path, script):
    name = SUPPLIERS[script]
    # the standard purchase order names no font for these scripts: CRBM's own fonts print it
    path = STANDARD_FORMS["purchase_order"]
    ctx = context(tmp_path, "Purchase order", number="PO-0311")
    ctx["supplier"] = {"name": name, "billing_address_lines": [name, "Tokyo 100-0005"]}
    printed = text_of(pdf.render(forms.load_form(path), ctx))
    assert printed.count(name) >= 2 and "PO-0311" in printed
    # a form naming no font at all, bold and regular
    path = write_form(tmp_path, """
body:
  - {type: text, text: "{{ supplier.name }}"}
  - {type: field, label: "Supplier", value: "{{ supplier.name }}", style: B}
""", "plain")
    assert text_of(pdf.render(forms.load_form(path), ctx)).count(name) == 2


@pytest.mark.parametrize(("text", "code"), [
    ("Pharaoh 𓀀 Imports", "U+13000"),  # Egyptian hieroglyphs: no font of CRBM's has them
    ("Acme \uf8ff Ltd", "U+F8FF"),  # a private-use character
    ("บริษัท ไทย จำกัด", "U+0E1A"),  # Thai
])
def test_text_no_font_has_stops_the_document_naming_it(tmp_path, text, code):
    ctx = context(tmp_path, "Purchase order", number="PO-0311")
    ctx["supplier"] = {"name": text, "billing_address_lines": []}
    with pytest.raises(pdf.PdfTextError) as caught:
        render_standard("purchase_order", ctx)
    message = str(caught.value)
    assert code in message and f"“{text}”" in message and "(supplier.name)" in message
    assert message.startswith("This document was not made: no font here can print")
    # the form's own text too
    path = write_form(tmp_path, f'body:\n  - {{type: text, text: "Hello {text}"}}\n')
    with pytest.raises(pdf.PdfTextError, match=r"\(PDF form sample\)"):
        pdf.render(forms.load_form(path), {})


# -- the engine -------------------------------------------------------------------------------

def test_expressions_are_sandboxed_and_missing_values_render_empty(tmp_path):
    path = write_form(tmp_path, """
body:
  - {type: text, text: "[{{ account.name }}][{{ nothing.at.all }}]"}
  - {type: text, text: "shown", visible_if: record.status == 'Sent'}
  - {type: text, text: "hidden", visible_if: account.name}
  - {type: field, label: "Due", value: "{{ record.due_date }}"}
""")
    text = text_of(pdf.render(forms.load_form(path), {"record": {"status": "Sent"}}))
    assert "[][]" in text and "shown" in text
    assert "hidden" not in text and "Due" not in text  # an empty field is left out

    path = write_form(tmp_path, 'body:\n  - {type: text, text: "{{ record.__class__.mro() }}"}\n',
                      "unsafe")
    with pytest.raises(forms.PdfFormError) as caught:
        pdf.render(forms.load_form(path), {"record": {}})
    assert "$.body[0]" in str(caught.value) and "SecurityError" in str(caught.value)


def test_long_text_continues_on_the_next_page(tmp_path):
    path = write_form(tmp_path, """
footer:
  - {type: page_number, align: R}
body:
  - {type: text, text: "{{ paragraphs }}"}
""")
    paragraphs = [f"Clause {n}: the parties agree." for n in range(1, 121)]
    data = pdf.render(forms.load_form(path), {"paragraphs": paragraphs})
    assert pages_of(data) >= 2
    text = text_of(data)
    assert "Clause 1:" in text and "Clause 120:" in text and "Page 2 of" in text


def test_images_fonts_and_paths_relative_to_the_form(tmp_path):
    (tmp_path / "forms" / "fonts").mkdir(parents=True)
    shutil.copy(fonts.DEJAVU / "DejaVuSans.ttf", tmp_path / "forms" / "fonts" / "Brand.ttf")
    make_logo(tmp_path / "forms")
    logo = make_logo(tmp_path)
    path = write_form(tmp_path / "forms", f"""
fonts:
  brand: {{regular: fonts/Brand.ttf}}
  cjk: {{regular: /nonexistent/fonts/cjk.ttc}}
fallback: [cjk]
default: {{font: brand, size: 10}}
body:
  - {{type: image, src: logo.png, w: 40}}
  - {{type: image, src: "{logo}", h: 10, align: R}}
  - {{type: image, src: "{{{{ company.logo }}}}", w: 30}}
  - {{type: text, text: "Brand text, bold falls back to regular", style: B}}
""")
    data = pdf.render(forms.load_form(path), {"company": {"logo": ""}})
    assert "Brand text" in text_of(data)
    reader = pypdf.PdfReader(io.BytesIO(data))
    assert len(reader.pages[0].images) == 2  # the empty logo expression draws nothing

    with pytest.raises(forms.PdfFormError) as caught:
        pdf.render(forms.load_form(path), {"company": {"logo": "/nonexistent/logo.png"}})
    assert "$.body[2]" in str(caught.value) and "image file not found" in str(caught.value)


def test_tables_take_any_list_and_refuse_what_is_not_one(tmp_path):
    path = write_form(tmp_path, """
body:
  - type: table
    rows: people
    as: person
    zebra: "#eeeeee"
    columns:
      - {key: name, label: Name}
      - {value: "{{ person.age }} years", label: Age, width: 30, align: R,
         visible_if: show_age}
    summary:
      - {label: "Count", value: "{{ people | length }}"}
      - {each: notes, label: "{{ item }}", value: "noted"}
""")
    form = forms.load_form(path)
    people = [{"name": f"Person {n}", "age": 20 + n} for n in range(60)]
    data = pdf.render(form, {"people": people, "show_age": True, "notes": ["First note"]})
    text = text_of(data)
    assert pages_of(data) >= 2
    assert "Person 59" in text and "79 years" in text and "Count 60" in text
    assert "First note noted" in text
    assert "years" not in text_of(pdf.render(form, {"people": people}))

    with pytest.raises(forms.PdfFormError) as caught:
        pdf.render(form, {"people": "not a list"})
    assert "$.body[0]" in str(caught.value) and "should give a list" in str(caught.value)


def test_columns_wider_than_the_table_are_refused(tmp_path):
    path = write_form(tmp_path, """
body:
  - type: table
    rows: rows
    w: 50
    columns: [{key: a, width: 40}, {key: b, width: 30}]
""")
    with pytest.raises(forms.PdfFormError) as caught:
        pdf.render(forms.load_form(path), {"rows": []})
    assert "$.body[0]" in str(caught.value) and "70 mm" in str(caught.value)


# -- bad forms --------------------------------------------------------------------------------

@pytest.mark.parametrize("body, where, reason", [
    ('  - {type: text, text: hi, colour: red}', "$.body[0].colour", "does not match"),
    ('  - {type: text, text: hi, size: 10, wobble: 3}', "$.body[0]", "'wobble' was unexpected"),
    ('  - {type: sparkles, text: hi}', "$.body[0].type", "'sparkles' is not one of"),
    ('  - {type: text, text: "{{ record.name "}', "$.body[0].text", "bad Jinja template"),
    ('  - {type: text, text: hi, visible_if: "record.name ==="}', "$.body[0].visible_if",
     "bad Jinja expression"),
    ('  - {type: row, items: [{type: text, text: x, font: comic}]}', "$.body[0].items[0].font",
     "unknown font family 'comic'"),
    ('  - {type: row, items: [{type: table, rows: r, columns: [{key: a}]}]}',
     "$.body[0].items[0]", "belongs directly in the body"),
    ('  - {type: line, x2: 10}', "$.body[0]", "'y2' is a dependency of 'x2'"),
    ('  - type: line_items\n    lines: group.lines\n    columns: [{label: Item}]',
     "$.body[0].columns[0]", "is not valid"),
])
def test_a_bad_form_is_refused_naming_file_and_path(tmp_path, body, where, reason):
    path = write_form(tmp_path, f"body:\n{body}\n")
    problems = problems_of(path)
    assert any(p.startswith(f"{path}: {where}: ") and reason in p for p in problems), problems


def test_bad_files_are_refused_too(tmp_path):
    path = write_form(tmp_path, "body: []\ncolour: blue\n", "extra")
    assert any("$: Additional properties are not allowed ('colour' was unexpected)" in p
               for p in problems_of(path))
    path = write_form(tmp_path, "body: []\n", "mismatch")
    path.write_text(path.read_text().replace("name: mismatch", "name: other"))
    assert any("$.name: the name 'other' must be the file's name" in p
               for p in problems_of(path))

    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nbody: [\n")
    assert any("not valid YAML" in p for p in problems_of(path))
    assert any("cannot read" in p for p in problems_of(tmp_path / "absent.yaml"))

    path = write_form(tmp_path, "fonts:\n  mine: {regular: nowhere.ttf}\nbody: []\n", "nofont")
    assert any("$.fonts.mine.regular: font file not found" in p for p in problems_of(path))


def test_forms_are_cached_until_their_file_changes(tmp_path):
    path = write_form(tmp_path, 'body:\n  - {type: text, text: "one"}\n')
    first = forms.load_form(path)
    assert forms.load_form(path) is first
    path.write_text('name: sample\nbody:\n  - {type: text, text: "two and more"}\n')
    second = forms.load_form(path)
    assert second is not first and "two and more" in text_of(pdf.render(second, {}))


# -- lookup -----------------------------------------------------------------------------------

def test_forms_are_found_in_the_site_then_packs_then_plugins(tmp_path):
    plugin = SimpleNamespace(folder=tmp_path / "plugin")
    pack = SimpleNamespace(folder=tmp_path / "pack")
    site = SimpleNamespace(folder=tmp_path / "site", enabled_packs=[pack], plugins=[plugin])
    body = 'body:\n  - {type: text, text: "%s"}\n'
    write_form(plugin.folder / "pdf", body % "plugin", "invoice")
    write_form(plugin.folder / "pdf", body % "plugin", "quote")
    write_form(pack.folder / "pdf", body % "pack", "quote")
    write_form(pack.folder / "pdf", body % "pack", "receipt")
    write_form(site.folder / "pdf", body % "site", "receipt")

    assert forms.form_dirs(site) == [site.folder / "pdf", pack.folder / "pdf",
                                   plugin.folder / "pdf"]
    assert forms.available_forms(site) == ["invoice", "quote", "receipt"]
    assert forms.find_form(site, "invoice").source.parent == plugin.folder / "pdf"
    assert forms.find_form(site, "quote").source.parent == pack.folder / "pdf"
    assert forms.find_form(site, "receipt").source.parent == site.folder / "pdf"
    for name in ("statement", "../site/pdf/receipt", "Quote"):
        with pytest.raises(NotFoundError, match="no PDF form named"):
            forms.find_form(site, name)


def test_shipped_plugins_forms_are_found_through_a_site(site):
    """The plugins that ship forms are found by a booted site, whichever are loaded."""
    names = forms.available_forms(site)
    for plugin in site.plugins:
        for path in (plugin.folder / "pdf").glob("*.yaml"):
            assert path.stem in names
            assert forms.find_form(site, path.stem).name == path.stem


def test_the_guide_examples_are_valid_forms(tmp_path):
    """docs/pdf_forms.md: the whole form renders, and every element example is valid."""
    blocks = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "pdf_forms.md").read_text(),
                        re.DOTALL)
    whole = next(b for b in blocks if b.startswith("name: "))
    path = tmp_path / "delivery_note.yaml"
    path.write_text(whole)
    ctx = context(tmp_path, "Sales order")
    text = text_of(pdf.render(forms.load_form(path), ctx))
    assert "Delivery note" in text and "Deliver to" in text and "Hex bolt M8 × 40" in text
    elements = [b for b in blocks if b.startswith("- ")]
    assert len(elements) >= 3
    for index, block in enumerate(elements):
        body = "".join(f"  {line}\n" for line in block.splitlines())
        path = write_form(tmp_path, f"body:\n{body}", f"example_{index}")
        pdf.render(forms.load_form(path), ctx)


def test_documents_render_side_by_side_in_threads(tmp_path):
    """Web workers render in threads: fonts and images are shared, documents are not."""
    form = forms.load_form(STANDARD_FORMS["invoice"])
    base = context(tmp_path, "Invoice")

    def render_one(number: int) -> str:
        ctx = {**base, "account": {"name": f"Client {number} Ærø 東京{number}"}}
        return text_of(pdf.render(form, ctx))

    with ThreadPoolExecutor(4) as pool:
        texts = list(pool.map(render_one, range(8)))
    for number, text in enumerate(texts):
        assert f"Client {number} Ærø 東京{number}" in text


def test_page_size_orientation_and_margins(tmp_path):
    path = write_form(tmp_path, """
page: {size: Letter, orientation: landscape, margins: {left: 30}}
body:
  - {type: text, text: "Wide"}
""")
    data = pdf.render(forms.load_form(path), {})
    box = pypdf.PdfReader(io.BytesIO(data)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == (792, 612)  # 11 x 8.5 in
    path = write_form(tmp_path, "page: {size: [100, 150]}\nbody: []\n", "custom")
    box = pypdf.PdfReader(io.BytesIO(pdf.render(forms.load_form(path), {}))).pages[0].mediabox
    assert (round(float(box.width) * 25.4 / 72), round(float(box.height) * 25.4 / 72)) == \
        (100, 150)


# -- lookups once per registry (issue 17) ----------------------------------------------------

SHEET = 'module: accounts\nbody:\n  - {type: text, text: "{{ record.name }}"}\n'


def test_a_form_added_later_is_seen_where_it_becomes_visible(site, admin, tmp_path):
    """The folders are scanned once per registry, yet a form dropped into the site's pdf/
    folder shows at once, and a pack's form once the pack is installed (the registry is
    rebuilt); a broken form is left out of the buttons and the detail page still works."""
    from core.apps.documents.printing import forms_for
    from core.testing import signed_in
    from tests.pack_util import install_folder

    def added():  # the accounts' forms but the shipped ones (a statement)
        return [f.name for f in forms_for(site, "accounts") if f.name.startswith("account_")]

    assert added() == []
    registry = site.registry
    assert added() == [] and site.registry is registry

    write_form(site.folder / "pdf", SHEET, "account_sheet")  # the folder did not exist
    assert added() == ["account_sheet"]
    write_form(site.folder / "pdf", SHEET, "account_card")  # at once, in the same folder
    assert added() == ["account_card", "account_sheet"]
    assert forms.find_form(site, "account_card").module == "accounts"

    pack = tmp_path / "forms_tiny"
    write_form(pack / "pdf", SHEET, "account_letter")
    (pack / "pack.yaml").write_text("name: forms_tiny\nkind: module\nversion: '1.0.0'\n"
                                    "title: Tiny forms\n")
    install_folder(site, pack, admin)
    assert added() == ["account_card", "account_letter", "account_sheet"]

    broken = site.folder / "pdf" / "account_broken.yaml"
    broken.write_text("name: account_broken\nmodule: accounts\nbody: [\n")
    assert "account_broken" in forms.available_forms(site)
    assert added() == ["account_card", "account_letter", "account_sheet"]
    with pytest.raises(forms.PdfFormError, match="not valid YAML"):
        forms.find_form(site, "account_broken")
    account = site.records.create("accounts", {"name": "Harbour Ltd"}, admin)
    with signed_in(site, "admin") as client:
        page = client.get(f"/m/accounts/{account['id']}")
        assert page.status_code == 200
        assert f"/m/accounts/{account['id']}/pdf/account_letter" in page.text
        assert "account_broken" not in page.text
        printed = client.get(f"/m/accounts/{account['id']}/pdf/account_letter")
        assert printed.status_code == 200 and "Harbour Ltd" in text_of(printed.content)

    broken.unlink()  # gone from the folder: gone from the lookups
    assert "account_broken" not in forms.available_forms(site)
