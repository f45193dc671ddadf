"""Imports as a built-in plugin: the tables (``crbm_tables``), the job that runs an import
(``crbm_job_handlers``), the wizard and Manage Imported Data pages (``crbm_web_routes``,
an "Import" action on the list of every importable module, two administration entries)
and ``crbm import`` (``crbm_cli_commands``). The kernel knows none of it: any module whose
metadata says ``importable: true`` is offered, its rules come from its fields."""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, JobHandler, ListAction


@hookimpl
def crbm_tables(metadata):
    from core.apps.imports import tables
    tables.tables(metadata)


@hookimpl
def crbm_job_handlers(site):
    from core.apps.imports import run
    return [JobHandler(run.JOB, run.run_job, retries=3)]


@hookimpl
def crbm_list_actions(site, module, user):
    if not module.features.get("importable") or not site.access.can(user, module, "import"):
        return None
    return [ListAction(N_("Import"), f"/import/{module.name}/start")]


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Import data"), "/import",
                      N_("Bring records in from CSV or Excel files, or from SugarCRM and "
                         "SuiteCRM exports, module by module.")),
            AdminLink(N_("Manage imported data"), "/imports",
                      N_("Accept an import, or reject it and delete what it created."))]


@hookimpl(tryfirst=True)
def crbm_web_routes(site):
    from core.apps.imports import web
    return web.routes


@hookimpl
def crbm_cli_commands():
    from core.apps.imports import cli
    return [cli.import_command]
