"""Backup and restore as a built-in plugin: ``crbm backup`` and ``crbm restore``
(``crbm_cli_commands``), the Scheduler's "Back up the site" task (``crbm_scheduled_tasks``)
and the Backups page (``crbm_web_routes``, ``crbm_admin_links``). The kernel knows nothing
of it: a backup reads the site's schema (every table the registry and the plugins define)
and its folder."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_cli_commands():
    from core.apps.backup import cli
    return [cli.backup_command, cli.restore_command]


@hookimpl
def crbm_scheduled_tasks(site):
    from core.apps.backup import scheduled
    return scheduled.tasks()


@hookimpl
def crbm_web_routes(site):
    from core.apps.backup import restore_web, web
    return restore_web.routes + web.routes  # /admin/backups/restore before /{name}


@hookimpl
def crbm_admin_links(site):
    from core.kernel.errors import N_
    from core.kernel.hooktypes import AdminLink
    return [AdminLink(N_("Backups"), "/admin/backups",
                      N_("Back up the database and files, here and to a remote server, on a "
                         "schedule; download backups."))]
