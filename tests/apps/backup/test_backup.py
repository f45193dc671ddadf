"""Issue 24's backup and restore: a demo site backed up, restored into a new site and in
place of one, on every database and across them; what a restore refuses (a tampered,
newer, encrypted or foreign archive) and that a refused or interrupted one leaves the site
as it was."""
from __future__ import annotations

import hashlib
import io
import json
import os
import random
import threading
import uuid
import zipfile
from contextlib import contextmanager

import httpx
import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner

import cli
from core import __version__
from core.apps.backup import archive as archives
from core.apps.backup import backup, restore, snapshot
from core.apps.search import fulltext
from core.kernel.records import Query
from core.kernel.site import Site, create_site
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, SERVER_URL, api_client, bearer, signed_in
from tests.browser import live_server
from tests.pack_util import SHIPPED, install_folder

# -- what "the same site" means -------------------------------------------------------------

def table_rows(site) -> dict[str, list[bytes]]:
    """Each table's rows as the backup writes them, sorted (a server's collation may
    order text keys differently from SQLite's)."""
    rows = {}
    with snapshot.read_snapshot(site.engine) as conn:
        reflected = sa.MetaData()
        others = [sa.Table(n, reflected, autoload_with=conn) for n in backup.other_tables(site)]
        for table in [*backup.backed_up_tables(site), *others]:
            out = io.BytesIO()
            snapshot.dump_table(conn, table, out)
            header, *lines = out.getvalue().splitlines()
            rows[table.name] = [header, *sorted(lines)]
    return rows


def folder_files(folder) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for sub in ("files", "packs") for p in sorted((folder / sub).rglob("*"))
            if p.is_file()}


@contextmanager
def spare_database():
    """An empty database of its own on the test server (None on SQLite), dropped after."""
    if not SERVER_URL:
        yield None
        return
    url = sa.make_url(SERVER_URL)
    name = f"crbm_restore_{uuid.uuid4().hex[:10]}"
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        with engine.connect() as conn:
            force = " WITH (FORCE)" if url.get_backend_name() == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")
        engine.dispose()


def drop_databases_made_by(site_folder) -> None:
    """A restore in place of a server site makes a database beside it: dropped here."""
    url = sa.make_url(yaml.safe_load((site_folder / "site.yaml").read_text())["database_url"])
    if url.get_backend_name() == "sqlite":
        return
    engine = sa.create_engine(sa.make_url(SERVER_URL), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        force = " WITH (FORCE)" if url.get_backend_name() == "postgresql" else ""
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {url.database}{force}")
    engine.dispose()


# What a restore refuses, encryption, retention and the commands do not depend on the
# database (the archive is checked before any is touched): on SQLite only, for CI's time.
ONCE = pytest.mark.skipif(SERVER_URL is not None, reason="database-independent: on SQLite")
EXTRA: list = []  # the suite's extra plugins, which its sites run with (make_site)


@pytest.fixture(autouse=True)
def _the_suites_plugins(crbm_extra_plugins):
    EXTRA[:] = crbm_extra_plugins


def reopen(folder) -> Site:
    return Site(folder, extra_plugins=EXTRA)


def restore_to(*args, **kwargs) -> restore.Restored:
    return restore.restore(*args, extra_plugins=EXTRA, **kwargs)


@pytest.fixture
def demo(site, admin):
    """A demo site with every module's records, uploaded files (documents) and a signed
    API token issued before the backup."""
    cli.load_demo(site, admin, 2, seed=2)
    assert folder_files(site.folder), "the demo uploads documents' files"
    site.token = bearer(site, admin)
    return site


# -- round trips ------------------------------------------------------------------------------

def test_a_backup_restored_into_a_new_site_is_the_same_site(demo, admin, tmp_path):
    path = backup.make_backup(demo, tmp_path / "backups")
    manifest = json.loads(zipfile.ZipFile(path).read("manifest.json"))
    assert manifest["crbm_version"] == __version__ and manifest["files"] == "all"
    assert set(manifest["plugins"]) == {p.name for p in demo.plugins}
    with spare_database() as target:
        done = restore_to(path, tmp_path / "restored", database_url=target)
        restored = reopen(tmp_path / "restored")
        try:
            assert done.tables == len(manifest["tables"]) and not done.left_out
            assert table_rows(restored) == table_rows(demo)
            assert folder_files(restored.folder) == folder_files(demo.folder)
            assert restored.check_schema().in_sync
            # full-text search is built again from the restored rows
            [case] = demo.records.list("cases", admin, Query(limit=1))
            hits = fulltext.search(restored, admin, case["name"], modules=["cases"])
            assert case["id"] in [h.id for h in hits.hits]
            # the token signed before the backup still verifies; the admin signs in
            listed = api_client(restored).get("/api/v1/accounts", headers=demo.token)
            assert listed.status_code == 200 and listed.json()["data"]
            with signed_in(restored, "admin", ADMIN_PASSWORD) as web:
                assert web.get("/m/accounts").status_code == 200
        finally:
            restored.close()


def test_restoring_in_place_keeps_the_previous_site_aside(demo, admin, tmp_path, caplog):
    path = backup.make_backup(demo, tmp_path / "backups", files="config")
    before = table_rows(demo)
    [account] = demo.records.list("accounts", admin, Query(limit=1))
    demo.records.update("accounts", account["id"], {"name": "Changed after the backup"}, admin)
    (demo.folder / "files" / "after-the-backup.txt").write_text("kept: files are not in scope")
    with pytest.raises(restore.RestoreError, match="--replace"):
        restore_to(path, demo.folder)
    demo.close()
    done = restore_to(path, demo.folder, replace=True)
    try:
        # a restore that went through says nothing of interrupted ones
        assert not done.cleaned and "interrupted" not in caplog.text
        restored = reopen(demo.folder)
        assert table_rows(restored) == before  # the change after the backup is gone
        # scope "config": the uploaded files are the site's own, not replaced
        assert (demo.folder / "files" / "after-the-backup.txt").exists()
        assert done.previous is not None and (done.previous / "site.yaml").exists()
        # the previous database is kept, named (the test site's is outside its folder)
        assert done.previous_database == sa.make_url(demo.database_url).render_as_string()
        assert restored.database_url != demo.database_url
        restored.close()
    finally:
        drop_databases_made_by(demo.folder)


@pytest.mark.skipif(SERVER_URL is not None, reason="Studio fields: SQLite (a server database "
                    "is made again after them); the round trips above run everywhere")
def test_studio_fields_packs_and_disabled_plugins_come_back(site, admin, tmp_path):
    site.studio.save_field(admin, "accounts", "loyalty_tier",
                           {"type": "dropdown", "options": "account_type_dom"}, new=True)
    for pack in ("lang_fr", "theme_nocturne", "holidays_fi"):
        install_folder(site, SHIPPED / pack, admin)
    created = site.records.create("accounts", {"name": "Tiered", "loyalty_tier": "partner"},
                                  admin)
    site.disable_plugin("knowledge_base", with_dependents=True)
    path = backup.make_backup(site, tmp_path / "backups", files="config")
    restore_to(path, tmp_path / "restored")
    restored = reopen(tmp_path / "restored")
    try:
        assert {p.name for p in restored.enabled_packs} == \
            {"lang_fr", "theme_nocturne", "holidays_fi"} == {p.name for p in site.enabled_packs}
        assert folder_files(restored.folder) == folder_files(site.folder)  # the packs' files
        assert "knowledge_base" in restored.disabled_plugins
        assert "kb_articles" in backup.other_tables(restored)  # its data kept, as it was
        assert restored.records.get("accounts", created["id"], admin)["loyalty_tier"] == "partner"
        assert table_rows(restored) == table_rows(site)
    finally:
        restored.close()


@pytest.mark.skipif(SERVER_URL is None, reason="needs a database server")
def test_a_sqlite_backup_restored_into_the_server_and_back(tmp_path):
    old = reopen(create_site(tmp_path / "old", None))
    owner = create_user(old, "admin", ADMIN_PASSWORD, is_admin=True) if old.sync_schema() \
        or True else None
    cli.load_demo(old, owner, 2, seed=4)
    with spare_database() as target:
        restore_to(backup.make_backup(old, tmp_path / "b1"), tmp_path / "server",
                        database_url=target)
        server = reopen(tmp_path / "server")
        assert table_rows(server) == table_rows(old)
        path = backup.make_backup(server, tmp_path / "b2")
        server.close()
    restore_to(path, tmp_path / "back")  # into SQLite again
    back = reopen(tmp_path / "back")
    try:
        assert table_rows(back) == table_rows(old)
    finally:
        back.close()
        old.close()


# -- what a restore refuses -----------------------------------------------------------------

@pytest.fixture
def made(site, admin, tmp_path):
    """A small site's backup."""
    site.records.create("accounts", {"name": "Acme"}, admin)
    return backup.make_backup(site, tmp_path / "backups")


def rewritten(path, tmp_path, change):
    """A copy of the archive with ``change(members: dict)`` applied to its members."""
    with zipfile.ZipFile(path) as source:
        members = {info.filename: source.read(info) for info in source.infolist()}
    change(members)
    copy = tmp_path / "changed.zip"
    with zipfile.ZipFile(copy, "w") as out:
        for name, data in members.items():
            out.writestr(name, data)
    return copy


def manifest_changed(**changes):
    def change(members):
        members["manifest.json"] = json.dumps(
            {**json.loads(members["manifest.json"]), **changes}).encode()
    return change


@ONCE
@pytest.mark.parametrize(("change", "message"), [
    (lambda m: m.update({"database/accounts.jsonl": m["database/accounts.jsonl"] + b"[]\n"}),
     "database/accounts.jsonl: checksum mismatch"),
    (lambda m: m.pop("site/site.yaml"), "site/site.yaml: listed in the manifest but missing"),
    (lambda m: m.update({"site/extra.sh": b"echo"}), "site/extra.sh: in the archive but not"),
    (lambda m: m.pop("manifest.json"), "not a CRBM backup"),
    (manifest_changed(crbm_version="99.0"), "made by CRBM 99.0, newer than this CRBM"),
    (manifest_changed(format=7), "format 7 is not one this CRBM reads"),
    (manifest_changed(plugins={"accounts": "1", "tarot_readings": "2"}),
     "plugins this installation lacks: tarot_readings"),
])
def test_a_bad_archive_is_refused_naming_what_is_wrong(made, tmp_path, change, message):
    with pytest.raises((restore.RestoreError, archives.ArchiveError), match=message):
        restore_to(rewritten(made, tmp_path, change), tmp_path / "target")
    assert not any((tmp_path / "target").iterdir())  # nothing made


@ONCE
def test_a_refused_target_is_left_as_it_was(made, site, tmp_path):
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(restore.RestoreError, match="not empty and holds no site"):
        restore_to(made, tmp_path / "busy")
    assert [p.name for p in (tmp_path / "busy").iterdir()] == ["notes.txt"]
    with pytest.raises(restore.RestoreError, match="is not empty: restore into an empty"):
        restore_to(made, tmp_path / "new", database_url=site.database_url)


def test_a_load_that_fails_leaves_the_site_as_it_was(made, site, admin, tmp_path, monkeypatch):
    before = table_rows(site)
    real = snapshot.load_table

    def failing(conn, table, lines):
        if table.name == "accounts":
            raise snapshot.SnapshotError("table accounts, line 2: a bad value")
        return real(conn, table, lines)

    monkeypatch.setattr(snapshot, "load_table", failing)
    site.close()
    with pytest.raises(restore.RestoreError, match="table accounts, line 2"):
        restore_to(made, site.folder, replace=True)
    again = reopen(site.folder)
    try:
        assert table_rows(again) == before
        assert sorted(p.name for p in site.folder.iterdir() if p.name.startswith(".")) == []
    finally:
        again.close()


def test_a_restore_killed_while_switching_is_completed_by_the_next_command(
        made, site, tmp_path, monkeypatch):
    """The journal is written, then the process dies after moving the database aside
    but before moving the new one in: the next crbm command finishes the switch."""
    site.close()
    real, moves = os.replace, []

    def dying(source, target):
        moves.append(source)
        if len(moves) == 4:
            raise KeyboardInterrupt  # as good as a kill for what is on disk
        return real(source, target)

    monkeypatch.setattr(restore.os, "replace", dying)
    with pytest.raises(KeyboardInterrupt):
        restore_to(made, site.folder, replace=True)
    monkeypatch.setattr(restore.os, "replace", real)
    assert (site.folder / restore.JOURNAL).exists()
    result = CliRunner().invoke(cli.main, ["--site", str(site.folder), "db", "check"])
    assert "completed the restore" in result.output, result.output
    assert not (site.folder / restore.JOURNAL).exists()
    restored = reopen(site.folder)
    try:
        assert restored.records.count("accounts", restored_admin(restored)) == 1
    finally:
        restored.close()
        drop_databases_made_by(site.folder)


def restored_admin(site):
    from core.kernel.users import first_admin
    return first_admin(site)


# -- encryption and retention -----------------------------------------------------------------

@ONCE
def test_an_encrypted_backup_opens_only_with_its_private_key(site, admin, tmp_path):
    import pyrage
    key = pyrage.x25519.Identity.generate()
    (tmp_path / "key.txt").write_text(f"# created: now\n{key}\n")
    (tmp_path / "other.txt").write_text(f"{pyrage.x25519.Identity.generate()}\n")
    site.records.create("accounts", {"name": "Secretive Ltd"}, admin)
    path = backup.make_backup(site, tmp_path / "backups", recipient=str(key.to_public()))
    assert path.name.endswith(".zip.age") and b"Secretive" not in path.read_bytes()
    with pytest.raises(restore.RestoreError, match="is encrypted: give the private key"):
        restore_to(path, tmp_path / "a")
    with pytest.raises(restore.RestoreError, match="cannot be decrypted with other.txt"):
        restore_to(path, tmp_path / "b", identity=tmp_path / "other.txt")
    with spare_database() as target:
        restore_to(path, tmp_path / "c", identity=tmp_path / "key.txt",
                        database_url=target)
        restored = reopen(tmp_path / "c")
        assert [r["name"] for r in restored.records.list("accounts", admin, Query())] == \
            ["Secretive Ltd"]
        restored.close()
    with pytest.raises(backup.BackupError, match="not an age public key"):
        backup.make_backup(site, tmp_path / "backups", recipient="age1nonsense")


@ONCE
def test_retention_keeps_the_newest_and_a_killed_backup_leaves_no_archive(site, tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    (folder / f"{backup.PREFIX}20260101-000000-000000.zip.partial").write_bytes(b"cut")
    made = [backup.make_backup(site, folder, files="none", keep=2)]
    manifest = json.loads(zipfile.ZipFile(made[0]).read("manifest.json"))
    assert manifest["interrupted_before"] == [f"{backup.PREFIX}20260101-000000-000000.zip.partial"]
    made += [backup.make_backup(site, folder, files="none", keep=2) for _ in range(2)]
    assert backup.backups_in(folder) == made[:0:-1]  # the two newest, newest first


@ONCE
def test_the_commands(site, admin, tmp_path):
    site.records.create("accounts", {"name": "Acme"}, admin)
    site.close()
    runner = CliRunner()
    made = runner.invoke(cli.main, ["--site", str(site.folder), "backup", "--to",
                                    str(tmp_path / "b"), "--files", "none"])
    assert made.exit_code == 0, made.output
    [path] = backup.backups_in(tmp_path / "b")
    with spare_database() as target:
        args = ["--database-url", target] if target else []
        done = runner.invoke(cli.main, ["--site", str(tmp_path / "new"), "restore", str(path),
                                        *args])
        assert done.exit_code == 0, done.output
        assert "Restored" in done.output
    refused = runner.invoke(cli.main, ["--site", str(site.folder), "restore", str(path)])
    assert refused.exit_code == 1 and "--replace" in refused.output
    assert "Traceback" not in refused.output


# -- consistency while clients write -------------------------------------------------------------

def test_a_backup_taken_while_clients_write_holds_whole_transactions(site, admin, tmp_path):
    """20 API clients keep creating invoices with lines (each one transaction) over real HTTP
    before, during and after the backup: in the restored site every invoice's amount is the
    sum of its lines, and no line is without its invoice."""
    account = site.records.create("accounts", {"name": "Busy Buyer"}, admin)
    stop, started, errors, made = threading.Event(), threading.Event(), [], []
    auth = bearer(site, admin)

    def write(seed, base):
        rng = random.Random(seed)
        with httpx.Client(base_url=base, headers=auth, timeout=60) as api:
            while not stop.is_set():
                lines = [{"kind": "service", "name": f"Work {n}",
                          "quantity": rng.randint(1, 9), "unit_price": rng.randint(1, 500)}
                         for n in range(rng.randint(1, 4))]
                reply = api.post("/api/v1/invoices", json={
                    "name": "Invoice", "account_id": account["id"], "amount_currency": "USD",
                    "line_items": [{"lines": lines}]})
                if reply.status_code != 201:
                    errors.append(f"{reply.status_code}: {reply.text[:300]}")
                    return
                made.append(reply.json()["id"])
                if len(made) >= 20:
                    started.set()

    with live_server(site) as base:
        writers = [threading.Thread(target=write, args=(n, base)) for n in range(20)]
        for thread in writers:
            thread.start()
        try:
            assert started.wait(60), errors
            before = len(made)
            path = backup.make_backup(site, tmp_path / "backups", files="none")
            during = len(made) - before
        finally:
            stop.set()
            for thread in writers:
                thread.join()
    assert not errors and during > 0, (errors, during)
    with spare_database() as target:
        restore_to(path, tmp_path / "restored", database_url=target)
        restored = reopen(tmp_path / "restored")
        try:
            invoices = restored.tables.tables["invoices"]
            lines = restored.tables.tables["invoices_lines"]
            with restored.engine.connect() as conn:
                summed = dict(conn.execute(
                    sa.select(lines.c.record_id, sa.func.sum(lines.c.net_price))
                    .group_by(lines.c.record_id)).all())
                amounts = dict(conn.execute(sa.select(invoices.c.id, invoices.c.amount)).all())
            assert len(amounts) >= before
            assert set(summed) == set(amounts)  # no invoice without lines, nor lines alone
            assert all(amounts[i] == summed[i] for i in amounts)
        finally:
            restored.close()
