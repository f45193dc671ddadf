"""A newcomer's ``crbm serve`` alone runs background jobs and scheduled tasks: its embedded
worker, in the real process (started as ``crbm`` is, with the jobs_probe test plugin). And it
is a well-behaved service: ready when its database answers, its requests logged as JSON lines
with their ids in the site's log file, stopped gracefully by SIGTERM (exit status 0)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import httpx

from core import jobs
from core.jobs import scheduler
from tests.jobs.jobs_probe import count, wait_for
from tests.jobs.test_workers_postgres import LAUNCH, ROOT, only_the_probe_task


def answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


def test_crbm_serve_alone_runs_jobs_and_tasks(probed):
    only_the_probe_task(probed)
    scheduler.configure(probed, "probe.periodic", schedule="@every 1s")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, str(LAUNCH), "--site", str(probed.folder), "serve", "--port", str(port)],
        env={**os.environ, "PYTHONPATH": str(ROOT), "CRBM_JOBS_TICK": "0.1"}, cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        job = jobs.enqueue(probed, "probe.effect", {"mark": "from the web"})
        wait_for(lambda: jobs.status(probed, job)["status"] == "done", seconds=60,
                 what="crbm serve to run the job")
        wait_for(lambda: count(probed, "periodic") >= 1, what="crbm serve to run the task")
        # the worker may be running before the web server has bound its port
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/health"), seconds=60,
                 what="crbm serve to answer /health")
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", headers={"X-Request-ID": "lb-1"})
    finally:
        server.terminate()  # SIGTERM: what systemd, Docker and Kubernetes send
        status = server.wait(30)
    assert status == 0 and ready.json()["status"] == "ready"
    logged = [json.loads(line) for line in
              (probed.folder / "logs" / "crbm.log").read_text().splitlines()]
    [access] = [e for e in logged if e.get("request_id") == "lb-1"]
    assert access["http"]["path"] == "/ready" and access["pid"] == server.pid
    assert any(e["msg"].startswith("stopping") for e in logged)
    assert not [e for e in logged if e["level"] in ("ERROR", "CRITICAL")]
    with probed.engine.connect() as conn:
        pids = set(conn.exec_driver_sql("SELECT DISTINCT pid FROM jobs_probe_effects").scalars())
    assert pids == {server.pid}
