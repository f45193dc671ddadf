"""Demo knowledge base: a small tree of categories (Getting started › Installation,
Troubleshooting, Billing) and a few articles in it, public and internal, one with an
earlier version kept."""
from __future__ import annotations

CATEGORIES = (("Getting started", None, "First steps with our products."),
              ("Installation", "Getting started", "Installing and upgrading."),
              ("Troubleshooting", None, "When something does not work."),
              ("Billing", None, "Invoices, payments and refunds."))
ARTICLES = (
    ("Installing the desktop app", "Installation", "published", True,
     "Download, install, sign in.",
     ("<h2>Steps</h2><ol><li>Download the installer.</li><li>Run it.</li>"
      "<li>Sign in with your account.</li></ol>")),
    ("The app does not start", "Troubleshooting", "published", True,
     "What to check when the app does not open.",
     "<p>Check that your computer meets the <strong>requirements</strong>, then reinstall.</p>"),
    ("Refunds within 30 days", "Billing", "published", False,
     "Internal: how support grants a refund.",
     "<p>Refunds within 30 days need no approval. After that, ask a team lead.</p>"),
    ("Upgrading from version 1", "Installation", "draft", False, "Draft for the next release.",
     "<p>Export your data first.</p>"),
)


def load(site, user) -> None:
    made: dict[str, str] = {}
    for name, parent, description in CATEGORIES:
        made[name] = site.records.create("kb_categories", {
            "name": name, "parent_id": made.get(parent), "description": description},
            user)["id"]
    for title, category, status, portal, summary, body in ARTICLES:
        article = site.records.create("kb_articles", {
            "name": title, "category_id": made[category], "status": status, "portal": portal,
            "summary": summary, "body": body, "keywords": title.lower()}, user)
        if title.startswith("The app"):
            site.records.update("kb_articles", article["id"], {
                "body": body + "<p>Still stuck? Send us the log file.</p>"}, user)
