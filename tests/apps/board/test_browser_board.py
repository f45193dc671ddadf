"""The kanban board in Chromium, desktop and phone: a card dragged to another column (the
mouse on a desktop; on a phone, touch events on the card's grip, sent through the DevTools
protocol as a finger's would be) is saved, the column totals follow, and the record's change
log shows the move; a read-only user's move by the keyboard's "Move to…" is refused with
the reason and the card goes back. Screenshots: the board on both."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.apps.board.deals import plugin as deals_plugin
from tests.apps.board.test_board import make_pipeline
from tests.browser import TIMEOUT_MS, VIEWPORTS, live_server, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)


@pytest.fixture
def pipeline(make_site):
    return make_pipeline(make_site(extra_plugins=[deals_plugin]))


@pytest.fixture
def board_page(browser, viewport, pipeline):
    site, _ = pipeline
    with live_server(site) as base:
        context = browser.new_context(base_url=base, **VIEWPORTS[viewport])
        context.set_default_timeout(TIMEOUT_MS)
        page = context.new_page()
        errors = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        yield page
        context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def column(page, value):
    return page.locator(f'.board-column[data-column="{value}"]')


def card(page, name):
    return page.locator("[data-card]", has_text=name)


def touch_drag(page, source, target) -> None:
    """A finger pressing ``source``, moving in steps and lifting over ``target``: real
    touch events (Input.dispatchTouchEvent), as a phone's screen sends them."""
    cdp = page.context.new_cdp_session(page)
    start, end = source.bounding_box(), target.bounding_box()
    x0, y0 = start["x"] + start["width"] / 2, start["y"] + start["height"] / 2
    x1, y1 = end["x"] + min(end["width"] / 2, 12), end["y"] + end["height"] / 2
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x0, "y": y0}]})
    steps = 12
    for i in range(1, steps + 1):
        x, y = x0 + (x1 - x0) * i / steps, y0 + (y1 - y0) * i / steps
        cdp.send("Input.dispatchTouchEvent", {"type": "touchMove",
                                              "touchPoints": [{"x": x, "y": y}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def test_a_card_dragged_to_another_column_is_saved_and_logged(board_page, viewport, pipeline):
    site, who = pipeline
    page = board_page
    log_in(page)
    page.goto("/m/deals/board")
    expect(column(page, "prospecting").locator("[data-count]")).to_have_text("2")
    expect(column(page, "proposal").locator("[data-count]")).to_have_text("1")
    screenshot(page, "board", viewport)
    moving = card(page, "Northern lights")
    if viewport == "phone":  # a finger on the card's grip (elsewhere it scrolls the board)
        touch_drag(page, moving.locator(".board-grip"), card(page, "North star"))
    else:
        moving.drag_to(card(page, "North star"))
    expect(column(page, "proposal").locator("[data-count]")).to_have_text("2")
    expect(column(page, "proposal").locator("[data-face]")).to_have_text("$3,500.50")
    expect(column(page, "prospecting").locator("[data-count]")).to_have_text("1")
    expect(column(page, "proposal").locator("[data-card]", has_text="Northern lights")) \
        .to_have_count(1)
    record = site.records.get("deals", who["ids"]["Northern lights"], who["admin"])
    assert (record["stage"], record["version"]) == ("proposal", 2)
    screenshot(page, "board-after-move", viewport)
    page.get_by_role("link", name="Northern lights").click()
    expect(page.get_by_role("heading", name="Change log")).to_be_visible()
    entry = page.get_by_role("row").filter(has_text="Stage").filter(has_text="prospecting")
    expect(entry).to_contain_text("proposal")  # the log keeps the stored values


def test_a_refused_move_says_why_and_the_card_goes_back(board_page, viewport, pipeline):
    site, who = pipeline
    page = board_page
    log_in(page, "rita")
    page.goto("/m/deals/board")
    # a read-only user gets no move controls; a crafted move is refused by the server
    expect(card(page, "Northern lights")).to_be_visible()
    assert page.locator("[data-move-form]").count() == 0
    page.get_by_role("button", name="Log out").click()
    log_in(page)
    page.goto("/m/deals/board")
    # meanwhile someone else moves the deal: the board's card is stale
    site.records.update("deals", who["ids"]["North star"], {"next_step": "Call"}, who["admin"])
    target = card(page, "North star")
    target.get_by_label("Move to…").select_option(label="Negotiation")
    status = page.locator("[data-board-status]")
    expect(status).to_have_text("Someone else changed this Deal since the board was shown. "
                                "Reload the board and try again.")
    expect(column(page, "proposal").locator("[data-card]", has_text="North star")) \
        .to_have_count(1)
    expect(column(page, "negotiation").locator("[data-count]")).to_have_text("1")
    assert site.records.get("deals", who["ids"]["North star"], who["admin"])["stage"] == \
        "proposal"
    screenshot(page, "board-refused", viewport)
