"""The knowledge base in Chromium, on a phone and a desktop: /kb's category tree, a
category's articles, an article with an image shown in its body, its Versions subpanel
and restoring an earlier version. Screenshots: kb-tree-<viewport>, kb-article-<viewport>
(test-artifacts/screenshots/)."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from plugins.knowledge_base import demo
from plugins.knowledge_base.tests.test_knowledge_base import png
from tests import browser as helpers
from tests.browser import log_in, screenshot

pytestmark = pytest.mark.browser
expect.set_options(timeout=helpers.TIMEOUT_MS)


def test_browse_the_tree_read_an_article_and_restore_a_version(page, site, admin, viewport):
    demo.load(site, admin)
    log_in(page, "admin")
    page.goto("/kb")
    tree = page.locator(".kb-tree").first
    expect(tree).to_contain_text("Getting started")
    tree.get_by_role("link", name="Installation").click()
    expect(page.locator("h1")).to_have_text("Installation")
    expect(page.locator(".kb-articles")).to_contain_text("Installing the desktop app")
    expect(page.locator(".kb-articles")).to_contain_text("Upgrading from version 1")  # a draft
    screenshot(page, "kb-tree", viewport)
    page.get_by_role("link", name="Installing the desktop app").click()
    page.set_input_files("#article-images input[type=file]",
                         files=[{"name": "screen.png", "mimeType": "image/png",
                                 "buffer": png()}])
    page.get_by_role("button", name="Add to the article").click()
    image = page.locator("img[src^='/kb/images/']").first
    expect(image).to_be_visible()
    assert page.evaluate("(img) => img.naturalWidth", image.element_handle()) == 4
    page.locator("#sub-versions summary h2").click()
    rows = page.locator("#sub-versions .subpanel-rows")
    expect(rows).to_contain_text("Installing the desktop app")
    screenshot(page, "kb-article", viewport)
    rows.locator("a[href^='/m/kb_article_versions/']").first.click()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Restore this version").click()
    expect(page.locator(".flash, [role=status], .alert").first).to_contain_text("restored")
    expect(page.locator("img[src^='/kb/images/']")).to_have_count(1)  # the card's thumbnail
