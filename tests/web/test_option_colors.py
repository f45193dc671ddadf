"""Option colours (issue 25.5): a dropdown option may name a colour of a fixed palette
(metadata/schema/dropdowns.json); a value of a coloured option is a badge in lists, on the
detail page and on board cards, a board column takes its option's colour, and the Studio's
Dropdowns Editor keeps colours and lets an administrator choose them. An unknown colour is
refused where the metadata says it, as every metadata problem is."""
from __future__ import annotations

import datetime as dt
import html
import re
import textwrap

import pytest
from playwright.sync_api import expect

from core.apps.field_types.types import TYPES
from core.kernel.errors import MetadataError
from core.kernel.registry import Layer, build_registry, read_folder
from tests.apps.admin.test_web_admin import open_client
from tests.browser import TIMEOUT_MS, log_in, screenshot

pytestmark = pytest.mark.usefixtures("quick_hashes")
expect.set_options(timeout=TIMEOUT_MS)
PALETTE = "['gray', 'blue', 'teal', 'green', 'amber', 'orange', 'red', 'purple', 'pink']"
MODULE = """\
name: things
label: Things
fields:
  name: {type: name, required: true}
  size: {type: dropdown, options: thing_size_dom}
"""
EDITOR = "/admin/studio/dropdowns/account_type_dom"


def build(folder):
    problems = []
    layers = [Layer("plugins", read_folder(folder, problems))]
    assert not problems
    return build_registry(layers, TYPES)


def write(folder, relative: str, text: str):
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def client(site, admin):
    client = open_client(site, "admin")
    yield client
    client.__exit__(None, None, None)


def row_of(page: str, name: str) -> str:
    """The list row (or board card) whose title link says ``name``."""
    for row in re.findall(r"<tr>.*?</tr>|<article.*?</article>", page, re.DOTALL):
        if f">{name}</a>" in row:
            return row
    raise AssertionError(f"no row {name!r}")


# -- the metadata -----------------------------------------------------------------------------

def test_an_unknown_colour_is_refused_at_its_place(tmp_path):
    write(tmp_path, "modules/things.yaml", MODULE)
    path = write(tmp_path, "dropdowns/things.yaml", """\
        thing_size_dom:
          - {value: s, label: Small, color: teal}
          - {value: l, label: Large, color: magenta}
        """)
    with pytest.raises(MetadataError) as caught:
        build(tmp_path)
    problems = [str(p) for p in caught.value.problems]
    assert problems[0] == f"{path}: $.thing_size_dom[1].color: 'magenta' is not one of {PALETTE}"
    assert not any("[0]" in p for p in problems)  # teal is one
    path.write_text(path.read_text().replace("magenta", "red"))
    registry = build(tmp_path)
    assert [o.get("color") for o in registry.dropdowns["thing_size_dom"]] == ["teal", "red"]


# -- lists, detail pages, boards --------------------------------------------------------------

def test_coloured_values_are_badges_in_lists_and_on_the_detail_page(site, admin, client):
    acme = site.records.create("accounts", {"name": "Acme", "account_type": "customer"}, admin)
    won = site.records.create("opportunities", {
        "name": "Big win", "account_id": acme["id"], "sales_stage": "closed_won",
        "date_closed": dt.date(2027, 3, 31), "lead_source": "cold_call"}, admin)
    site.records.create("opportunities", {
        "name": "Long shot", "account_id": acme["id"], "sales_stage": "prospecting",
        "date_closed": dt.date(2027, 6, 30)}, admin)

    page = client.get("/m/opportunities").text
    assert '<span class="badge badge-option badge-green">Closed Won</span>' in \
        row_of(page, "Big win")
    assert '<span class="badge badge-option badge-gray">Prospecting</span>' in \
        row_of(page, "Long shot")
    # a list without colours is shown as before: the plain label
    accounts = client.get("/m/accounts").text
    assert '<td data-label="Type">Customer</td>' in row_of(accounts, "Acme")
    assert "badge-option" not in row_of(accounts, "Acme")

    detail = client.get(f"/m/opportunities/{won['id']}").text
    stage = re.search(r"<dt>Sales stage</dt><dd>(.*?)</dd>", detail).group(1)
    assert stage == '<span class="badge badge-option badge-green">Closed Won</span>'
    source = re.search(r"<dt>Lead source</dt><dd>(.*?)</dd>", detail).group(1)
    assert source == "Cold Call"


def test_board_columns_take_their_options_colour_and_cards_show_badges(site, admin, client):
    site.records.create("leads", {"last_name": "Hotte", "status": "in_process",
                                  "temperature": "hot"}, admin)
    page = client.get("/m/leads/board").text
    assert '<div class="board tinted" data-board' in page
    columns = dict(re.findall(r'<section class="board-column" data-column="([^"]*)"'
                              r'(?: data-color="([^"]*)")?', page))
    assert columns == {"new": "blue", "assigned": "teal", "in_process": "amber",
                       "recycled": "purple", "dead": "gray"}  # converted: hidden
    card = row_of(page, "Hotte")
    assert '<span class="badge badge-option badge-red">Hot</span>' in card

    opportunities = client.get("/m/opportunities/board").text
    assert '<section class="board-column" data-column="closed_won" data-color="green"' in \
        opportunities


# -- the Studio -------------------------------------------------------------------------------

def editor_colors(page: str) -> list[tuple[str, str]]:
    """(database value, chosen colour or "") of each row of the Dropdowns Editor."""
    body = re.search(r"<tbody data-rows>(.*?)</tbody>", page, re.DOTALL).group(1)
    out = []
    for row in re.findall(r"<tr class=\"option-row.*?</tr>", body, re.DOTALL):
        value = re.search(r'name="value" value="([^"]*)"', row).group(1)
        chosen = re.search(r'<option value="([^"]*)" selected>', row)
        out.append((html.unescape(value), chosen.group(1) if chosen else ""))
    return out


def form_of(rows, language: str = "en", colors=True) -> dict:
    """The editor's form for rows of (database value, display value, colour)."""
    form = {"language": language, "orig": [r[0] for r in rows], "value": [r[0] for r in rows],
            "label": [r[1] for r in rows]}
    if colors:
        form["color"] = [r[2] for r in rows]
    return form


def test_the_studio_keeps_colours_and_lets_an_administrator_choose_them(site, admin, client):
    site.records.create("accounts", {"name": "Acme", "account_type": "customer"}, admin)
    shown = client.get(EDITOR).text
    assert ('<option value="">No color</option>' in shown and
            '<option value="teal">Teal</option>' in shown)
    rows = [(o["value"], o["label"], "") for o in site.studio.dropdown("account_type_dom")]
    rows[2] = ("customer", "Customer <VIP>", "green")
    rows[4] = (rows[4][0], rows[4][1], "pink")
    saved = client.post(EDITOR, data={"_csrf": client.csrf, **form_of(rows)},
                        follow_redirects=False)
    assert saved.status_code == 303
    options = site.studio.dropdown("account_type_dom")
    assert [o.get("color") for o in options][:5] == [None, None, "green", None, "pink"]
    assert editor_colors(client.get(EDITOR).text)[2:5] == [
        ("customer", "green"), ("integrator", ""), ("investor", "pink")]
    accounts = client.get("/m/accounts").text
    assert '<span class="badge badge-option badge-green">Customer &lt;VIP&gt;</span>' in \
        row_of(accounts, "Acme")

    # a form that sends no colours (made before they were, a script's) keeps them; so
    # does one reordering the rows, and a display value changed in French
    rows[2], rows[0] = rows[0], rows[2]
    rows[2] = (rows[2][0], "Analyst!", rows[2][2])
    client.post(EDITOR, data={"_csrf": client.csrf, **form_of(rows, colors=False)})
    options = {o["value"]: o for o in site.studio.dropdown("account_type_dom")}
    assert options["customer"]["color"] == "green" and options["investor"]["color"] == "pink"
    assert options["analyst"]["label"] == "Analyst!" and "color" not in options["analyst"]

    # a colour taken away is gone; one the palette does not have is refused, nothing saved
    rows = [(v, o["label"], o.get("color", "")) for v, o in options.items()]
    rows = [(v, label, "" if v == "investor" else color) for v, label, color in rows]
    client.post(EDITOR, data={"_csrf": client.csrf, **form_of(rows)})
    options = {o["value"]: o for o in site.studio.dropdown("account_type_dom")}
    assert "color" not in options["investor"] and options["customer"]["color"] == "green"
    rows = [(v, label, "magenta" if v == "customer" else color) for v, label, color in rows]
    refused = client.post(EDITOR, data={"_csrf": client.csrf, **form_of(rows)})
    assert refused.status_code == 422
    assert "'magenta' is not a color" in html.unescape(refused.text)
    assert site.studio.dropdown("account_type_dom")[0].get("color") == "green"


def test_a_protected_list_shows_its_colours(client):
    page = client.get("/admin/studio/dropdowns/sales_stage_dom").text
    assert '<span class="badge badge-option badge-green">Closed Won</span>' in page


@pytest.mark.browser
def test_choosing_a_colour_in_the_browser(page, server, admin, site, viewport):
    site.records.create("accounts", {"name": "Acme", "account_type": "customer"}, admin)
    log_in(page)
    page.goto(EDITOR)
    row = page.locator("tbody[data-rows] tr:has(input[name=value][value=customer])")
    expect(row.locator("[data-swatch]")).to_have_attribute("data-color", "")
    row.get_by_label("Color").select_option(label="Green")
    expect(row.locator("[data-swatch]")).to_have_attribute("data-color", "green")
    screenshot(page, "studio-dropdown-color", viewport)
    page.get_by_role("button", name="Save dropdown").first.click()
    expect(page.get_by_role("status")).to_contain_text("account_type_dom was saved")
    page.goto("/m/accounts")
    expect(page.locator("tbody .badge-green")).to_have_text("Customer")
