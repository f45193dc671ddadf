"""Module features (issue 16, item 5): line items are the ``line_items`` plugin's feature,
its hooks are its own specs, and a new document's currency is a site setting."""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from core.kernel import hookspecs
from core.kernel.hooktypes import ModuleFeature
from core.web.app import create_app
from plugins.line_items import lines

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery"  # conftest's admin


def _csrf(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


@pytest.fixture
def signed_in(site):
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": _csrf(login.text),
                                               "username": "admin", "password": PASSWORD})
        assert response.status_code == 200
        client.csrf = _csrf(response.text)
        yield client


def test_the_kernel_names_no_priced_lines():
    found = subprocess.run(
        ["grep", "-rniE", r"tax|discount|line_item|product|currency.*USD", "core/kernel"],
        check=False, cwd=ROOT, capture_output=True, text=True).stdout.splitlines()
    business = [line for line in found if not re.search(
        r"(?i)syntax|fields\.py.*USD|products' \"Sales terms\"|line items plugin", line)]
    assert business == []


def test_the_line_items_hooks_are_the_plugins_own_specs(site):
    assert not hasattr(hookspecs, "crbm_tax_rates")
    for name in ("crbm_tax_rates", "crbm_currency_digits", "crbm_line_item_defaults"):
        assert getattr(site.plugin_manager.hook, name).has_spec(), name
    feature = site.registry.features["line_items"]
    assert isinstance(feature, ModuleFeature)
    assert {f.name for f, _ in site.registry.features_of(site.registry.module("quotes"))} \
        == {"line_items"}
    assert "quotes_lines" in site.tables.tables  # the tables it owns


def test_a_new_document_starts_in_the_sites_default_currency(site, admin):
    assert lines.default_currency(site) == "USD"  # a new site's
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    first = site.records.create("quotes", {"name": "Q1", "account_id": account["id"],
                                           "line_items": []}, admin)
    assert first["amount_currency"] == "USD"
    site.set_setting(lines.CURRENCY_SETTING, {"default": "EUR"})
    second = site.records.create("quotes", {"name": "Q2", "account_id": account["id"]}, admin)
    assert second["amount_currency"] == "EUR"
    given = site.records.create("quotes", {"name": "Q3", "account_id": account["id"],
                                           "amount_currency": "GBP"}, admin)
    assert given["amount_currency"] == "GBP"


def test_the_default_currency_is_set_on_the_order_management_page(site, admin, signed_in):
    client = signed_in
    page = client.get("/admin/orders")
    assert "Default currency" in page.text and 'value="USD"' in page.text
    refused = client.post("/admin/orders", data={"_csrf": client.csrf,
                                                 "default_currency": "XYZ1"})
    assert refused.status_code == 400 and "ISO 4217" in refused.text
    assert lines.default_currency(site) == "USD"
    before = site.records.create("accounts", {"name": "Old", "annual_revenue": "10"}, admin)
    assert before["annual_revenue_currency"] == "USD"
    saved = client.post("/admin/orders", data={"_csrf": client.csrf, "default_currency": "eur"},
                        follow_redirects=False)
    assert saved.status_code == 303 and lines.default_currency(site) == "EUR"
    assert 'value="EUR"' in client.get("/admin/orders").text
    # the currency fields of every module start in it too: the registry is rebuilt with it
    account = site.records.create("accounts", {"name": "Acme", "annual_revenue": "10"}, admin)
    assert account["annual_revenue_currency"] == "EUR"
    assert "€10.00" in client.get(f"/m/accounts/{account['id']}").text
