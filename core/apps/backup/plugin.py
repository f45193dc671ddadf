"""Backup and restore as a built-in plugin: ``crbm backup`` and ``crbm restore``
(``crbm_cli_commands``). The kernel knows nothing of it: a backup reads the site's schema
(every table the registry and the plugins define) and its folder."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_cli_commands():
    from core.apps.backup import cli
    return [cli.backup_command, cli.restore_command]
