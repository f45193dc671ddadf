"""The Studio's Dropdowns Editor and tab pages through real HTTP (implementation guide 7.5.3,
7.5.6-7.5.8): what administrators change there is what every user's forms and navigation
show next; what is refused changes nothing; everyone else gets 403."""
import html
import re

import pytest
from markupsafe import escape
from playwright.sync_api import expect
from starlette.testclient import TestClient

from core.kernel import i18n, users
from core.kernel.users import create_user
from tests.apps.admin.test_web_admin import (  # noqa: F401  (fixtures)
    PASSWORD,
    clients,
    csrf_of,
    open_client,
    text_of,
)
from tests.browser import TIMEOUT_MS, log_in, screenshot
from tests.pack_util import install_folder

pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins
ACCOUNT_TYPES = ["analyst", "competitor", "customer", "integrator", "investor", "partner",
                 "press", "prospect", "reseller", "other"]
EDITOR = "/admin/studio/dropdowns/account_type_dom"
expect.set_options(timeout=TIMEOUT_MS)


# -- helpers --------------------------------------------------------------------------------

def post(client, url: str, data: dict | None = None):
    return client.post(url, data={"_csrf": client.csrf, **(data or {})},
                       follow_redirects=False)


def editor_rows(page_html: str) -> list[tuple[str, str, str]]:
    """(original value, database value, display value) of each row the editor shows."""
    body = re.search(r"<tbody data-rows>(.*?)</tbody>", page_html, re.DOTALL).group(1)
    rows = re.findall(r'name="orig" value="([^"]*)".*?name="value" value="([^"]*)".*?'
                      r'name="label" value="([^"]*)"', body, re.DOTALL)
    return [tuple(html.unescape(v) for v in row) for row in rows]


def rows_form(rows, language: str = "en", **extra) -> dict:
    """The editor's form for ``rows`` of (original value, database value, display value)."""
    return {"language": language, "orig": [r[0] for r in rows], "value": [r[1] for r in rows],
            "label": [r[2] for r in rows], **extra}


def select_options(page_html: str, name: str) -> list[tuple[str, str]]:
    """(value, text) of the options of the select called ``name``, blank one aside."""
    body = re.search(rf'<select[^>]* name="{name}"[^>]*>(.*?)</select>', page_html,
                     re.DOTALL).group(1)
    return [(html.unescape(v), html.unescape(t.strip())) for v, t in
            re.findall(r'<option value="([^"]*)"[^>]*>(.*?)</option>', body, re.DOTALL) if v]


def words(page_html: str) -> str:
    """What a piece of a page says (tags and entities aside)."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page_html)).split())


def nav_groups(page_html: str) -> dict[str, list[str]]:
    """The navigation: group label -> the module names linked in it, in order."""
    nav = re.search(r'<nav class="tabs".*?</nav>', page_html, re.DOTALL).group(0)
    groups = {}
    for label, body in re.findall(r'<span class="tab-group-label">(.*?)</span>(.*?)</div>', nav,
                                  re.DOTALL):
        groups[html.unescape(label)] = re.findall(r'href="/m/([a-z_]+)"', body)
    return groups


def in_nav(page_html: str) -> list[str]:
    return [name for names in nav_groups(page_html).values() for name in names]


def nav_labels(page_html: str) -> dict[str, str]:
    """The navigation: module name -> the tab's text."""
    nav = re.search(r'<nav class="tabs".*?</nav>', page_html, re.DOTALL).group(0)
    return {m: html.unescape(re.sub(r"<[^>]+>", "", t))  # (its icon aside)
            for m, t in re.findall(r'href="/m/([a-z_]+)"[^>]*>(.*?)</a>', nav)}


def signed_in(site, username: str, language: str = "en", is_admin: bool = False):
    user = create_user(site, username, PASSWORD, is_admin=is_admin)
    if language != "en":
        users.save_preferences(site, user.id, i18n.Preferences(language=language).to_dict())
    return open_client(site, username)


@pytest.fixture
def opened():
    clients_ = []
    yield clients_
    for client in clients_:
        client.__exit__(None, None, None)


@pytest.fixture
def admin_client(site, opened):
    client = signed_in(site, "root", is_admin=True)
    opened.append(client)
    return client


@pytest.fixture
def user_client(site, opened):
    client = signed_in(site, "bob")
    opened.append(client)
    return client


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme", "account_type": "customer"}, admin)


def summary(site, name: str):
    return next(s for s in site.studio.dropdowns() if s.name == name)


# -- who may --------------------------------------------------------------------------------

PAGES = ["/admin/studio/dropdowns", EDITOR, "/admin/studio/dropdowns/new?name=x_dom",
         "/admin/studio/tabs", "/admin/studio/tabs/rename"]
FORMS = ["/admin/studio/dropdowns/reset-all", EDITOR, f"{EDITOR}/reset",
         "/admin/studio/dropdowns/new", "/admin/studio/tabs", "/admin/studio/tabs/rename"]


def test_only_administrators_open_these_pages(site, user_client, admin_client):
    before = site.studio.dropdown("account_type_dom")
    for url in PAGES:
        assert user_client.get(url).status_code == 403, url
        assert admin_client.get(url).status_code == 200, url
    for url in FORMS:
        response = post(user_client, url, {**rows_form([("", "x", "X")]), "confirm": "1",
                                           "name": "x_dom", "label_accounts": "Hacked"})
        assert response.status_code == 403, url
    assert site.studio.dropdown("account_type_dom") == before
    assert "x_dom" not in site.registry.dropdowns
    assert site.registry.modules["accounts"].definition["label"] == "Accounts"
    with TestClient(user_client.app) as signed_out:
        response = signed_out.get("/admin/studio/dropdowns", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login")


# -- the list of lists ----------------------------------------------------------------------

def test_the_list_shows_every_list_with_its_size_and_marks(site, admin_client):
    page = admin_client.get("/admin/studio/dropdowns").text
    row = re.search(r'<tr data-list="account_type_dom".*?</tr>', page, re.DOTALL).group(0)
    assert ">10<" in row and "modified" not in row and "*" not in row
    protected = [s.name for s in site.studio.dropdowns() if s.protected]
    assert "gadget_status_dom" in protected  # declared by the kitchen_sink test plugin
    assert "account_type_dom" not in protected
    row = re.search(r'<tr data-list="gadget_status_dom".*?</tr>', page, re.DOTALL).group(0)
    assert "protected" in words(row)
    # resetting everything needs a box ticked, and it is not ticked to begin with
    form = re.search(r'<form[^>]*action="/admin/studio/dropdowns/reset-all".*?</form>', page,
                     re.DOTALL).group(0)
    box = re.search(r'<input type="checkbox" name="confirm"[^>]*>', form).group(0)
    assert "checked" not in box
    assert 'action="/admin/studio/dropdowns/new"' in page


# -- editing a list ---------------------------------------------------------------------------

def test_reorder_add_remove_and_rename_show_in_the_account_form(site, admin, admin_client,
                                                                  user_client, acme):
    rows = editor_rows(admin_client.get(EDITOR).text)
    assert [r[1] for r in rows] == ACCOUNT_TYPES
    assert rows[2] == ("customer", "customer", "Customer")
    by_value = {r[1]: r for r in rows}
    # Customer first, Analyst renamed, Press removed, "Supplier" added after Partner
    new = [("customer", "customer", "Customer"), ("analyst", "analyst", "Industry analyst")]
    new += [by_value[v] for v in ACCOUNT_TYPES[1:] if v not in ("customer", "press")]
    new.insert(new.index(by_value["partner"]) + 1, ("", "supplier", "Supplier"))
    response = post(admin_client, EDITOR, rows_form(new))
    assert response.status_code == 303, text_of(response)
    assert response.headers["location"] == EDITOR

    expected = ["customer", "analyst", "competitor", "integrator", "investor", "partner",
                "supplier", "prospect", "reseller", "other"]
    for client in (user_client, admin_client):
        form = client.get(f"/m/accounts/{acme['id']}/edit").text
        options = select_options(form, "account_type")
        assert [v for v, _ in options] == expected
        assert dict(options)["analyst"] == "Industry analyst"
        assert dict(options)["supplier"] == "Supplier"
    assert [v for v, _ in select_options(user_client.get("/m/accounts/new").text,
                                         "account_type")] == expected
    # records may use the new option
    created = site.records.create("accounts", {"name": "Supplies Ltd",
                                               "account_type": "supplier"}, admin)
    assert "Supplier" in text_of(user_client.get(f"/m/accounts/{created['id']}"))

    page = admin_client.get("/admin/studio/dropdowns").text
    row = re.search(r'<tr data-list="account_type_dom".*?</tr>', page, re.DOTALL).group(0)
    assert "modified" in row and "*" in row
    assert summary(site, "account_type_dom").modified
    editor = admin_client.get(EDITOR).text
    assert f'action="{EDITOR}/reset"' in editor and "Reset dropdown" in editor


def test_french_display_values_are_shown_to_a_french_user(site, admin_client, opened, acme):
    if "fr" not in dict(site.studio.languages()):
        install_folder(site, "lang_fr")
    assert "fr" in dict(site.studio.languages())
    french = signed_in(site, "marie", "fr")
    english = signed_in(site, "john")
    opened.extend([french, english])

    page = admin_client.get(f"{EDITOR}?language=fr").text
    assert 'name="language" value="fr"' in page and "Display value (français)" in page
    rows = editor_rows(page)
    assert [r[1] for r in rows] == ACCOUNT_TYPES
    # the catalog's French is not the list's own: the inputs start empty (the English shows)
    assert all(r[2] == "" for r in rows)
    labels = {"customer": "Client fidèle", "partner": "Partenaire & associé"}
    rows = [(o, v, labels.get(v, lab)) for o, v, lab in rows]
    response = post(admin_client, EDITOR, rows_form(rows, language="fr"))
    assert response.status_code == 303, text_of(response)
    assert response.headers["location"] == f"{EDITOR}?language=fr"

    saved = {o["value"]: o for o in site.studio.dropdown("account_type_dom")}
    assert saved["customer"]["labels"] == {"fr": "Client fidèle"}
    assert saved["customer"]["label"] == "Customer"  # English untouched
    assert "fr" not in saved["analyst"]["labels"]  # left empty: the catalog's French

    shown = dict(select_options(french.get(f"/m/accounts/{acme['id']}/edit").text,
                                "account_type"))
    assert shown["customer"] == "Client fidèle"
    assert shown["partner"] == "Partenaire & associé"
    assert shown["analyst"] == "Analyste"  # the language pack's translation
    shown = dict(select_options(english.get(f"/m/accounts/{acme['id']}/edit").text,
                                "account_type"))
    assert shown["customer"] == "Customer" and shown["partner"] == "Partner"
    assert ">Client fidèle<" in french.get(f"/m/accounts/{acme['id']}").text

    # editing the English afterwards keeps the French
    rows = editor_rows(admin_client.get(EDITOR).text)
    rows = [(o, v, "Customer (active)" if v == "customer" else lab) for o, v, lab in rows]
    assert post(admin_client, EDITOR, rows_form(rows)).status_code == 303
    saved = {o["value"]: o for o in site.studio.dropdown("account_type_dom")}
    assert saved["customer"]["label"] == "Customer (active)"
    assert saved["customer"]["labels"]["fr"] == "Client fidèle"
    # ... and renaming a database value keeps its display values
    rows = editor_rows(admin_client.get(f"{EDITOR}?language=fr").text)
    assert ("customer", "customer", "Client fidèle") in rows
    rows = [(o, "client" if v == "customer" else v, lab) for o, v, lab in rows]
    assert post(admin_client, EDITOR, rows_form(rows, language="fr")).status_code == 303
    saved = {o["value"]: o for o in site.studio.dropdown("account_type_dom")}
    assert "customer" not in saved
    assert saved["client"]["label"] == "Customer (active)"
    assert saved["client"]["labels"]["fr"] == "Client fidèle"


@pytest.mark.parametrize("char", ['"', "<", ">", "&"])
def test_a_database_value_with_a_forbidden_character_is_refused(site, admin_client, char):
    before = site.studio.dropdown("account_type_dom")
    rows = editor_rows(admin_client.get(EDITOR).text)
    rows.insert(2, ("", f"a{char}b", "A or B"))
    response = post(admin_client, EDITOR, rows_form(rows))
    assert response.status_code == 422
    said = text_of(response)
    assert f"Row 3: the database value 'a{char}b' may not contain" in said
    assert "Nothing was saved" in said
    assert 'aria-invalid="true" aria-describedby="e-2"' in response.text
    # the form comes back as sent, the bad value escaped
    assert editor_rows(response.text)[2] == ("", f"a{char}b", "A or B")
    assert f'value="a{escape(char)}b"' in response.text
    assert site.studio.dropdown("account_type_dom") == before
    assert not summary(site, "account_type_dom").modified


def test_a_display_value_may_hold_them_and_is_shown_escaped(site, admin_client, user_client,
                                                            acme):
    rows = editor_rows(admin_client.get(EDITOR).text)
    rows = [(o, v, '<b>& "Co"' if v == "customer" else lab) for o, v, lab in rows]
    assert post(admin_client, EDITOR, rows_form(rows)).status_code == 303
    saved = {o["value"]: o["label"] for o in site.studio.dropdown("account_type_dom")}
    assert saved["customer"] == '<b>& "Co"'
    for page in (user_client.get(f"/m/accounts/{acme['id']}/edit").text,
                 user_client.get(f"/m/accounts/{acme['id']}").text,
                 admin_client.get(EDITOR).text):
        assert "<b>" not in page
        assert "&lt;b&gt;&amp;" in page
    assert dict(select_options(user_client.get(f"/m/accounts/{acme['id']}/edit").text,
                               "account_type"))["customer"] == '<b>& "Co"'


def test_empty_or_duplicate_database_values_are_refused(site, admin_client):
    before = site.studio.dropdown("account_type_dom")
    rows = editor_rows(admin_client.get(EDITOR).text)
    response = post(admin_client, EDITOR, rows_form([*rows, ("", "", "Nameless")]))
    assert response.status_code == 422
    assert "Row 11: the database value is required." in text_of(response)
    response = post(admin_client, EDITOR, rows_form([*rows, ("", "press", "Media")]))
    assert response.status_code == 422
    assert "Row 11: the database value 'press' is already used in row 7." in text_of(response)
    response = post(admin_client, EDITOR, rows_form([]))
    assert response.status_code == 422
    assert "A list needs at least one option." in text_of(response)
    assert site.studio.dropdown("account_type_dom") == before
    # a row left entirely blank (added, never filled) is simply dropped
    response = post(admin_client, EDITOR, rows_form([*rows, ("", "", "")]))
    assert response.status_code == 303
    assert site.studio.dropdown("account_type_dom") == before


def test_row_buttons_work_without_javascript_and_save_nothing(site, admin_client):
    before = site.studio.dropdown("account_type_dom")
    rows = editor_rows(admin_client.get(EDITOR).text)
    for op, expected in [("up:1", ["competitor", "analyst", "customer"]),
                         ("down:0", ["competitor", "analyst", "customer"]),
                         ("remove:0", ["competitor", "customer", "integrator"]),
                         ("add:0", ["analyst", "", "competitor"])]:
        response = post(admin_client, EDITOR, rows_form(rows, op=op))
        assert response.status_code == 200
        assert [r[1] for r in editor_rows(response.text)][:3] == expected, op
    assert site.studio.dropdown("account_type_dom") == before


def test_a_protected_list_cannot_be_edited(site, admin_client):
    url = "/admin/studio/dropdowns/gadget_status_dom"
    before = site.studio.dropdown("gadget_status_dom")
    page = admin_client.get(url)
    assert page.status_code == 200
    said = text_of(page)
    assert "This list cannot be edited." in said and "protected" in said
    assert 'name="value"' not in page.text and "Save dropdown" not in said
    assert "draft" in said and "Retired" in said
    response = post(admin_client, url, rows_form([("draft", "draft", "Sketch")]))
    assert response.status_code == 403
    assert "This list cannot be edited." in text_of(response)
    assert post(admin_client, f"{url}/reset").status_code == 403
    assert site.studio.dropdown("gadget_status_dom") == before
    assert not summary(site, "gadget_status_dom").modified


def test_reset_one_list_then_all_lists(site, admin_client):
    shipped = {name: site.studio.dropdown(name) for name in ("account_type_dom", "industry_dom")}
    for name in shipped:
        url = f"/admin/studio/dropdowns/{name}"
        rows = editor_rows(admin_client.get(url).text)
        assert post(admin_client, url, rows_form(rows[::-1])).status_code == 303
        assert summary(site, name).modified
    lists = admin_client.get("/admin/studio/dropdowns").text
    assert "(2 modified now)" in lists

    response = post(admin_client, f"{EDITOR}/reset")
    assert response.status_code == 303 and response.headers["location"] == EDITOR
    assert site.studio.dropdown("account_type_dom") == shipped["account_type_dom"]
    assert not summary(site, "account_type_dom").modified
    editor = admin_client.get(EDITOR).text
    assert "Reset dropdown" not in editor and "modified" not in words(editor)

    response = post(admin_client, "/admin/studio/dropdowns/reset-all")  # box not ticked
    assert response.status_code == 422
    assert "Tick the box to confirm" in text_of(response)
    assert summary(site, "industry_dom").modified
    response = post(admin_client, "/admin/studio/dropdowns/reset-all", {"confirm": "1"})
    assert response.status_code == 303
    assert site.studio.dropdown("industry_dom") == shipped["industry_dom"]
    assert not any(s.modified for s in site.studio.dropdowns())
    assert "(0 modified now)" in admin_client.get("/admin/studio/dropdowns").text


def test_creating_a_list(site, admin_client):
    for name, said in [("Colours", "ends in _dom"), ("colours", "ends in _dom"),
                       ("account_type_dom", "There is already a list called account_type_dom")]:
        response = admin_client.get(f"/admin/studio/dropdowns/new?name={name}")
        assert response.status_code == 422
        assert said in text_of(response)
    page = admin_client.get("/admin/studio/dropdowns/new?name=vehicle_color_dom")
    assert page.status_code == 200
    assert 'action="/admin/studio/dropdowns/new"' in page.text
    response = post(admin_client, "/admin/studio/dropdowns/new", rows_form(
        [("", "red", "Red"), ("", "dark_blue", "Dark <blue>")], name="vehicle_color_dom"))
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/studio/dropdowns/vehicle_color_dom"
    assert site.studio.dropdown("vehicle_color_dom") == [
        {"value": "red", "label": "Red", "labels": {}},
        {"value": "dark_blue", "label": "Dark <blue>", "labels": {}}]
    assert "vehicle_color_dom" in admin_client.get("/admin/studio/dropdowns").text
    response = post(admin_client, "/admin/studio/dropdowns/new", rows_form(
        [("", "a&b", "A")], name="other_color_dom"))
    assert response.status_code == 422 and "other_color_dom" not in site.registry.dropdowns


def test_an_unknown_list_is_not_found(admin_client):
    assert admin_client.get("/admin/studio/dropdowns/nothing_dom").status_code == 404
    assert post(admin_client, "/admin/studio/dropdowns/nothing_dom",
                rows_form([("", "a", "A")])).status_code == 404


# -- tab groups -----------------------------------------------------------------------------

def tabs_form(page_html: str, **changes) -> dict:
    """The tab page's form as shown, with ``group_<module>``/``label_<key>`` changed."""
    data = {"groups": re.findall(r'name="groups" value="([^"]+)"', page_html),
            "modules": re.findall(r'name="modules" value="([^"]+)"', page_html),
            "hidden": re.findall(r'name="hidden" value="([^"]+)" checked', page_html)}
    for key, value in re.findall(r'name="(label_[a-z0-9]+)" value="([^"]*)"', page_html):
        data[key] = html.unescape(value)
    for name, body in re.findall(r'<select name="(group_[a-z_]+)"[^>]*>(.*?)</select>',
                                 page_html, re.DOTALL):
        data[name] = re.search(r'<option value="([^"]+)" selected>', body).group(1)
    data.update(changes)
    return data


def test_moving_a_module_to_a_new_group_changes_the_navigation(site, admin_client,
                                                              user_client):
    groups = nav_groups(user_client.get("/").text)
    assert groups["Sales"][:2] == ["accounts", "contacts"]
    assert (groups["Tests"], groups["Other"]) == (["gadgets"], ["payslips", "widgets"])
    page = admin_client.get("/admin/studio/tabs").text
    assert 'name="label_new"' in page
    form = tabs_form(page, label_new="Customers", group_accounts="new")
    form["modules"] = ["contacts", "gadgets", "widgets", "payslips", "accounts"]
    response = post(admin_client, "/admin/studio/tabs", form)
    assert response.status_code == 303, text_of(response)
    groups = nav_groups(user_client.get("/").text)
    assert groups["Sales"][0] == "contacts" and "accounts" not in groups["Sales"]
    assert (groups["Tests"], groups["Other"], groups["Customers"]) == (
        ["gadgets"], ["widgets", "payslips"], ["accounts"])
    home = text_of(user_client.get("/"))
    assert "Customers : Accounts" in home
    # the page shows it as saved; renaming a group renames it in the navigation
    page = admin_client.get("/admin/studio/tabs").text
    form = tabs_form(page)
    key = next(k for k, v in form.items() if k.startswith("label_") and v == "Customers")
    form[key] = "Clients & partners"
    assert post(admin_client, "/admin/studio/tabs", form).status_code == 303
    assert nav_groups(user_client.get("/").text)["Clients & partners"] == ["accounts"]


def test_a_group_without_a_name_or_a_duplicate_is_refused(site, admin_client):
    before = site.studio.tabs()
    page = admin_client.get("/admin/studio/tabs").text
    response = post(admin_client, "/admin/studio/tabs", tabs_form(page, group_accounts="new"))
    assert response.status_code == 422
    assert "Give this group a name: it has modules." in text_of(response)
    response = post(admin_client, "/admin/studio/tabs",
                    tabs_form(page, group_accounts="new", label_new="tests"))
    assert response.status_code == 422
    assert "Two groups are called tests." in text_of(response)
    assert site.studio.tabs() == before


def test_hiding_a_module_removes_it_from_everyones_navigation(site, admin_client, user_client):
    page = admin_client.get("/admin/studio/tabs").text
    form = tabs_form(page)
    form["hidden"] = ["contacts"]
    assert post(admin_client, "/admin/studio/tabs", form).status_code == 303
    for client in (user_client, admin_client):
        home = client.get("/").text
        assert "contacts" not in in_nav(home)
        assert "accounts" in in_nav(home)
    assert site.studio.tabs()["hidden"] == ["contacts"]
    page = admin_client.get("/admin/studio/tabs").text
    assert 'name="hidden" value="contacts" checked' in page
    # unticking shows it again
    form = tabs_form(page)
    form["hidden"] = []
    assert post(admin_client, "/admin/studio/tabs", form).status_code == 303
    assert "contacts" in in_nav(user_client.get("/").text)


def test_module_buttons_reorder_without_javascript(site, admin_client):
    before = site.studio.tabs()
    page = admin_client.get("/admin/studio/tabs").text
    response = post(admin_client, "/admin/studio/tabs", tabs_form(page, op="down:accounts"))
    assert response.status_code == 200
    assert re.findall(r'name="modules" value="([^"]+)"', response.text)[:2] == \
        ["contacts", "accounts"]
    assert site.studio.tabs() == before
    assert post(admin_client, "/admin/studio/tabs",
                tabs_form(response.text)).status_code == 303
    group, modules = site.studio.tabs()["groups"][0]
    assert (group, modules[:2]) == ("Sales", ["contacts", "accounts"])


# -- renaming tabs --------------------------------------------------------------------------

def rename_inputs(page_html: str) -> dict[str, str]:
    return {m: html.unescape(v) for m, v in
            re.findall(r'name="label_([a-z_]+)" value="([^"]*)"', page_html)}


def test_renaming_a_tab_in_english_and_in_french(site, admin_client, opened):
    install_folder(site, "lang_fr")
    french, english = signed_in(site, "marie", "fr"), signed_in(site, "john")
    opened.extend([french, english])
    assert nav_labels(french.get("/").text)["accounts"] == "Comptes"

    page = admin_client.get("/admin/studio/tabs/rename")
    assert page.status_code == 200
    assert rename_inputs(page.text)["accounts"] == "Accounts"
    form = {"language": "en", **{f"label_{m}": v for m, v in rename_inputs(page.text).items()}}
    form["label_accounts"] = "Customers"
    response = post(admin_client, "/admin/studio/tabs/rename", form)
    assert response.status_code == 303
    assert nav_labels(english.get("/").text)["accounts"] == "Customers"
    assert "<h1>Customers</h1>" in english.get("/m/accounts").text
    page = admin_client.get("/admin/studio/tabs/rename").text
    assert rename_inputs(page)["accounts"] == "Customers"
    row = re.search(r'<tr data-module="accounts".*?</tr>', page, re.DOTALL).group(0)
    assert ">Accounts</label>" in row  # the original name, for reference
    # only the renamed module was written (the others are as they came)
    assert site.studio.tabs()["labels"]["contacts"] == {"en": "Contacts"}

    page = admin_client.get("/admin/studio/tabs/rename?language=fr").text
    inputs = rename_inputs(page)
    assert inputs["contacts"] == "Contacts" and "Tab name (français)" in page
    form = {"language": "fr", **{f"label_{m}": v for m, v in inputs.items()}}
    form["label_contacts"] = "Interlocuteurs"
    response = post(admin_client, "/admin/studio/tabs/rename", form)
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/studio/tabs/rename?language=fr"
    labels = nav_labels(french.get("/").text)
    assert labels["contacts"] == "Interlocuteurs"
    assert nav_labels(english.get("/").text)["contacts"] == "Contacts"
    assert site.studio.tabs()["labels"]["accounts"] == {"en": "Customers"}  # no French set
    assert rename_inputs(admin_client.get("/admin/studio/tabs/rename?language=fr").text)[
        "contacts"] == "Interlocuteurs"

    # emptying the English name goes back to the one the module came with
    form = {"language": "en", **{f"label_{m}": v for m, v in rename_inputs(
        admin_client.get("/admin/studio/tabs/rename").text).items()}, "label_accounts": ""}
    assert post(admin_client, "/admin/studio/tabs/rename", form).status_code == 303
    assert nav_labels(english.get("/").text)["accounts"] == "Accounts"
    assert nav_labels(french.get("/").text)["accounts"] == "Comptes"


def test_emptying_a_french_tab_name_goes_back_to_the_catalogs(site, admin_client, opened):
    install_folder(site, "lang_fr")
    french = signed_in(site, "marie", "fr")
    opened.append(french)
    url = "/admin/studio/tabs/rename?language=fr"
    form = {"language": "fr", **{f"label_{m}": v for m, v in rename_inputs(
        admin_client.get(url).text).items()}, "label_contacts": "Interlocuteurs"}
    assert post(admin_client, "/admin/studio/tabs/rename", form).status_code == 303
    assert nav_labels(french.get("/").text)["contacts"] == "Interlocuteurs"
    form["label_contacts"] = ""
    response = post(admin_client, "/admin/studio/tabs/rename", form)
    assert response.status_code == 303, text_of(response)
    assert nav_labels(french.get("/").text)["contacts"] == "Contacts"
    assert rename_inputs(admin_client.get(url).text)["contacts"] == "Contacts"


def test_an_overlong_tab_name_is_refused(site, admin_client):
    page = admin_client.get("/admin/studio/tabs/rename").text
    form = {"language": "en", **{f"label_{m}": v for m, v in rename_inputs(page).items()},
            "label_accounts": "x" * 101}
    response = post(admin_client, "/admin/studio/tabs/rename", form)
    assert response.status_code == 422
    assert "at most 100 characters" in text_of(response)
    assert site.registry.modules["accounts"].definition["label"] == "Accounts"


# -- in a browser: drag and drop on a desktop, buttons and selects on a phone -----------------

@pytest.mark.browser
def test_editing_a_list_in_the_browser(page, server, admin, site, viewport):
    log_in(page)
    page.goto("/admin/studio/dropdowns")
    page.get_by_role("link", name="account_type_dom").click()
    expect(page.get_by_role("heading", name="account_type_dom")).to_be_visible()
    rows = page.locator("tbody[data-rows] tr")
    expect(rows).to_have_count(10)
    values = rows.locator("input[name=value]")
    if viewport == "desktop":  # Customer's handle dragged onto the top half of the first row
        rows.nth(2).locator("[data-drag-handle]").drag_to(
            rows.nth(0), target_position={"x": 20, "y": 3}, force=True)
    else:
        rows.nth(2).get_by_role("button", name="Move up").click()
        rows.nth(1).get_by_role("button", name="Move up").click()
    expect(values.nth(0)).to_have_value("customer")
    expect(rows.nth(0).locator("[data-row-number]")).to_have_text("1")
    rows.nth(0).get_by_role("button", name="Add a row below").click()
    expect(rows).to_have_count(11)
    expect(values.nth(1)).to_be_focused()
    values.nth(1).fill("supplier")
    rows.nth(1).locator("input[name=label]").fill("Supplier <b>&")
    press = page.locator("tbody[data-rows] tr:has(input[name=value][value=press])")
    press.get_by_role("button", name="Remove this option").click()
    expect(rows).to_have_count(10)
    screenshot(page, "studio-dropdown", viewport)
    page.get_by_role("button", name="Save dropdown").first.click()
    expect(page.get_by_role("status")).to_contain_text("account_type_dom was saved")
    assert [o["value"] for o in site.studio.dropdown("account_type_dom")] == [
        "customer", "supplier", "analyst", "competitor", "integrator", "investor", "partner",
        "prospect", "reseller", "other"]
    assert site.studio.dropdown("account_type_dom")[1]["label"] == "Supplier <b>&"
    page.goto("/m/accounts/new")
    expect(page.get_by_label("Type")).to_contain_text("Supplier <b>&")


@pytest.mark.browser
def test_arranging_tabs_in_the_browser(page, server, admin, site, viewport):
    log_in(page)
    page.goto("/admin/studio/tabs")
    accounts = page.locator("li[data-module=accounts]")
    new_box = page.locator("fieldset[data-group=new]")
    new_box.get_by_label("New group").fill("Customers")
    if viewport == "desktop":
        # every shipped module is listed: a tall window keeps both ends of the drag in view
        page.set_viewport_size({"width": 1440, "height": 4000})
        accounts.locator("[data-drag-handle]").drag_to(new_box.locator("ul"), force=True)
    else:
        accounts.get_by_label("Group of Accounts").select_option(label="Customers")
    expect(new_box.locator("li[data-module=accounts]")).to_be_visible()
    expect(accounts.get_by_label("Group of Accounts")).to_have_value("new")
    page.locator("li[data-module=contacts]").get_by_label("Hidden for everyone").check()
    page.get_by_role("button", name="Add a group").click()
    expect(page.locator("fieldset[data-group=add1]")).to_be_visible()
    screenshot(page, "studio-tabs", viewport)
    page.get_by_role("button", name="Save", exact=True).last.click()
    expect(page.get_by_role("status")).to_contain_text("The tab groups were saved.")
    assert ("Customers", ["accounts"]) in site.studio.tabs()["groups"]
    assert "contacts" in site.studio.tabs()["hidden"]
    page.goto("/")
    nav = nav_groups(page.content())
    assert nav["Customers"] == ["accounts"] and "contacts" not in in_nav(page.content())
