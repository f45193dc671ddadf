"""A test-only plugin for the job queue's tests: job handlers and a scheduled task whose
every run leaves a row, so a test counts side effects in the database (also across the
``crbm worker`` processes ``launch.py`` starts with this plugin)."""
from __future__ import annotations

import os
import time

import sqlalchemy as sa

from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import JobHandler, ScheduledTask

PLUGIN_NAME = "jobs_probe"


def wait_for(condition, seconds: float = 20, what: str = "the condition"):
    """Poll ``condition`` until true (a worker in another thread or process does the work)."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@hookimpl
def crbm_tables(metadata):
    sa.Table("jobs_probe_effects", metadata,  # one row per run: duplicates would show
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("kind", sa.String(20), nullable=False),
             sa.Column("mark", sa.String(80)),
             sa.Column("pid", sa.Integer, nullable=False),
             sa.Column("at", sa.Double, nullable=False))  # time.time() (MariaDB FLOAT: 7 digits)
    sa.Table("jobs_probe_sent", metadata,  # what a job "sends", keyed: at most once each
             sa.Column("token", sa.String(80), primary_key=True),
             sa.Column("pid", sa.Integer, nullable=False))


def effect(site, kind: str, mark: str | None = None) -> None:
    table = site.tables.tables["jobs_probe_effects"]
    with site.engine.begin() as conn:
        conn.execute(table.insert().values(kind=kind, mark=mark, pid=os.getpid(),
                                           at=time.time()))


def count(site, kind: str, mark: str | None = None) -> int:
    table = site.tables.tables["jobs_probe_effects"]
    query = sa.select(sa.func.count()).where(table.c.kind == kind)
    if mark is not None:
        query = query.where(table.c.mark == mark)
    with site.engine.connect() as conn:
        return conn.execute(query).scalar()


def times(site, kind: str) -> list[float]:
    table = site.tables.tables["jobs_probe_effects"]
    with site.engine.connect() as conn:
        return list(conn.execute(sa.select(table.c.at).where(table.c.kind == kind)
                                 .order_by(table.c.at)).scalars())


def _effect(site, payload):
    effect(site, payload.get("kind", "effect"), payload.get("mark"))


def _fail(site, payload):
    effect(site, "attempt", payload.get("mark"))
    raise ValueError("the printer is on fire")


def _send_then_work(site, payload):
    """Sends (keyed on the payload's token: a second send is refused by the key), then
    works for a long while the first time — long enough to be killed."""
    token = payload["token"]
    first = count(site, "started", token) == 0
    effect(site, "started", token)
    table = site.tables.tables["jobs_probe_sent"]
    try:
        with site.engine.begin() as conn:
            conn.execute(table.insert().values(token=token, pid=os.getpid()))
    except sa.exc.IntegrityError:
        pass  # sent already, by the run that was killed
    if first:
        time.sleep(120)


@hookimpl
def crbm_job_handlers(site):
    return [JobHandler("probe.effect", _effect), JobHandler("probe.fail", _fail, retries=2),
            JobHandler("probe.send", _send_then_work)]


def _periodic(site, due):
    effect(site, "periodic", due.isoformat())
    return "ticked"


@hookimpl
def crbm_scheduled_tasks(site):
    return [ScheduledTask("probe.periodic", "Probe periodic", _periodic, "@every 1h")]
