"""An account's page in Chromium, on a phone and a desktop: the timeline beside (below, on a
phone) the fields, newest first, filtered to calls and back, "Load more"; the subpanels
collapsed with their counts, one opened and still open on the next visit (remembered for
the user); a file dropped on History becomes a note with it attached, and a program
dropped is refused with a message. Screenshots: timeline-<viewport>, timeline-drop-<viewport>,
timeline-note-<viewport>
(test-artifacts/screenshots/)."""
from __future__ import annotations

import datetime as dt

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

DROP = """([selector, name, text]) => {
  const data = new DataTransfer();
  data.items.add(new File([text], name, { type: "text/plain" }));
  const target = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    target.dispatchEvent(new DragEvent(type, { dataTransfer: data, bubbles: true, cancelable: true }));
  }
}"""


def test_an_account_page_shows_its_timeline_panels_and_takes_a_dropped_file(
        page, site, admin, viewport):
    acme = site.records.create("accounts", {"name": "Acme", "industry": "banking"}, admin)
    about = {"parent_id": acme["id"], "parent_type": "accounts"}
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    site.records.create("contacts", {"first_name": "Wile", "last_name": "Coyote",
                                     "account_id": acme["id"]}, admin)
    site.records.create("calls", {"name": "Kick-off call", "status": "held",
                                  "date_start": now - dt.timedelta(days=2), **about}, admin)
    site.records.create("meetings", {"name": "Site visit", "status": "planned",
                                     "date_start": now - dt.timedelta(days=1),
                                     "date_end": now - dt.timedelta(hours=23), **about}, admin)
    site.records.create_many("notes", [{"name": f"Visit report {n}", **about}
                                       for n in range(25)], admin)
    site.records.update("accounts", acme["id"], {"industry": "retail"}, admin)

    log_in(page, "admin")
    page.goto(f"/m/accounts/{acme['id']}")
    card = page.locator("aside.timeline")
    entries = card.locator("li.tl-item")
    card.scroll_into_view_if_needed()  # read when it comes into view (below the fields on a phone)
    expect(entries.first).to_contain_text("Industry")  # the newest: the change just made
    expect(entries).to_have_count(20)
    card.get_by_role("link", name="Load more").click()
    expect(entries).to_have_count(29)  # 25 notes, a call, a meeting, the change, the creation
    expect(card.get_by_role("link", name="Load more")).to_have_count(0)
    card.get_by_role("button", name="Calls").click()
    expect(entries).to_have_count(1)
    expect(entries.first).to_contain_text("Kick-off call")
    card.get_by_role("button", name="Everything").click()
    expect(entries).to_have_count(20)
    # the subpanels: collapsed, with their counts
    contacts = page.locator("#sub-contacts")
    expect(contacts.locator(".count")).to_have_text("1")
    assert not contacts.evaluate("d => d.open")
    if viewport == "desktop":  # beside the fields
        fields, aside = page.locator(".detail-fields").bounding_box(), card.bounding_box()
        assert aside["x"] > fields["x"] + fields["width"] - 1 and aside["y"] < fields["y"] + 50
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
    screenshot(page, "timeline", viewport)

    # opened: its rows come, and it is open again on the next visit
    with page.expect_response(lambda r: "/panels/state" in r.url):
        contacts.locator("summary h2").click()
    expect(contacts.locator(".subpanel-rows")).to_contain_text("Coyote")
    page.reload()
    expect(page.locator("#sub-contacts .subpanel-rows")).to_contain_text("Coyote")
    assert page.locator("#sub-contacts").evaluate("d => d.open")

    # a file dropped on History: a note with it attached, in History and the timeline
    history = page.locator("#sub-history")
    history.scroll_into_view_if_needed()
    with page.expect_response(lambda r: "drop-note" in r.url):
        page.evaluate(DROP, ["#sub-history", "minutes.txt", "We agreed on the price."])
    expect(history.locator(".subpanel-rows")).to_contain_text("minutes.txt")
    expect(history.locator("summary .count")).to_have_text("27")  # 25 notes, a call, this one
    expect(entries.first).to_contain_text("minutes.txt")
    [note] = [n for n in site.records.list("notes", admin) if n["name"] == "minutes.txt"]
    assert note["parent_id"] == acme["id"]
    # a program: refused, said in the panel, nothing saved
    with page.expect_response(lambda r: "drop-note" in r.url):
        page.evaluate(DROP, ["#sub-history", "setup.exe", "MZ\u0090 this is a program"])
    expect(history.locator(".drop-status")).to_contain_text("setup.exe is a program")
    assert not [n for n in site.records.list("notes", admin) if n["name"] == "setup.exe"]
    screenshot(page, "timeline-drop", viewport)
    # the note's page lists the file for download
    page.goto(f"/m/notes/{note['id']}")
    expect(page.locator("#attachments")).to_contain_text("minutes.txt")
    screenshot(page, "timeline-note", viewport)
