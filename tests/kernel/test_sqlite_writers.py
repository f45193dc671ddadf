"""Many writers at once on the embedded database (SQLite, a real file): every write
transaction takes the write lock before it reads (BEGIN IMMEDIATE), so what it read still
holds when it writes, no writer is refused with "database is locked", and readers are
never made to wait for a writer. tests/kernel/test_concurrency.py asks the same of
PostgreSQL and MariaDB, and has the parallel creators for every database."""
import threading
import time

import pytest
import sqlalchemy as sa

from core.kernel.errors import ConflictError
from core.testing import SERVER_URL
from tests.kernel.test_concurrency import run_together

pytestmark = pytest.mark.skipif(bool(SERVER_URL), reason="SQLite's writer lock (embedded only)")


def test_a_transaction_that_reads_then_writes_sees_no_other_write_in_between(site):
    """What a plugin relies on: in ``engine.begin()`` a value read and then written back
    (a counter, a balance) is not changed by another writer in between — on SQLite the
    read too happens under the write lock, so no increment is lost."""
    counters = site.tables.tables["crbm_sequences"]
    with site.engine.begin() as conn:
        conn.execute(counters.insert().values(name="plugin_counter", prefix="", next_value=1))
    mine = counters.c.name == "plugin_counter"

    def increment(_):
        with site.engine.begin() as conn:
            value = conn.execute(sa.select(counters.c.next_value).where(mine)).scalar_one()
            time.sleep(0.01)  # some work between the read and the write
            conn.execute(counters.update().where(mine).values(next_value=value + 1))
            return value

    results = run_together(8, increment)
    assert not [r for r in results if isinstance(r, Exception)], results
    assert sorted(results) == list(range(1, 9))  # each saw the one before it
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(counters.c.next_value).where(mine)).scalar_one() == 9


def test_editors_of_one_version_one_saves_the_others_are_told_of_the_conflict(site, admin):
    """Each reads the record and checks its version inside its own transaction, then
    writes: only if the read is under the write lock does a second editor see the first
    one's save (without it both save, and the first edit is silently lost)."""
    gadget = site.records.create("gadgets", {"name": "Shared", "quantity": 1}, admin)
    results = run_together(6, lambda i: site.records.update(
        "gadgets", gadget["id"], {"quantity": 10 + i}, admin, base=gadget))
    saved = [r for r in results if isinstance(r, dict)]
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    assert len(saved) == 1 and len(conflicts) == 5, results
    final = site.records.get("gadgets", gadget["id"], admin)
    assert final["version"] == 2 and final["quantity"] == saved[0]["quantity"]


def test_a_reader_does_not_wait_for_an_open_write_transaction(site, admin):
    site.records.create("gadgets", {"name": "Before"}, admin)
    writing, read = threading.Event(), threading.Event()
    seen = []

    def reader():
        writing.wait(10)
        seen.extend(r["name"] for r in site.records.list("gadgets", admin))
        read.set()

    thread = threading.Thread(target=reader)
    thread.start()
    with site.engine.begin() as conn:
        site.records.create("gadgets", {"name": "Uncommitted"}, admin, connection=conn)
        writing.set()
        # the reader finishes while this transaction still holds the write lock
        assert read.wait(5), "the reader waited for the writer"
    thread.join(10)
    assert seen == ["Before"]
