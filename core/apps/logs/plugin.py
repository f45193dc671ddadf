"""Logs and diagnostics as a built-in plugin: the structured log file every long-running
process writes (``setup``: ``crbm serve`` and ``crbm worker`` call ``configure``), the
Scheduler's "Rotate the system log" task, and the System log and Diagnostics pages
(``crbm_web_routes``, ``crbm_admin_links``)."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_web_routes(site):
    from core.apps.logs import web
    return web.routes


@hookimpl
def crbm_scheduled_tasks(site):
    from core.apps.logs import setup
    from core.kernel.errors import N_
    from core.kernel.hooktypes import ScheduledTask
    return [ScheduledTask("logs.rotate", N_("Rotate the system log"), setup.rotate_task,
                          "15 0 * * *")]


@hookimpl
def crbm_admin_links(site):
    from core.kernel.errors import N_
    from core.kernel.hooktypes import AdminLink
    return [AdminLink(N_("System log"), "/admin/system-log",
                      N_("Search what every process of the site logged; set a mark point "
                         "before reproducing a problem.")),
            AdminLink(N_("Diagnostics"), "/admin/diagnostics",
                      N_("Download a bundle of versions, settings without secrets, the "
                         "schema check and the recent log for support."))]
