"""Demo documents: a price list in three revisions, a product brochure, an NDA template and
the employee handbook — PDFs drawn with fpdf2 (their text is extracted like any upload's)
and a text file; the price list and the NDA are related to the first demo accounts. The
same seed makes the same documents."""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.records import Query, now
from core.web import uploads

DOCUMENTS = (
    ("Price list", "sales", "product_brochures", "active", "Sales",
     ["Price list 2025: widgets 10 EUR, gadgets 25 EUR.",
      "Price list 2026: widgets 11 EUR, gadgets 26 EUR.",
      "Price list 2026 (corrected): widgets 11 EUR, gadgets 24 EUR, sprockets 3 EUR."]),
    ("Product brochure", "marketing", "marketing_collateral", "active", "Marketing",
     ["Our widgets last twice as long. Ask for a demo."]),
    ("Non-disclosure agreement", "legal", "contracts", "under_review", "Legal",
     ["Mutual non-disclosure agreement. Both parties keep confidential information secret."]),
)
HANDBOOK = "Employee handbook\n\nHolidays: 25 days a year.\nExpenses: file within 30 days.\n"


def pdf(text: str) -> bytes:
    from fpdf import FPDF

    document = FPDF()
    document.add_page()
    document.set_font("helvetica", size=12)
    document.multi_cell(0, 8, text)
    return bytes(document.output())


def load(site, user, rng) -> None:
    store = site.folder / "files"
    accounts = [a["id"] for a in site.records.list(
        "accounts", user, Query(sort="name", limit=2, fields=["id"]))] \
        if "accounts" in site.registry.modules else []
    made = []
    for name, category, subcategory, status, department, texts in DOCUMENTS:
        key = uploads.store(store, f"{name.lower().replace(' ', '_')}.pdf", pdf(texts[0]))
        doc = site.records.create("library_documents", {
            "name": name, "category": category, "subcategory": subcategory, "status": status,
            "department": department, "keywords": name.lower(), "file": key,
            "change_note": "First version"}, user)
        for number, text in enumerate(texts[1:], start=2):
            key = uploads.store(store, f"{name.lower().replace(' ', '_')}.pdf", pdf(text))
            doc = site.records.update("library_documents", doc["id"], {
                "file": key, "change_note": f"Revision {number}"}, user)
        made.append(doc["id"])
    key = uploads.store(store, "handbook.txt", HANDBOOK.encode())
    site.records.create("library_documents", {"name": "Employee handbook", "category": "hr",
                                      "subcategory": "policies", "status": "active",
                                      "department": "Human Resources", "file": key}, user)
    if accounts and "documents" in site.registry.module("accounts").relationships:
        link = site.tables.tables[site.registry.module("accounts").link_table("documents")]
        with site.engine.begin() as conn:
            conn.execute(sa.insert(link), [
                {"accounts_id": account, "library_documents_id": doc, "created_at": now(),
                 "created_by": str(user.id)}
                for account in accounts for doc in (made[0], made[2])])
