"""Webhooks as a built-in plugin: the REST endpoints and admin pages, and the scheduled
jobs that send due deliveries and prune the log. (The outbox itself, the record hooks that
queue events, is ``core.apps.webhooks.webhooks``, registered first so it runs last.)"""
from __future__ import annotations

import logging

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, ScheduledJob

log = logging.getLogger(__name__)

INTERVAL = 5.0  # seconds between delivery runs (site setting webhooks_interval_seconds)
PRUNE_SECONDS = 3600.0


def _deliver(site) -> None:
    from core.apps.webhooks import webhooks
    try:
        webhooks.deliver_due(site)
    except Exception:  # a database hiccup: the next run tries again
        log.exception("sending webhook deliveries failed")


def _prune(site) -> None:
    from core.apps.webhooks import webhooks
    try:
        webhooks.prune(site)
    except Exception:
        log.exception("pruning the webhook delivery log failed")


@hookimpl
def crbm_scheduled_jobs(site):
    interval = float(site.settings.get("webhooks_interval_seconds", INTERVAL))
    return [ScheduledJob("webhooks.deliver", _deliver, interval, interval_option=True),
            ScheduledJob("webhooks.prune", _prune, PRUNE_SECONDS)]


@hookimpl(tryfirst=True)  # before the generic /api/v1/{module} routes, like every app's
def crbm_web_routes(site):
    from core.apps.webhooks import api, web
    return [*api.routes, *web.routes]


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("Webhooks"), "/admin/webhooks",
                      N_("Send record changes to other systems, and see each delivery."))]


@hookimpl
def crbm_tables(metadata):
    from core.apps.webhooks import tables
    tables.tables(metadata)
