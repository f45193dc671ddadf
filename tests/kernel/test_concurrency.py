"""Many users at once: parallel creators on every database, the rest on a real database
server (PostgreSQL or MariaDB; tests/kernel/test_sqlite_writers.py asks the same of SQLite,
with ``run_together``)."""
import threading

import pytest

from core.kernel.customizations import Item
from core.kernel.errors import ConflictError, ValidationError


def run_together(count, work):
    """Start ``count`` threads at the same moment; return their results (or exceptions)."""
    barrier = threading.Barrier(count)
    results = [None] * count

    def runner(index):
        barrier.wait()
        try:
            results[index] = work(index)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            results[index] = exc

    threads = [threading.Thread(target=runner, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_twenty_parallel_creators_all_succeed_with_distinct_consecutive_numbers(site, admin):
    results = run_together(20, lambda i: site.records.create("gadgets", {"name": f"G{i}"}, admin))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    numbers = sorted(int(r["gadget_number"].split("-")[1]) for r in results)
    assert numbers == list(range(100, 120))


@pytest.mark.server_db
def test_two_concurrent_editors_the_second_gets_a_conflict(site, admin):
    gadget = site.records.create("gadgets", {"name": "Shared", "quantity": 1}, admin)
    edits = [{"quantity": 2}, {"name": "Renamed"}]
    results = run_together(2, lambda i: site.records.update("gadgets", gadget["id"], edits[i],
                                                            admin, base=gadget))
    conflicts = [r for r in results if isinstance(r, ConflictError)]
    saved = [r for r in results if isinstance(r, dict)]
    assert len(conflicts) == 1 and len(saved) == 1, results
    final = site.records.get("gadgets", gadget["id"], admin)
    assert final["version"] == 2
    if saved[0]["quantity"] == 2:
        assert final["name"] == "Shared" and conflicts[0].fields == ["quantity"]
    else:
        # the calculated "shout" follows the name, so it changed too
        assert final["quantity"] == 1 and conflicts[0].fields == ["name", "shout"]


@pytest.mark.server_db
def test_writers_choosing_the_same_number_at_once_one_wins_the_others_are_told(site, admin):
    """A manual number two writers give at the same moment: the unique index decides, and
    the loser gets a validation error naming the field (never the database's error)."""
    site.studio.save_items(admin, [Item("module", "quotes", {
        "name": "quotes", "features": {"sequence": {"field": "number", "manual": True}}})])
    acme = site.records.create("accounts", {"name": "Acme"}, admin)["id"]
    results = run_together(5, lambda i: site.records.create(
        "quotes", {"name": f"Q{i}", "account_id": acme, "number": "QUO-0042"}, admin))
    saved = [r for r in results if isinstance(r, dict)]
    refused = [r for r in results if isinstance(r, ValidationError)]
    assert len(saved) == 1 and len(refused) == 4, results
    assert all(r.errors == {"number": "QUO-0042 is already taken"} for r in refused)
