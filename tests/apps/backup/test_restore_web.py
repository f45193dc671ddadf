"""Administration → Backups → Restore: nothing happens before the proof of access to the
server (the session's key in the site folder's restore_key.txt); then a backup is checked
(a tampered one refused naming its member), restored only with the confirmation, and every
request of the running process is told to restart CRBM afterwards — nothing reaches the
previous database."""
from __future__ import annotations

import re
import zipfile

import pyrage
import pytest

from core.apps.backup import backup, scheduled
from core.kernel.site import Site
from core.kernel.users import create_user
from core.testing import SERVER_URL, signed_in

URL = "/admin/backups/restore"
# a restore in place of the test's site; the same code on every database (test_backup.py)
pytestmark = pytest.mark.skipif(SERVER_URL is not None, reason="database-independent: on SQLite")


def prove(web, site) -> None:
    page = web.get(URL)
    key = re.search(r'id="rs-key">([0-9a-f]{32})<', page.text).group(1)
    assert str(site.folder / "restore_key.txt") in page.text
    (site.folder / "restore_key.txt").write_text(key + "\n")


def account_names(site) -> set[str]:
    with site.engine.connect() as conn:
        return set(conn.exec_driver_sql("SELECT name FROM accounts").scalars())


def test_nothing_happens_before_the_proof_of_access(web, site, admin):
    made = backup.make_backup(site, scheduled.settings_of(site).folder, files="none")
    page = web.get(URL)
    assert page.status_code == 200 and "prove that you have access" in page.text
    refused = web.post(URL, data={"_csrf": web.csrf, "name": made.name, "action": "restore",
                                  "confirm": "yes"})
    assert refused.status_code == 403 and "Prove access to the server first" in refused.text
    (site.folder / "restore_key.txt").write_text("not the key")
    assert "prove that you have access" in web.get(URL).text
    assert not (site.folder / ".before-restore").exists()


def test_a_backup_checked_then_restored_and_the_process_told_to_restart(web, site, admin):
    site.records.create("accounts", {"name": "Before the backup"}, admin)
    made = backup.make_backup(site, scheduled.settings_of(site).folder, files="none")
    site.records.create("accounts", {"name": "After the backup"}, admin)
    prove(web, site)
    page = web.get(URL)
    assert made.name in page.text and "Access to the server is proven" in page.text
    checked = web.post(URL, data={"_csrf": web.csrf, "name": made.name, "action": "check"})
    assert checked.status_code == 200 and 'id="rs-manifest"' in checked.text
    unconfirmed = web.post(URL, data={"_csrf": web.csrf, "name": made.name,
                                      "action": "restore"})
    assert unconfirmed.status_code == 422 and "Tick the confirmation" in unconfirmed.text
    assert "After the backup" in account_names(site)

    done = web.post(URL, data={"_csrf": web.csrf, "name": made.name, "action": "restore",
                               "confirm": "yes"})
    assert done.status_code == 200 and 'id="rs-done"' in done.text, done.text
    assert not (site.folder / "restore_key.txt").exists()  # a proof serves once
    after = web.get("/m/accounts")
    assert after.status_code == 503 and "Restart CRBM" in after.text
    assert web.get("/health").status_code == 503  # a supervisor restarts the process
    restarted = Site(site.folder, extra_plugins=[c.load() for c in site.plugin_candidates
                                                 if c.source == "extra"])
    try:
        names = account_names(restarted)
        assert "Before the backup" in names and "After the backup" not in names
    finally:
        restarted.close()


def test_a_tampered_upload_is_refused_naming_its_member(web, site, tmp_path):
    made = backup.make_backup(site, tmp_path / "elsewhere", files="none")
    tampered = tmp_path / made.name
    with zipfile.ZipFile(made) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "database/accounts.jsonl":
                data = data + b'{"id": "forged"}\n'
            target.writestr(item, data)
    prove(web, site)
    refused = web.post(URL, data={"_csrf": web.csrf, "action": "check"},
                       files={"upload": (made.name, tampered.read_bytes(),
                                         "application/zip")})
    assert refused.status_code == 422 and "database/accounts.jsonl" in refused.text
    assert "Nothing was changed" in refused.text
    wrong = web.post(URL, data={"_csrf": web.csrf, "action": "check"},
                     files={"upload": ("site.yaml", b"x", "text/plain")})
    assert wrong.status_code == 422 and "not the name of a CRBM backup" in wrong.text


def test_an_encrypted_backup_needs_its_private_key(web, site):
    key = pyrage.x25519.Identity.generate()
    made = backup.make_backup(site, scheduled.settings_of(site).folder, files="none",
                              recipient=str(key.to_public()))
    prove(web, site)
    without = web.post(URL, data={"_csrf": web.csrf, "name": made.name, "action": "check"})
    assert without.status_code == 422 and "is encrypted" in without.text
    checked = web.post(URL, data={"_csrf": web.csrf, "name": made.name, "action": "check",
                                  "identity": str(key)})
    assert checked.status_code == 200 and 'id="rs-manifest"' in checked.text
    assert str(key) not in checked.text  # the private key is not sent back


def test_restoring_is_for_administrators_only(site):
    create_user(site, "clerk", "correct horse battery")
    with signed_in(site, "clerk") as clerk:
        assert clerk.get(URL).status_code == 403
        assert clerk.post(URL, data={"_csrf": clerk.csrf, "action": "check"}).status_code == 403


def test_a_job_worker_started_before_a_restore_stops_at_its_next_tick(site, tmp_path):
    from core.jobs.worker import Worker
    worker = Worker(site, scheduler_tick=False)
    worker.tick()
    assert not worker.stop_event.is_set()
    made = backup.make_backup(site, tmp_path / "bk", files="none")
    from core.apps.backup import restore
    restore.restore(made, site.folder, replace=True,
                    extra_plugins=[c.load() for c in site.plugin_candidates
                                   if c.source == "extra"])
    worker.tick()
    assert worker.stop_event.is_set()  # `crbm worker` exits, to be restarted on the new site
