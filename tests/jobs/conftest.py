"""The job tests' site: the test's site booted again with the jobs_probe plugin (its tables
synced), quick retries and a quick worker tick."""
from __future__ import annotations

import pytest

from core import jobs
from core.kernel.site import Site
from tests.jobs import jobs_probe
from tests.plugins.kitchen_sink import plugin as kitchen_sink


@pytest.fixture
def probed(site, monkeypatch):
    monkeypatch.setenv("CRBM_JOBS_TICK", "0.05")
    monkeypatch.setenv("CRBM_JOBS_POLL", "0.05")
    booted = Site(site.folder, database_url=site.database_url,
                  extra_plugins=[kitchen_sink, jobs_probe])
    booted.sync_schema()
    booted.set_setting("jobs_retry_seconds", 0.05)
    yield booted
    jobs.close(booted)
    booted.close()

