"""The background jobs of a site, run by APScheduler 3.

Today: sending due webhook deliveries every few seconds (site setting
``webhooks_interval_seconds``, default 5) and pruning the delivery log hourly. ``crbm
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

from core.apps.webhooks import webhooks

log = logging.getLogger(__name__)

INTERVAL = 5.0  # seconds between webhook delivery runs
PRUNE_HOURS = 1


def _deliver(site) -> None:
    try:
        webhooks.deliver_due(site)
    except Exception:  # a database hiccup: the next run tries again
        log.exception("sending webhook deliveries failed")


def _prune(site) -> None:
    try:
        webhooks.prune(site)
    except Exception:
        log.exception("pruning the webhook delivery log failed")


def add_jobs(scheduler: BaseScheduler, site, interval: float | None = None) -> None:
    if interval is None:
        interval = float(site.settings.get("webhooks_interval_seconds", INTERVAL))
    options = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
    scheduler.add_job(_deliver, "interval", seconds=interval, args=[site],
                      id="webhooks.deliver", **options)
    scheduler.add_job(_prune, "interval", hours=PRUNE_HOURS, args=[site],
                      id="webhooks.prune", **options)


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
