"""Webhooks as a built-in plugin: the REST endpoints and admin pages, and the scheduled tasks
(the Scheduler page's) that send due deliveries every few seconds and prune the log. (The
outbox itself, the record hooks that queue events, is ``core.apps.webhooks.webhooks``,
registered first so it runs last.)"""
from __future__ import annotations

from core.kernel.errors import N_, Message
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, ScheduledTask

INTERVAL = 5  # seconds between delivery runs (site setting webhooks_interval_seconds)


def _deliver(site, due) -> Message | None:
    """Send the due deliveries (each claimed in the database: sent once however many runs
    overlap); a failed one is retried by the outbox's own backoff, not by the job."""
    from core.apps.webhooks import webhooks
    outcome = webhooks.deliver_due(site)
    if not (outcome.delivered or outcome.retrying or outcome.failed):
        return None
    return Message(N_("%(delivered)d delivered, %(retrying)d to retry, %(failed)d failed"),
                   delivered=outcome.delivered, retrying=outcome.retrying,
                   failed=outcome.failed)


def _prune(site, due) -> Message | None:
    from core.apps.webhooks import webhooks
    removed = webhooks.prune(site)
    return Message(N_("%(count)d old deliveries removed"), count=removed) if removed else None


@hookimpl
def crbm_scheduled_tasks(site):
    interval = max(1, round(float(site.settings.get("webhooks_interval_seconds", INTERVAL))))
    return [ScheduledTask("webhooks.deliver", N_("Send webhook deliveries"), _deliver,
                          f"@every {interval}s"),
            ScheduledTask("webhooks.prune", N_("Prune the webhook delivery log"), _prune,
                          "17 * * * *")]


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
