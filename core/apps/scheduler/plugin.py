"""The scheduler and the job queue as a built-in plugin: their tables (``core.jobs.tables``),
procrastinate's schema on PostgreSQL, the job that runs scheduled tasks, the task pruning
the job log, and the admin page *Scheduler* (``core.apps.scheduler.web``)."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink


@hookimpl
def crbm_tables(metadata):
    from core.jobs import tables
    tables.tables(metadata)


@hookimpl
def crbm_schema_synced(site):
    if site.engine.dialect.name == "postgresql":
        from core.jobs import engines
        engines.apply_schema(site)


@hookimpl
def crbm_job_handlers(site):
    from core.jobs import scheduler
    return scheduler.JOB_HANDLERS


@hookimpl
def crbm_scheduled_tasks(site):
    from core.jobs import scheduler
    return scheduler.TASKS


@hookimpl(tryfirst=True)  # before the generic routes, like every app's
def crbm_web_routes(site):
    from core.apps.scheduler import web
    return web.routes


@hookimpl(tryfirst=True)  # among the kernel's entries, in BUILTIN_PLUGINS order
def crbm_admin_links(site):
    return [AdminLink(N_("Scheduler"), "/admin/scheduler",
                      N_("Background tasks: when each runs, its last result, and run now."))]
