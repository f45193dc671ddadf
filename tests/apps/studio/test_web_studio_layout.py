"""The Studio's Layout Editor (core/apps/studio/web_layout.py) through real HTTP requests: who may
open it, what it shows, what saving does to the module's own pages (detail, edit, list,
subpanels), what it refuses (nothing saved), and restoring the default layout."""
import html
import json
import re

import pytest

from core.kernel import customizations
from core.kernel.users import create_user
from tests.apps.admin.test_web_admin import open_client, text_of

pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins

EDITOR = "/admin/studio/modules/{module}/layouts/{view}"


def editor(view: str, module: str = "accounts") -> str:
    return EDITOR.format(module=module, view=view)


def snapshot(site) -> tuple:
    """What a refused save must leave as it was: the site layer, the merged definitions and
    the Studio's log."""
    return (customizations.read(site.engine),
            {n: m.definition for n, m in site.registry.modules.items()},
            len(site.studio.history()))


def alerts(response) -> str:
    """The messages at the top of the page: the flash of the last change, the refusal."""
    found = re.findall(r'<(p|div) class="flash[^"]*" role="(?:status|alert)">(.*?)</\1>',
                       response.text, re.DOTALL)
    return " | ".join(" ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())
                      for _, body in found)


def staged(page_html: str) -> dict:
    """The editor's data block: the staged layout, the fields and their order."""
    found = re.search(r'<script type="application/json" id="studio-data">(.*?)</script>',
                      page_html, re.DOTALL)
    return json.loads(found.group(1))


def section_names(page_html: str) -> list[str]:
    return [html.unescape(v) for v in
            re.findall(r'<input type="text" class="section-name" value="([^"]*)"', page_html)]


def available(page_html: str, group: str) -> list[str]:
    """The data-field names of one group (custom or standard) of the Available Fields list."""
    body = re.search(rf'<div class="available-group" data-group="{group}">(.*?)</div>',
                     page_html, re.DOTALL).group(1)
    return re.findall(r'<li class="chip[^"]*" draggable="true" data-field="([^"]+)"', body)


def placed(page_html: str) -> list[str]:
    """The fields in the staging area, in order (data-field of the placed chips)."""
    return re.findall(r'class="chip placed[^"]*" draggable="true" data-field="([^"]+)"',
                      page_html)


def save(client, view: str, layout, labels=None, module: str = "accounts", raw=None):
    data = {"_csrf": client.csrf, "layout": raw if raw is not None else json.dumps(layout)}
    if labels is not None:
        data["labels"] = json.dumps(labels)
    return client.post(editor(view, module), data=data, follow_redirects=False)


def headings(page_html: str, tag: str) -> list[str]:
    return [html.unescape(re.sub(r"<[^>]+>", "", h)).strip()
            for h in re.findall(rf"<{tag}>(.*?)</{tag}>", page_html, re.DOTALL)]


def detail_labels(page_html: str) -> list[str]:
    """The field labels of a record's page, in order (the <dt> of each section's grid)."""
    sections = re.findall(r'<dl class="form-grid">(.*?)</dl>', page_html, re.DOTALL)
    return [html.unescape(t).strip() for s in sections for t in re.findall(r"<dt>(.*?)</dt>", s)]


@pytest.fixture
def client(site, admin):
    client = open_client(site, "admin")
    yield client
    client.__exit__(None, None, None)


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme", "industry": "banking",
                                            "website": "https://acme.example",
                                            "description": "Makes anvils"}, admin)


NEW_DETAIL = [{"label": "Basics", "rows": [["industry", "name"], ["website", None]]},
              {"label": "Notes", "rows": [[None, "description"]]}]


# -- who may ------------------------------------------------------------------------------

def test_only_administrators_may_open_or_save_a_layout(site, admin):
    create_user(site, "bob", "correct horse battery")
    bob = open_client(site, "bob")
    before = snapshot(site)
    assert bob.get(editor("detail")).status_code == 403
    assert bob.get(editor("subpanel/contacts")).status_code == 403
    assert save(bob, "detail", NEW_DETAIL).status_code == 403
    assert bob.post(editor("detail") + "/restore", data={"_csrf": bob.csrf}).status_code == 403
    assert "You are not allowed to open this page." in text_of(bob.get(editor("list")))
    assert snapshot(site) == before
    bob.__exit__(None, None, None)
    anonymous = open_client(site, "admin")
    anonymous.post("/logout", data={"_csrf": anonymous.csrf})
    response = anonymous.get(editor("detail"), follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")


def test_unknown_module_view_or_relationship_is_not_found(client):
    assert client.get(editor("detail", module="nope")).status_code == 404
    assert client.get(editor("sidebar")).status_code == 404
    assert client.get(editor("subpanel/nope")).status_code == 404
    assert client.get(editor("subpanel:nope")).status_code == 404
    assert save(client, "sidebar", ["name"]).status_code == 404


# -- what the editor shows ----------------------------------------------------------------

def test_the_editor_shows_the_sections_their_fields_and_the_available_fields(site, admin, client):
    site.studio.save_field(admin, "accounts", "fleet_size", {"type": "integer",
                                                             "label": "Fleet size"}, new=True)
    response = client.get(editor("detail"))
    assert response.status_code == 200
    page = response.text
    assert section_names(page) == ["Overview", "Addresses", "More information",
                                   "Sales terms"]
    assert placed(page)[:4] == ["name", "assigned_user_id", "account_type", "industry"]
    assert 'data-slot="s0r0c0"' in page and 'data-slot="s2r3c1"' in page  # description's row
    # the empty position of that row offers the unplaced fields
    assert re.search(r'data-slot="s2r3c1"><select data-action="place"', page)
    # custom fields first, in their own group; placed fields are not available
    assert page.index('data-group="custom"') < page.index('data-group="standard"')
    assert available(page, "custom") == ["fleet_size"]
    assert "created_by" in available(page, "standard")
    assert "name" not in available(page, "standard")
    text = text_of(response)
    assert "Layout of Accounts: Detail view" in text
    assert text.index("Custom fields") < text.index("Fleet size") < text.index("Standard fields")
    assert "Restore default layout" not in text  # nothing to restore yet
    data = staged(page)
    assert data["kind"] == "sections" and data["order"][0] == "fleet_size"
    assert data["fields"]["fleet_size"] == {"label": "Fleet size", "custom": True,
                                            "label_editable": True}
    assert data["fields"]["created_by"]["label_editable"] is False  # a system field
    # Cancel goes back to the module's designer page
    assert '<a class="button" href="/admin/studio/modules/accounts">Cancel</a>' in page
    # the other layouts of the module are one click away, subpanels included
    for view in ("edit", "quick_create", "list", "filters", "subpanel/contacts"):
        assert f'href="{editor(view)}"' in page


def test_list_views_show_an_ordered_list(client):
    page = client.get(editor("quick_create")).text
    assert placed(page) == ["name", "account_type", "phone_office", "email1", "website"]
    assert staged(page)["kind"] == "list"
    assert 'data-index="4"' in page and 'data-action="append"' in page
    assert "Move Type up" in html.unescape(page)


# -- saving -------------------------------------------------------------------------------

def test_a_saved_layout_arranges_the_record_pages(site, client, acme):
    response = save(client, "detail", NEW_DETAIL, labels={"industry": "Sector"})
    assert response.status_code == 303
    assert response.headers["location"] == editor("detail")
    page = client.get(editor("detail"))
    assert "The layout was saved." in alerts(page)
    assert "Restore default layout" in text_of(page)
    assert section_names(page.text) == ["Basics", "Notes"]

    record = client.get(f"/m/accounts/{acme['id']}")
    assert headings(record.text, "h2")[:2] == ["Basics", "Notes"]
    assert detail_labels(record.text) == ["Sector", "Account name", "Website", "Description"]
    assert "Office phone" not in text_of(record)
    # the label is the field's own: the list shows it too
    assert "Sector" in text_of(client.get("/m/accounts"))

    assert save(client, "edit", [{"label": "Quick", "rows": [["website", "name"]]},
                                 {"label": "", "rows": [["industry", None]]}]).status_code == 303
    form = client.get(f"/m/accounts/{acme['id']}/edit").text
    assert headings(form, "legend") == ["Quick"]
    inputs = [n for n in re.findall(r'name="([a-z_0-9]+)"', form)
              if n in ("website", "name", "industry", "phone_office", "description")]
    assert inputs == ["website", "name", "industry"]


@pytest.mark.parametrize("view", ["detail", "list", "subpanel/contacts"])
def test_saving_the_form_as_rendered_changes_nothing(site, client, view):
    """The hidden inputs hold the layout as it is (what Save posts without JavaScript)."""
    before = snapshot(site)
    page = client.get(editor(view)).text
    form = {name: html.unescape(value) for name, value in
            re.findall(r'<input type="hidden" name="(layout|labels)" value="([^"]*)"', page)}
    assert json.loads(form["layout"]) == staged(page)["layout"]
    response = client.post(editor(view), data={"_csrf": client.csrf, **form},
                           follow_redirects=False)
    assert response.status_code == 303
    assert "Nothing to save: the layout is as it was." in alerts(client.get(editor(view)))
    assert snapshot(site) == before


BAD_LAYOUTS = {
    "not JSON": ("[{", "The layout could not be read (it is not valid JSON)."),
    "an object": ('{"label": "x"}', "a list was expected"),
    "a section without rows": ('[{"label": "x"}]', 'section 1 must be an object with'),
    "an extra key": ('[{"label": "x", "rows": [], "color": "red"}]',
                     'section 1 must be an object with'),
    "three positions": ('[{"label": "x", "rows": [["name", null, null]]}]',
                        "row 1 of section 1 must be a list of one or two positions"),
    "a number for a field": ('[{"label": "x", "rows": [["name", 7]]}]',
                             "position 2 of row 1 of section 1 must be a field name or null"),
    "a label that is not text": ('[{"label": 5, "rows": [["name"]]}]',
                                 "the name of section 1 must be text"),
    "an unknown field": ('[{"label": "x", "rows": [["name", "shoe_size"]]}]',
                         "There is no field shoe_size that this layout can show."),
    "a field twice": (json.dumps([{"label": "x", "rows": [["name", "website"]]},
                                  {"label": "y", "rows": [["website", None]]}]),
                      "The field website is placed more than once."),
    "no field at all": ('[{"label": "x", "rows": [[null, null]]}]', "Place at least one field."),
}


@pytest.mark.parametrize("case", list(BAD_LAYOUTS))
def test_a_bad_layout_is_refused_and_nothing_is_saved(site, client, case):
    raw, message = BAD_LAYOUTS[case]
    before = snapshot(site)
    response = save(client, "detail", None, raw=raw)
    assert response.status_code == 422
    assert message in alerts(response)
    assert "Nothing was saved." in alerts(response)
    assert section_names(response.text) == ["Overview", "Addresses", "More information",
                                   "Sales terms"]
    assert snapshot(site) == before
    assert not site.studio.layout_customized("accounts", "detail")


@pytest.mark.parametrize("raw, message", [
    ('"name"', "a list was expected"),
    ('["name", ["website"]]', "item 2 must be a field name"),
    ('["name", "name"]', "The field name is placed more than once."),
    ('["name", "nope"]', "There is no field nope that this layout can show."),
    ("[]", "Place at least one field."),
])
def test_a_bad_list_is_refused_and_nothing_is_saved(site, client, raw, message):
    before = snapshot(site)
    for view in ("list", "quick_create", "subpanel/contacts"):
        response = save(client, view, None, raw=raw)
        assert response.status_code == 422, view
        assert message in alerts(response)
    assert snapshot(site) == before


@pytest.mark.parametrize("labels, message", [
    ({"industry": "   "}, "The label of industry must be 1 to 100 characters."),
    ({"industry": "x" * 101}, "The label of industry must be 1 to 100 characters."),
    ({"created_at": "Born"}, "The label of created_at cannot be changed here."),
    ({"shoe_size": "Shoes"}, "There is no field shoe_size that this layout can show."),
])
def test_a_bad_label_is_refused_with_the_layout_unsaved(site, client, labels, message):
    before = snapshot(site)
    response = save(client, "detail", NEW_DETAIL, labels=labels)
    assert response.status_code == 422
    assert message in alerts(response)
    assert snapshot(site) == before


def test_a_refusal_of_the_service_is_shown_and_nothing_is_saved(site, client):
    """The service checks the layout against the registry again: a subpanel column must be
    a field of the other module (an address is a group of fields, not one column)."""
    before = snapshot(site)
    response = save(client, "subpanel/contacts", ["name", "primary_address"])
    assert response.status_code == 422
    assert "primary_address" in alerts(response)
    assert snapshot(site) == before


# -- restore ------------------------------------------------------------------------------

def test_restore_puts_the_default_layout_back(site, client, acme):
    original = staged(client.get(editor("detail")).text)["layout"]
    assert save(client, "detail", NEW_DETAIL).status_code == 303
    page = client.get(editor("detail")).text
    assert f'action="{editor("detail")}/restore"' in page
    response = client.post(editor("detail") + "/restore", data={"_csrf": client.csrf},
                           follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == editor("detail")
    page = client.get(editor("detail"))
    assert "The default layout was restored." in alerts(page)
    assert "Restore default layout" not in text_of(page)
    assert staged(page.text)["layout"] == original
    assert not site.studio.layout_customized("accounts", "detail")
    record = client.get(f"/m/accounts/{acme['id']}")
    assert headings(record.text, "h2")[:3] == ["Overview", "Addresses", "More information"]


# -- list views, subpanels ----------------------------------------------------------------

def test_saved_list_columns_change_the_list_page(site, client, acme):
    assert save(client, "list", ["website", "name", "industry"]).status_code == 303
    listing = client.get("/m/accounts").text
    columns = [html.unescape(re.sub(r"<[^>]+>", "", c)).strip()
               for c in re.findall(r"<th[^>]*>(.*?)</th>", listing, re.DOTALL)]
    assert [c for c in columns if c] == ["Website", "Account name", "Industry"]
    assert placed(client.get(editor("list")).text) == ["website", "name", "industry"]


def test_saved_subpanel_columns_change_the_subpanel(site, admin, client, acme):
    site.records.create("contacts", {"first_name": "Ada", "last_name": "Lovelace",
                                     "title": "Engineer", "account_id": acme["id"]}, admin)
    # the relationship as one path segment works as well as /subpanel/<name>
    assert save(client, "subpanel:contacts", ["title", "email1"]).status_code == 303
    page = client.get(editor("subpanel/contacts"))
    assert placed(page.text) == ["title", "email1"]
    assert "Layout of Accounts: Subpanel: Contacts" in text_of(page)
    panel = client.get(f"/m/accounts/{acme['id']}/subpanel/contacts?fragment=1").text
    assert re.findall(r'<th scope="col">(.*?)</th>', panel) == ["Title", "Email"]
    assert "Engineer" in panel
    response = client.post(editor("subpanel/contacts") + "/restore", data={"_csrf": client.csrf})
    assert response.status_code == 200  # followed back to the editor
    assert not site.studio.layout_customized("accounts", "subpanel:contacts")


def test_filters_and_quick_create_are_saved_in_order(site, client):
    assert save(client, "filters", ["industry", "account_type"]).status_code == 303
    assert save(client, "quick_create", ["website", "name"]).status_code == 303
    assert site.studio.layout("accounts", "filters") == ["industry", "account_type"]
    assert site.studio.layout("accounts", "quick_create") == ["website", "name"]
    quick = client.get("/m/accounts/new?_layout=quick").text
    inputs = [n for n in re.findall(r'name="([a-z_0-9]+)"', quick) if n in ("website", "name")]
    assert inputs == ["website", "name"]


def test_a_section_name_is_text_not_markup(site, client, acme):
    name = '</script><script>alert("x")</script><b>Bold</b>'
    assert save(client, "detail", [{"label": name, "rows": [["name", None]]}]).status_code == 303
    page = client.get(editor("detail")).text
    assert "<script>alert" not in page and "<b>Bold" not in page
    assert section_names(page) == [name]
    assert staged(page)["layout"][0]["label"] == name  # the data block reads back as sent
    record = client.get(f"/m/accounts/{acme['id']}").text
    assert "<b>Bold" not in record and "&lt;b&gt;Bold&lt;/b&gt;</h2>" in record
