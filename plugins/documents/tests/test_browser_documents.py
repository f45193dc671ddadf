"""An account's Documents subpanel in Chromium, on a phone and a desktop: a file dropped on
it becomes a document related to the account (the subpanel opens and lists it, its count
goes up), a program dropped is refused with the sentence saying so, and a file over the
admin's limit is refused before it is sent; the document's page takes its next revision. Screenshots: documents-drop-<viewport>, documents-detail-<viewport>
(test-artifacts/screenshots/)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from core.kernel.records import Query
from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

DROP = """([selector, name, text, size]) => {
  const data = new DataTransfer();
  const body = size ? new Uint8Array(size) : text;
  data.items.add(new File([body], name, { type: "text/plain" }));
  const target = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
  }
}"""


def test_a_file_dropped_on_the_documents_subpanel_becomes_a_document(page, site, admin,
                                                                     viewport):
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    site.set_setting("documents", {"max_upload_mb": 1, "default_category": "sales",
                                   "default_status": "active"})
    log_in(page, "admin")
    page.goto(f"/m/accounts/{acme['id']}")
    panel = page.locator("#sub-documents")
    expect(panel).to_be_attached()
    page.wait_for_function("document.querySelector('[data-document-drop]').dataset.ready")
    page.evaluate(DROP, ["#sub-documents", "price list.txt", "Widgets 10 EUR", 0])
    expect(panel.locator(".subpanel-rows")).to_contain_text("price list.txt")
    expect(panel.locator("summary .count")).to_have_text("1")
    status = page.locator("#document-drop .drop-status")
    expect(status).to_contain_text("the documents were added")
    [doc] = site.records.list("library_documents", admin, Query())
    assert doc["category"] == "sales" and doc["file_text"] == "Widgets 10 EUR"
    screenshot(page, "documents-drop", viewport)
    page.evaluate(DROP, ["#sub-documents", "setup.bat", "del *.*", 0])
    expect(status).to_contain_text("setup.bat is a program")
    page.evaluate(DROP, ["#sub-documents", "video.txt", "", 2 * 2**20])
    expect(status).to_contain_text("video.txt is larger than 1 MB")
    assert site.records.count("library_documents", admin) == 1
    # the document's page: its revisions, each downloadable, and the next one uploaded
    page.goto(f"/m/library_documents/{doc['id']}")
    card = page.locator("#document-revisions")
    expect(card).to_contain_text("Revision 1")
    page.set_input_files("#document-revisions input[type=file]",
                         files=[{"name": "price list.txt", "mimeType": "text/plain",
                                 "buffer": b"Widgets 11 EUR"}])
    card.locator("input[name=change_note]").fill("New prices")
    card.get_by_role("button", name="Upload", exact=True).click()
    expect(card).to_contain_text("Revision 2")
    expect(card).to_contain_text("New prices")
    screenshot(page, "documents-detail", viewport)
