"""Notifications as a built-in plugin: their table, the daily pruning task, the page and
API routes, and the bell in the top bar.

The bell's count costs no statement: the table declares it as a count the request's user
query reads along (``tables.py``, ``info["user_count"]``), so the number arrives on
``WebUser.counts`` with the user, and ``crbm_navigation`` only hands it on.

Assignment notifications (assignment.py): the module feature ``notify_assignment``, the
save hook that notifies a record's new assignee, and the job that mails them.
"""
from __future__ import annotations

from core.kernel.errors import N_
from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import AdminLink, NavEntry, ScheduledTask

TASK = "notifications.prune"
SCHEDULE = "30 3 * * *"  # daily, in the quiet hours


@hookimpl
def crbm_tables(metadata):
    from core.apps.notifications import tables
    tables.tables(metadata)


@hookimpl
def crbm_module_features(site):
    from core.apps.notifications.assignment import NotifyAssignment
    return [NotifyAssignment()]


@hookimpl
def crbm_after_save(site, module, batch, user, connection):
    if module.features.get("notify_assignment"):  # the feature's modules only: cheap
        from core.apps.notifications import assignment
        assignment.on_save(site, module, batch, user, connection)


@hookimpl
def crbm_job_handlers(site):
    from core.apps.notifications import assignment
    return assignment.job_handlers()


@hookimpl
def crbm_scheduled_tasks(site):
    from core.apps.notifications import inbox
    return [ScheduledTask(TASK, N_("Prune read notifications"), inbox.run_prune, SCHEDULE)]


@hookimpl(tryfirst=True)  # before the generic /api/v1/{module} routes, like every app's
def crbm_web_routes(site):
    from core.apps.notifications import fields_web, rest, web
    return [*rest.routes, *web.routes, *fields_web.routes]


@hookimpl
def crbm_admin_links(site):
    return [AdminLink(N_("Notification emails"), "/admin/notification-emails",
                      N_("More fields of a record in the email that tells its new assignee"))]


@hookimpl  # after the applications' and plugins' links: the bell sits by Admin and Log out
def crbm_navigation(site, user):
    from core.apps.notifications.tables import TABLE
    unread = dict(getattr(user, "counts", ())).get(TABLE, 0)
    return [NavEntry(N_("Notifications"), "/notifications", count=unread, icon="bell")]
