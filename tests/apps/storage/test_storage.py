"""Administration → Storage utilization and the Scheduler's "Update disk space usage" task:
figures that follow the files really written (each in its category), a database figure on
every database, a page for administrators only whose settings refuse bad values at their
fields, and a low-storage notice sent once — not again on a re-run the same day, not at
all while storage is fine."""
from __future__ import annotations

import datetime as dt

from core.apps.notifications import inbox
from core.apps.storage import scheduled
from core.apps.storage.measure import measure
from core.jobs import scheduler
from core.kernel.users import create_user, save_preferences
from core.testing import signed_in
from core.web import uploads
from plugins.emails import attachments

DUE = dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.UTC)
HUGE = 1e9  # GB free: no disk has that much, so storage is always "low"


def test_the_figures_follow_the_files_written(site, admin):
    before = measure(site)
    assert before.total > 0 and before.used + before.available <= before.total
    assert before.database > 0 and before.reports is None  # no report runs folder
    files = site.folder / "files"
    site.records.create("gadgets", {"name": "Widget",
                                    "photo": uploads.store(files, "w.png", b"p" * 3000),
                                    "manual": uploads.store(files, "w.txt", b"m" * 500)}, admin)
    with site.engine.begin() as conn:
        attachments.add(site, conn, "email-1", [attachments.File("a.pdf", b"a" * 7000)])
    uploads.store(files, "orphan.bin", b"o" * 40)  # nothing points at it: another upload
    (site.folder / "imports").mkdir(exist_ok=True)
    (site.folder / "imports" / "people.csv").write_bytes(b"i" * 900)
    backups = scheduled_backups(site)
    backups.mkdir(parents=True, exist_ok=True)
    (backups / "old.zip").write_bytes(b"b" * 11000)
    (site.folder / "reports" / "run-1").mkdir(parents=True)
    (site.folder / "reports" / "run-1" / "out.csv").write_bytes(b"r" * 250)
    after = measure(site)
    assert after.images - before.images == 3000
    assert after.attachments - before.attachments == 7000
    assert after.uploads - before.uploads == 540
    assert after.imports - before.imports == 900
    assert after.backups - before.backups == 11000
    assert after.reports == 250


def scheduled_backups(site):
    from core.apps.backup.scheduled import settings_of
    return settings_of(site).folder


def test_the_page_measures_now_and_is_for_administrators_only(site, admin):
    save_preferences(site, admin.id, {"language": "en", "number_locale": "de"})
    (site.folder / "imports").mkdir(exist_ok=True)
    (site.folder / "imports" / "big.csv").write_bytes(b"x" * (3 * 2**19))  # 1.5 MB
    with signed_in(site, "admin") as web:
        assert "Storage utilization" in web.get("/admin").text
        page = web.get("/admin/storage")
        assert page.status_code == 200 and "Not measured yet." in page.text
        measured = web.post("/admin/storage", data={"_csrf": web.csrf, "action": "measure"})
        assert "The storage was measured." in measured.text
        assert "Not measured yet." not in measured.text
        row = measured.text.split('id="st-imports"')[1].split("</tr>")[0]
        assert "1,5 MB" in row  # the reader's number format
        assert 'id="st-database"' in measured.text and 'id="st-reports"' not in measured.text
    assert scheduled.figures_of(site).imports == 3 * 2**19
    create_user(site, "clerk", "correct horse battery")
    with signed_in(site, "clerk") as clerk:
        assert clerk.get("/admin/storage").status_code == 403
        refused = clerk.post("/admin/storage", data={"_csrf": clerk.csrf, "notify": "1",
                                                     "notify_by": "gb_free", "threshold": "5"})
        assert refused.status_code == 403
    assert scheduled.settings_of(site) == scheduled.StorageSettings()


def settings_form(web, **values) -> dict:
    return {"_csrf": web.csrf, "action": "save", "notify": "1", "notify_by": "percent_used",
            "threshold": "90", **values}


def test_bad_settings_are_refused_at_their_fields(web, site):
    for values, field in (({"threshold": "ninety"}, "threshold"),
                          ({"threshold": "150"}, "threshold"),
                          ({"threshold": "nan"}, "threshold"),
                          ({"notify_by": "gb_free", "threshold": "0"}, "threshold"),
                          ({"notify_by": "bytes"}, "notify_by")):
        refused = web.post("/admin/storage", data=settings_form(web, **values))
        assert refused.status_code == 422, values
        assert f'id="st-{field}-error"' in refused.text, values
        assert site.settings.get("storage") is None  # nothing saved
    saved = web.post("/admin/storage", data=settings_form(web, notify_by="gb_free",
                                                          threshold="2.5"))
    assert "were saved" in saved.text and 'value="2.5"' in saved.text
    assert scheduled.settings_of(site) == scheduled.StorageSettings(True, "gb_free", 2.5)


def test_low_storage_is_told_once_a_day_and_not_while_it_is_fine(site, admin, smtp_inbox):
    create_user(site, "boss", "correct horse battery", is_admin=True, email="boss@example.com")
    scheduled.save_settings(site, scheduled.StorageSettings(True, "gb_free", HUGE))
    scheduled.update(site, DUE)
    scheduled.update(site, DUE)  # a second run
    kept = site.settings["storage"]  # a retry of a run that died before storing its state:
    site.set_setting("storage", {**kept, "alerted": None})  # the day's key still holds
    scheduled.update(site, DUE)
    scheduler.run_task(site, scheduled.TASK, DUE + dt.timedelta(hours=12))  # later that day
    [note] = inbox.page(site, admin).items
    assert "Storage is low" in note.message
    [mail] = smtp_inbox.messages
    assert "boss@example.com" in mail["To"] and "storage is low" in mail["Subject"]
    assert scheduled.figures_of(site) is not None  # stored by each run

    scheduled.save_settings(site, scheduled.StorageSettings(True, "gb_free", 1e-9))
    scheduled.update(site, DUE + dt.timedelta(days=1))  # fine again: nothing said
    assert len(inbox.page(site, admin).items) == 1 and len(smtp_inbox.messages) == 1
    scheduled.save_settings(site, scheduled.StorageSettings(True, "percent_used", 0))
    scheduled.update(site, DUE + dt.timedelta(days=2))  # low again: told again
    assert len(inbox.page(site, admin).items) == 2 and len(smtp_inbox.messages) == 2


def test_no_notice_while_storage_is_fine_or_notices_are_off(site, admin, smtp_inbox):
    scheduled.save_settings(site, scheduled.StorageSettings(True, "gb_free", 1e-9))
    scheduled.update(site, DUE)
    scheduled.save_settings(site, scheduled.StorageSettings(False, "gb_free", HUGE))
    scheduled.update(site, DUE + dt.timedelta(days=1))
    assert inbox.page(site, admin).items == [] and smtp_inbox.messages == []
    assert scheduled.figures_of(site).database > 0
