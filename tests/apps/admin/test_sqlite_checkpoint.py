"""The embedded database's write-ahead log is copied into the database file by the job
worker's timer (core.jobs.worker.checkpoint), not by whichever save happens to fill the log."""
import shutil
import sqlite3

import pytest

from core.jobs import worker
from core.testing import SERVER_URL

pytestmark = pytest.mark.skipif(bool(SERVER_URL), reason="SQLite's write-ahead log")


def names_in_the_file_alone(site, tmp_path):
    """What a copy of the database file without its -wal file holds (a naive backup)."""
    copy = tmp_path / "copy.db"
    shutil.copyfile(site.engine.url.database, copy)
    with sqlite3.connect(copy) as db:
        return {name for (name,) in db.execute("select name from gadgets")}


def test_the_checkpoint_job_puts_saved_records_in_the_database_file(site, admin, tmp_path):
    site.records.create("gadgets", {"name": "Saved a moment ago"}, admin)
    assert "Saved a moment ago" not in names_in_the_file_alone(site, tmp_path)  # in the log

    worker.Worker(site, scheduler_tick=False).tick()  # as the embedded worker's tick does
    assert "Saved a moment ago" in names_in_the_file_alone(site, tmp_path)
