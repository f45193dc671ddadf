"""Themes in a real browser (Chromium), on a phone (375 px) and a desktop (1280 px): the
shipped Nocturne theme chosen in the preferences, its layout (a side bar on a desktop, a
drawer menu on a phone), its contrast, and the login page's language choice.

Screenshots: test-artifacts/screenshots/theme-<kernel|nocturne>-<page>-<viewport>.png.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests import browser as helpers
from tests.browser import PASSWORD, log_in, screenshot
from tests.pack_util import install_folder

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)

TEST_PACKS = Path(__file__).resolve().parents[1] / "packs"
DESKTOP = {"width": 1280, "height": 850}
NOCTURNE_BG = "rgb(14, 19, 32)"
KERNEL_BG = "rgb(244, 246, 248)"

# WCAG contrast of an element's text on the first solid background behind it
CONTRAST_JS = """
(element) => {
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const solid = (el) => {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c;
    }
    return [255, 255, 255];
  };
  const lum = ([r, g, b]) => [r, g, b].map((v) => {
    v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  }).reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const [a, b] = [lum(rgb(getComputedStyle(element).color)), lum(solid(element))].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}
"""


def csp_errors(page) -> list[str]:
    """Console messages of resources the Content Security Policy blocked."""
    found: list[str] = []
    page.on("console", lambda m: found.append(m.text) if "Content Security Policy" in m.text else None)
    return found


def contrast(locator) -> float:
    return locator.evaluate(CONTRAST_JS)


def background(page) -> str:
    return page.evaluate("getComputedStyle(document.body).backgroundColor")


def visit_key_pages(page, viewport: str, look: str, account_id: str) -> None:
    """Home, list, detail, edit, preferences and admin: each shows its heading, nothing is
    wider than the screen, and a screenshot is kept."""
    pages = [("home", "/", "Welcome, admin"), ("list", "/m/accounts", "Accounts"),
             ("detail", f"/m/accounts/{account_id}", "Initech"),
             ("edit", f"/m/accounts/{account_id}/edit", "Edit Initech"),
             ("preferences", "/preferences", "Preferences"), ("admin", "/admin", "Administration")]
    for name, path, heading in pages:
        page.goto(path)
        expect(page.get_by_role("heading", level=1)).to_have_text(heading)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= page.viewport_size["width"], f"{path} scrolls sideways ({width} px)"
        screenshot(page, f"theme-{look}-{name}", viewport)


def test_nocturne_chosen_in_the_preferences(page, server, site, admin, viewport):
    if viewport == "desktop":
        page.set_viewport_size(DESKTOP)
    blocked = csp_errors(page)
    install_folder(site, "theme_nocturne")  # while the site runs
    account_id, *_ = site.records.create_many("accounts", [
        {"name": "Initech", "account_type": "customer", "industry": "electronics",
         "phone_office": "+1 512 555 0100", "email1": "hello@initech.example"},
        {"name": "Globex", "account_type": "prospect", "industry": "energy"},
        {"name": "Umbrella", "account_type": "partner", "industry": "banking"}], admin)

    log_in(page)
    assert background(page) == KERNEL_BG
    visit_key_pages(page, viewport, "kernel", account_id)

    page.goto("/preferences")
    page.get_by_label("Theme").select_option(label="Nocturne (dark)")
    page.get_by_role("button", name="Save").click()
    expect(page.get_by_role("status")).to_have_text("Preferences saved.")
    # waits for the theme's stylesheet (the page after the redirect may still be loading it)
    expect(page.locator("body")).to_have_css("background-color", NOCTURNE_BG)
    expect(page.get_by_label("Theme")).to_have_value("theme_nocturne")
    visit_key_pages(page, viewport, "nocturne", account_id)

    # readable: text, muted text, links, buttons, table headings (WCAG AA: 4.5:1)
    page.goto("/m/accounts")
    checks = {"heading": page.get_by_role("heading", level=1),
              "link": page.locator("table.records td a").first,
              "cell": page.locator("table.records td").nth(2),
              "count": page.locator("[data-count]"),
              "primary button": page.locator(".button.primary").first,
              "button": page.get_by_role("button", name="Filter")}
    if viewport == "desktop":
        checks["column heading"] = page.locator("table.records th").nth(1)
    for what, locator in checks.items():
        assert contrast(locator) >= 4.5, what

    # a coloured option keeps its colour, in the dark theme's tint and as readable
    site.records.create_many("opportunities", [
        {"name": "Initech renewal", "account_id": account_id, "sales_stage": "qualification"}],
        admin)
    page.goto("/m/opportunities")
    badge = page.locator("table.records .badge-blue").first
    expect(badge).to_have_text("Qualification")
    expect(badge).to_have_css("background-color", "rgb(30, 58, 138)")
    assert contrast(badge) >= 4.5
    screenshot(page, "theme-nocturne-opportunities", viewport)

    nav_link = page.locator("nav.tabs").get_by_role("link", name="Contacts")
    log_out = page.get_by_role("button", name="Log out")
    bar = page.locator("header.topbar").bounding_box()
    if viewport == "desktop":  # a side bar, the page beside it
        assert bar["x"] == 0 and bar["y"] == 0 and bar["height"] == DESKTOP["height"]
        assert bar["width"] < 300
        assert page.locator("main").bounding_box()["x"] >= bar["width"]
        expect(nav_link).to_be_visible()
        expect(log_out).to_be_visible()
    else:  # a bar across the top; modules and account behind the menu button
        assert bar["y"] == 0 and bar["width"] == 375 and bar["height"] < 80
        expect(nav_link).to_be_hidden()
        expect(log_out).to_be_hidden()
        page.get_by_text("Menu").click()
        expect(nav_link).to_be_visible()
        expect(log_out).to_be_visible()
        screenshot(page, "theme-nocturne-menu", viewport)
    nav_link.click()
    expect(page.get_by_role("heading", name="Contacts", exact=True)).to_be_visible()
    assert not blocked, blocked


def test_login_page_in_the_site_theme_and_the_chosen_language(site, admin, page, server, viewport):
    if viewport == "desktop":
        page.set_viewport_size(DESKTOP)
    blocked = csp_errors(page)
    install_folder(site, "theme_nocturne")
    install_folder(site, TEST_PACKS / "lang_tiny")
    site.set_setting("theme", "theme_nocturne")  # read on the first page rendered

    page.goto("/login")
    assert background(page) == NOCTURNE_BG
    language = page.get_by_label("Language")
    expect(language).to_have_value("")
    language.select_option(label="Deutsch")
    page.get_by_role("button", name="Change").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Anmelden")
    expect(page.get_by_label("Sprache")).to_have_value("de")
    screenshot(page, "theme-nocturne-login-de", viewport)

    page.get_by_label("Benutzername").fill("admin")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Anmelden").click()
    expect(page.locator("html")).to_have_attribute("lang", "de")
    page.goto("/preferences")
    expect(page.get_by_role("heading", level=1)).to_have_text("Einstellungen")
    expect(page.get_by_label("Sprache")).to_have_value("de")
    assert background(page) == NOCTURNE_BG
    assert not blocked, blocked
