"""Identity: who a request is. Loading the signed-in user from the session (or, for a
caller that vouched for them another way such as an API token, by id), with their
preferences, and the session checks that go with it.

It lives in the kernel, not the web package, so the API, the OAuth server and plugins
can know the user without importing the web application. A ``request`` here is anything
with Starlette's ``session``, ``client`` and ``app.state`` (``site``, ``check_ip``,
``templates``).
"""
from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field

import sqlalchemy as sa

from core.kernel import i18n, users
from core.kernel.database import SETTINGS_EPOCH_ROW
from core.kernel.records import User


@dataclass(frozen=True)
class WebUser(User):
    display_name: str = ""
    email: str | None = None
    must_change_password: bool = False
    can_assign_access: bool = False  # delegation: may give users roles and teams
    auth_source: str = "local"  # "local": their password is ours to change
    preferences: i18n.Preferences = field(default_factory=i18n.Preferences)
    counts: tuple = ()  # (table, number): user_query's counted tables (unread notifications)


def client_ip(request) -> str:
    return request.client.host if request.client else ""


@functools.lru_cache(maxsize=8)
def user_query(user_table: sa.Table, epoch: sa.Table, metadata: sa.Table, sessions: sa.Table,
               counted: tuple = ()):
    """Built once: this runs on every request. The access and metadata epochs come along,
    so access control and the registry know without another round trip whether they are
    current (another worker may have changed roles, the Studio or the packs); so does the
    session's row (NULL: logged out, or no session asked about), and each ``counted``
    table's ``info["user_count"]`` (a scalar subquery on ``:uid``: unread notifications)."""
    access_epoch = sa.select(epoch.c.epoch).where(epoch.c.id == 1).scalar_subquery()
    metadata_epoch = sa.select(metadata.c.epoch).where(metadata.c.id == 1).scalar_subquery()
    settings_epoch = sa.select(metadata.c.epoch).where(metadata.c.id == SETTINGS_EPOCH_ROW) \
        .scalar_subquery()
    session_seen = sa.select(sessions.c.last_seen_at).where(
        sessions.c.id_hash == sa.bindparam("sid"),
        sessions.c.user_id == user_table.c.id).scalar_subquery()
    c = user_table.c
    return sa.select(c.id, c.username, c.is_admin, c.display_name, c.email, c.active,
                     c.session_epoch, c.must_change_password, c.preferences,
                     c.can_assign_access, c.auth_source,
                     access_epoch.label("access_epoch"),
                     metadata_epoch.label("metadata_epoch"),
                     settings_epoch.label("settings_epoch"),
                     session_seen.label("session_seen"),
                     *(t.info["user_count"].label("count:" + t.name) for t in counted)) \
        .where(c.id == sa.bindparam("uid"))


def load_user(request) -> WebUser | None:
    """The user this session belongs to, if the session is still valid: its row in
    ``crbm_sessions`` exists (not logged out, not idle too long), the user is active and
    the session epoch matches (no password change or deactivation since)."""
    uid, sid = request.session.get("uid"), request.session.get("sid")
    if not uid:
        return None
    site = request.app.state.site
    row = _user_row(site, uid, sid) if sid else None
    if (row is None or not row.active or row.session_epoch != request.session.get("epoch")
            or not users.session_alive(row.session_seen)):
        request.session.clear()  # logged out, deactivated, or password changed since
        return None
    if request.app.state.check_ip and request.session.get("ip") != client_ip(request):
        request.session.clear()  # this copy only: from where it started it still works
        request.session["ended"] = "ip"  # the login page says why
        return None
    users.touch_session(site, sid, row.session_seen)
    catch_up(request.app, site, row)
    return web_user(request.app, site, row)


def load_user_by_id(app, uid: str) -> WebUser | None:
    """An active user by id, for callers that vouched for them another way (an API
    token): the same one query, the same registry refresh, no session."""
    site = app.state.site
    row = _user_row(site, uid, None)
    if row is None or not row.active:
        return None
    catch_up(app, site, row)
    return web_user(app, site, row)


def _user_row(site, uid: str, sid: str | None):
    tables = site.tables.tables
    with site.engine.connect() as conn:
        return conn.execute(user_query(tables["crbm_users"], tables["crbm_access_epoch"],
                                       tables["crbm_metadata_epoch"], tables["crbm_sessions"],
                                       tuple(t for t in tables.values() if "user_count" in t.info)),
                            {"uid": uid, "sid": users.session_key(sid)}).first()


def catch_up(app, site, row) -> bool:
    """Bring this worker up to what a ``user_query`` row says the database holds, before
    the request is served: the registry rebuilt — only when the metadata epoch moved (the
    Studio or a pack changed, in another worker) — and the site settings read again when
    their version moved. Called explicitly by whoever loads the signed-in user; building
    the user (``web_user``) never rebuilds anything. Returns whether the registry was
    rebuilt."""
    site.settings_seen(row.settings_epoch or 0)
    if not site.refresh(row.metadata_epoch or 0):
        return False
    i18n.reload_translations()
    app.state.templates.clear()
    return True


def web_user(app, site, row) -> WebUser:
    """The WebUser of a ``user_query`` row (nothing else: see ``catch_up``)."""
    prefs = i18n.Preferences.from_dict(json.loads(row.preferences) if row.preferences else None)
    prefs = i18n.effective_preferences(prefs, site.locale_dirs)  # a removed language: default
    return WebUser(row.id, row.username, row.is_admin, access_epoch=row.access_epoch or 0,
                   display_name=row.display_name or row.username, email=row.email,
                   must_change_password=row.must_change_password,
                   can_assign_access=row.can_assign_access, auth_source=row.auth_source,
                   preferences=prefs, counts=tuple((k[6:], v) for k, v in row._mapping.items()
                                                   if k.startswith("count:")))
