"""The Studio's Module Designer and Custom Fields editor through real HTTP requests.

An administrator creates a module through its form and finds it in the navigation and its
list page; creates a field of every one of the 21 types through the field form (with the
inputs each type needs), then a record through the generic create form, and reads every
value back on its detail page. Refusals (bad names, a broken formula, bad numbers) answer
422 with the reason where the user looks, and change nothing. Relationships add
subpanels; removed fields keep their data and come back with it. Only administrators get
in."""
import html
import re

import pytest
import sqlalchemy as sa

from core.apps.studio.studio import FIELD_TYPES
from core.kernel import customizations
from core.kernel.users import create_user
from tests.apps.admin.test_web_admin import (
    PASSWORD,
    alerts,
    open_client,
    text_of,
)

pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


@pytest.fixture
def client(site, admin):
    client = open_client(site, "admin")
    yield client
    client.__exit__(None, None, None)


def post(client, url: str, data: dict | list | None = None):
    """A form post with the CSRF token; ``data`` may be a list of pairs (repeated names)."""
    pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
    fields: dict[str, list[str]] = {"_csrf": [client.csrf]}
    for key, value in pairs:
        fields.setdefault(key, []).extend(value if isinstance(value, list) else [value])
    return client.post(url, data=fields, follow_redirects=False)


def field_views(response) -> dict[str, str]:
    """Label -> value text of the fields on a detail page, as the reader sees them."""
    found = re.findall(r"<dt>(.*?)</dt><dd>(.*?)</dd>", response.text, re.DOTALL)
    clean = [(html.unescape(re.sub(r"<[^>]+>", " ", k)), html.unescape(re.sub(r"<[^>]+>", " ", v)))
             for k, v in found]
    return {" ".join(k.split()): " ".join(v.split()) for k, v in clean}


def inline_error(response, name: str, prefix: str = "f") -> str:
    """The message shown under an input of the form ("" if none)."""
    found = re.search(rf'id="{prefix}-{name}-error">(.*?)</p>', response.text, re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split()) \
        if found else ""


def form_values(page_html: str) -> list[tuple[str, str]]:
    """What the field form would send as shown: its text inputs, ticked boxes, selected
    options and textareas, for the parts of the form its type shows."""
    form = re.search(r'<form method="post" action="[^"]*/fields/[^"]*".*?</form>', page_html,
                     re.DOTALL).group(0)
    # the parts of other types are hidden (and disabled by studio.js): not sent
    form = re.sub(r'<(div|fieldset)[^>]*data-types="[^"]*" hidden>.*?</\1>', "", form,
                  flags=re.DOTALL)
    pairs = []
    for tag in re.findall(r"<input [^>]*>", form):
        name = re.search(r'name="([^"]+)"', tag)
        value = re.search(r'value="([^"]*)"', tag)
        if not name or name.group(1) == "_csrf":
            continue
        if 'type="checkbox"' in tag and "checked" not in tag:
            continue
        pairs.append((name.group(1), html.unescape(value.group(1) if value else "")))
    for name, body in re.findall(r'<select [^>]*name="([^"]+)"[^>]*>(.*?)</select>', form,
                                 re.DOTALL):
        pairs += [(name, html.unescape(v)) for v in
                  re.findall(r'<option value="([^"]*)"[^>]*selected>', body)]
    for name, body in re.findall(r'<textarea [^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', form,
                                 re.DOTALL):
        pairs.append((name, html.unescape(body)))
    return pairs


def studio_log(site) -> list[tuple[str, str]]:
    return [(e.action, e.target) for e in site.studio.history()]


def create_vehicles(client, **extra) -> None:
    response = post(client, "/admin/studio/modules/new", {
        "name": "vehicles", "label": "Vehicles", "label_singular": "Vehicle",
        "tab_group": "Fleet", "icon": "car", "access_level": "editable",
        "assignable": "1", "audited": "1", **extra})
    assert response.status_code == 303, alerts(response) or response.text[:2000]
    assert response.headers["location"] == "/admin/studio/modules/vehicles"


def add_field(client, module: str, name: str, ftype: str, data: dict | list | None = None):
    pairs = list(data.items()) if isinstance(data, dict) else list(data or [])
    return post(client, f"/admin/studio/modules/{module}/fields/new",
                [("type", ftype), ("name", name), *pairs])


# -- who may --------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/admin/studio"), ("GET", "/admin/studio/history"), ("GET", "/admin/studio/removed"),
    ("POST", "/admin/studio/removed/x/restore"),
    ("GET", "/admin/studio/modules/new"), ("POST", "/admin/studio/modules/new"),
    ("GET", "/admin/studio/modules/accounts"),
    ("POST", "/admin/studio/modules/accounts/settings"),
    ("POST", "/admin/studio/modules/accounts/remove"),
    ("POST", "/admin/studio/modules/accounts/relationships"),
    ("POST", "/admin/studio/modules/accounts/relationships/contacts/remove"),
    ("POST", "/admin/studio/modules/accounts/subpanels"),
    ("POST", "/admin/studio/modules/accounts/filters"),
    ("GET", "/admin/studio/modules/accounts/formula?text=add(1,2)"),
    ("GET", "/admin/studio/modules/accounts/fields/new"),
    ("POST", "/admin/studio/modules/accounts/fields/new"),
    ("GET", "/admin/studio/modules/accounts/fields/name"),
    ("POST", "/admin/studio/modules/accounts/fields/name"),
    ("POST", "/admin/studio/modules/accounts/fields/name/remove"),
]


def test_only_administrators_get_in(site, admin):
    create_user(site, "dana", PASSWORD)
    dana = open_client(site, "dana")
    for method, url in ROUTES:
        if method == "GET":
            response = dana.get(url, follow_redirects=False)
        else:
            response = post(dana, url, {"name": "x", "label": "X", "type": "text",
                                        "kind": "many_to_many", "other": "contacts"})
        assert response.status_code == 403, (method, url, response.status_code)
        assert "You are not allowed to open this page." in text_of(response)
    assert studio_log(site) == [] and customizations.read(site.engine) == []
    assert "x" not in site.registry.modules
    dana.__exit__(None, None, None)
    # signed out: the login page
    anonymous = open_client(site, "admin")
    anonymous.post("/logout", data={"_csrf": anonymous.csrf})
    response = anonymous.get("/admin/studio", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    anonymous.__exit__(None, None, None)


def test_the_studio_index_lists_the_modules_and_the_editors(client, site):
    page = client.get("/admin/studio")
    assert page.status_code == 200
    assert 'href="/admin/studio/modules/new"' in page.text
    for url in ("/admin/studio/dropdowns", "/admin/studio/tabs", "/admin/studio/history",
                "/admin/studio/removed", "/admin/studio/modules/accounts",
                "/admin/studio/modules/gadgets"):
        assert f'href="{url}"' in page.text
    row = re.search(r'<tr data-module="gadgets">(.*?)</tr>', page.text, re.DOTALL).group(1)
    assert "Gadgets" in row and "Tests" in row and "Standard" in row
    assert 'href="/admin/studio"' in client.get("/admin").text  # the lead's link on /admin


# -- modules --------------------------------------------------------------------------------

def test_an_admin_creates_a_module_and_finds_it_in_the_navigation(client, site):
    form = client.get("/admin/studio/modules/new")
    assert '<datalist id="studio-tab-groups">' in form.text
    assert '<option value="Sales">' in form.text  # existing tab groups are offered
    create_vehicles(client, team_owned="1", numbered="1", sequence_prefix="V-")
    settings = site.studio.module_settings("vehicles")
    assert settings["label"] == "Vehicles" and settings["tab_group"] == "Fleet"
    assert settings["features"] == {"assignable": True, "team_owned": True, "audited": True,
                                    "importable": False, "sequence_prefix": "V-"}
    designer = client.get("/admin/studio/modules/vehicles")
    assert "Module Vehicles was created." in alerts(designer)
    assert 'href="/m/vehicles"' in designer.text
    for view in ("detail", "edit", "quick_create", "list"):
        assert f'href="/admin/studio/modules/vehicles/layouts/{view}"' in designer.text
    # a custom module can be removed; the purge box is not ticked
    remove = re.search(r'<section class="card danger-zone" id="remove".*?</section>',
                       designer.text, re.DOTALL).group(0)
    assert 'name="purge" value="1">' in remove and "checked" not in remove
    assert "kept" in text_of(client.get("/admin/studio/modules/vehicles")) \
        .split("Remove module")[1]

    listing = client.get("/m/vehicles")
    assert listing.status_code == 200
    assert re.search(r'<span class="tab-group-label">Fleet</span>(?:(?!</div>).)*'
                     r'<a href="/m/vehicles"', listing.text, re.DOTALL)  # in the Fleet menu
    response = post(client, "/m/vehicles/new", {"name": "Red van"})
    assert response.status_code == 303
    detail = client.get(response.headers["location"])
    assert re.fullmatch(r"V-\d+", field_views(detail)["Number"])  # numbered, with the prefix
    assert "Red van" in text_of(client.get("/m/vehicles"))
    assert ("create module", "vehicles") in studio_log(site)


def test_bad_module_names_are_refused_inline(client, site):
    create_vehicles(client)
    for name, reason in (("9cars", "must start with a lowercase letter"),
                         ("Cars", "must start with a lowercase letter"),
                         ("select", "'select' is reserved"),
                         ("vehicles", "a module named 'vehicles' exists already"),
                         ("", "is required")):
        response = post(client, "/admin/studio/modules/new",
                        {"name": name, "label": "Cars", "tab_group": "Fleet"})
        assert response.status_code == 422, name
        assert reason in inline_error(response, "name")
        assert 'value="Fleet"' in response.text  # the values as sent
    assert [m.name for m in site.studio.modules()].count("vehicles") == 1
    assert "cars" not in site.registry.modules and "9cars" not in site.registry.modules
    response = post(client, "/admin/studio/modules/new", {"name": "cars", "label": ""})
    assert response.status_code == 422 and "is required" in alerts(response)
    assert "cars" not in site.registry.modules


def test_module_settings_are_saved_from_the_designer(client, site):
    create_vehicles(client)
    response = post(client, "/admin/studio/modules/vehicles/settings", {
        "label": "Cars", "label_singular": "Car", "tab_group": "Garage", "icon": "",
        "access_level": "fixed", "importable": "1"})
    assert response.status_code == 303
    settings = site.studio.module_settings("vehicles")
    assert (settings["label"], settings["tab_group"], settings["access_level"]) == \
        ("Cars", "Garage", "fixed")
    assert settings["features"]["importable"] and not settings["features"]["assignable"]
    page = client.get("/admin/studio/modules/vehicles")
    assert "The settings of Cars were saved." in alerts(page)
    assert 'id="f-label" name="label" value="Cars"' in page.text
    # a blank label is refused, nothing saved
    response = post(client, "/admin/studio/modules/vehicles/settings",
                    {"label": "", "access_level": "editable"})
    assert response.status_code == 422 and "is required" in alerts(response)
    assert site.studio.module_settings("vehicles")["label"] == "Cars"


def test_numbering_can_be_turned_off(client, site):
    create_vehicles(client, numbered="1", sequence_prefix="V-")
    response = post(client, "/admin/studio/modules/vehicles/settings",
                    {"label": "Vehicles", "access_level": "editable"})  # "numbered" unticked
    assert response.status_code == 303
    assert site.studio.module_settings("vehicles")["features"]["sequence_prefix"] is None


def test_a_standard_module_cannot_be_removed(client, site):
    page = client.get("/admin/studio/modules/accounts")
    assert 'action="/admin/studio/modules/accounts/remove"' not in page.text
    response = post(client, "/admin/studio/modules/accounts/remove", {})
    assert response.status_code == 422
    assert "is not a Studio module" in text_of(response)
    assert "accounts" in site.registry.modules


def test_unknown_modules_and_fields_are_404(client):
    assert client.get("/admin/studio/modules/nope").status_code == 404
    assert client.get("/admin/studio/modules/nope/fields/new").status_code == 404
    assert client.get("/admin/studio/modules/accounts/fields/nope").status_code == 404
    assert client.get("/admin/studio/modules/accounts/fields/id").status_code == 404  # system
    assert post(client, "/admin/studio/removed/nope/restore").status_code == 404


# -- every field type -----------------------------------------------------------------------

def make_account(site, admin, **values) -> str:
    return site.records.create("accounts", {"name": "Acme Corp", "phone_office": "+1 555 0199",
                                            **values}, admin)["id"]


# type -> (field name, the field form's type-specific inputs, the record form's inputs,
#          what the detail page shows)
EVERY_TYPE = {
    "text": ("make", {"max_size": "40"}, {"make": "Volvo"}, "Volvo"),
    "textarea": ("notes", {}, {"notes": "Dent on the left door"}, "Dent on the left door"),
    "integer": ("year", {}, {"year": "2019"}, "2,019"),
    "decimal": ("weight", {}, {"weight": "1234.5"}, "1,234.5"),
    "percentage": ("discount", {}, {"discount": "12.5"}, "12.5%"),
    "checkbox": ("insured", {}, {"insured": ["0", "1"]}, "Yes"),
    "email": ("contact_email", {}, {"contact_email": "fleet@example.com"}, "fleet@example.com"),
    "phone": ("phone", {}, {"phone": "+1 555 0100"}, "+1 555 0100"),
    "item_number": ("vin", {}, {"vin": "1HGCM82633A004352"}, "1HGCM82633A004352"),
    "dropdown": ("kind", {"options": "gadget_kind_dom"}, {"kind": "toy"}, "Toy"),
    "status": ("state", {"options": "gadget_status_dom"}, {"state": "active"}, "Active"),
    "multiselect": ("extras", {"options": "gadget_tag_dom"}, {"extras": ["red", "blue"]},
                    "Red, Blue"),
    "date": ("purchase_date", {}, {"purchase_date": "2024-03-15"}, "Mar 15, 2024"),
    "datetime": ("serviced_at", {}, {"serviced_at": "2024-03-15T10:30"}, "Mar 15, 2024"),
    "url": ("homepage", {}, {"homepage": "https://example.com/van"}, "https://example.com/van"),
    "html": ("description", {}, {"description": "<p><b>Bold</b> move</p>"}, "Bold move"),
    "calculated": ("age", {"formula": "subtract(2025, year)", "format": "integer"}, {}, "6"),
    "related": ("account_id", {"module": "accounts"}, {"account_id": "{account}"}, "Acme Corp"),
    "related_value": ("account_phone", {"related_field": "account_id",
                                        "source_field": "phone_office"}, {}, "+1 555 0199"),
    "currency": ("price", {"currency": "EUR"}, {"price": "1500", "price_currency": "EUR"},
                 "€1,500.00"),
    "name": ("nickname", {}, {"nickname": "Bluey"}, "Bluey"),
}


def test_every_field_type_made_in_the_studio_round_trips_through_the_ui(client, site, admin):
    assert [t for t, _ in FIELD_TYPES] == list(EVERY_TYPE)  # the 21 of the guide
    account = make_account(site, admin)
    create_vehicles(client)
    form = client.get("/admin/studio/modules/vehicles/fields/new")
    offered = re.findall(r'<option value="([a-z_]+)"', re.search(
        r'<select id="f-type" name="type".*?</select>', form.text, re.DOTALL).group(0))
    assert offered == list(EVERY_TYPE)
    for ftype, (name, inputs, _, _) in EVERY_TYPE.items():
        label = name.replace("_", " ").title()
        response = add_field(client, "vehicles", name, ftype, {"label": label, **inputs})
        assert response.status_code == 303, (ftype, alerts(response))
    # ** Dynamic **: a related field that may point to accounts or contacts
    response = add_field(client, "vehicles", "about_id", "related",
                         {"label": "About", "module": "_dynamic",
                          "modules": ["accounts", "contacts"]})
    assert response.status_code == 303, alerts(response)

    fields = {f.name: f for f in site.studio.fields("vehicles")}
    for ftype, (name, inputs, _, _) in EVERY_TYPE.items():
        assert fields[name].type == ftype and fields[name].custom
        for key, value in inputs.items():
            assert fields[name].spec[key] == (int(value) if key == "max_size" else value)
    assert fields["about_id"].spec["modules"] == ["accounts", "contacts"]
    assert "module" not in fields["about_id"].spec
    # the designer lists them all with their types
    designer = client.get("/admin/studio/modules/vehicles")
    for ftype, label in FIELD_TYPES:
        name = EVERY_TYPE[ftype][0]
        row = re.search(rf'<tr data-field="{name}">(.*?)</tr>', designer.text, re.DOTALL)
        assert label in row.group(1) and "Custom" in row.group(1), ftype

    # a record through the generic create form, read back on its detail page
    new = client.get("/m/vehicles/new")
    assert new.status_code == 200
    values = {"name": "Red van", "about_id": account, "about_type": "accounts"}
    for _, _, record_inputs, _ in EVERY_TYPE.values():
        for key, value in record_inputs.items():
            values[key] = value.replace("{account}", account) if isinstance(value, str) \
                else value
            assert f'name="{key}"' in new.text, key  # the create form shows the input
    response = post(client, "/m/vehicles/new", values)
    assert response.status_code == 303, alerts(response) or text_of(response)[:3000]
    detail = client.get(response.headers["location"])
    shown = field_views(detail)
    for ftype, (name, _, _, expected) in EVERY_TYPE.items():
        label = name.replace("_", " ").title()
        assert expected in shown[label], (ftype, shown[label])
    # the dynamic one links to the account and says which module it is in
    assert shown["About"].endswith("(Account)")
    assert re.search(rf'<dt>About</dt><dd><a href="/m/accounts/{account}">', detail.text)
    # and the list page shows the record
    assert "Red van" in text_of(client.get("/m/vehicles"))

    # every field can be opened and saved again as it is shown (nothing lost, nothing added)
    before = {f.name: f.spec for f in site.studio.fields("vehicles")}
    for name in [n for n, _, _, _ in EVERY_TYPE.values()] + ["about_id"]:
        page = client.get(f"/admin/studio/modules/vehicles/fields/{name}")
        assert page.status_code == 200
        response = post(client, f"/admin/studio/modules/vehicles/fields/{name}",
                        form_values(page.text))
        assert response.status_code == 303, (name, alerts(response))
    assert {f.name: f.spec for f in site.studio.fields("vehicles")} == before


# -- refusals -------------------------------------------------------------------------------

def test_a_formula_error_is_shown_with_its_position_and_nothing_is_saved(client, site):
    create_vehicles(client)
    assert add_field(client, "vehicles", "year", "integer", {"label": "Year"}).status_code == 303
    # checked before saving: the JSON the "Check formula" button asks for
    answer = client.get("/admin/studio/modules/vehicles/formula",
                        params={"text": "subtract(2025, year"}).json()
    assert answer["ok"] is False and answer["problems"][0]["position"] == 19
    assert "line 1, column 20" in answer["problems"][0]["reason"]
    answer = client.get("/admin/studio/modules/vehicles/formula",
                        params={"text": "add(year, wheels)"}).json()
    assert answer == {"ok": False, "problems": [
        {"reason": "unknown field 'wheels' at line 1, column 11", "position": 10}]}
    assert client.get("/admin/studio/modules/vehicles/formula",
                      params={"text": "subtract(2025, year)"}).json() == \
        {"ok": True, "problems": []}
    # a field may not use itself
    assert client.get("/admin/studio/modules/vehicles/formula",
                      params={"text": "add(year, 1)", "field": "year"}).json()["ok"] is False

    before = studio_log(site)
    response = add_field(client, "vehicles", "age", "calculated",
                         {"label": "Age", "formula": "add(year, wheels)", "format": "integer"})
    assert response.status_code == 422
    assert "Error at position 10: unknown field 'wheels'" in inline_error(response, "formula")
    marked = re.search(r'<pre class="formula-marked".*?</pre>', response.text, re.DOTALL).group(0)
    assert "<code>add(year, <mark>w</mark>heels)</code>" in marked
    assert '<span class="caret-line">          ^</span>' in marked  # under the "w"
    assert 'data-error-position="10"' in response.text  # studio.js puts the cursor there
    assert ">add(year, wheels)</textarea>" in response.text  # the formula as typed
    assert "age" not in site.registry.modules["vehicles"].fields
    assert studio_log(site) == before

    # a formula over several lines: the caret goes under the line of the error
    response = add_field(client, "vehicles", "age", "calculated",
                         {"label": "Age", "formula": "add(\n  year,\n  wheels)"})
    assert response.status_code == 422 and "line 3, column 3" in inline_error(response, "formula")
    marked = re.search(r'<pre class="formula-marked".*?</pre>', response.text, re.DOTALL).group(0)
    assert "  <mark>w</mark>heels)</code>\n<span class=\"caret-line\">  ^</span>" in marked
    assert "age" not in site.registry.modules["vehicles"].fields


@pytest.mark.parametrize(("name", "reason"), [
    ("9lives", "must start with a lowercase letter"),
    ("Make", "must start with a lowercase letter"),
    ("make-model", "must start with a lowercase letter"),
    ("id", "'id' is reserved"),
    ("created_at", "'created_at' is reserved"),
    ("select", "'select' is reserved"),
    ("make", "module 'vehicles' already has a field 'make'"),
    ("", "is required"),
])
def test_bad_field_names_are_refused(client, site, name, reason):
    create_vehicles(client)
    assert add_field(client, "vehicles", "make", "text", {"label": "Make"}).status_code == 303
    fields = {f.name: f.spec for f in site.studio.fields("vehicles")}
    log = studio_log(site)
    response = add_field(client, "vehicles", name, "text", {"label": "Other", "help": "Hi"})
    assert response.status_code == 422
    assert reason in inline_error(response, "name")
    assert 'name="label" value="Other"' in response.text  # the values as sent
    assert {f.name: f.spec for f in site.studio.fields("vehicles")} == fields
    assert studio_log(site) == log


def test_bad_numbers_and_missing_inputs_are_refused(client, site):
    create_vehicles(client)
    log = studio_log(site)
    cases = [("text", {"max_size": "forty"}, "max_size", "'forty' is not a whole number"),
             ("text", {"max_size": "0"}, "max_size", "must be at least 1"),
             ("dropdown", {}, "options", "Choose the dropdown list"),
             ("related", {}, "module", "Choose the related module."),
             ("related", {"module": "_dynamic"}, "modules", "Choose at least one module"),
             ("related_value", {}, "related_field", "Choose the related field to follow."),
             ("currency", {"currency": "euro"}, "currency", "not a three-letter currency code"),
             ("calculated", {"formula": ""}, "formula", "is required")]
    for ftype, inputs, where, reason in cases:
        response = add_field(client, "vehicles", "thing", ftype, inputs)
        assert response.status_code == 422, (ftype, inputs)
        assert reason in inline_error(response, where), (ftype, response.text[-3000:])
    response = add_field(client, "vehicles", "thing", "nonsense", {})
    assert response.status_code == 422 and "Choose the data type." in alerts(response)
    assert "thing" not in site.registry.modules["vehicles"].fields
    assert studio_log(site) == log


def test_required_without_a_default_is_saved_with_a_warning(client, site):
    create_vehicles(client)
    response = add_field(client, "vehicles", "plate", "text", {"label": "Plate", "required": "1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/studio/modules/vehicles#fields"
    page = client.get("/admin/studio/modules/vehicles")
    assert re.search(r'<p class="flash warning" role="status">Field plate was saved\. Warning: '
                     r"required without a default", page.text)
    assert site.registry.modules["vehicles"].fields["plate"].required
    # with a default: no warning
    response = add_field(client, "vehicles", "wheels", "integer",
                         {"label": "Wheels", "required": "1", "default": "4"})
    assert response.status_code == 303
    assert alerts(client.get("/admin/studio/modules/vehicles")) == "Field wheels was saved."
    assert site.registry.modules["vehicles"].fields["wheels"].spec["default"] == "4"


# -- editing fields -------------------------------------------------------------------------

def test_editing_a_standard_field_keeps_what_the_form_does_not_show(client, site):
    page = client.get("/admin/studio/modules/accounts/fields/name")
    assert page.status_code == 200
    assert 'name="type"' not in page.text  # the type is shown, not editable
    assert "the type of a field cannot be changed" in text_of(page)
    assert 'name="required" value="1" checked' in page.text
    assert 'name="max_size" value="150"' in page.text
    assert "Remove field" not in text_of(page)  # standard fields are not removed
    response = post(client, "/admin/studio/modules/accounts/fields/name", {
        "label": "Company", "required": "1", "max_size": "200", "merge_duplicates": "1",
        "help": "The legal name", "type": "integer"})  # a type sent anyway is ignored
    assert response.status_code == 303
    spec = site.registry.modules["accounts"].fields["name"].spec
    assert spec["type"] == "name" and spec["label"] == "Company" and spec["max_size"] == 200
    assert spec["help"] == "The legal name" and spec["required"] is True
    assert not spec.get("audited")  # unticked: taken off
    assert "Company" in text_of(client.get("/m/accounts/new"))
    assert ("edit field", "accounts.name") in studio_log(site)


def test_a_dependent_dropdown_with_conditional_options(client, site, admin):
    create_vehicles(client)
    assert add_field(client, "vehicles", "kind", "dropdown",
                     {"label": "Kind", "options": "gadget_kind_dom"}).status_code == 303
    form = client.get("/admin/studio/modules/vehicles/fields/new?type=dropdown")
    assert '<option value="kind">Kind (kind)</option>' in form.text  # a controlling field
    assert 'name="depends_values.kind" value="toy"' in form.text
    response = add_field(client, "vehicles", "toy_age", "dropdown", {
        "label": "Toy age", "options": "gadget_toy_age_dom", "depends_on": "kind",
        "depends_values.kind": ["toy", "other"], "cond.toy": ["kid", "teen"], "cond.tool": []})
    assert response.status_code == 303, alerts(response)
    spec = site.registry.modules["vehicles"].fields["toy_age"].spec
    assert spec["depends_on"] == {"field": "kind", "values": ["toy", "other"]}
    assert spec["conditional_options"] == {"toy": ["kid", "teen"]}
    page = client.get("/admin/studio/modules/vehicles/fields/toy_age")
    assert re.findall(r'name="cond\.(\w+)" value="(\w+)" checked', page.text) == \
        [("toy", "kid"), ("toy", "teen")]
    assert re.findall(r'name="depends_values\.kind" value="(\w+)" checked', page.text) == \
        ["toy", "other"]
    # the record form follows it
    new = client.get("/m/vehicles/new")
    assert 'data-depends-on="kind"' in new.text and 'data-conditional="' in new.text
    response = post(client, "/m/vehicles/new", {"name": "Kart", "kind": "toy", "toy_age": "kid"})
    assert response.status_code == 303
    assert field_views(client.get(response.headers["location"]))["Toy age"] == "Kid"
    # without a value to depend on: refused
    response = add_field(client, "vehicles", "size", "text", {"depends_on": "kind"})
    assert response.status_code == 422
    assert "Tick the values of kind" in inline_error(response, "depends_on")


# -- relationships, subpanels, list filters -------------------------------------------------

def test_a_many_to_one_relationship_puts_a_subpanel_on_the_account(client, site, admin):
    account = make_account(site, admin)
    create_vehicles(client)
    response = post(client, "/admin/studio/modules/vehicles/relationships", {
        "kind": "many_to_one", "other": "accounts", "field_name": "owner_id",
        "label": "Fleet vehicles", "subpanel": "1"})
    assert response.status_code == 303, alerts(response)
    assert response.headers["location"] == "/admin/studio/modules/vehicles#relationships"
    assert site.registry.modules["vehicles"].fields["owner_id"].spec["module"] == "accounts"
    # the account's designer page lists it, removable, with its subpanel
    page = client.get("/admin/studio/modules/accounts")
    row = re.search(r'<tr data-relationship="vehicles">(.*?)</tr>', page.text, re.DOTALL).group(1)
    assert "One to many" in row and "Fleet vehicles" in row and "Yes" in row
    assert 'action="/admin/studio/modules/accounts/relationships/vehicles/remove"' in row

    response = post(client, "/m/vehicles/new", {"name": "Blue truck", "owner_id": account})
    assert response.status_code == 303
    detail = client.get(f"/m/accounts/{account}")
    panel = re.search(r'<details class="card subpanel" id="sub-vehicles".*?</details>',
                      detail.text, re.DOTALL)
    assert panel and "Fleet vehicles" in panel.group(0) and 'data-count="1"' in panel.group(0)
    rows = client.get(f"/m/accounts/{account}/subpanel/vehicles?fragment=1")  # opened
    assert "Blue truck" in rows.text

    # the subpanels form: hide it, rename it
    response = post(client, "/admin/studio/modules/accounts/subpanels", {
        "shown": ["contacts"], "label.vehicles": "Cars"})
    assert response.status_code == 303
    detail = client.get(f"/m/accounts/{account}")
    assert 'id="sub-vehicles"' not in detail.text and 'id="sub-contacts"' in detail.text
    assert {r["name"]: r["label"] for r in site.studio.relationships("accounts")}["vehicles"] \
        == "Cars"
    page = client.get("/admin/studio/modules/accounts")
    assert re.search(r'name="shown" value="vehicles" id="sp-vehicles">', page.text)  # unticked
    assert 'name="shown" value="contacts" id="sp-contacts" checked>' in page.text
    # a label left as it was is not written into the site's layer
    [overlay] = [i.body for i in customizations.read(site.engine)
                 if i.key == ("module", "accounts")]
    assert "contacts" not in overlay.get("relationships", {})
    # removing the relationship takes the subpanel away
    response = post(client, "/admin/studio/modules/accounts/relationships/vehicles/remove")
    assert response.status_code == 303
    assert "vehicles" not in site.registry.modules["accounts"].relationships


def test_a_many_to_many_relationship_and_refusals(client, site):
    create_vehicles(client)
    response = post(client, "/admin/studio/modules/vehicles/relationships",
                    {"kind": "many_to_many", "other": "contacts", "subpanel": "1"})
    assert response.status_code == 303, alerts(response)
    assert any(r["kind"] == "many_to_many" and r["module"] == "contacts"
               for r in site.studio.relationships("vehicles"))
    log = studio_log(site)
    # the same again: refused next to the other module
    response = post(client, "/admin/studio/modules/vehicles/relationships",
                    {"kind": "many_to_many", "other": "contacts"})
    assert response.status_code == 422
    assert "already related many-to-many" in inline_error(response, "other", "rel")
    assert '<details class="add-more" open>' in response.text
    # a field name already taken
    response = post(client, "/admin/studio/modules/vehicles/relationships",
                    {"kind": "many_to_one", "other": "accounts", "field_name": "name"})
    assert response.status_code == 422
    assert "already has a field 'name'" in inline_error(response, "field_name", "rel")
    response = post(client, "/admin/studio/modules/vehicles/relationships",
                    {"kind": "sideways", "other": ""})
    assert response.status_code == 422
    assert "Choose the kind of relationship." in inline_error(response, "kind", "rel")
    assert "is required" in inline_error(response, "other", "rel")
    assert studio_log(site) == log
    # a standard relationship cannot be removed
    response = post(client, "/admin/studio/modules/accounts/relationships/contacts/remove")
    assert response.status_code == 422 and "is not a Studio relationship" in text_of(response)
    assert "contacts" in site.registry.modules["accounts"].relationships


def test_list_filters_are_chosen_on_the_designer(client, site, admin):
    create_vehicles(client)
    assert add_field(client, "vehicles", "kind", "dropdown",
                     {"label": "Kind", "options": "gadget_kind_dom"}).status_code == 303
    page = client.get("/admin/studio/modules/vehicles")
    assert 'name="filters" value="kind">' in page.text
    response = post(client, "/admin/studio/modules/vehicles/filters", {"filters": ["kind"]})
    assert response.status_code == 303
    assert site.studio.layout("vehicles", "filters") == ["kind"]
    assert 'name="filters" value="kind" checked>' in client.get("/admin/studio/modules/vehicles").text
    site.records.create("vehicles", {"name": "Kart", "kind": "toy"}, admin)
    site.records.create("vehicles", {"name": "Drill", "kind": "tool"}, admin)
    listing = client.get("/m/vehicles?f_kind=toy")
    assert 'name="f_kind"' in listing.text
    assert "Kart" in text_of(listing) and "Drill" not in text_of(listing)
    response = post(client, "/admin/studio/modules/vehicles/filters", {"filters": ["nope"]})
    assert response.status_code == 422
    assert site.studio.layout("vehicles", "filters") == ["kind"]


# -- removing and restoring -----------------------------------------------------------------

def test_a_removed_custom_field_keeps_its_data_and_comes_back(client, site, admin):
    create_vehicles(client)
    assert add_field(client, "vehicles", "color", "text", {"label": "Color"}).status_code == 303
    record = site.records.create("vehicles", {"name": "Van", "color": "Teal"}, admin)["id"]
    page = client.get("/admin/studio/modules/vehicles/fields/color")
    remove = re.search(r'<section class="card danger-zone studio-remove-field".*?</section>',
                       page.text, re.DOTALL).group(0)
    assert '<input type="checkbox" name="purge" value="1">' in remove  # not ticked
    assert "Its data is kept" in text_of(page)

    response = post(client, "/admin/studio/modules/vehicles/fields/color/remove")
    assert response.status_code == 303
    assert "Field color was removed; its data is kept" in \
        alerts(client.get("/admin/studio/modules/vehicles"))
    assert "color" not in site.registry.modules["vehicles"].fields
    assert "Color" not in field_views(client.get(f"/m/vehicles/{record}"))
    with site.engine.connect() as conn:  # the column and its data are still there
        assert conn.execute(sa.text("SELECT color FROM vehicles")).scalar() == "Teal"

    removed = client.get("/admin/studio/removed")
    [item] = site.studio.removed()
    row = re.search(rf'<tr data-removed="{item.id}">(.*?)</tr>', removed.text, re.DOTALL).group(1)
    assert "Field" in row and "color" in row and "vehicles" in row and "admin" in row
    response = post(client, f"/admin/studio/removed/{item.id}/restore")
    assert response.status_code == 303
    assert "vehicles.color was restored." in alerts(client.get("/admin/studio/removed"))
    assert site.studio.removed() == []
    assert field_views(client.get(f"/m/vehicles/{record}"))["Color"] == "Teal"
    assert [a for a, _ in studio_log(site)][:2] == ["restore field", "remove field"]


def test_standard_fields_cannot_be_removed(client, site):
    response = post(client, "/admin/studio/modules/accounts/fields/industry/remove",
                    {"purge": "1"})
    assert response.status_code == 422
    assert "standard fields can be hidden from the layouts but not removed" in text_of(response)
    assert "industry" in site.registry.modules["accounts"].fields


def test_a_removed_module_keeps_its_data_unless_purged(client, site, admin):
    create_vehicles(client)
    record = site.records.create("vehicles", {"name": "Van"}, admin)["id"]
    response = post(client, "/admin/studio/modules/vehicles/remove")  # purge not ticked
    assert response.status_code == 303 and response.headers["location"] == "/admin/studio"
    assert "vehicles" not in site.registry.modules
    assert "Module vehicles was removed; its data is kept" in alerts(client.get("/admin/studio"))
    assert client.get("/m/vehicles").status_code == 404
    [item] = site.studio.removed()
    assert item.kind == "module"
    assert post(client, f"/admin/studio/removed/{item.id}/restore").status_code == 303
    assert field_views(client.get(f"/m/vehicles/{record}"))["Name"] == "Van"


# -- history --------------------------------------------------------------------------------

def test_the_history_lists_every_change_newest_first(client, site):
    assert "Nothing has been changed in the Studio yet." in text_of(
        client.get("/admin/studio/history"))
    create_vehicles(client)
    assert add_field(client, "vehicles", "color", "text", {"label": "Color"}).status_code == 303
    page = client.get("/admin/studio/history")
    rows = re.findall(r"<tr>\s*<td data-label=\"When\">(.*?)</tr>", page.text, re.DOTALL)
    assert len(rows) == 2
    assert "add field" in rows[0] and "vehicles.color" in rows[0] and "admin" in rows[0]
    assert "create module" in rows[1] and "created module vehicles" in rows[1]


# -- in a browser: the field editor's script ------------------------------------------------

@pytest.mark.browser
def test_the_field_editor_in_a_browser(page, server, site, admin, viewport):
    """studio.js: the type decides which inputs show, the formula editor inserts functions
    and fields and checks a formula (caret at the error) before saving, and the conditional
    options grid follows the lists chosen. Screenshots: studio-field, studio-designer."""
    from playwright.sync_api import expect

    from tests.browser import at, log_in, screenshot

    site.studio.create_module(admin, "vehicles", "Vehicles", "Vehicle", tab_group="Fleet")
    site.studio.save_field(admin, "vehicles", "year", {"type": "integer", "label": "Year"},
                           new=True)
    site.studio.save_field(admin, "vehicles", "kind", {"type": "dropdown", "label": "Kind",
                                                       "options": "gadget_kind_dom"}, new=True)
    log_in(page)
    page.goto("/admin/studio")
    page.get_by_role("main").get_by_role("link", name="Vehicles").click()
    expect(page).to_have_url(at(server, "/admin/studio/modules/vehicles"))
    page.get_by_role("link", name="Create field").first.click()

    # a text field: no formula, no dropdown list; the no-script button is gone
    formula = page.get_by_label("Formula")
    expect(formula).to_be_hidden()
    expect(page.get_by_label("Dropdown list")).to_be_hidden()
    expect(page.get_by_role("button", name="Show the inputs of this type")).to_be_hidden()
    page.get_by_label("Data type").select_option("calculated")
    expect(formula).to_be_visible()
    expect(page.get_by_label("Max size")).to_be_hidden()

    # insert a function, then a field, where the cursor is
    page.locator("[data-insert='subtract()']").click()
    expect(formula).to_have_value("subtract()")
    page.keyboard.type("2025, ")
    page.locator("[data-insert='year']").click()
    expect(formula).to_have_value("subtract(2025, year)")
    page.get_by_role("button", name="Check formula").click()
    expect(page.locator("#formula-result")).to_have_text("The formula is correct.")

    formula.fill("add(year, wheels)")
    page.get_by_role("button", name="Check formula").click()
    result = page.locator("#formula-result")
    expect(result).to_contain_text("Error at position 10: unknown field 'wheels'")
    expect(result.locator("mark")).to_have_text("w")
    assert formula.evaluate("el => [el.selectionStart, el.selectionEnd]") == [10, 11]
    screenshot(page, "studio-field", viewport)

    formula.fill("subtract(2025, year)")
    page.get_by_label("Field name").fill("age")
    page.get_by_label("Field label").fill("Age")
    page.get_by_label("Result format").select_option("integer")
    page.get_by_role("button", name="Create field").click()
    expect(page).to_have_url(at(server, "/admin/studio/modules/vehicles#fields"))
    expect(page.get_by_role("status").first).to_have_text("Field age was saved.")
    assert site.registry.modules["vehicles"].fields["age"].spec["formula"] == \
        "subtract(2025, year)"

    # a dropdown depending on another, with conditional options
    page.goto("/admin/studio/modules/vehicles/fields/new")
    page.get_by_label("Data type").select_option("dropdown")
    page.get_by_label("Field name").fill("toy_age")
    grid = page.locator("[data-conditional-grid]")
    expect(grid).to_contain_text("Choose the dropdown list of this field")
    page.get_by_label("Dropdown list").select_option("gadget_toy_age_dom")
    page.get_by_label("Show this field only when").select_option("kind")
    values = page.locator("[data-depends-values='kind']")
    expect(values).to_be_visible()
    values.get_by_label("Toy").check()
    expect(grid.locator("fieldset")).to_have_count(3)  # tool, toy, other
    toy = grid.locator("fieldset").nth(1)
    expect(toy.locator("legend")).to_have_text("Toy")
    toy.get_by_label("Kid").check()
    toy.get_by_label("Teen").check()
    # changing the list and back keeps the ticks
    page.get_by_label("Dropdown list").select_option("gadget_tag_dom")
    expect(toy.get_by_label("Red")).to_be_visible()
    page.get_by_label("Dropdown list").select_option("gadget_toy_age_dom")
    expect(toy.get_by_label("Kid")).to_be_checked()
    page.get_by_role("button", name="Create field").click()
    expect(page).to_have_url(at(server, "/admin/studio/modules/vehicles#fields"))
    spec = site.registry.modules["vehicles"].fields["toy_age"].spec
    assert spec["depends_on"] == {"field": "kind", "values": ["toy"]}
    assert spec["conditional_options"] == {"toy": ["kid", "teen"]}

    # related: ** Dynamic ** asks for the modules
    page.goto("/admin/studio/modules/vehicles/fields/new")
    page.get_by_label("Data type").select_option("related")
    modules = page.get_by_label("Modules a dynamic field may point to")
    expect(modules).to_be_hidden()
    page.get_by_label("Related module").select_option("_dynamic")
    expect(modules).to_be_visible()
    page.goto("/admin/studio/modules/vehicles")
    screenshot(page, "studio-designer", viewport)
