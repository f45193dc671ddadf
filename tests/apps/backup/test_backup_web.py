"""Administration → Backups and the Scheduler's "Back up the site" task: settings saved
with their secrets sealed, bad values refused at their fields, "Back up now", downloads for
administrators only; a scheduled run makes one archive per due time however often it is
retried, and a failed one tells the administrators."""
from __future__ import annotations

import datetime as dt
import zipfile

import pyrage
import pytest

from core.apps.backup import backup, scheduled
from core.jobs import scheduler
from core.kernel.users import create_user
from core.testing import signed_in

DUE = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)


def form(web, **values) -> dict:
    return {"_csrf": web.csrf, "action": "save", "folder": "", "files": "all", "keep": "5",
            "recipient": "", "kind": "", "keep_remote": "5", **values}


def test_the_settings_are_saved_and_bad_ones_refused_at_their_fields(web, site, tmp_path):
    page = web.get("/admin/backups")
    assert page.status_code == 200 and "Back up now" in page.text
    refused = web.post("/admin/backups", data=form(web, keep="0", files="most",
                                                   recipient="not-a-key"))
    assert refused.status_code == 422
    for field in ("keep", "files", "recipient"):
        assert f'id="bk-{field}-error"' in refused.text, field
    assert site.settings.get("backup") is None  # nothing saved
    key = pyrage.x25519.Identity.generate().to_public()
    saved = web.post("/admin/backups", data=form(
        web, folder=str(tmp_path / "bk"), files="none", keep="2", recipient=str(key)))
    assert saved.status_code == 200 and "were saved" in saved.text
    settings = scheduled.settings_of(site)
    assert (settings.folder, settings.files, settings.keep, settings.recipient) == \
        (tmp_path / "bk", "none", 2, str(key))


def test_a_remote_missing_a_setting_is_refused_and_its_secret_stored_sealed(web, site):
    refused = web.post("/admin/backups", data=form(web, kind="s3", bucket="b"))
    assert refused.status_code == 422 and 'id="bk-remote-error"' in refused.text
    saved = web.post("/admin/backups", data=form(
        web, kind="s3", endpoint_url="http://127.0.0.1:9", bucket="crm", access_key="AK",
        secret_key="very-secret-value"))
    assert saved.status_code == 200, saved.text
    stored = site.settings["backup"]["remote"]
    assert stored["secret_key"] != "very-secret-value" and "very-secret" not in saved.text
    # a blank secret field keeps the stored one
    web.post("/admin/backups", data=form(web, kind="s3", endpoint_url="http://127.0.0.1:9",
                                         bucket="crm2", access_key="AK"))
    kept = site.settings["backup"]["remote"]
    assert kept["bucket"] == "crm2" and kept["secret_key"] == stored["secret_key"]


def test_back_up_now_and_the_download_for_administrators_only(web, site, tmp_path):
    web.post("/admin/backups", data=form(web, folder=str(tmp_path / "bk"), files="none"))
    started = web.post("/admin/backups", data={"_csrf": web.csrf, "action": "now"})
    assert "A backup was started" in started.text
    scheduler.run_task(site, scheduled.TASK, DUE)  # what the queued job does
    [made] = backup.backups_in(tmp_path / "bk")
    assert made.name in web.get("/admin/backups").text
    got = web.get(f"/admin/backups/{made.name}")
    assert got.status_code == 200 and zipfile.ZipFile(made).testzip() is None
    assert web.get("/admin/backups/..%2Fsite.yaml").status_code == 404
    create_user(site, "clerk", "correct horse battery")
    with signed_in(site, "clerk") as clerk:
        assert clerk.get(f"/admin/backups/{made.name}").status_code == 403
        assert clerk.get("/admin/backups").status_code == 403


def test_a_retried_scheduled_run_makes_one_backup(site, tmp_path):
    site.set_setting("backup", {"folder": str(tmp_path / "bk"), "files": "none", "keep": 3})
    first = scheduled.run_backup(site, DUE)
    second = scheduled.run_backup(site, DUE)  # a redelivered job
    assert first == second and len(backup.backups_in(tmp_path / "bk")) == 1
    scheduled.run_backup(site, DUE + dt.timedelta(days=1))
    assert len(backup.backups_in(tmp_path / "bk")) == 2


def test_a_failed_run_tells_the_administrators_once(site, admin, smtp_inbox, tmp_path):
    create_user(site, "boss", "correct horse battery", is_admin=True, email="boss@example.com")
    (tmp_path / "a-file").write_text("not a folder")
    site.set_setting("backup", {"folder": str(tmp_path / "a-file"), "files": "none"})
    for _ in range(2):  # the queue's retry fails again
        with pytest.raises(OSError):
            scheduled.run_backup(site, DUE)
    from core.apps.notifications import inbox
    [note] = inbox.page(site, admin).items
    assert "The backup of 2026-12-07 02:00 UTC failed" in note.message
    [mail] = smtp_inbox.messages
    assert "boss@example.com" in mail["To"] and "the backup failed" in mail["Subject"]


def test_a_scheduled_run_copies_to_the_remote_and_keeps_n_there(web, site, tmp_path):
    """The page's settings (secret sealed) drive the task: SFTP to a real sshd, through
    the Scheduler's run, keeping exactly ``keep_remote`` there."""
    from core.apps.backup import remote
    from tests.apps.backup.test_remote import running_sshd, sftp_settings
    (tmp_path / "sshd").mkdir()
    (tmp_path / "there").mkdir()
    with running_sshd(tmp_path / "sshd") as server:
        settings = sftp_settings(server, directory=str(tmp_path / "there"))
        saved = web.post("/admin/backups", data=form(
            web, folder=str(tmp_path / "bk"), files="none", keep_remote="2",
            kind="sftp", **{k: str(v) for k, v in settings.items() if k != "kind"}))
        assert saved.status_code == 200, saved.text
        assert "BEGIN OPENSSH" not in str(site.settings["backup"])  # sealed
        tested = web.post("/admin/backups", data=form(web, action="test", kind="sftp", **{
            k: str(v) for k, v in settings.items() if k not in ("kind", "private_key")}))
        assert "The remote answered. Backups there: 0." in tested.text
        for day in range(3):
            said = scheduler.run_task(site, scheduled.TASK, DUE + dt.timedelta(days=day))
            assert "copied to sftp" in said
        there = remote.listing(scheduled.remote_of(site, scheduled.settings_of(site)))
        assert len(there) == 2 and there[0].startswith("crbm-backup-20261209")

