"""Administration → Maintenance: administrators only, every tool behind a CSRF-checked
form; the schema check finds a column dropped behind CRBM's back and the repair puts it
back; orphan cleaning deletes only old files nothing refers to; the caches' rebuild moves
the epochs every worker follows; the language check lists each pack's problems."""
from __future__ import annotations

import os
import time

import sqlalchemy as sa

from core.apps.maintenance import tools
from core.apps.maintenance.web import ACTIONS
from core.kernel.users import create_user
from core.testing import signed_in
from core.web import uploads
from tests.pack_util import install_folder

URL = "/admin/maintenance"


def run(web, action: str, **extra):
    return web.post(URL, data={"_csrf": web.csrf, "action": action, **extra})


def test_administrators_only_and_every_form_checks_its_csrf(web, site):
    page = web.get(URL)
    assert page.status_code == 200
    for action in ACTIONS:
        assert f'value="{action}"' in page.text, action
    assert 'href="/admin/maintenance"' in web.get("/admin").text
    refused = web.post(URL, data={"_csrf": "forged", "action": "caches"})
    assert refused.status_code == 403
    assert web.post(URL, data={"action": "orphans_delete"}).status_code == 403
    assert run(web, "format_the_disk").status_code == 422
    create_user(site, "clerk", "correct horse battery")
    with signed_in(site, "clerk", "correct horse battery") as clerk:
        assert clerk.get(URL).status_code == 403
        assert clerk.post(URL, data={"_csrf": clerk.csrf, "action": "caches"}).status_code == 403


def test_the_check_finds_a_dropped_column_and_the_repair_puts_it_back(web, site):
    assert "The database matches the module definitions." in run(web, "schema_check").text
    with site.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE gadgets DROP COLUMN notes"))
    checked = run(web, "schema_check")
    assert checked.status_code == 200 and "add column gadgets.notes" in checked.text
    repaired = run(web, "schema_repair")
    assert "add column gadgets.notes" in repaired.text.split("Checked again")[0]  # applied
    assert "The database matches the module definitions." in repaired.text
    assert "notes" in {c["name"] for c in sa.inspect(site.engine).get_columns("gadgets")}


def test_orphans_old_and_unreferenced_go_referenced_and_fresh_ones_stay(web, site, admin):
    store = site.folder / "files"
    photo = uploads.store(store, "photo.png", b"a picture")
    manual = uploads.store(store, "manual.txt", b"how to")
    site.records.create("gadgets", {"name": "Lamp", "photo": photo, "manual": manual}, admin)
    old = uploads.store(store, "forgotten.pdf", b"x" * 3000)
    fresh = uploads.store(store, "uploading.pdf", b"y" * 10)
    long_ago = time.time() - 2 * tools.MIN_AGE
    for key in (photo, manual, old):
        os.utime(store / key, (long_ago, long_ago))
    outside = site.folder / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the store's")
    os.utime(outside / "keep.txt", (long_ago, long_ago))
    (store / "0123456789abcdef").symlink_to(outside)  # a link out of the store: not followed

    found = run(web, "orphans_find")
    assert "2 orphaned files, 2.9 KB in all; old enough to be deleted: 1." in found.text
    assert old in found.text and fresh in found.text and photo not in found.text
    deleted = run(web, "orphans_delete")
    assert "Deleted 1 file, 2.9 KB." in deleted.text
    assert not (store / old).exists() and not (store / old).parent.exists()
    for key in (photo, manual, fresh):
        assert (store / key).is_file(), key
    assert (outside / "keep.txt").is_file()
    assert fresh in run(web, "orphans_find").text  # still an orphan, kept until it is old


def test_an_email_attachment_and_a_setting_count_as_references(site, admin):
    from plugins.emails import attachments
    store = site.folder / "files"
    email = site.records.create("emails", {"name": "Hello"}, admin)
    with site.engine.begin() as conn:
        [attached] = attachments.add(site, conn, email["id"],
                                     [attachments.File("a.txt", b"attached")])
    logo = uploads.store(store, "logo.png", b"logo")
    site.set_setting("company", {"logo": logo})
    long_ago = time.time() - 2 * tools.MIN_AGE
    for key in (attached, logo):
        os.utime(store / key, (long_ago, long_ago))
    assert tools.delete_orphans(site).deleted == 0
    assert (store / attached).is_file() and (store / logo).is_file()
    # every table of stored files the shipped plugins keep is looked at
    assert {(c.table.name, c.name) for c in tools.reference_columns(site)} >= {
        ("emails_attachments", "file_key"), ("activities_note_attachments", "file_key"),
        ("kb_article_images", "file_key"), ("library_documents", "file"), ("products", "image")}


def test_references_that_cannot_be_read_stop_the_cleaning_with_a_message(web, site):
    store = site.folder / "files"
    old = uploads.store(store, "forgotten.pdf", b"x")
    os.utime(store / old, (time.time() - 2 * tools.MIN_AGE,) * 2)
    with site.engine.begin() as conn:  # an attachments table gone: nothing can be told apart
        conn.execute(sa.text("DROP TABLE emails_attachments"))
    stopped = run(web, "orphans_delete")
    assert stopped.status_code == 200 and 'id="mt-failed"' in stopped.text
    assert "The tool stopped: " in stopped.text and (store / old).is_file()
    assert "create table emails_attachments" in run(web, "schema_check").text


def test_rebuilding_the_caches_moves_the_epochs(web, site):
    epochs = site.tables.tables["crbm_access_epoch"], site.tables.tables["crbm_metadata_epoch"]

    def read():
        with site.engine.connect() as conn:
            return [sorted(conn.execute(sa.select(t)).tuples()) for t in epochs]

    before = read()
    done = run(web, "caches")
    assert done.status_code == 200 and "The caches were rebuilt" in done.text
    after = read()
    assert after[0] != before[0] and after[1] != before[1]


def test_the_language_check_lists_the_french_packs_problems(web, site, admin):
    assert "No language pack is installed." in run(web, "languages").text
    install_folder(site, "lang_fr", admin)
    po = site.folder / "packs" / "lang_fr" / "locale" / "fr" / "LC_MESSAGES" / "crbm.po"
    po.write_text('msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=UTF-8\\n"\n\n'
                  'msgid "Accounts"\nmsgstr "Comptes"\n\n'
                  'msgid "%(value)s is not a number of days from 0 to %(max)s"\n'
                  'msgstr "%(value)s n’est pas un nombre de jours"\n',
                  encoding="utf-8")
    checked = run(web, "languages")
    assert checked.status_code == 200
    assert "Français" in checked.text and "(fr)" in checked.text
    assert "placeholders differ: &#39;%(value)s is not a number of days" in checked.text
    assert "Not translated: " in checked.text and "missing: &#39;" in checked.text
    assert "missing: &#39;Accounts&#39;" not in checked.text
