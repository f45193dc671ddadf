"""Helpers for the browser tests (tests/test_browser.py): a live server, Chromium, screenshots.

The site is served by a real uvicorn in a background thread; Chromium is Debian's
(/usr/bin/chromium), driven by Playwright. Nothing here downloads a browser.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from core.web import create_app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "screenshots"
TIMEOUT_MS = 10_000  # every wait (locators, expect, navigation): a page that needs more is broken

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
