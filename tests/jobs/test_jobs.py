"""The job queue and the scheduler with a worker in this process — what ``crbm serve`` runs
embedded — on the session's database (SQLite: Huey beside the site; PostgreSQL:
procrastinate; MariaDB: Huey). Side effects are rows the jobs_probe plugin writes."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from core import jobs
from core.jobs import scheduler
from core.jobs.worker import Worker
from tests.jobs.jobs_probe import count, times, wait_for

T0 = dt.datetime(2030, 1, 7, 12, 0, tzinfo=dt.UTC)


@pytest.fixture
def worker(probed):
    running = Worker(probed).start()
    yield running
    running.stop()


def pending(site, key: str) -> list[str]:
    table = site.tables.tables["crbm_jobs"]
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.id).where(
            table.c.job_key == key, table.c.status == "pending")).scalars())


def test_a_worker_runs_enqueued_jobs_and_scheduled_tasks(probed, worker):
    scheduler.configure(probed, "probe.periodic", schedule="@every 1s")
    job = jobs.enqueue(probed, "probe.effect", {"mark": "hello"})
    wait_for(lambda: count(probed, "effect", "hello") == 1 and count(probed, "periodic") >= 1)
    wait_for(lambda: jobs.status(probed, job)["status"] == "done")
    state = next(s for s in scheduler.states(probed) if s.name == "probe.periodic")
    wait_for(lambda: next(s for s in scheduler.states(probed)
                          if s.name == "probe.periodic").last_status == "ok")
    state = next(s for s in scheduler.states(probed) if s.name == "probe.periodic")
    assert state.last_result == "ticked" and state.next_due > state.last_start - \
        dt.timedelta(seconds=1)


def test_a_job_for_later_runs_after_its_time(probed, worker):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    job = jobs.enqueue(probed, "probe.effect", {"mark": "later"}, at=at)
    wait_for(lambda: count(probed, "effect", "later") == 1)
    assert times(probed, "effect")[0] >= at.timestamp()
    # (the handler's effect commits before the worker records the job done)
    wait_for(lambda: jobs.status(probed, job)["status"] == "done")


def test_replacing_by_key_leaves_one_pending_job(probed):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    first = jobs.enqueue(probed, "probe.effect", {"mark": "first"}, at=at, key="quiet:r1")
    second = jobs.enqueue(probed, "probe.effect", {"mark": "second"}, at=at, key="quiet:r1")
    third = jobs.enqueue(probed, "probe.effect", {"mark": "third"}, at=at, key="quiet:r1")
    assert pending(probed, "quiet:r1") == [third]
    assert jobs.status(probed, first)["status"] == jobs.status(probed, second)["status"] == \
        "cancelled"
    running = Worker(probed).start()
    try:
        wait_for(lambda: count(probed, "effect", "third") == 1)
        probe_later = jobs.enqueue(probed, "probe.effect", {"mark": "after"})
        wait_for(lambda: jobs.status(probed, probe_later)["status"] == "done")
    finally:
        running.stop()
    assert count(probed, "effect", "first") == count(probed, "effect", "second") == 0
    assert jobs.cancel(probed, "quiet:r1") == 0  # nothing pending any more


def test_cancel_by_key(probed):
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    job = jobs.enqueue(probed, "probe.effect", {"mark": "never"}, at=at, key="k")
    assert jobs.cancel(probed, "k") == 1
    later = jobs.enqueue(probed, "probe.effect", {"mark": "check"},
                         at=at + dt.timedelta(seconds=0.5))
    # the worker starts after the cancel: on a loaded machine a second can pass between
    # two statements, and a worker already running would have taken the job by then
    running = Worker(probed).start()
    try:
        wait_for(lambda: jobs.status(probed, later)["status"] == "done")
    finally:
        running.stop()
    assert count(probed, "effect", "never") == 0
    assert jobs.status(probed, job)["status"] == "cancelled"


def test_a_failing_job_is_retried_with_backoff_then_marked_failed(probed, worker):
    job = jobs.enqueue(probed, "probe.fail", {"mark": "x"})
    wait_for(lambda: jobs.status(probed, job)["status"] == "failed")
    state = jobs.status(probed, job)
    assert state["message"] == "ValueError: the printer is on fire"
    assert state["attempts"] == 3  # the first run and its handler's 2 retries
    first, second, third = times(probed, "attempt")
    assert second - first >= 0.05 and third - second >= 0.1  # jobs_retry_seconds × 2^attempt
    after = jobs.enqueue(probed, "probe.effect", {"mark": "still working"})
    wait_for(lambda: jobs.status(probed, after)["status"] == "done")


def test_a_job_without_handler_fails_cleanly(probed, worker):
    job = jobs.enqueue(probed, "nobody.home", {})
    wait_for(lambda: jobs.status(probed, job)["status"] == "failed")
    assert jobs.status(probed, job)["message"] == \
        "no handler for job 'nobody.home' (is its plugin installed and enabled?)"
    after = jobs.enqueue(probed, "probe.effect", {"mark": "alive"})
    wait_for(lambda: jobs.status(probed, after)["status"] == "done")


def test_enqueue_refuses_a_naive_time(probed):
    with pytest.raises(ValueError, match="aware"):
        jobs.enqueue(probed, "probe.effect", {}, at=dt.datetime(2030, 1, 1))


# -- run_due: each due time claimed once -------------------------------------------------------

def set_next_due(site, name: str, when: dt.datetime) -> None:
    table = site.tables.tables["crbm_scheduler_tasks"]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.name == name).values(next_due=when))


def test_each_due_time_is_claimed_once(probed):
    scheduler.states(probed)  # the rows exist
    set_next_due(probed, "probe.periodic", T0)
    assert not [k for k in scheduler.run_due(probed, T0 - dt.timedelta(seconds=1))
                if k.startswith("probe.periodic")]
    claimed = scheduler.run_due(probed, T0)
    assert f"probe.periodic@{T0.isoformat()}" in claimed
    assert not [k for k in scheduler.run_due(probed, T0) if k.startswith("probe.periodic")]
    state = next(s for s in scheduler.states(probed) if s.name == "probe.periodic")
    assert state.next_due == T0 + dt.timedelta(hours=1)


def test_missed_due_times_catch_up_within_six_hours_then_collapse(probed):
    scheduler.states(probed)
    set_next_due(probed, "probe.periodic", T0 - dt.timedelta(hours=3))
    mine = [k for k in scheduler.run_due(probed, T0) if k.startswith("probe.periodic")]
    assert mine == [f"probe.periodic@{(T0 - dt.timedelta(hours=h)).isoformat()}"
                    for h in (3, 2, 1, 0)]
    set_next_due(probed, "probe.periodic", T0 - dt.timedelta(days=7))
    mine = [k for k in scheduler.run_due(probed, T0) if k.startswith("probe.periodic")]
    assert mine == [f"probe.periodic@{T0.isoformat()}"]  # a week off: one run, not 168


def test_a_disabled_task_is_not_run(probed):
    scheduler.configure(probed, "probe.periodic", enabled=False)
    set_next_due(probed, "probe.periodic", T0)
    assert not [k for k in scheduler.run_due(probed, T0) if k.startswith("probe.periodic")]


def test_a_run_is_recorded_once_per_due(probed):
    scheduler.states(probed)
    assert scheduler.run_task(probed, "probe.periodic", T0) == "ticked"
    assert scheduler.run_task(probed, "probe.periodic", T0) is None  # a redelivery
    assert count(probed, "periodic") == 1
    [run] = scheduler.history(probed, "probe.periodic")
    assert (run["status"], run["result"]) == ("ok", "ticked")


def test_cron_schedules_follow_the_site_time_zone(probed):
    probed.set_setting("timezone", "Europe/Paris")
    scheduler.configure(probed, "probe.periodic", schedule="0 3 * * *")
    start = dt.datetime(2030, 6, 1, 12, tzinfo=dt.UTC)
    assert scheduler.next_after("0 3 * * *", start, "Europe/Paris") == \
        dt.datetime(2030, 6, 2, 1, tzinfo=dt.UTC)  # 03:00 in Paris, summer time


@pytest.mark.parametrize("bad, where", [
    ("61 * * * *", "not a valid cron expression"), ("* * * *", "five fields"),
    ("0 3 * * * *", "five fields"), ("@every 0m", "not a valid interval"),
    ("@every 5 days", "not a valid interval"), ("", "not a valid cron expression")])
def test_an_invalid_schedule_is_refused_and_nothing_saved(probed, bad, where):
    before = scheduler.states(probed)
    with pytest.raises(scheduler.ScheduleError, match=where):
        scheduler.configure(probed, "probe.periodic", schedule=bad)
    assert scheduler.states(probed) == before


def test_run_due_jobs_runs_what_is_due_at_a_fixed_time_through_the_engine(probed):
    import time_machine
    with time_machine.travel(T0, tick=False):
        now = jobs.enqueue(probed, "probe.effect", {"mark": "now"})
        later = jobs.enqueue(probed, "probe.effect", {"mark": "later"},
                             at=T0 + dt.timedelta(days=2))
        replaced = jobs.enqueue(probed, "probe.effect", {"mark": "replaced"},
                                at=T0 + dt.timedelta(days=1), key="quiet")
        kept = jobs.enqueue(probed, "probe.effect", {"mark": "kept"},
                            at=T0 + dt.timedelta(days=1), key="quiet")
        failing = jobs.enqueue(probed, "probe.fail", {"mark": "fire"})
        assert jobs.run_due_jobs(probed) == 2  # "now" and the first try of "fire"
    assert jobs.status(probed, now)["status"] == "done"
    assert jobs.status(probed, later)["status"] == "pending"
    assert jobs.status(probed, failing)["status"] == "pending"  # its retry waits its backoff
    with time_machine.travel(T0 + dt.timedelta(days=1), tick=False):
        jobs.run_due_jobs(probed)
    assert count(probed, "effect", "kept") == 1 and count(probed, "effect", "replaced") == 0
    assert jobs.status(probed, replaced)["status"] == "cancelled"
    assert jobs.status(probed, kept)["status"] == "done"
    assert jobs.status(probed, later)["status"] == "pending"
    assert count(probed, "attempt", "fire") == 2  # a retry when its backoff is over, once
    jobs.run_due_jobs(probed, T0 + dt.timedelta(days=3))
    assert count(probed, "effect", "later") == 1
    assert count(probed, "attempt", "fire") == 3  # its 2 retries spent: failed for good
    assert jobs.status(probed, failing)["status"] == "failed"
    assert jobs.run_due_jobs(probed, T0 + dt.timedelta(days=3)) == 0


def test_run_due_jobs_refuses_a_naive_time(probed):
    with pytest.raises(ValueError, match="aware"):
        jobs.run_due_jobs(probed, dt.datetime(2030, 1, 1))
