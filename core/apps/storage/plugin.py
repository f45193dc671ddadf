"""Storage utilization as a built-in plugin (1CRM guide §7.2.7): the Scheduler's "Update
disk space usage" task (``crbm_scheduled_tasks``) that measures what the site uses and
warns the administrators when storage runs low, and the Storage utilization page
(``crbm_web_routes``, ``crbm_admin_links``). The kernel knows nothing of it."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_scheduled_tasks(site):
    from core.apps.storage import scheduled
    return scheduled.tasks()


@hookimpl
def crbm_web_routes(site):
    from core.apps.storage import web
    return web.routes


@hookimpl
def crbm_admin_links(site):
    from core.kernel.errors import N_
    from core.kernel.hooktypes import AdminLink
    return [AdminLink(N_("Storage utilization"), "/admin/storage",
                      N_("How much storage the database, files and backups use; a notice "
                         "when storage runs low."))]
