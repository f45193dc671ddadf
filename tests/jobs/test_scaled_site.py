"""The scaled deployment under load, as bench/soak.py runs it for 10 minutes (issue 24's
acceptance point), here for ~25 s: `crbm serve --workers 2 --no-jobs` and one `crbm worker`
on the test's PostgreSQL database, three clients reading, creating and updating accounts
through the web UI and the REST API, an administrator adding a Studio field at 1/3 and
another process installing a pack at 2/3.

Nothing may fail: no request answers an error, every write a client was told succeeded is
in the database as written (and was sent to the webhook receiver by the job worker), and
each web worker — told apart by the pid its access-log line gives the request id we sent —
shows the new field from its first request after the change (and the pack's theme from its
first after the install).
"""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from core.testing import SERVER_URL

pytestmark = [pytest.mark.server_db, pytest.mark.skipif(
    not (SERVER_URL or "").startswith("postgresql"), reason="procrastinate: PostgreSQL only")]

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.append(str(BENCH))  # for `from common import` in bench/soak.py
soak = importlib.import_module("soak")  # bench/soak.py, the harness

SECONDS = 24  # of load


@pytest.fixture
def quick_deadlines(monkeypatch):
    """A failing run ends sooner than the 10-minute soak's: a probe or a drain gives up after
    a minute. Not 15 s: on CI, with three suites on two cores, the job worker once still had
    12 of 270 deliveries to send 15 s after the load stopped (alone it sends 1,000 in the
    run). A passing run waits only as long as the work takes."""
    monkeypatch.setattr(soak, "PROBE_SECONDS", 60.0)
    monkeypatch.setattr(soak, "DRAIN_SECONDS", 60.0)


def test_two_web_workers_and_a_job_worker_under_load_lose_nothing_and_see_changes_at_once(
        site, tmp_path, quick_deadlines):
    with soak.Receiver() as receiver:
        fixture = soak.populate(site, 300, 1, receiver, SECONDS, tmp_path)
        with soak.Deployment(site.folder, web=2, jobs=1) as deployment:
            report = soak.soak(deployment, site, fixture, receiver, SECONDS, clients=4)
    summary = "\n".join(soak.summary(report, "test_scaled_site"))
    assert report.errors == [], summary
    assert report.writes > 0 and report.lost == [], summary
    # every worker's first edit form after the layout was saved has the field; none without
    assert sorted(report.field_pids) == sorted(deployment.web_pids), summary
    assert all(report.field_pids.values()) and report.unseen == [], summary
    assert sorted(report.pack_pids) == sorted(deployment.web_pids), summary
    assert all(report.pack_pids.values()), summary
    # the job worker sent every delivery; nothing failed, nothing logged an error
    assert report.jobs[("scheduler.run", "done")] > 0, summary
    assert report.passed, summary
