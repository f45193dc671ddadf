"""Imports on a real database: files as people write them, every row accounted for, a
session that can be rejected exactly, update mode, and a job that can run twice."""
from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
import sqlalchemy as sa

from core.apps.imports import files, manage, mapping, run
from core.kernel.records import Query
from core.kernel.users import create_user


def _write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def _import(site, user, module, path, **options):
    table = files.open_table(path)
    columns = mapping.automatic(site, site.registry.module(module), table.header,
                                options.pop("source", "custom"))
    session_id = run.start(site, user, module, path, path.name, columns,
                           run.Options(**options), queue=False)
    return session_id, run.run_session(site, session_id)


def _names(site, user, module, **filters):
    return sorted(r["name"] for r in site.records.list(module, user, Query(
        filters=[(k, "eq", v) for k, v in filters.items()], limit=None)))


def test_a_spreadsheet_csv_imports_with_its_accounts_linked_by_name(site, admin, tmp_path):
    """Semicolons, Windows-1252, a BOM-less file from a French Excel; a contact's account
    by name, an unknown one created empty; a quoted multi-line street; Excel escapes."""
    site.records.create("accounts", {"name": "Acme"}, admin)
    accounts = _write(tmp_path, "accounts.csv",
                      "Account name;Type;Billing address: street;Billing address: city;"
                      "Annual revenue;Office phone\r\n"
                      'Zürich Holding;Customer;"Bahnhofstrasse 1\r\nPostfach 12";Zürich;'
                      "1.234.567,50;'+41 44 123 45 67\r\n"
                      'Globex;partner;;München;="00123";\r\n', "cp1252")
    session_id, summary = _import(site, admin, "accounts", accounts, locale="de_DE")
    assert (summary.created, summary.skipped) == (2, 0)
    [zurich] = site.records.list("accounts", admin, Query(
        filters=[("name", "eq", "Zürich Holding")]))
    assert zurich["billing_address_street"] == "Bahnhofstrasse 1\nPostfach 12"
    assert zurich["billing_address_city"] == "Zürich"
    assert zurich["account_type"] == "customer"
    assert zurich["annual_revenue"] == Decimal("1234567.50")
    assert zurich["phone_office"] == "+41 44 123 45 67"

    contacts = _write(tmp_path, "contacts.csv",
                      "First name,Last name,Account,Email\n"
                      "Anna,Müller,Zürich Holding,anna@zh.example\n"
                      "Bob,Stone,acme,bob@acme.example\n"
                      "Cleo,Park,Initech,cleo@initech.example\n")
    session_id, summary = _import(site, admin, "contacts", contacts)
    assert (summary.created, summary.skipped) == (3, 0)
    by_name = {c["last_name"]: c for c in site.records.list("contacts", admin, Query(
        fields=["last_name", "account_id"], limit=None))}
    assert by_name["Müller"]["account_id"] == zurich["id"]
    acme = site.records.list("accounts", admin, Query(filters=[("name", "eq", "Acme")]))[0]
    assert by_name["Stone"]["account_id"] == acme["id"]  # names match without case
    assert "Initech" in _names(site, admin, "accounts")  # an unknown account: made empty
    kinds = manage.records(site, admin, session_id)
    assert {r["name"] for r in kinds["accounts"]} == {"Initech"}
    assert len(kinds["contacts"]) == 3


def test_every_bad_row_is_accounted_for_and_the_rest_imported(site, admin, tmp_path):
    path = _write(tmp_path, "contacts.csv",
                  "First name,Last name,Email,Birthdate,Lead source\n"
                  "Ada,Lovelace,ada@example.com,1815-12-10,\n"
                  "Too,Many,x@example.com,,,extra\n"  # a cell past the header
                  "Bad,Date,bad@example.com,31/31/1999,\n"  # no such day in en_US
                  "Odd,Source,odd@example.com,,Carrier pigeon\n"  # not a list value
                  "Nolast,,nolast@example.com,,\n"  # the last name is required
                  "=HYPERLINK(\"http://evil\"),Formula,f@example.com,,\n"
                  "Bad,Mail,not-an-email,,\n")
    session_id, summary = _import(site, admin, "contacts", path, locale="en_US")
    assert summary.processed == 7
    assert summary.created + summary.skipped == 7
    skipped = {row["line_no"]: run.reason_text(row["reason"])
               for row in manage.skipped(site, admin, session_id)}
    assert set(skipped) == {3, 4, 5, 6, 8}, skipped
    assert "the row has 6 cells; the header has 5" in skipped[3]
    assert "'31/31/1999' is not a date in en_US" in skipped[4]
    assert "'Carrier pigeon' is not one of the list's values" in skipped[5]
    assert "last_name" in skipped[6]
    assert "email" in skipped[8].lower()
    # a formula is only text here: stored as written, escaped again when exported
    assert _names(site, admin, "contacts", last_name="Formula") == \
        ['=HYPERLINK("http://evil") Formula']
    assert summary.created == 2


@pytest.mark.parametrize("content, message", [
    (b"", "The file is empty."),
    (b"\x00\x01\x02binary\x00" * 50, r"not a text \(CSV\) file"),
    (b"PK\x03\x04 not really a zip", "not a spreadsheet that can be read"),
    (b"Account name\n", "no rows"),
    (b"\n\n", "no header row"),
])
def test_files_that_cannot_be_imported_are_refused_with_nothing_written(
        site, admin, tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(files.FileProblem, match=message):
        run.draft(site, admin, "accounts", path, "bad.csv")
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(
            site.tables.tables["crbm_import_sessions"])).scalar() == 0


def test_a_file_over_the_limit_is_refused_by_its_size(site, admin, tmp_path):
    site.set_setting("imports_max_mb", 1)
    path = tmp_path / "big.csv"
    with open(path, "wb") as out:  # sparse: its size says 500 MB, nothing is read
        out.truncate(500 * 2**20)
    with pytest.raises(files.FileProblem, match="500.0 MB; files up to 1 MB"):
        run.draft(site, admin, "accounts", path, "big.csv")


def test_a_mixed_encoding_file_reads_every_line(site, admin, tmp_path):
    path = tmp_path / "mixed.csv"
    path.write_bytes("Account name,Billing address: city\nKraków SA,Kraków\n".encode() +
                     "Café Rouge,Besançon\n".encode("cp1252"))
    session_id, summary = _import(site, admin, "accounts", path)
    assert summary.created == 2
    assert _names(site, admin, "accounts") == ["Café Rouge", "Kraków SA"]
    assert manage.session(site, admin, session_id)["message"] == \
        "1 lines were not UTF-8 and were read as Windows-1252."


def test_a_long_file_keeps_its_line_numbers_and_odd_lines(site, admin, tmp_path):
    """Past the first blocks the reader decodes at once: a cell of three lines, a
    Windows-1252 line and a bad row further down are read and numbered as an editor
    shows them."""
    filler = "x" * 120
    rows = [f"Firm {i},{filler},firm{i}@example.com\n" for i in range(4000)]
    rows[1500] = 'Firm 1500,"Hauptstrasse 1\nHof 2\nPostfach",firm1500@example.com\n'
    rows[3000] = "Firm 3000,Besançon,firm3000@example.com\n"
    rows[3500] = "Firm 3500,,not-an-email\n"
    path = tmp_path / "long.csv"
    path.write_bytes(b"Account name,Billing address: street,Email\n" + b"".join(
        r.encode("cp1252" if i == 3000 else "utf-8") for i, r in enumerate(rows)))
    assert path.stat().st_size > 2 * files.LINES_BLOCK
    session_id, summary = _import(site, admin, "accounts", path)
    assert (summary.total, summary.created, summary.skipped) == (4000, 3999, 1)
    [skip] = manage.skipped(site, admin, session_id)
    assert skip["line_no"] == 3500 + 2 + 2  # the header, and the cell's two more lines
    assert manage.session(site, admin, session_id)["message"] == \
        "1 lines were not UTF-8 and were read as Windows-1252."
    [firm] = site.records.list("accounts", admin, Query(filters=[("name", "eq", "Firm 1500")]))
    assert firm["billing_address_street"] == "Hauptstrasse 1\nHof 2\nPostfach"
    [firm] = site.records.list("accounts", admin, Query(filters=[("name", "eq", "Firm 3000")]))
    assert firm["billing_address_street"] == "Besançon"


def test_xlsx_with_real_dates_and_numbers(site, admin, tmp_path):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["Account name", "Employees", "Annual revenue"])
    sheet.append(["Initrode", 120, 2500000.75])
    sheet.append(["Hooli", 5000.0, None])
    path = tmp_path / "accounts.xlsx"
    book.save(path)
    _, summary = _import(site, admin, "accounts", path)
    assert summary.created == 2
    [initrode] = site.records.list("accounts", admin, Query(filters=[("name", "eq", "Initrode")]))
    assert initrode["employees"] == 120 and initrode["annual_revenue"] == Decimal("2500000.75")


def test_reject_deletes_what_it_created_and_restores_what_it_updated(site, admin, tmp_path):
    other = create_user(site, "olga", "Olga-password-1", is_admin=True)
    kept = site.records.create("accounts", {"name": "Kept", "industry": "banking"}, admin)
    changed = site.records.create("accounts", {"name": "Changed", "website": "https://old.example",
                                               "employees": 10}, admin)
    path = _write(tmp_path, "accounts.csv",
                  f"ID,Account name,Website,Employees\n"
                  f"{changed['id']},Changed,https://new.example,\n"
                  f",Brand new,,3\n")
    session_id, summary = _import(site, admin, "accounts", path)
    assert (summary.created, summary.updated) == (1, 1)
    # later, someone else edits another record, and another field of the updated one
    site.records.update("accounts", kept["id"], {"industry": "energy"}, other)
    site.records.update("accounts", changed["id"], {"employees": 11}, other)
    assert manage.reject(site, admin, session_id) == 2
    assert _names(site, admin, "accounts") == ["Changed", "Kept"]
    now_changed = site.records.get("accounts", changed["id"], admin)
    assert now_changed["website"] == "https://old.example"  # what the import replaced
    assert now_changed["employees"] == 11  # not the import's: stays
    assert site.records.get("accounts", kept["id"], admin)["industry"] == "energy"
    assert manage.session(site, admin, session_id)["status"] == "rejected"


def test_accept_keeps_the_records_and_forgets_the_history(site, admin, tmp_path):
    path = _write(tmp_path, "a.csv", "Account name\nOne\nTwo\n")
    session_id, _ = _import(site, admin, "accounts", path)
    one = next(r for r in manage.records(site, admin, session_id)["accounts"]
               if r["name"] == "One")
    assert manage.accept(site, admin, session_id, [one["id"]]) == 1
    assert manage.reject(site, admin, session_id) == 1  # only "Two" was left to decide
    assert _names(site, admin, "accounts") == ["One"]


def test_catalog_update_mode_by_part_number_reports_what_is_ambiguous(site, admin, tmp_path):
    widget = site.records.create("products", {"name": "Widget", "manufacturer_part_no": "W-1",
                                              "sale_price": "10"}, admin)
    for name in ("Gadget A", "Gadget B"):
        site.records.create("products", {"name": name, "manufacturer_part_no": "G-2"}, admin)
    path = _write(tmp_path, "catalog.csv",
                  "Manufacturer part no.,Product name,Sale price\n"
                  "W-1,Widget v2,12.50\nG-2,Gadget,5\nN-3,New thing,7\n")
    session_id, summary = _import(site, admin, "products", path,
                                  match_on="manufacturer_part_no")
    assert (summary.created, summary.updated, summary.skipped) == (1, 1, 1)
    updated = site.records.get("products", widget["id"], admin)
    assert updated["name"] == "Widget v2" and updated["sale_price"] == Decimal("12.50")
    [skip] = manage.skipped(site, admin, session_id)
    assert skip["line_no"] == 3
    assert run.reason_text(skip["reason"]) == \
        "2 records have this Manufacturer part no.; none was updated"


def test_the_job_runs_once_however_often_it_is_delivered(site, admin, tmp_path):
    path = _write(tmp_path, "a.csv", "Account name\n" + "".join(f"Firm {i}\n" for i in range(1203)))
    table = files.open_table(path)
    columns = mapping.automatic(site, site.registry.module("accounts"), table.header)
    session_id = run.start(site, admin, "accounts", path, "a.csv", columns, run.Options())
    from core import jobs
    jobs.run_due_jobs(site)
    run.run_job(site, {"session_id": session_id})  # a redelivery
    assert manage.session(site, admin, session_id)["created"] == 1203
    assert len(_names(site, admin, "accounts")) == 1203


def test_a_job_that_died_after_a_batch_resumes_after_it(site, admin, tmp_path):
    path = _write(tmp_path, "a.csv", "Account name\n" + "".join(f"Firm {i}\n" for i in range(700)))
    table = files.open_table(path)
    columns = mapping.automatic(site, site.registry.module("accounts"), table.header)
    session_id = run.start(site, admin, "accounts", path, "a.csv", columns, run.Options(),
                           queue=False)

    class Died(Exception):
        pass

    def die(done, total):
        raise Died

    with pytest.raises(Died):  # the worker dies after its first batch committed
        run.run_session(site, session_id, die)
    summary = run.run_session(site, session_id)
    assert (summary.processed, summary.created) == (700, 700)
    assert len(_names(site, admin, "accounts")) == 700


def test_dry_run_writes_nothing(site, admin, tmp_path):
    path = _write(tmp_path, "a.csv", "First name,Last name,Account\nAl,Ng,Nowhere Inc\nBo,,X\n")
    table = files.open_table(path)
    columns = mapping.automatic(site, site.registry.module("contacts"), table.header)
    summary = run.dry_run(site, admin, "contacts", path, columns, run.Options())
    assert (summary.created, summary.skipped) == (1, 1)
    assert _names(site, admin, "contacts") == [] and _names(site, admin, "accounts") == []


def test_dates_and_datetimes_in_the_chosen_locale(site, admin, tmp_path):
    path = _write(tmp_path, "c.csv", "Last name,Birthdate\nGB,05/03/1990\nISO,1990-03-05\n")
    _import(site, admin, "contacts", path, locale="en_GB")
    born = {c["last_name"]: c["birthdate"] for c in site.records.list(
        "contacts", admin, Query(fields=["last_name", "birthdate"], limit=None))}
    assert born == {"GB": dt.date(1990, 3, 5), "ISO": dt.date(1990, 3, 5)}


def test_a_user_without_the_import_right_is_refused(site, admin, tmp_path):
    from core.apps.admin import access_admin
    clerk = create_user(site, "clerk", "Clerk-password-1")
    role_id = access_admin.create_role(site, "No import")
    access_admin.set_role_rules(site, role_id, {"accounts": ("enabled", {"import": "none"})})
    access_admin.set_user_roles(site, clerk.id, [role_id])
    path = _write(tmp_path, "a.csv", "Account name\nX\n")
    with pytest.raises(run.ImportRefused, match="You may not import Accounts"):
        run.draft(site, clerk, "accounts", path, "a.csv")


def test_imported_contacts_join_a_target_list(site, admin, tmp_path):
    fair = site.records.create("prospect_lists", {"name": "Trade fair 2026"}, admin)
    path = _write(tmp_path, "c.csv", "First name,Last name\nIda,Lund\nOla,Berg\n")
    table = files.open_table(path)
    columns = mapping.automatic(site, site.registry.module("contacts"), table.header)
    session_id = run.start(site, admin, "contacts", path, "c.csv", columns,
                           run.Options(add_to=f"prospect_lists:{fair['id']}"), queue=False)
    assert run.run_session(site, session_id).created == 2
    members = site.records.related("prospect_lists", fair["id"], "contacts", admin)
    assert sorted(m["last_name"] for m in members) == ["Berg", "Lund"]
    with pytest.raises(run.ImportRefused, match="no such list"):
        run.start(site, admin, "contacts", _write(tmp_path, "d.csv", "Last name\nX\n"),
                  "d.csv", ["last_name"], run.Options(add_to="prospect_lists:nope"))


def test_a_vcard_file_imports_contacts_with_their_account(site, admin, tmp_path):
    path = _write(tmp_path, "phone.vcf", (
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Åsa Berg\r\nN:Berg;Åsa;;;\r\nORG:Nordvik AB\r\n"
        "EMAIL;TYPE=work:asa@nordvik.example\r\nTEL;TYPE=cell:+46 70 123 45 67\r\n"
        "ADR;TYPE=work:;;Storgatan 1;Göteborg;;411 01;Sweden\r\nUID:abc-1\r\nEND:VCARD\r\n"
        "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:Li Wei\r\nN:Li;Wei;;;\r\nEMAIL:wei@example.cn\r\n"
        "END:VCARD\r\n"))
    table = files.open_table(path)
    assert table.kind == "vcard"
    columns = mapping.automatic(site, site.registry.module("contacts"), table.header, "vcard")
    session_id = run.start(site, admin, "contacts", path, "phone.vcf", columns,
                           run.Options(source="vcard"), queue=False)
    assert run.run_session(site, session_id).created == 2
    [asa] = site.records.list("contacts", admin, Query(filters=[("last_name", "eq", "Berg")]))
    assert (asa["first_name"], asa["email1"], asa["phone_mobile"], asa["vcard_uid"]) == \
        ("Åsa", "asa@nordvik.example", "+46 70 123 45 67", "abc-1")
    assert asa["primary_address_city"] == "Göteborg"
    assert _names(site, admin, "accounts") == ["Nordvik AB"]


@pytest.mark.parametrize("choice, created, updated, skipped", [
    ("skip", 1, 0, 1), ("update", 1, 1, 0), ("import", 2, 0, 0)])
def test_likely_duplicates_by_the_module_rules(site, admin, tmp_path, choice, created,
                                                updated, skipped):
    jane = site.records.create("contacts", {"first_name": "Jane", "last_name": "Doe",
                                            "email1": "jane@acme.example"}, admin)
    path = _write(tmp_path, "c.csv", "First name,Last name,Email,Title\n"
                                     "Jane,Doe,JANE@acme.example,CFO\nRai,Khan,rai@k.example,\n")
    session_id, summary = _import(site, admin, "contacts", path, duplicates=choice)
    assert (summary.created, summary.updated, summary.skipped) == (created, updated, skipped)
    title = site.records.get("contacts", jane["id"], admin)["title"]
    assert title == ("CFO" if choice == "update" else None)
    if choice == "skip":
        [row] = manage.skipped(site, admin, session_id)
        assert run.reason_text(row["reason"]) == "likely a duplicate of Jane Doe"
