"""Workflows through the real job queue (core.jobs) and a worker in this process: an
outward action after commit, a keyed (Unique) delayed action replaced, the run done.
(Skipped where core.jobs is absent: a CRBM without the job queue.)"""
from __future__ import annotations

import time

import pytest
import sqlalchemy as sa

jobs = pytest.importorskip("core.jobs")
from core.jobs.worker import Worker
from plugins.workflows.tests.conftest import make_workflow, runs
from plugins.workflows.tests.wf_probe import plugin as probe


def wait_for(check, seconds=20.0):
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


@pytest.fixture
def worker(wsite, monkeypatch):
    monkeypatch.setenv("CRBM_JOBS_TICK", "0.05")
    monkeypatch.setenv("CRBM_JOBS_POLL", "0.05")
    wsite.set_setting("jobs_retry_seconds", 0.05)
    running = Worker(wsite).start()
    yield running
    running.stop()
    jobs.close(wsite)


def test_an_outward_action_runs_in_a_worker_after_commit(wsite, admin, worker):
    make_workflow(wsite, admin, "wf_leads", [{"type": "wf_probe.mark", "label": "queued"}])
    lead = wsite.records.create("wf_leads", {"name": "Queued"}, admin)
    wait_for(lambda: [r["status"] for r in runs(wsite, record_id=lead["id"])] == ["done"])
    assert probe.MARKS == [(lead["id"], "queued")]


def test_unique_replaces_the_pending_job(wsite, admin, worker):
    make_workflow(wsite, admin, "wf_leads", [
        {"type": "wf_probe.mark", "label": "later", "delay": {"amount": 1, "unit": "minutes"},
         "unique": True}])
    lead = wsite.records.create("wf_leads", {"name": "A"}, admin)
    wsite.records.update("wf_leads", lead["id"], {"name": "B"}, admin)
    table = wsite.tables.tables["crbm_jobs"]
    with wsite.engine.connect() as conn:
        statuses = sorted(conn.execute(sa.select(table.c.status)).scalars())
    assert statuses == ["cancelled", "pending"]
    assert sorted(r["status"] for r in runs(wsite, record_id=lead["id"])) == \
        ["cancelled", "pending"]
