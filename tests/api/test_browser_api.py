"""The REST API's screens in a real browser, at phone and desktop widths, as an
administrator uses them: the API settings and public key, a new private API client and
its secret (shown once), the OAuth consent page and its redirect back to the
application, a webhook and its delivery log, and the API docs page. Screenshots:
api-settings, api-client-secret, oauth-consent, webhook-log, api-docs
(test-artifacts/screenshots/<flow>-<viewport>.png)."""
from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from core.apps.webhooks import webhooks
from tests import browser as helpers
from tests.apps.webhooks.test_webhooks import Receiver
from tests.browser import at, log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def no_sideways_scroll(page) -> None:
    """The page itself never scrolls sideways (a wide table may scroll in its own box)."""
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= page.viewport_size["width"], f"the page is {width} px wide"


def test_api_settings_client_consent_webhook_and_docs(page, server, site, admin, viewport):
    log_in(page)

    # 1. the settings: the switches as installed, and the public key
    page.goto("/admin")
    page.get_by_role("link", name="API and OAuth settings").click()
    expect(page).to_have_url(at(server, "/admin/api"))
    switches = {"Enable the REST API": True,
                "Allow API calls over insecure connections (http://)": False,
                "Enable basic authentication": False, "Enable session authentication": False}
    for label, on in switches.items():
        box = page.get_by_label(label)
        expect(box).to_be_checked() if on else expect(box).not_to_be_checked()
    expect(page.get_by_label("Public key")).to_have_value(re.compile("^-----BEGIN PUBLIC KEY"))
    no_sideways_scroll(page)
    screenshot(page, "api-settings", viewport)

    # 2. a private client; its secret is shown once, on the answer to "Create"
    redirect_uri = f"{server}/health"
    page.goto("/admin")
    page.get_by_role("link", name="API clients").click()
    page.get_by_role("link", name="New API client").click()
    page.get_by_label("Name").fill("Field app")
    page.get_by_label("Publisher").fill("Acme Tools")
    expect(page.get_by_label("Authorization code (a user signs in)")).to_be_checked()
    expect(page.get_by_label("Refresh token")).to_be_checked()
    page.get_by_label("Redirect URLs").fill(redirect_uri)
    page.get_by_role("button", name="Create").click()
    expect(page.get_by_role("status")).to_have_text("API client Field app was created.")
    secret = page.get_by_label("Client secret").input_value()
    assert len(secret) >= 40
    client_id = page.locator("main code").first.inner_text()
    no_sideways_scroll(page)
    screenshot(page, "api-client-secret", viewport)
    page.get_by_role("link", name="Back to the client").click()
    expect(page).to_have_url(at(server, f"/admin/api/clients/{re.escape(client_id)}"))
    page.reload()
    expect(page.get_by_role("heading", name="Field app")).to_be_visible()
    expect(page.get_by_text("It cannot be shown again")).to_be_visible()
    assert secret not in page.content()
    expect(page.get_by_role("button", name="Rotate secret")).to_be_visible()

    # 3. the consent page; Allow sends the browser back with a code and the state
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()) \
        .rstrip(b"=").decode()
    page.goto("/oauth/authorize?" + urlencode({
        "response_type": "code", "client_id": client_id, "redirect_uri": redirect_uri,
        "state": "xyz", "code_challenge": challenge, "code_challenge_method": "S256"}))
    expect(page.get_by_role("heading", name="Allow Field app?")).to_be_visible()
    expect(page.get_by_text("Field app by Acme Tools wants to use CRBM as you (admin)."))\
        .to_be_visible()
    expect(page.get_by_text(f"You will be sent back to {urlsplit(server).netloc}."))\
        .to_be_visible()
    expect(page.get_by_role("button", name="Deny")).to_be_visible()
    no_sideways_scroll(page)
    screenshot(page, "oauth-consent", viewport)
    page.get_by_role("button", name="Allow").click()
    expect(page).to_have_url(re.compile("^" + re.escape(redirect_uri) + r"\?"))
    answer = parse_qs(urlsplit(page.url).query)
    assert answer["state"] == ["xyz"] and answer["code"][0]

    # 4. a webhook on accounts; a new account is delivered and logged
    receiver = Receiver()
    try:
        page.goto("/admin")
        page.get_by_role("link", name="Webhooks").click()
        page.get_by_role("link", name="New webhook").click()
        page.get_by_role("textbox", name="URL").fill(receiver.url)
        page.get_by_role("combobox", name="Module").select_option("accounts")
        page.get_by_label("Deleted").uncheck()
        page.get_by_role("button", name="Create webhook").click()
        expect(page.get_by_role("heading", name=receiver.url)).to_be_visible()
        account = site.records.create("accounts", {"name": "Globex"}, admin)
        assert webhooks.deliver_due(site).delivered == 1
        assert len(receiver.requests) == 1
    finally:
        receiver.close()
    page.reload()
    row = page.locator("table.deliveries tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_have_attribute("data-status", "delivered")
    expect(row).to_contain_text("Created")
    expect(row).to_contain_text("Delivered")
    expect(row).to_contain_text("HTTP 200")
    expect(row.get_by_role("link", name=account["id"])).to_be_visible()
    no_sideways_scroll(page)
    screenshot(page, "webhook-log", viewport)

    # 5. the human-readable API docs: a closed section per module, opened on demand
    page.goto("/api/v1/docs")
    expect(page.get_by_role("heading", name="REST API", exact=True)).to_be_visible()
    expect(page.get_by_text("Authorization: Bearer <token>.")).to_be_visible()
    accounts = page.locator("details#accounts")
    expect(accounts.get_by_text("GET /api/v1/accounts — list")).to_be_hidden()
    accounts.locator("summary").click()
    expect(accounts.get_by_text("GET /api/v1/accounts — list", exact=True)).to_be_visible()
    expect(accounts).to_contain_text("GET PATCH DELETE /api/v1/accounts/{id} — read, change")
    name = accounts.locator("table.api-fields tbody tr").filter(
        has=page.locator("code", has_text=re.compile("^name$")))
    expect(name).to_contain_text("Account name")
    expect(name).to_contain_text("required")
    no_sideways_scroll(page)
    screenshot(page, "api-docs", viewport)
