"""User activity tracking as a built-in plugin (1CRM guide §7.1.2, User Activity Logging):
the raw events' and the time sheets' tables (``crbm_tables``), the Scheduler's "User
Activity Reporting" task (``crbm_scheduled_tasks``), the settings page and the two User
Time Sheet reports (``crbm_web_routes``, ``crbm_admin_links``). What records the events is
``recorder.ActivityMiddleware``, which ``core.web.app`` installs: a middleware is not a
hook. The kernel knows nothing of it."""
from __future__ import annotations

from core.kernel.hookspecs import hookimpl


@hookimpl
def crbm_tables(metadata):
    from core.apps.activity_tracking import tables
    tables.tables(metadata)


@hookimpl
def crbm_scheduled_tasks(site):
    from core.apps.activity_tracking import timesheet
    return timesheet.tasks()


@hookimpl
def crbm_web_routes(site):
    from core.apps.activity_tracking import web
    return web.routes


@hookimpl
def crbm_admin_links(site):
    from core.kernel.errors import N_
    from core.kernel.hooktypes import AdminLink
    return [AdminLink(N_("User activity"), "/admin/activity",
                      N_("What is recorded of users' activity, and the User Time Sheet "
                         "reports: time spent and records used per user per day."))]
