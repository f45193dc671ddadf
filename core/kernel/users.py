"""Users are kernel records (every module refers to them), with argon2-hashed passwords.

Users are never deleted, only made inactive, so history keeps its authors.

Login protection lives here too: the progressive lockout (``LOCKOUT_MINUTES``), the
session epoch (bumped whenever old sessions must end); the sign-in pages' password-reset
links build on it (core.web.reset_links). ``clock()`` is the one source of "now" for all
of it, so tests can move time.

A user's ``auth_source`` says who checks their password: ``"local"`` (the argon2 hash
here) or a directory (``"ldap"``), asked through the ``crbm_authenticate`` hook, which
answers with an ``ExternalIdentity`` or raises ``AuthUnavailable``. Directory users have
no password hash; lockout and deactivation apply to them all the same.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
import logging
import re
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.kernel.errors import CrbmError, NotFoundError
from core.kernel.i18n import N_
from core.kernel.records import User, now

log = logging.getLogger(__name__)

HASHER = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,59}$")
MIN_PASSWORD = 10

# Lockout: after LOCKOUT_AFTER consecutive failed passwords the account is locked for the
# first period; every further failure (during or after a lock, with no success between)
# moves to the next period; the last one repeats. A success resets it all.
LOCKOUT_AFTER = 5
LOCKOUT_MINUTES = (1, 2, 4, 8, 15, 30, 60)

TOO_SHORT = N_("The password must be at least %(min)d characters long.")
SAME_AS_USERNAME = N_("The password must not be the same as the user name.")


def clock() -> dt.datetime:
    """The current time (aware UTC). Tests replace it to move time."""
    return now()


class UserError(CrbmError):
    """A user could not be created or changed (the message says why)."""


class AuthUnavailable(CrbmError):
    """The directory that checks this sign-in cannot be asked right now (down, timing
    out, misconfigured). Its str is a message safe to show the user (English, marked for
    translation); the details belong in the log."""


@dataclass(frozen=True)
class ExternalIdentity:
    """A directory's word that a user name and password are right (``crbm_authenticate``).

    ``username`` is the directory's spelling of the name (it becomes the CRBM user name
    when the user is created); ``auto_create`` says whether a user unknown to CRBM may be
    created at their first sign-in."""

    username: str
    display_name: str | None = None
    email: str | None = None
    auto_create: bool = False


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def password_problem(password: str, username: str | None = None) -> str | None:
    """What is wrong with ``password`` (an English message marked for translation, with a
    ``%(min)d`` placeholder), or None."""
    if len(password or "") < MIN_PASSWORD:
        return TOO_SHORT
    if username and password.strip().lower() == username.strip().lower():
        return SAME_AS_USERNAME
    return None


def check_password_rules(password: str, username: str | None = None) -> None:
    problem = password_problem(password, username)
    if problem:
        raise UserError(problem % {"min": MIN_PASSWORD})


def users_table(site) -> sa.Table:
    return site.tables.tables["crbm_users"]


def _by_name(table: sa.Table, username: str):
    return sa.func.lower(table.c.username) == (username or "").lower()


def _check_username(username: str) -> None:
    if not USERNAME_RE.match(username or ""):
        raise UserError(f"{username!r} is not a valid user name "
                        "(letters, digits, . _ @ -; at most 60)")


def _insert_user(site, username: str, **values) -> User:
    table = users_table(site)
    try:
        with site.engine.begin() as conn:
            taken = conn.execute(sa.select(table.c.id).where(_by_name(table, username))).first()
            if taken:
                raise UserError(f"user {username!r} already exists")
            user_id = str(uuid.uuid4())
            stamp = now()
            conn.execute(table.insert().values(id=user_id, username=username, active=True,
                                               created_at=stamp, modified_at=stamp, **values))
    except sa.exc.IntegrityError:  # created at the same moment by another request
        raise UserError(f"user {username!r} already exists") from None
    return User(user_id, username, values.get("is_admin", False))


def create_user(site, username: str, password: str, *, is_admin: bool = False,
                display_name: str | None = None, email: str | None = None,
                must_change_password: bool = False) -> User:
    """A local user: the password is checked here (argon2 hash)."""
    _check_username(username)
    check_password_rules(password, username)
    return _insert_user(site, username, password_hash=HASHER.hash(password),
                        display_name=display_name or username, email=email, is_admin=is_admin,
                        must_change_password=must_change_password, auth_source="local")


def create_directory_user(site, username: str, *, auth_source: str = "ldap",
                          is_admin: bool = False, display_name: str | None = None,
                          email: str | None = None) -> User:
    """A user whose password a directory checks (``auth_source``, e.g. "ldap"): no
    password hash here. Used by the first sign-in when the directory allows it, and by
    administrators who set up directory users ahead of time."""
    _check_username(username)
    if auth_source == "local":
        raise UserError("a local user needs a password (create_user)")
    if email and len(email) > 255:
        email = None
    return _insert_user(site, username, password_hash=None,
                        display_name=(display_name or username)[:120], email=email or None,
                        is_admin=is_admin, must_change_password=False, auth_source=auth_source)


def store_password(site, conn, user_id: str, password: str, must_change: bool) -> int:
    """New hash; ends every session (epoch + 1), clears the lockout, drops unused reset
    links. Returns the new session epoch."""
    table = users_table(site)
    conn.execute(table.update().where(table.c.id == user_id).values(
        password_hash=HASHER.hash(password), must_change_password=must_change,
        failed_logins=0, locked_until=None, session_epoch=table.c.session_epoch + 1,
        modified_at=now()))
    resets = site.tables.tables["crbm_password_resets"]
    conn.execute(resets.delete().where(resets.c.user_id == user_id, resets.c.used_at.is_(None)))
    return conn.execute(sa.select(table.c.session_epoch).where(table.c.id == user_id)).scalar_one()


def set_password(site, username: str, password: str, *, must_change: bool = False) -> int:
    """Set a password (administrators, CLI). Ends the user's sessions and unlocks the
    account. Returns the new session epoch."""
    table = users_table(site)
    with site.engine.begin() as conn:
        row = conn.execute(sa.select(table.c.id, table.c.username)
                           .where(_by_name(table, username))).first()
        if row is None:
            raise NotFoundError(f"no user {username!r}")
        check_password_rules(password, row.username)
        return store_password(site, conn, row.id, password, must_change)


def change_password(site, user_id: str, password: str) -> int:
    """A user's own new password (rules checked). Returns the new session epoch, which
    the caller puts in the current session so that only the other sessions end."""
    table = users_table(site)
    with site.engine.begin() as conn:
        username = conn.execute(sa.select(table.c.username)
                                .where(table.c.id == user_id)).scalar_one_or_none()
        if username is None:
            raise NotFoundError("no such user")
        check_password_rules(password, username)
        return store_password(site, conn, user_id, password, False)


def set_active(site, username: str, active: bool) -> None:
    """(De)activate a user. Either way their sessions and unused reset links end at once."""
    table = users_table(site)
    with site.engine.begin() as conn:
        user_id = conn.execute(sa.select(table.c.id).where(_by_name(table, username))).scalar()
        if user_id is None:
            raise NotFoundError(f"no user {username!r}")
        conn.execute(table.update().where(table.c.id == user_id).values(
            active=active, session_epoch=table.c.session_epoch + 1, modified_at=now()))
        resets = site.tables.tables["crbm_password_resets"]
        conn.execute(resets.delete().where(resets.c.user_id == user_id, resets.c.used_at.is_(None)))


def get_user(site, username: str) -> User:
    table = users_table(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.username == username)).first()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return User(row.id, row.username, row.is_admin)


def first_admin(site) -> User:
    """The oldest active administrator (owner of demo data and the like)."""
    table = users_table(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.is_admin.is_(True), table.c.active.is_(True))
                           .order_by(table.c.created_at).limit(1)).first()
    if row is None:
        raise NotFoundError("the site has no active administrator (crbm user create NAME --admin)")
    return User(row.id, row.username, row.is_admin)


def save_preferences(site, user_id: str, preferences: dict) -> None:
    table = users_table(site)
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == user_id).values(
            preferences=json.dumps(preferences), modified_at=now()))


# -- signing in ----------------------------------------------------------------------------

@dataclass(frozen=True)
class LoginResult:
    user: User | None = None  # None: refused
    locked_minutes: int = 0  # refused because the account is locked for this many minutes
    must_change_password: bool = False
    session_epoch: int = 0
    # refused: the directory accepted the password but the user is not set up in CRBM
    not_provisioned: bool = False
    # refused: the directory could not be asked; a message for the user (AuthUnavailable)
    unavailable: str = ""


def lock_minutes(failures: int) -> int:
    """How long ``failures`` consecutive failed passwords lock an account (0: not at all)."""
    if failures < LOCKOUT_AFTER:
        return 0
    return LOCKOUT_MINUTES[min(failures - LOCKOUT_AFTER, len(LOCKOUT_MINUTES) - 1)]


@functools.cache
def _dummy_hash() -> str:
    return HASHER.hash(secrets.token_urlsafe(16))


def _same_work(password: str) -> None:
    """An argon2 verification whose answer is ignored: an unknown, inactive or locked
    account costs the same time as a real check."""
    try:
        HASHER.verify(_dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        pass


def _record_failure(site, user_id: str) -> int:
    """Count one failure (one atomic UPDATE) and lock when due; the lock's minutes."""
    table = users_table(site)
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == user_id)
                     .values(failed_logins=table.c.failed_logins + 1))
        failures = conn.execute(sa.select(table.c.failed_logins)
                                .where(table.c.id == user_id)).scalar_one()
        minutes = lock_minutes(failures)
        if minutes:
            conn.execute(table.update().where(table.c.id == user_id).values(
                locked_until=clock() + dt.timedelta(minutes=minutes)))
    return minutes


def _is_locked(row) -> bool:
    return row.locked_until is not None and row.locked_until > clock()


def _signed_in(site, row, values: dict) -> LoginResult:
    """Reset the failure count (and store ``values``); the successful result."""
    table = users_table(site)
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == row.id)
                     .values(failed_logins=0, locked_until=None, **values))
    return LoginResult(User(row.id, row.username, row.is_admin),
                       must_change_password=row.must_change_password,
                       session_epoch=row.session_epoch)


def _check(site, row, password: str, *, login: bool) -> LoginResult:
    """The local check: only an active local user with a password hash here can pass."""
    if not _is_local(row) or not row.active or not row.password_hash:
        _same_work(password)  # no user-name probing by timing
        return LoginResult()
    if _is_locked(row):
        _same_work(password)  # not even checked: right or wrong, the answer is the same
        return LoginResult(locked_minutes=_record_failure(site, row.id))
    try:
        HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return LoginResult(locked_minutes=_record_failure(site, row.id))
    values = {}
    if login:
        values["last_login_at"] = clock()
    if HASHER.check_needs_rehash(row.password_hash):
        values["password_hash"] = HASHER.hash(password)
    return _signed_in(site, row, values)


def _is_local(row) -> bool:
    return row is not None and row.auth_source == "local"


def _user_row(site, username: str):
    table = users_table(site)
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table).where(_by_name(table, username))).first()


def _check_external(site, row, username: str, password: str) -> LoginResult:
    """Ask the directories (``crbm_authenticate``) about a name that is not a local user.

    ``row`` is the (directory) user with that name, if any. Inactive and locked users
    are refused before the directory is asked, as a local user would be; a refused
    password counts as a failure against the row. Whatever the directory says, it never
    signs anyone in to a local user."""
    if row is not None and not row.active:
        _same_work(password)
        return LoginResult()
    if row is not None and _is_locked(row):
        _same_work(password)
        return LoginResult(locked_minutes=_record_failure(site, row.id))
    try:
        identity = site.hook.crbm_authenticate(site=site, username=username, password=password)
    except AuthUnavailable as exc:
        return LoginResult(unavailable=str(exc))
    if identity is None:
        _same_work(password)  # a refusal costs what a local wrong password costs
        if row is None:
            return LoginResult()
        return LoginResult(locked_minutes=_record_failure(site, row.id))
    if row is None or row.username.lower() != identity.username.lower():
        row = _user_row(site, identity.username)  # the directory's spelling is the CRBM name
    if row is None:
        if not identity.auto_create:
            return LoginResult(not_provisioned=True)
        try:
            create_directory_user(site, identity.username, display_name=identity.display_name,
                                  email=identity.email)
            log.info("directory user %r created at their first sign-in", identity.username)
        except UserError as exc:  # an unusable name, or created meanwhile by another sign-in
            log.warning("directory user %r not created: %s", identity.username, exc)
        row = _user_row(site, identity.username)
        if row is None:
            return LoginResult(not_provisioned=True)
    if _is_local(row):
        log.warning("sign-in refused: a directory vouched for %r, which is a local user",
                    row.username)
        return LoginResult()
    if not row.active:
        return LoginResult()
    if _is_locked(row):
        return LoginResult(locked_minutes=_record_failure(site, row.id))
    return _signed_in(site, row, {"last_login_at": clock()})


def check_login(site, username: str, password: str) -> LoginResult:
    """Try a user name and password, counting failures and enforcing the lockout.

    A local user (``auth_source`` "local") is checked here against their password hash;
    any other name (unknown here, or a directory user) is handed to the directories
    through ``crbm_authenticate``."""
    row = _user_row(site, username)
    if _is_local(row):
        return _check(site, row, password, login=True)
    return _check_external(site, row, username, password)


def check_current_password(site, user_id: str, password: str) -> LoginResult:
    """Re-check a signed-in user's password (e.g. before changing it), with the same
    failure counting and lockout as a login."""
    table = users_table(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == user_id)).first()
    return _check(site, row, password, login=False)


def authenticate(site, username: str, password: str) -> User | None:
    """The active, unlocked user with this name and password, or None."""
    return check_login(site, username, password).user


# -- sessions ------------------------------------------------------------------------------
# A signed-in browser holds a random session id in its (signed) cookie; crbm_sessions keeps
# the id's sha256. The web layer reads the row with the session user (no extra round trip):
# no row, no session. So logging out (the row deleted) ends the session for every copy of
# the cookie, and "log out everywhere" deletes every row of the user.

SESSION_DAYS = 14  # a session unused this long has ended
SESSION_TOUCH = dt.timedelta(days=1)  # last_seen_at is written at most this often


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start_session(site, user_id: str) -> str:
    """A new session of the user: its id (for the cookie; only its sha256 is stored).
    Sessions idle longer than ``SESSION_DAYS`` are cleared out on the way."""
    session_id = secrets.token_urlsafe(32)
    stamp = clock()
    sessions = site.tables.tables["crbm_sessions"]
    with site.engine.begin() as conn:
        conn.execute(sessions.delete().where(
            sessions.c.last_seen_at < stamp - dt.timedelta(days=SESSION_DAYS)))
        conn.execute(sessions.insert().values(id_hash=_session_hash(session_id), user_id=user_id,
                                              created_at=stamp, last_seen_at=stamp))
    return session_id


def session_alive(last_seen_at: dt.datetime | None) -> bool:
    """Whether a session last seen then (None: no such session) is still valid."""
    return last_seen_at is not None and \
        last_seen_at > clock() - dt.timedelta(days=SESSION_DAYS)


def touch_session(site, session_id: str, last_seen_at: dt.datetime) -> None:
    """Note that the session is in use, when the row says otherwise for a day or more:
    at most one write a day per session, not one per request."""
    stamp = clock()
    if stamp - last_seen_at < SESSION_TOUCH:
        return
    sessions = site.tables.tables["crbm_sessions"]
    with site.engine.begin() as conn:
        conn.execute(sessions.update().where(sessions.c.id_hash == _session_hash(session_id))
                     .values(last_seen_at=stamp))


def end_session(site, session_id: str | None) -> None:
    """Log one session out: every copy of its cookie stops working."""
    if not session_id:
        return
    sessions = site.tables.tables["crbm_sessions"]
    with site.engine.begin() as conn:
        conn.execute(sessions.delete().where(sessions.c.id_hash == _session_hash(session_id)))


def end_all_sessions(site, user_id: str) -> int:
    """Log the user out everywhere (every browser, this one too); how many ended."""
    sessions = site.tables.tables["crbm_sessions"]
    with site.engine.begin() as conn:
        return conn.execute(sessions.delete().where(sessions.c.user_id == user_id)).rowcount


def session_key(session_id: str):
    """The bind value the web layer's user query matches ``crbm_sessions.id_hash`` with."""
    return _session_hash(session_id) if session_id else ""
