"""The French language pack (personality_packs/lang_fr): complete, and what a French user
sees once it is installed — while an English user of the same site keeps English."""
import csv
import html
import io
import json
import re
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from starlette.testclient import TestClient

from core import i18n_tools
from core.kernel import i18n, users
from core.web.app import create_app
from tests.pack_util import SHIPPED, install_folder

PACK = SHIPPED / "lang_fr"
PO = PACK / "locale" / "fr" / "LC_MESSAGES" / "crbm.po"
PASSWORD = "correct horse battery"
NBSP = "\xa0"  # French puts a no-break space before ":" "?" "!" ";"
NNBSP = "\u202f"  # and a narrow one between thousands


def test_the_shipped_catalog_translates_every_message_of_a_fresh_extraction():
    # Fails when a string is added to core/, plugins/ or cli.py (templates, Python, module
    # and dropdown YAML) without its French: run `python -m core.i18n_tools update` on the .po
    # (it lists what is new) and translate.
    assert i18n_tools.catalog_problems(PO) == []
    manifest = yaml.safe_load((PACK / "pack.yaml").read_text(encoding="utf-8"))
    assert (manifest["name"], manifest["kind"], manifest["provides"]) == \
        ("lang_fr", "language", {"languages": ["fr"]})
    assert "Plural-Forms: nplurals=2; plural=(n > 1);" in PO.read_text(encoding="utf-8")


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def signed_in(site, username: str, language: str) -> TestClient:
    user = users.create_user(site, username, PASSWORD)
    users.save_preferences(site, user.id, i18n.Preferences(language=language).to_dict())
    client = TestClient(create_app(site))
    client.__enter__()
    login = client.get("/login")
    response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": username,
                                           "password": PASSWORD})
    assert response.status_code == 200
    client.csrf = csrf_of(response.text)
    return client


@pytest.fixture
def readers(site):
    """(French client, English client) on one site with the pack installed."""
    install_folder(site, "lang_fr")
    french, english = signed_in(site, "marie", "fr"), signed_in(site, "john", "en")
    yield french, english
    french.__exit__(None, None, None)
    english.__exit__(None, None, None)


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {
        "name": "Acme", "account_type": "customer", "industry": "banking",
        "billing_address_city": "Lyon"}, admin)


def text_of(page_html: str) -> str:
    """What the page says, tags and entities aside."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page_html))


def test_the_accounts_list_speaks_each_readers_language(readers, acme):
    french, english = readers
    page = french.get("/m/accounts").text
    assert "<h1>Comptes</h1>" in page
    headers = re.findall(r'<th scope="col">.*?</th>', page, re.DOTALL)
    assert any("Nom du compte" in h for h in headers)
    assert any("Assigné à" in h for h in headers)  # a system field's label
    assert "<td" in page and ">Client<" in page  # the account type "customer"
    assert ">Ventes<" in page  # the tab group of the navigation
    assert "Exporter en CSV" in page and "Filtrer" in page  # buttons
    assert 'value="customer"' in page  # stored values stay as they are
    assert "Accounts" not in text_of(page)

    page = english.get("/m/accounts").text
    assert "<h1>Accounts</h1>" in page and ">Customer<" in page and ">Sales<" in page
    assert "Account name" in page and "Export CSV" in page
    assert "Comptes" not in page


def test_the_detail_page_speaks_each_readers_language(readers, acme):
    french, english = readers
    page = text_of(french.get(f"/m/accounts/{acme['id']}").text)
    for words in ("Vue d'ensemble", "Secteur d'activité", "Banque", "Client",
                  "Adresse de facturation", "Plus d'informations", "Modifier", "Contacts"):
        assert words in page, words
    page = text_of(english.get(f"/m/accounts/{acme['id']}").text)
    for words in ("Overview", "Industry", "Banking", "Customer", "Billing address"):
        assert words in page, words
    assert "Vue d'ensemble" not in page


def test_forms_exports_flashes_and_error_pages_follow_too(readers, acme, site):
    french, english = readers
    form = text_of(french.get(f"/m/accounts/{acme['id']}/edit").text)
    assert "Modifier Acme" in form and "Secteur d'activité" in form
    assert "Banque" in form  # the options of a dropdown

    export = french.post("/m/accounts/action", data={
        "_csrf": french.csrf, "action": "export", "ids": [acme["id"]]})
    header, row = list(csv.reader(io.StringIO(export.text)))
    assert "Nom du compte" in header and "Client" in row
    export = english.post("/m/accounts/action", data={
        "_csrf": english.csrf, "action": "export", "ids": [acme["id"]]})
    assert "Account name" in next(csv.reader(io.StringIO(export.text)))

    # an error page is rendered outside the page's worker thread: French all the same
    missing = french.get("/m/accounts/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert "Introuvable" in missing.text and ">Comptes<" in missing.text
    assert ">Comptes<" in french.get("/no/such/page").text

    deleted = french.post(f"/m/accounts/{acme['id']}/delete", data={"_csrf": french.csrf})
    assert f"Compte{NBSP}: enregistrement supprimé." in text_of(deleted.text)
    # what was shown in French left nothing behind for English readers or the kernel
    assert site.registry.option_labels("accounts")["account_type"]["customer"] == "Customer"
    assert site.registry.module("accounts").label == "Accounts"
    assert "<h1>Accounts</h1>" in english.get("/m/accounts").text


def test_catalog_problems_name_what_is_missing_or_would_break(tmp_path):
    po = tmp_path / "crbm.po"
    po.write_text(
        'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n'
        '"Plural-Forms: nplurals=2; plural=(n > 1);\\n"\n\n'
        'msgid "Accounts"\nmsgstr "Comptes"\n\n'
        'msgid "Hello %(name)s"\nmsgstr "Bonjour %(nom)s"\n\n'
        'msgid "Saved."\nmsgstr ""\n\n'
        '#, fuzzy\nmsgid "Delete"\nmsgstr "Supprimer"\n\n'
        'msgid "%(num)s user"\nmsgid_plural "%(num)s users"\n'
        'msgstr[0] "%(num)s utilisateur"\nmsgstr[1] "%(num)s utilisateurs"\n\n'
        'msgid "%s of %s"\nmsgstr "%s sur"\n', encoding="utf-8")
    wanted = ["Accounts", "Contacts", "Hello %(name)s", "Saved.", "Delete",
              ("%(num)s user", "%(num)s users"), "%s of %s"]
    assert i18n_tools.catalog_problems(po, wanted) == [
        "missing: 'Contacts'",
        "placeholders differ: 'Hello %(name)s' -> 'Bonjour %(nom)s'",
        "empty: 'Saved.'",
        "fuzzy: 'Delete'",
        "placeholders differ: '%s of %s' -> '%s sur'",
    ]
    assert i18n_tools.catalog_problems(tmp_path / "none.po", ["Accounts"])[0].startswith("cannot read")


def test_the_pack_is_offered_as_a_language_once_installed(site):
    assert ("fr", "français") not in i18n.available_languages(site.locale_dirs)
    install_folder(site, "lang_fr")
    assert ("fr", "français") in i18n.available_languages(site.locale_dirs)
    assert Path(site.locale_dirs[0]).is_dir()


@pytest.mark.browser
def test_a_french_user_works_in_french_on_a_phone_and_a_desktop(page, server, site, admin,
                                                                  acme, viewport):
    from playwright.sync_api import expect

    from tests.browser import screenshot

    install_folder(site, "lang_fr")
    marie = users.create_user(site, "marie", PASSWORD)
    users.save_preferences(site, marie.id, i18n.Preferences(language="fr").to_dict())
    page.goto("/login")
    page.get_by_label("User name").fill("marie")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("button", name="Déconnexion")).to_be_visible()

    page.goto("/m/accounts")
    expect(page.get_by_role("heading", name="Comptes", exact=True)).to_be_visible()
    expect(page.locator("table.records tbody tr").first).to_contain_text("Client")
    expect(page.get_by_role("button", name="Filtrer")).to_be_visible()
    screenshot(page, "lang-fr-list", viewport)

    page.get_by_role("link", name="Acme").click()
    expect(page.get_by_role("heading", name="Vue d'ensemble")).to_be_visible()
    expect(page.locator("dt").filter(has_text="Secteur d'activité")).to_be_visible()
    expect(page.get_by_text("Banque", exact=True)).to_be_visible()
    screenshot(page, "lang-fr-detail", viewport)


def test_uninstalling_the_language_of_a_reader_falls_back_wholly(site, admin):
    """Marie reads French; the pack goes. Her pages are then English throughout — words,
    dates, amounts — her preferences say so, and saving them keeps no dead language."""
    install_folder(site, "lang_fr")
    marie = signed_in(site, "marie", "fr")
    account = site.records.create("accounts", {"name": "Acme"}, admin)
    quote = site.records.create("quotes", {
        "name": "Fit-out", "account_id": account["id"], "valid_until": "2026-03-01",
        "line_items": [{"name": "Work", "lines": [
            {"kind": "product", "name": "Desk", "quantity": "1", "unit_price": "1234.50"}]}]},
        admin)
    page = text_of(marie.get("/m/quotes").text)
    assert "1 mars 2026" in page and f"1{NNBSP}234,50{NBSP}$US" in page  # French first

    site.packs.remove("lang_fr", "uninstall", admin)
    page = text_of(marie.get("/m/quotes").text)
    assert "Quotes" in page and "Devis" not in page
    assert "Mar 1, 2026" in page and "$1,234.50" in page, page
    assert "1 mars 2026" not in page and "234,50" not in page
    detail = text_of(marie.get(f"/m/quotes/{quote['id']}").text)
    assert "Mar 1, 2026" in detail and "$1,234.50" in detail

    preferences = marie.get("/preferences").text
    chosen = re.findall(r'<option value="([^"]*)" selected>', preferences)
    assert chosen[0] == "en" and 'value="fr"' not in preferences
    # saving the page as shown stores English; asking for the removed language is refused
    form = {"_csrf": marie.csrf, "language": "en", "timezone": "UTC", "date_format": "medium",
            "time_format": "short", "number_locale": "", "theme": "", "holidays": ""}
    assert marie.post("/preferences", data=form).status_code == 200
    assert stored_language(site, "marie") == "en"
    refused = marie.post("/preferences", data={**form, "language": "fr"})
    assert refused.status_code == 400 and "Unknown language or locale" in refused.text
    assert stored_language(site, "marie") == "en"
    marie.__exit__(None, None, None)


def stored_language(site, username: str) -> str:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        stored = conn.execute(sa.select(table.c.preferences)
                              .where(table.c.username == username)).scalar_one()
    return json.loads(stored)["language"]


def test_the_history_opens_with_the_records_creation_in_each_language(readers, acme):
    """create logs a "created" entry (issue 16); the change log shows it translated."""
    french, english = readers
    page = french.get(f"/m/accounts/{acme['id']}").text
    history = text_of(page.split("Historique des modifications", 1)[1])
    assert "Création" in history and "(created)" not in history
    page = english.get(f"/m/accounts/{acme['id']}").text
    history = text_of(page.split("Change log", 1)[1])
    assert "Created" in history and "(created)" not in history
