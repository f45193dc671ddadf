"""The administration pages (users, teams, roles, access settings) as a built-in plugin."""
from __future__ import annotations

import logging

from core.kernel.hookspecs import hookimpl
from core.kernel.hooktypes import ScheduledJob

log = logging.getLogger(__name__)


@hookimpl(tryfirst=True)  # the applications' pages come before third-party plugins' pages
def crbm_web_routes(site):
    from core.apps.admin import web
    return web.routes


@hookimpl(tryfirst=True)  # the roles exist before any other plugin's after-sync work
def crbm_schema_synced(site):
    """The built-in roles (the Default Role every user has until an administrator says
    otherwise): made after each schema sync, as a new site needs them."""
    from core.apps.admin import access_admin
    access_admin.ensure_builtins(site)


CHECKPOINT_SECONDS = 5.0  # SQLite: copy the write-ahead log into the database this often


def _checkpoint(site) -> None:
    """SQLite's WAL checkpoint, here in the background rather than in the commit that
    fills the log (SQLite's automatic one, at 1,000 pages, stays as the backstop for a site
    that runs no scheduler). PASSIVE: it waits for no reader and no writer."""
    try:
        with site.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
    except Exception:  # a busy or full disk: the next run tries again
        log.exception("the SQLite checkpoint failed")


@hookimpl
def crbm_scheduled_jobs(site):
    if site.engine.dialect.name == "sqlite":
        return [ScheduledJob("admin.checkpoint", _checkpoint, CHECKPOINT_SECONDS)]
    return None
