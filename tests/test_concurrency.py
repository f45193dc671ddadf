"""Many users at once, on a real database server (PostgreSQL or MariaDB)."""
import threading

import pytest

from core.errors import ConflictError

pytestmark = pytest.mark.server_db


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


def test_twenty_parallel_creators_get_distinct_consecutive_numbers(site, admin):
    results = run_together(20, lambda i: site.records.create("gadgets", {"name": f"G{i}"}, admin))
    errors = [r for r in results if isinstance(r, Exception)]
    assert not errors, errors
    numbers = sorted(int(r["gadget_number"].split("-")[1]) for r in results)
    assert numbers == list(range(100, 120))


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
