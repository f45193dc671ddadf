"""The background jobs of a site, run by APScheduler 3.

The jobs are what plugins return from ``crbm_scheduled_jobs`` (``ScheduledJob``); today
the webhooks application's: sending due deliveries every few seconds (site setting
``webhooks_interval_seconds``, default 5) and pruning the delivery log hourly; on SQLite,
the admin application's WAL checkpoint every 5 seconds. ``crbm
serve`` runs them in a background thread beside the web server; ``crbm scheduler run``
runs them in the foreground, for deployments whose web workers do not. Both may run at
once (several machines, say): deliveries are claimed in the database, so each is sent once.

Every job runs with ``max_instances=1`` and ``coalesce``: a run that outlasts its interval
is not doubled, and missed runs collapse into one.
"""
from __future__ import annotations

import logging

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from core.kernel.hooktypes import ScheduledJob

log = logging.getLogger(__name__)


def jobs(site) -> list[ScheduledJob]:
    """Every plugin's ``crbm_scheduled_jobs``, in pluggy's call order."""
    return [job for found in site.hook.crbm_scheduled_jobs(site=site) for job in found or ()]


def _guarded(job: ScheduledJob, site) -> None:
    try:
        job.run(site)
    except Exception:  # the job's own bug or a database hiccup: the next run tries again
        log.exception("scheduled job %s failed", job.id)


def add_jobs(scheduler: BaseScheduler, site, interval: float | None = None) -> None:
    """Add the site's jobs; ``interval`` replaces the seconds of those that take the
    ``--interval`` option (``ScheduledJob.interval_option``)."""
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    for job in jobs(site):
        seconds = interval if interval is not None and job.interval_option else job.seconds
        scheduler.add_job(_guarded, "interval", seconds=seconds, args=[job, site], id=job.id,
                          **options)


def start(site, interval: float | None = None) -> BackgroundScheduler:
    """Run the site's jobs in a background thread; give the result to ``stop``."""
    scheduler = BackgroundScheduler(timezone="UTC")
    add_jobs(scheduler, site, interval)
    scheduler.start()
    return scheduler


def stop(scheduler: BaseScheduler, wait: bool = True) -> None:
    """Stop the jobs (``wait``: let a run in progress finish)."""
    if scheduler.running:
        scheduler.shutdown(wait=wait)


def run(site, interval: float | None = None) -> None:
    """Run the site's jobs in this thread until interrupted (``crbm scheduler run``)."""
    scheduler = BlockingScheduler(timezone="UTC")
    add_jobs(scheduler, site, interval)
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        pass
