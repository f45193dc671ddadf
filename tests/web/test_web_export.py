"""Export from a list: what the list shows across all its pages, or the ticked rows; the
list's columns or all fields; only records the user may export (1CRM guide 8.5)."""
import csv
import io
import re

import pytest
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.kernel.records import Query
from core.kernel.users import create_user
from core.web.app import create_app
from tests.web import test_web_views
from tests.web.test_web_views import PASSWORD, csrf_of

client = test_web_views.client  # signed in as the admin, with the CSRF token at hand
LIST_HEADER = ["Name", "Kind", "Status", "Quantity", "Widget"]


@pytest.fixture
def gadgets(site, admin):
    """120 gadgets, G000..G119: every third a tool, the others toys; Rita is assigned 10
    toys and 5 tools."""
    rita = create_user(site, "rita", PASSWORD)
    rows = [{"name": f"G{i:03d}", "kind": "tool" if i % 3 == 0 else "toy", "quantity": i,
             "notes": f"note {i}", "assigned_user_id": admin.id} for i in range(120)]
    for i, row in enumerate(rows):
        if i < 60 and (row["kind"] == "toy" and i % 4 == 1 or row["kind"] == "tool" and i < 15):
            row["assigned_user_id"] = rita.id
    site.records.create_many("gadgets", rows, admin)
    return {"rita": rita, "rows": rows}


def export(client, **form) -> tuple[list[str], list[list[str]]]:
    response = client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "export",
                                                      **form})
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"].startswith("attachment")
    header, *rows = list(csv.reader(io.StringIO(response.text, newline="")))
    return header, rows


def test_nothing_ticked_exports_every_record_the_list_shows_on_all_its_pages(client, gadgets):
    toys = sorted((r["name"] for r in gadgets["rows"] if r["kind"] == "toy"), reverse=True)
    assert len(toys) == 80  # four pages of 20
    header, rows = export(client, f_kind="toy", sort="-name")
    assert header == LIST_HEADER
    assert [r[0] for r in rows] == toys  # all pages, the list's order, no tool
    assert {r[1] for r in rows} == {"Toy"}
    # the quick search narrows it as it narrows the list
    _, rows = export(client, f_kind="toy", q="G01")
    assert [r[0] for r in rows] == ["G010", "G011", "G013", "G014", "G016", "G017", "G019"]


def test_all_fields_or_the_list_columns(client, gadgets):
    header, rows = export(client, f_kind="tool", export_fields="all")
    assert header[:len(LIST_HEADER)] != LIST_HEADER or len(header) > len(LIST_HEADER)
    for label in ("Name", "Notes", "Quantity", "Kind", "Gadget number", "Assigned to"):
        assert label in header, label
    assert "Deleted" not in header
    assert len(rows) == 40
    g003 = dict(zip(header, next(r for r in rows if r[header.index("Name")] == "G003"),
                    strict=True))
    assert g003["Notes"] == "note 3" and g003["Quantity"] == "3" and g003["Assigned to"] == \
        "rita"
    header, rows = export(client, f_kind="tool", export_fields="list")
    assert header == LIST_HEADER and len(rows) == 40


def test_ticked_rows_export_just_those(client, site, admin, gadgets):
    ids = [r["id"] for r in site.records.list("gadgets", admin, Query(limit=None))
           if r["name"] in ("G005", "G100")]
    _, rows = export(client, ids=ids, f_kind="toy")
    assert sorted(r[0] for r in rows) == ["G005", "G100"]


def test_a_restricted_user_exports_only_what_they_may_export(site, admin, gadgets):
    # Rita may see and list every gadget but export only her own
    role = aa.create_role(site, "Gadget readers")
    aa.set_role_rules(site, role, {"gadgets": ("enabled", {
        "view": "all", "list": "all", "export": "owner"})})
    aa.set_role_users(site, role, add=[gadgets["rita"].id])
    mine = sorted(r["name"] for r in gadgets["rows"]
                  if r["assigned_user_id"] == gadgets["rita"].id and r["kind"] == "toy")
    assert len(mine) == 10
    with TestClient(create_app(site)) as rita:
        login = rita.get("/login")
        response = rita.post("/login", data={"_csrf": csrf_of(login.text), "username": "rita",
                                             "password": PASSWORD})
        rita.csrf = csrf_of(response.text)
        assert "120" in rita.get("/m/gadgets").text  # she lists them all
        _, rows = export(rita, f_kind="toy")
        assert sorted(r[0] for r in rows) == mine
        header, rows = export(rita, f_kind="toy", export_fields="all")
        assert sorted(r[header.index("Name")] for r in rows) == mine
        # ticking someone else's records exports nothing of them
        others = [r["id"] for r in site.records.list("gadgets", admin, Query(limit=None))
                  if r["name"] in ("G002", mine[0])]
        _, rows = export(rita, ids=others)
        assert [r[0] for r in rows] == [mine[0]]


def test_the_list_page_sends_what_it_shows(client, gadgets):
    """The list form carries the filters, the search and the order (what a browser sends
    when Export is pressed on page 3 with nothing ticked), and offers both column choices."""
    page = client.get("/m/gadgets?f_kind=toy&sort=-name&page=3").text
    form = page[page.index('class="list-form"'):]
    form = form[:form.index("</form>")]
    hidden = dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)"', form))
    assert hidden["f_kind"] == "toy" and hidden["sort"] == "-name"
    assert '<option value="list">List columns</option>' in form
    assert '<option value="all">All fields</option>' in form
    del hidden["_csrf"]
    _, rows = export(client, **hidden, export_fields="list")
    assert len(rows) == 80 and rows[0][0] == "G119" and rows[-1][0] == "G001"
