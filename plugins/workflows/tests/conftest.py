"""The engine tests' site: the test's site booted again with the wf_probe plugin (a
stand-in for leads, a last-activity date on contacts, a plugin action), and ``queue``:
the jobs the engine hands over after commit, run by calling the engine's own job handler
(``engine.run_job``) when their time comes under a fixed clock (time-machine)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from core.kernel.records import SYSTEM_USER, Query
from core.kernel.site import Site
from plugins.workflows import engine
from plugins.workflows.tests.wf_probe import plugin as probe
from tests.plugins.kitchen_sink import plugin as kitchen_sink


@pytest.fixture
def wsite(site):
    probe.MARKS.clear()
    booted = Site(site.folder, database_url=site.database_url,
                  extra_plugins=[kitchen_sink, probe])
    booted.sync_schema()
    yield booted
    booted.close()


class Queue:
    """What the engine enqueued (name, payload, at, key), a key replacing its pending job
    as core.jobs does; ``drain`` runs the due ones through the real handler."""

    def __init__(self, site):
        self.site, self.jobs, self.failures = site, [], []

    def enqueue(self, site, name, payload, *, at=None, key=None):
        if key is not None:
            self.jobs = [j for j in self.jobs if j[3] != key]
        self.jobs.append((name, payload, at, key))

    def drain(self) -> int:
        now = dt.datetime.now(dt.UTC)
        due = [j for j in self.jobs if j[2] is None or j[2] <= now]
        self.jobs = [j for j in self.jobs if j not in due]
        for name, payload, _at, _key in due:
            assert name == engine.JOB
            try:
                engine.run_job(self.site, payload)
            except Exception as exc:  # noqa: BLE001  the queue would retry it
                self.failures.append(exc)
        return len(due)


@pytest.fixture
def queue(wsite, monkeypatch):
    found = Queue(wsite)
    monkeypatch.setattr(engine, "enqueue", found.enqueue)
    return found


def make_workflow(site, user, module, actions, condition=None, **values):
    return site.records.create("workflows", {
        "name": values.pop("name", "Test workflow"), "active": True, "trigger_module": module,
        "trigger": "saved", "applies_to": "both", "execute_as": "trigger_user",
        "conditions": json.dumps(condition) if condition is not None else None,
        "actions": json.dumps(actions), **values}, user)


def runs(site, **filters):
    return site.records.list("workflow_runs", SYSTEM_USER,
                             Query(filters=filters, sort="started_at", limit=None))
