"""Issue 21's mail client flow in Chromium, on a phone and a desktop: a customer's email read
in the reading pane (its HTML in the sandboxed frame, the remote image blocked), answered
with an email template, a file dropped on the compose form, sent; the outbound queue's job
delivers it to a real SMTP server (aiosmtpd) with the file and the thread's headers, and it
shows in Sent and on the contact's History. Screenshots: email-*-<viewport>.png."""
from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import expect

from core import jobs
from plugins.emails import folders
from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

DROP = """([name, text]) => {
  const files = new DataTransfer();
  files.items.add(new File([text], name, { type: "text/plain" }));
  const zone = document.querySelector("[data-dropzone]");
  zone.dispatchEvent(new DragEvent("dragenter", { dataTransfer: files, bubbles: true, cancelable: true }));
  zone.dispatchEvent(new DragEvent("drop", { dataTransfer: files, bubbles: true, cancelable: true }));
}"""


def test_read_reply_with_a_template_attach_and_send(page, server, site, admin, viewport,
                                                    smtp_inbox):
    acme = site.records.create("accounts", {"name": "Acme Corporation"}, admin)
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Roe",
                                            "email1": "jane@acme.example",
                                            "account_id": acme["id"]}, admin)
    site.records.create("email_templates", {
        "name": "Proposal follow-up", "for_module": "contacts", "language": "en",
        "subject": "About your proposal, {{ first_name }}",
        "body_html": "<p>Dear {{ first_name }},</p><p>installation is included.</p>"}, admin)
    with site.engine.begin() as conn:
        box = {**folders.ensure_personal(site, conn, admin.id), **folders.ensure_group(site, conn)}
    now = dt.datetime.now(dt.UTC)
    for n, subject in enumerate(("Renewal of our contract", "Meeting next Tuesday")):
        site.records.create("emails", {
            "name": subject, "from_address": "Bob Smith <bob@globex.example>",
            "to_addresses": "admin@crbm.example", "direction": "inbound", "status": "received",
            "folder_id": box["inbox"], "assigned_user_id": admin.id, "is_read": n == 0,
            "date_sent": now - dt.timedelta(days=2 + n), "body": "See you then."}, admin)
    site.records.create("emails", {
        "name": "Question about your proposal", "from_address": '"Jane Roe" <jane@acme.example>',
        "to_addresses": "admin@crbm.example", "direction": "inbound", "status": "received",
        "folder_id": box["inbox"], "assigned_user_id": admin.id, "contact_id": jane["id"],
        "account_id": acme["id"], "message_id": "<q1@acme.example>",
        "date_sent": now - dt.timedelta(hours=2),
        "body_html": '<p>Hello,</p><p>does the price include <b>installation</b>?</p>'
                     '<p><img src="https://tracker.example/pixel.png" alt="logo"></p>'
                     '<p>Best regards,<br>Jane</p>'}, admin)

    log_in(page)
    page.get_by_role("link", name="Email", exact=True).click()
    expect(page.get_by_role("heading", name="Inbox")).to_be_visible()
    expect(page.locator(".message-row.unread")).to_have_count(2)
    screenshot(page, "email-inbox", viewport)

    page.get_by_role("link", name="Question about your proposal").click()
    expect(page.get_by_role("heading", name="Question about your proposal")).to_be_visible()
    body = page.frame_locator("iframe.message-body")
    expect(body.get_by_text("does the price include")).to_be_visible()
    expect(page.get_by_text("Remote images are blocked")).to_be_visible()
    expect(page.locator(".linked").get_by_role("link", name="Jane Roe")).to_be_visible()
    screenshot(page, "email-read", viewport)

    page.get_by_role("link", name="↩ Reply").click()
    expect(page.get_by_label("To", exact=True)).to_have_value('"Jane Roe" <jane@acme.example>')
    page.get_by_label("Email template").select_option(label="Proposal follow-up")
    page.get_by_role("button", name="Insert template").click()
    editor = page.locator(".html-editor [contenteditable]")
    expect(editor).to_contain_text("Dear Jane,")
    expect(editor).to_contain_text("does the price include")  # the quoted original
    page.evaluate(DROP, ["price-list.txt", "Installation: included."])
    expect(page.locator("[data-chosen-files]")).to_have_text("price-list.txt")
    screenshot(page, "email-compose", viewport)

    page.get_by_role("button", name="Send", exact=True).click()
    expect(page.get_by_text("Your email is on its way.")).to_be_visible()
    # in a thread of its own: the queue's engine may run an event loop, and Playwright holds
    # this thread's
    with ThreadPoolExecutor(1) as worker:
        worker.submit(jobs.run_due_jobs, site).result()

    [message] = smtp_inbox.messages
    assert message["Subject"] == "Re: Question about your proposal"
    assert message["To"] == "Jane Roe <jane@acme.example>"
    assert message["In-Reply-To"] == "<q1@acme.example>"
    [attached] = list(message.iter_attachments())
    assert attached.get_filename() == "price-list.txt"
    assert attached.get_content() == "Installation: included."
    assert "Dear Jane," in message.get_body(("html",)).get_content()

    if viewport == "phone":
        page.locator(".folder-menu summary").click()
        page.locator(".folder-menu").get_by_role("link", name="Sent").click()
    else:
        page.locator(".desktop-only").get_by_role("link", name="Sent").click()
    expect(page.get_by_role("heading", name="Sent")).to_be_visible()
    expect(page.get_by_role("link", name="Re: Question about your proposal")).to_be_visible()
    screenshot(page, "email-sent", viewport)

    page.goto(f"/m/contacts/{jane['id']}")
    page.locator("#sub-history summary h2").click()
    history = page.locator("#sub-history .subpanel-rows")
    # the panel's rows come in a fetch of their own, slow on a busy machine (CI runs three
    # suites on two cores): wait for it to end, then read what it brought
    expect(page.locator("#sub-history .subpanel-rows[aria-busy]")).to_have_count(0,
                                                                             timeout=30_000)
    expect(history).to_contain_text("Re: Question about your proposal")
    page.locator("#sub-history").scroll_into_view_if_needed()
    screenshot(page, "email-contact-history", viewport)
