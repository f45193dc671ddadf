"""Issue 24: "Kill -9 of a worker during a backup, a restore and a job: the site stays
consistent and the interrupted operation is reported, not silently half-done" — the backup
and the restore here (the job: tests/jobs/test_workers_postgres.py).

Real ``crbm backup`` and ``crbm restore`` processes are killed with SIGKILL. Where they die
is not left to timing: with ``CRBM_TEST_PAUSE_AT=<step>`` (``backup.pause_for_tests``) the
process says "paused at <step>" and waits for a line on its standard input, and the test
kills it while it waits. The steps: a backup with one table written into its ``.partial``
(its read snapshot open); a restore with one table loaded into its new database (the load's
transaction open), with its journal written and nothing moved, and with a part of the old
site moved aside and the new one not yet in (``site.yaml`` last: the folder then holds no
``site.yaml`` at all).
"""
from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

import cli
from core.apps.backup import backup, restore, scheduled
from core.kernel.site import Site
from core.testing import SERVER_URL
from tests.apps.backup.test_backup import (
    ONCE,
    drop_databases_made_by,
    folder_files,
    table_rows,
)

ROOT = Path(__file__).resolve().parents[3]
# ``crbm`` as the suite's sites run: with the kitchen_sink test plugin (a restore refuses an
# archive made with a plugin it lacks)
LAUNCH = """
import cli
from tests.plugins.kitchen_sink import plugin as kitchen_sink
cli.main.extra_plugins = (kitchen_sink,)
cli.main()
"""
MARKER_BACKED_UP, MARKER_CHANGED = "Marker as backed up", "Marker changed after the backup"


def crbm(folder: Path, *args: str, pause: str | None = None) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != backup.PAUSE}
    env["PYTHONPATH"] = str(ROOT)
    if pause:
        env[backup.PAUSE] = pause
    return subprocess.Popen([sys.executable, "-c", LAUNCH, "--site", str(folder), *args],
                            cwd=ROOT, env=env, text=True, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until_paused(process: subprocess.Popen, step: str) -> None:
    """Read the process's standard error until it says it paused at ``step``. (A process
    that neither gets there nor ends within a minute is killed: its output is shown.)"""
    watchdog = threading.Timer(60, process.kill)
    watchdog.start()
    said = []
    try:
        while line := process.stderr.readline():
            if line.strip() == f"paused at {step}":
                return
            said.append(line)
    finally:
        watchdog.cancel()
    process.wait()
    pytest.fail(f"crbm never paused at {step} (exit {process.returncode}):\n"
                + "".join(said) + process.stdout.read())


def kill_9(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)
    assert process.returncode == -signal.SIGKILL


def finished(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, out + err
    return out


def opened_by_a_command(folder: Path, extra_plugins) -> str:
    """What the next ``crbm`` command that opens the site says (``cli.open_site``: every
    command that opens one, ``crbm serve`` and ``crbm worker`` too)."""
    cli.main.extra_plugins = tuple(extra_plugins)
    try:
        result = CliRunner().invoke(cli.main, ["--site", str(folder), "api-client", "list"])
    finally:
        cli.main.extra_plugins = ()
    assert result.exit_code == 0, result.output
    return result.output


def databases_on_the_server() -> set[str]:
    engine = sa.create_engine(SERVER_URL)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                return set(conn.exec_driver_sql("SELECT datname FROM pg_database").scalars())
            return set(conn.exec_driver_sql("SHOW DATABASES").scalars())
    finally:
        engine.dispose()


@pytest.fixture
def reopen(crbm_extra_plugins):
    opened = []

    def reopen(folder: Path) -> Site:
        opened.append(Site(folder, extra_plugins=list(crbm_extra_plugins)))
        return opened[-1]

    yield reopen
    for site in opened:
        site.close()


def some_records(site, admin) -> None:
    """A few accounts and contacts, and an uploaded file: enough to tell sites apart (the
    kills do not depend on the amount: they happen at a step, not at a time)."""
    for number in range(3):
        account = site.records.create("accounts", {"name": f"Account {number}"}, admin)
        site.records.create("contacts", {"first_name": "Ann", "last_name": f"Lee {number}",
                                         "account_id": account["id"]}, admin)
    (site.folder / "files" / "upload.bin").write_bytes(os.urandom(4096))


def marker(site) -> str:
    accounts = site.tables.tables["accounts"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(accounts.c.name).where(
            accounts.c.name.like("Marker %"))).scalar_one()


# -- a backup killed ----------------------------------------------------------------------------

def test_a_killed_backup_leaves_no_archive_and_the_next_one_removes_and_reports_it(
        site, admin, web, reopen):
    some_records(site, admin)
    folder = backup.default_folder(site)
    before = table_rows(site)

    running = crbm(site.folder, "backup", pause="backup-dump")
    wait_until_paused(running, "backup-dump")
    [partial] = folder.glob("*.partial")
    # while it runs: shown as being written, not as interrupted; another backup leaves it be
    page = web.get("/admin/backups").text
    assert 'id="bk-running"' in page and partial.name in page and "bk-interrupted" not in page
    beside = backup.make_backup(site, folder, files="none")
    assert partial.exists()
    assert json.loads(zipfile.ZipFile(beside).read("manifest.json"))["interrupted_before"] == []
    beside.unlink()

    kill_9(running)
    assert partial.exists() and backup.backups_in(folder) == []  # nothing looks finished
    # the database is as it was, and the site opens and works
    assert table_rows(site) == before
    again = reopen(site.folder)
    assert table_rows(again) == before and again.records.count("accounts", admin) == 3
    # reported: the Backups page names it, with when it was last written
    page = web.get("/admin/backups").text
    assert 'id="bk-interrupted"' in page and partial.name in page
    assert "The next backup removes them" in page and "bk-running" not in page

    out = finished(crbm(site.folder, "backup", "--files", "none"))
    assert f"Note: Removed {partial.name}, left by an interrupted backup" in out
    [made] = backup.backups_in(folder)
    manifest = json.loads(zipfile.ZipFile(made).read("manifest.json"))
    assert manifest["interrupted_before"] == [partial.name]
    assert list(folder.glob("*.partial")) == []
    assert "bk-interrupted" not in web.get("/admin/backups").text


# -- a restore killed ---------------------------------------------------------------------------

@pytest.fixture
def backed_up(site, admin, tmp_path):
    """A site backed up — a marker account in it —, then changed: the marker renamed, a
    file uploaded. Returns (the archive, the site as backed up, the site now), a site
    being (rows, files, site.yaml's bytes). The site is stopped, as for a restore."""
    some_records(site, admin)
    account = site.records.create("accounts", {"name": MARKER_BACKED_UP}, admin)
    path = backup.make_backup(site, tmp_path / "backups")
    config = site.folder / "site.yaml"
    as_backed_up = (table_rows(site), folder_files(site.folder), config.read_bytes())
    site.records.update("accounts", account["id"], {"name": MARKER_CHANGED}, admin)
    (site.folder / "files" / "after-the-backup.txt").write_text("not in the backup")
    now = (table_rows(site), folder_files(site.folder), config.read_bytes())
    site.close()
    return path, as_backed_up, now


def test_a_restore_killed_while_loading_leaves_the_site_as_it_was(
        backed_up, site, reopen, crbm_extra_plugins):
    path, _, (rows, files, config) = backed_up
    running = crbm(site.folder, "restore", str(path), "--replace", pause="restore-load")
    wait_until_paused(running, "restore-load")
    [staging] = site.folder.glob(f"{restore.STAGING}*")
    # while it runs (it holds the lock): its staging is its own, a second restore refused
    assert restore.finish_interrupted(site.folder) == [] and staging.is_dir()
    with pytest.raises(restore.RestoreError, match="another restore into .* is running"):
        restore.restore(path, site.folder, replace=True, extra_plugins=crbm_extra_plugins)
    kill_9(running)

    made = staging / restore.LEFTOVER  # the server database it was loading, if one
    made = sa.make_url(json.loads(made.read_text())["url"]).database if made.exists() else None
    assert (made is not None) == (SERVER_URL is not None)
    assert not (site.folder / restore.JOURNAL).exists()
    # nothing of the site was touched, even before anything cleans up
    assert (site.folder / "site.yaml").read_bytes() == config
    old = reopen(site.folder)
    assert (table_rows(old), folder_files(site.folder), marker(old)) == \
        (rows, files, MARKER_CHANGED)
    old.close()

    said = opened_by_a_command(site.folder, crbm_extra_plugins)
    dropped = f" and the database it had made, {made}" if made else ""
    assert (f"Note: A restore was interrupted before it switched the site in: the site is "
            f"as it was; removed {staging.name}{dropped}") in said
    assert list(site.folder.glob(".restore-*")) == []
    if made:
        assert made not in databases_on_the_server()
    assert "Note:" not in opened_by_a_command(site.folder, crbm_extra_plugins)  # said once
    old = reopen(site.folder)
    assert (table_rows(old), folder_files(site.folder), marker(old)) == \
        (rows, files, MARKER_CHANGED)
    assert (site.folder / "site.yaml").read_bytes() == config


# (on a server database the moves are the same file moves: one of them there is enough)
@pytest.mark.parametrize("step", [pytest.param("restore-switch", marks=ONCE),
                                  pytest.param("restore-aside:files", marks=ONCE),
                                  "restore-aside:site.yaml"])
def test_a_restore_killed_while_switching_is_completed_when_the_site_is_next_opened(
        backed_up, site, reopen, crbm_extra_plugins, step):
    path, (rows, files, _), (_, _, old_config) = backed_up
    running = crbm(site.folder, "restore", str(path), "--replace", pause=step)
    try:
        wait_until_paused(running, step)
        kill_9(running)
        assert (site.folder / restore.JOURNAL).exists()
        if step == "restore-aside:site.yaml":  # the old site.yaml aside, the new not in
            assert not (site.folder / "site.yaml").exists()

        said = opened_by_a_command(site.folder, crbm_extra_plugins)
        [previous] = site.folder.glob(f"{restore.PREVIOUS}*")
        assert ("Note: A restore was interrupted while it switched the site in: completed "
                f"the restore from {restore.JOURNAL}, the site is the restored one; the "
                f"previous site's files are kept in {previous.name}") in said
        # wholly the restored site: its rows, its files, its marker
        restored = reopen(site.folder)
        assert (table_rows(restored), folder_files(site.folder), marker(restored)) == \
            (rows, files, MARKER_BACKED_UP)
        assert [p.name for p in site.folder.glob(".restore-*")] == []
        assert not (site.folder / restore.JOURNAL).exists()
        # and wholly the old one kept aside
        assert (previous / "site.yaml").read_bytes() == old_config
        assert (previous / "files" / "after-the-backup.txt").read_text() == "not in the backup"
        assert "Note:" not in opened_by_a_command(site.folder, crbm_extra_plugins)
    finally:
        if running.poll() is None:
            running.kill()
        if (site.folder / "site.yaml").exists():
            drop_databases_made_by(site.folder)


@ONCE
def test_a_database_left_by_a_killed_restore_that_cannot_be_dropped_is_said_and_kept(site):
    staging = site.folder / f"{restore.STAGING}20260101000000"
    staging.mkdir()
    unreachable = "postgresql+psycopg://crbm@127.0.0.1:1/crbm_r20260101000000"
    (staging / restore.LEFTOVER).write_text(json.dumps({"url": unreachable}))
    [said] = restore.finish_interrupted(site.folder)
    assert said.startswith("A restore was interrupted before it switched the site in: the "
                           "site is as it was, but the database it had made, "
                           "crbm_r20260101000000, could not be dropped (")
    assert said.endswith(f"); {staging.name} is kept to try again")
    assert (staging / restore.LEFTOVER).exists()  # so the next time tries again


@ONCE
def test_the_scheduled_backup_says_it_removed_a_killed_backups_leftover(site):
    folder = backup.default_folder(site)
    folder.mkdir()
    left = folder / f"{backup.PREFIX}20260101-020000-000000.zip.partial"
    left.write_bytes(b"PK cut short")  # a partial no process holds: a killed backup's
    said = scheduled.run_backup(site, dt.datetime(2026, 1, 2, 2, 0, tzinfo=dt.UTC))
    assert f"Removed {left.name}, left by an interrupted backup" in said  # Scheduler page
    assert not left.exists()
