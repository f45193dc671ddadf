"""Several real ``crbm worker`` processes on PostgreSQL (procrastinate): each due time of a
periodic task runs exactly once, and a job whose worker is killed with SIGKILL is run again
by another, its keyed side effect happening once.

Time is shortened honestly: the processes share a sped-up clock for the scheduler only
(CRBM_TEST_CLOCK_SPEED=4320 from a common CRBM_TEST_CLOCK_ANCHOR, read by
``core.jobs.scheduler.now``), so a task due every 432 simulated seconds falls due 200 times in
a simulated day — every 0.1 s of real time — and each worker's tick (CRBM_JOBS_TICK) is
shortened to match. Claims, enqueues and runs are the real ones. The stalled-worker recovery
waits 3 heartbeats; CRBM_JOBS_HEARTBEAT=0.5 makes that 1.5 s instead of 30 s.
"""
from __future__ import annotations

import datetime as dt
import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from core import jobs
from core.jobs import scheduler
from core.testing import SERVER_URL
from tests.jobs.jobs_probe import count, wait_for

pytestmark = [pytest.mark.server_db, pytest.mark.skipif(
    not (SERVER_URL or "").startswith("postgresql"), reason="procrastinate: PostgreSQL only")]

LAUNCH = Path(__file__).resolve().parent / "launch.py"
ROOT = LAUNCH.parents[2]
SPEED, STEP = 4320, 432  # a simulated day in 20 real seconds; a due time every 0.1 s


def start(site, *args: str, env: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(LAUNCH), "--site", str(site.folder), *args],
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env}, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()


def only_the_probe_task(site) -> None:
    for state in scheduler.states(site):
        scheduler.configure(site, state.name, enabled=state.name == "probe.periodic")


def periodic_dues(site) -> list[str]:
    table = site.tables.tables["jobs_probe_effects"]
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.mark).where(table.c.kind == "periodic")
                                 .order_by(table.c.mark)).scalars())


def test_three_workers_and_a_web_process_run_each_due_time_once(probed):
    only_the_probe_task(probed)
    scheduler.configure(probed, "probe.periodic", schedule=f"@every {STEP}s")
    anchor = time.time()
    env = {"CRBM_TEST_CLOCK_SPEED": str(SPEED), "CRBM_TEST_CLOCK_ANCHOR": repr(anchor),
           "CRBM_JOBS_TICK": "0.03", "CRBM_JOBS_POLL": "0.2"}
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    processes = [start(probed, "worker", "--concurrency", "2", env=env) for _ in range(3)]
    processes.append(start(probed, "serve", "--port", str(port), env=env))  # embedded worker
    try:
        wait_for(lambda: count(probed, "periodic") >= 200, seconds=90,
                 what="200 runs of the periodic task")
        assert httpx.get(f"http://127.0.0.1:{port}/health").status_code == 200
    finally:
        stop(processes)
    dues = [dt.datetime.fromisoformat(d) for d in periodic_dues(probed)]
    assert len(dues) >= 200
    assert len(set(dues)) == len(dues), "a due time ran twice"
    steps = {later - earlier for earlier, later in itertools.pairwise(dues)}
    assert steps == {dt.timedelta(seconds=STEP)}, "a due time was skipped"
    pids = {p for (p,) in probed.engine.connect().execute(sa.text(
        "SELECT DISTINCT pid FROM jobs_probe_effects WHERE kind = 'periodic'"))}
    assert len(pids) >= 2  # the runs were shared out among the processes


def test_a_job_whose_worker_is_killed_runs_again_elsewhere_and_sends_once(probed):
    only_the_probe_task(probed)
    scheduler.configure(probed, "probe.periodic", enabled=False)
    env = {"CRBM_JOBS_HEARTBEAT": "0.5", "CRBM_JOBS_TICK": "0.2", "CRBM_JOBS_POLL": "0.2"}
    processes = [start(probed, "worker", "--concurrency", "1", env=env) for _ in range(2)]
    try:
        job = jobs.enqueue(probed, "probe.send", {"token": "invoice-7"})
        wait_for(lambda: count(probed, "started", "invoice-7") == 1, what="the job to start")
        table = probed.tables.tables["jobs_probe_effects"]
        with probed.engine.connect() as conn:
            victim = conn.execute(sa.select(table.c.pid).where(table.c.kind == "started")).scalar()
        assert victim in {p.pid for p in processes}
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: jobs.status(probed, job)["status"] == "done", seconds=30,
                 what="another worker to run the job again")
    finally:
        stop(processes)
    with probed.engine.connect() as conn:
        started = list(conn.execute(sa.text(
            "SELECT pid FROM jobs_probe_effects WHERE kind = 'started' ORDER BY at")).scalars())
        sent = conn.execute(sa.text("SELECT token, pid FROM jobs_probe_sent")).all()
    assert len(started) == 2 and started[0] == victim and started[1] != victim
    assert sent == [("invoice-7", victim)]  # sent once, by the run that was killed
