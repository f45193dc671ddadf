"""Notes with attachments (plugins/activities/attachments.py) as users meet them: a file
dropped on an account's History panel becomes a note about the account with the file
attached; a note takes several files; a file over the site's limit (50 MB against 10) or a
program is refused with a message naming it and nothing is stored; a name like
``../../etc/passwd`` stays inside the file store; and only a user who may see the note gets
the file's bytes."""
import io

import pytest
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import signed_in
from plugins.activities import attachments

PASSWORD = "correct horse battery"
PDF = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"


@pytest.fixture
def acme(site, admin):
    return site.records.create("accounts", {"name": "Acme Corporation"}, admin)


def stored_files(site) -> list:
    folder = site.folder / "files"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def rows(site) -> list:
    table = site.tables.tables[attachments.TABLE]
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table)).mappings())


def drop(web, account, *files):
    return web.post(f"/m/accounts/{account['id']}/drop-note",
                    data={"_csrf": web.csrf}, headers={"Accept": "application/json"},
                    files=[("file", f) for f in files])


def test_a_dropped_file_becomes_a_note_about_the_record(site, admin, web, acme):
    page = web.get(f"/m/accounts/{acme['id']}").text
    assert f'data-drop="/m/accounts/{acme["id"]}/drop-note"' in page  # the History panel
    response = drop(web, acme, ("Signed contract.pdf", PDF, "image/png"))  # the type lies
    assert response.status_code == 200, response.text
    note = site.records.get("notes", response.json()["note"], admin)
    assert note["name"] == "Signed contract.pdf" and note["parent_id"] == acme["id"]
    assert note["parent_type"] == "accounts"
    [row] = rows(site)
    assert row["content_type"] == "application/pdf" and row["size"] == len(PDF)  # sniffed
    # in the account's History, and the note's page lists it for download
    history = web.get(f"/m/accounts/{acme['id']}/panel/history?fragment=1").text
    assert "Signed contract.pdf" in history
    note_page = web.get(f"/m/notes/{note['id']}").text
    link = f"/m/notes/{note['id']}/attachments/{row['id']}"
    assert link in note_page and "Attachments" in note_page
    assert f'<a href="/m/accounts/{acme["id"]}">Acme Corporation</a>' in note_page  # Related to
    got = web.get(link)
    assert got.status_code == 200 and got.content == PDF
    assert got.headers["content-type"] == "application/octet-stream"  # a download, never run
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "Signed%20contract.pdf" in got.headers["content-disposition"]


def test_a_note_takes_several_files(site, admin, web, acme):
    response = drop(web, acme, ("a.txt", b"first", "text/plain"),
                    ("b.png", b"\x89PNG\r\n\x1a\n" + b"x" * 20, "image/png"))
    note_id = response.json()["note"]
    more = web.post(f"/m/notes/{note_id}/attachments", data={"_csrf": web.csrf},
                    files=[("file", ("c.txt", b"third", "text/plain"))],
                    follow_redirects=False)
    assert more.status_code == 303
    names = [r["name"] for r in rows(site)]
    assert names == ["a.txt", "b.png", "c.txt"] and len(stored_files(site)) == 3
    page = web.get(f"/m/notes/{note_id}").text
    assert all(n in page for n in names)


def test_over_the_limit_or_a_program_is_refused_and_nothing_is_stored(site, admin, web,
                                                                       acme):
    site.config["activities"] = {"max_attachment_mb": 10}
    big = io.BytesIO(b"\0" * (50 * 2**20))
    response = drop(web, acme, ("ok.txt", b"fine", "text/plain"), ("video.mov", big, "video/mp4"))
    assert response.status_code == 400
    assert "video.mov is larger than 10 MB" in response.json()["error"]
    program = drop(web, acme, ("invoice.pdf", b"MZ\x90\x00" + b"\0" * 100, "application/pdf"))
    assert program.status_code == 400 and "invoice.pdf is a program" in program.json()["error"]
    assert drop(web, acme).status_code in (400, 422)  # no file at all
    assert site.records.count("notes", admin) == 0 and rows(site) == [] and \
        stored_files(site) == []
    # the limit is the site's: a smaller one refuses a smaller file
    site.config["activities"] = {"max_attachment_mb": 0.001}
    assert drop(web, acme, ("two-kb.txt", b"x" * 2048, "text/plain")).status_code == 400


def test_a_hostile_name_is_stored_inside_the_file_store(site, admin, web, acme):
    response = drop(web, acme, ("../../etc/passwd", b"root:x:0:0", "text/plain"),
                    ("..\\..\\boot.ini", b"[boot]", "text/plain"))
    assert response.status_code == 200, response.text
    store = (site.folder / "files").resolve()
    for path in stored_files(site):
        assert store in path.resolve().parents
    assert [r["name"] for r in rows(site)] == ["passwd", "boot.ini"]
    assert all(".." not in r["file_key"] for r in rows(site))
    assert not (site.folder / "etc").exists() and not (site.folder.parent / "etc").exists()


def test_only_a_reader_of_the_note_gets_the_file(site, admin, web, acme):
    response = drop(web, acme, ("salaries.txt", b"secret numbers", "text/plain"))
    note_id = response.json()["note"]
    [row] = rows(site)
    url = f"/m/notes/{note_id}/attachments/{row['id']}"
    # Tess may see notes of her team only; this one is not
    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team notes")
    rights = ("view", "list", "edit", "delete", "export", "report")
    aa.set_role_rules(site, role, {"notes": ("enabled", {a: "team" for a in rights})})
    aa.set_user_roles(site, tess.id, [role])
    mine = site.records.create("notes", {"name": "East note"}, SYSTEM_USER, teams=[east])
    hidden = site.records.create("accounts", {"name": "Hidden"}, SYSTEM_USER)
    web.post(f"/m/accounts/{hidden['id']}/deny", data={"_csrf": web.csrf, "who_user": tess.id})
    with signed_in(site, "tess", PASSWORD) as other:
        denied = other.get(url)
        assert denied.status_code in (403, 404) and b"secret numbers" not in denied.content
        # nor through her own note's address, nor by adding to the note she may not see
        assert other.get(f"/m/notes/{mine['id']}/attachments/{row['id']}").status_code == 404
        added = other.post(f"/m/notes/{note_id}/attachments", data={"_csrf": other.csrf},
                           files=[("file", ("x.txt", b"x", "text/plain"))])
        assert added.status_code in (403, 404)
        # nor drop a file on an account that is not hers to see
        assert other.get(f"/m/accounts/{hidden['id']}").status_code == 404
        dropped = other.post(f"/m/accounts/{hidden['id']}/drop-note",
                             data={"_csrf": other.csrf},
                             files=[("file", ("x.txt", b"x", "text/plain"))])
        assert dropped.status_code in (403, 404)
    assert len(rows(site)) == 1 and len(stored_files(site)) == 1
    assert web.get(url).content == b"secret numbers"  # the admin still may
