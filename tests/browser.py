"""Helpers and fixtures for the browser tests (the test_browser*.py files, marker
``browser``): a live server, Chromium, screenshots. The fixtures are made available to
every test through conftest.py.

The site is served by a real uvicorn in a background thread; Chromium is Debian's
(/usr/bin/chromium), driven by Playwright. Nothing here downloads a browser.
"""
from __future__ import annotations

import os
import re
import socket
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest
import uvicorn
from playwright.sync_api import expect, sync_playwright

from core.web.app import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
PASSWORD = "correct horse battery"  # the conftest admin's
TIMEOUT_MS = 20_000  # every wait (locators, expect): a page that needs more is broken. Alone a
# page loads in well under a second; in CI three suites share two cores and one took 10 s.

# name -> Playwright context options
VIEWPORTS = {
    "phone": {"viewport": {"width": 375, "height": 812}, "is_mobile": True, "has_touch": True},
    "desktop": {"viewport": {"width": 1440, "height": 900}},
}


def chromium_missing_reason() -> str | None:
    if Path(CHROMIUM).exists():
        return None
    return (f"{CHROMIUM} is missing: install Debian's chromium (apt-get install chromium "
            f"fonts-dejavu-core; .ci/run does it). Playwright's own browser download is not used.")


@contextmanager
def live_server(site):
    """Serve ``site`` on 127.0.0.1 and a free port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(create_app(site), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_for_health(base, thread)
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def _wait_for_health(base: str, thread: threading.Thread, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server at {base} did not answer /health")
        time.sleep(0.02)  # polling a starting server, not waiting on the UI


def screenshot(page, flow: str, viewport: str) -> Path:
    """Full-page screenshot to test-artifacts/screenshots/<flow>-<viewport>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{flow}-{viewport}.png"
    page.screenshot(path=str(path), full_page=True, animations="disabled")
    return path


def in_ci() -> bool:
    return bool(os.environ.get("CI"))


# -- fixtures ------------------------------------------------------------------------------

@pytest.fixture(scope="session")
def browser():
    reason = chromium_missing_reason()
    if reason:
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(params=list(VIEWPORTS))
def viewport(request) -> str:
    return request.param


@pytest.fixture
def server(site):
    with live_server(site) as base:
        yield base


@pytest.fixture
def page(browser, viewport, server):
    context = browser.new_context(base_url=server, accept_downloads=True, **VIEWPORTS[viewport])
    context.set_default_timeout(TIMEOUT_MS)
    # (a navigation loads the page and its static files from a server that shares two cores
    # with two other suites in CI: it gets longer than one wait on the page)
    context.set_default_navigation_timeout(3 * TIMEOUT_MS)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


# -- helpers -------------------------------------------------------------------------------

def at(server: str, path: str) -> re.Pattern:
    """The page URL is exactly ``path`` (a regex fragment) on the test server."""
    return re.compile("^" + re.escape(server) + path + "$")


def log_in(page, username: str = "admin", password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    page.wait_for_load_state()  # the page's deferred scripts have run: its widgets work


def box_of(locator) -> dict:
    """``locator``'s bounding box once it is on screen. A component that re-renders after
    its data arrives (the calendar) may replace the element between a check that it is
    visible and the measure: measured again then, a few times, each after waiting for it."""
    from playwright.sync_api import expect

    for _ in range(5):
        expect(locator).to_be_visible()
        box = locator.bounding_box()
        if box is not None:
            return box
    raise AssertionError(f"{locator} never stayed on screen long enough to be measured")
