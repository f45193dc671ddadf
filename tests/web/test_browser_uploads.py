"""Uploaded files in a real browser: no script in an upload runs on the application's origin.

The chain an attacker builds: ``logo.js`` in a file field and a ``logo.html`` that loads it
in an image field (which used to be served inline, typed by its name); whoever opens the page's URL would run the script with their session. Opened in
Chromium, the page is a download, the script is refused even by a page of the site that
loads it, and a GIF carrying script shows as a picture. Nothing sets the marker the
scripts would set, and no dialog opens.
"""
from __future__ import annotations

import io
import secrets

import pytest
from PIL import Image
from playwright.sync_api import Error, expect

from tests.browser import TIMEOUT_MS, log_in

pytestmark = pytest.mark.browser
expect.set_options(timeout=TIMEOUT_MS)
MARK = "localStorage.setItem('crbm_upload_ran', '1'); alert('ran');"


def stored(site, admin, name: str, field: str, filename: str, content: bytes) -> str:
    """A gadget whose ``field`` holds ``content`` (as an upload leaves it); its file URL."""
    key = f"{secrets.token_hex(8)}/{filename}"
    target = site.folder / "files" / key
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    gadget = site.records.create("gadgets", {"name": name, field: key}, admin)
    return f"/m/gadgets/{gadget['id']}/file/{field}"


@pytest.mark.parametrize("viewport", ["desktop"])  # the same on a phone: once is enough
def test_no_script_in_an_upload_runs_on_the_site(page, viewport, server, site, admin):
    script = stored(site, admin, "Script", "manual", "logo.js", MARK.encode())
    # in an image field, as such a page was taken before image fields were checked
    html = stored(site, admin, "Page", "photo", "logo.html",
                  f'<!doctype html><script>{MARK}</script><script src="{script}"></script>'
                  .encode())
    gif = io.BytesIO()
    Image.new("RGB", (40, 20), (20, 120, 200)).save(gif, "GIF")
    picture = stored(site, admin, "Picture", "photo", "poly.gif",
                     gif.getvalue() + f"\n<script>{MARK}</script>".encode())
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    log_in(page)

    # the page is downloaded, not shown
    with page.expect_download() as download:
        try:
            page.goto(html)
        except Error:
            pass  # Chromium aborts the navigation: it is a download
    assert download.value.suggested_filename == "logo.html"

    # a page of the site that loads the script (as an injected tag would): refused
    page.goto("/")
    outcome = page.evaluate("""src => new Promise(done => {
        const tag = document.createElement('script');
        tag.onload = () => done('loaded'); tag.onerror = () => done('refused');
        tag.src = src; document.head.appendChild(tag);
    })""", script)
    assert outcome == "refused"

    # the polyglot is a picture
    response = page.goto(picture)
    assert response.headers["content-type"] == "image/gif"
    expect(page.locator("img")).to_be_visible()

    page.goto("/")
    assert page.evaluate("localStorage.getItem('crbm_upload_ran')") is None
    assert dialogs == []
