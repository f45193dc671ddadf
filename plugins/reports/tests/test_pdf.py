"""A report as a PDF, read back with pypdf: the group labels — accents and Chinese among
them — and the figures formatted as the reader reads them, the totals; landscape when the
columns do not fit upright; the header row on every page of a long list; and the
/reports/<id>/export.pdf download, refused like the other exports."""
from __future__ import annotations

import io
import json

import pypdf
import pytest

from core.kernel import i18n
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import signed_in
from core.web import exporting
from plugins.reports.compiler import check
from plugins.reports.pdf import to_pdf


def fmt(**prefs):
    return i18n.formatter(i18n.Preferences(**prefs))


def pages(content: bytes) -> list[str]:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return [page.extract_text() for page in reader.pages]


def flat(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def accounts(site):
    names = ["Café Ünïcode", "東京商事", "Plain Ltd"]
    ids = site.records.create_many("accounts", [{"name": f"PDF {n}"} for n in names],
                                   SYSTEM_USER)
    site.records.create_many("opportunities", [
        {"name": f"PDF deal {i}", "account_id": ids[a], "amount": amount,
         "sales_stage": "prospecting", "date_closed": "2026-06-30"}
        for i, (a, amount) in enumerate([(0, "1234567.50"), (0, "10"), (1, "2500"),
                                         (2, "99.99")])], SYSTEM_USER)
    return ids


GROUPED = {"module": "opportunities",
           "columns": [{"field": "amount", "aggregate": "sum"},
                       {"field": "id", "aggregate": "count"}],
           "filters": [{"field": "name", "op": "starts", "value": "PDF "}],
           "group_by": [{"field": "account_id"}]}


def test_the_pdf_holds_the_group_labels_and_the_formatted_figures(site, admin, accounts):
    english = fmt()
    content = to_pdf(site, check(site.registry, GROUPED), admin, english, "Deals by account")
    assert content.startswith(b"%PDF")
    [text] = pages(content)
    text = flat(text)
    assert "Deals by account" in text
    for label in ("PDF Café Ünïcode", "PDF 東京商事", "PDF Plain Ltd", "Total"):
        assert label in text
    # figures as the report page shows them: the currency, grouping, right digits
    for figure in ("$1,234,577.50", "$2,500.00", "$99.99", "$1,237,177.49"):
        assert figure in text
    page = pypdf.PdfReader(io.BytesIO(content)).pages[0]
    assert page.mediabox.width < page.mediabox.height  # three columns: upright
    # in French: the figures in French
    french = to_pdf(site, check(site.registry, GROUPED), admin,
                    fmt(language="fr", number_locale="fr_FR"), "Affaires")
    assert "1\u202f234\u202f577,50\xa0$US" in pages(french)[0]


def test_many_columns_turn_the_page_and_a_long_list_repeats_its_header(site, admin):
    site.records.create_many("accounts", [
        {"name": f"Long {i:03d}", "industry": "banking", "billing_address_city": "Lyon",
         "phone_office": "+33 4 00 00 00 00", "website": "https://example.com"}
        for i in range(120)], SYSTEM_USER)
    columns = [{"field": f} for f in ("name", "industry", "billing_address_city",
                                      "phone_office", "website", "account_type",
                                      "annual_revenue", "employees")]
    definition = check(site.registry, {"module": "accounts", "columns": columns,
                                       "filters": [{"field": "name", "op": "starts",
                                                    "value": "Long "}]})
    content = to_pdf(site, definition, admin, fmt(), "All accounts")
    reader = pypdf.PdfReader(io.BytesIO(content))
    assert len(reader.pages) > 1
    for page in reader.pages:
        assert page.mediabox.width > page.mediabox.height  # landscape
        lines = page.extract_text().splitlines()
        assert lines[1].startswith("Account name Industry Billing address: city")  # each page
    text = flat(" ".join(pages(content)))
    assert "Long 000" in text and "Long 119" in text and "Banking" in text


def test_the_export_pdf_page_is_refused_like_the_other_exports(site, admin, web, accounts):
    made = site.records.create("reports", {"name": "Deals by account",
                                           "definition": json.dumps(GROUPED)}, admin)
    response = web.get(f"/reports/{made['id']}/export.pdf")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/pdf"
    assert 'filename="Deals by account ' in response.headers["content-disposition"]
    assert "PDF Plain Ltd" in flat(pages(response.content)[0])
    # only administrators may export on this site: a user is sent back with the reason
    exporting.save_export_who(site, exporting.ADMINS)
    create_user(site, "uma", "correct horse battery")
    with signed_in(site, "uma", "correct horse battery") as uma:
        refused = uma.get(f"/reports/{made['id']}/export.pdf", follow_redirects=False)
        assert refused.status_code == 303
        assert refused.headers["location"] == f"/reports/{made['id']}"
        assert uma.get(f"/reports/{made['id']}/runs").status_code == 200  # she may view it
    # a report the user may not view is not found at all
    assert web.get("/reports/00000000-0000-0000-0000-00000000abcd/export.pdf").status_code == 404
