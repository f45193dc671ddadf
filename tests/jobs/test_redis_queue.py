"""SQLite and MariaDB sites on several machines share their jobs through Redis (the site
setting ``jobs_redis_url``: Huey's RedisHuey): the same queue, retried, delayed and
replaced by key as the embedded one. Against the real Redis server (127.0.0.1:6379, which
.ci/run starts); PostgreSQL sites keep their jobs in PostgreSQL (procrastinate)."""
from __future__ import annotations

import datetime as dt
import os

import pytest

from core import jobs
from core.jobs.worker import Worker
from tests.jobs.jobs_probe import count, times, wait_for

redis = pytest.importorskip("redis")
REDIS_URL = os.environ.get("CRBM_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")
pytestmark = pytest.mark.skipif(
    (os.environ.get("CRBM_TEST_DATABASE_URL") or "").startswith("postgresql"),
    reason="a PostgreSQL site's jobs are in PostgreSQL (procrastinate)")


@pytest.fixture
def on_redis(probed):
    redis.Redis.from_url(REDIS_URL).flushdb()  # a database of the tests' own
    probed.set_setting("jobs_redis_url", REDIS_URL)
    jobs.close(probed)  # the engine is chosen from the settings when first used
    yield probed
    jobs.close(probed)
    redis.Redis.from_url(REDIS_URL).flushdb()


def test_jobs_go_through_redis_and_a_worker_runs_them(on_redis):
    assert type(jobs.engine(on_redis).huey).__name__ == "RedisHuey"
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    soon = jobs.enqueue(on_redis, "probe.effect", {"mark": "now"})
    later = jobs.enqueue(on_redis, "probe.effect", {"mark": "later"}, at=at)
    replaced = jobs.enqueue(on_redis, "probe.effect", {"mark": "replaced"}, at=at, key="k")
    kept = jobs.enqueue(on_redis, "probe.effect", {"mark": "kept"}, at=at, key="k")
    assert redis.Redis.from_url(REDIS_URL).dbsize() > 0  # queued in Redis, not beside the site
    running = Worker(on_redis).start()
    try:
        wait_for(lambda: all(jobs.status(on_redis, j)["status"] == "done"
                             for j in (soon, later, kept)), what="the jobs done")
    finally:
        running.stop()
    assert count(on_redis, "effect", "now") == count(on_redis, "effect", "later") == 1
    assert count(on_redis, "effect", "kept") == 1 and count(on_redis, "effect", "replaced") == 0
    assert jobs.status(on_redis, replaced)["status"] == "cancelled"
    assert min(times(on_redis, "effect")[1:]) >= at.timestamp()
    assert not (on_redis.folder / "jobs.db").exists()
