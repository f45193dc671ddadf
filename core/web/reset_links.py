"""Password-reset links of the sign-in pages: single-use tokens, only their sha256 stored.

A token lives ``RESET_TOKEN_MINUTES``; using it sets the password (the rules checked), ends
every session of the user and clears the lockout, all through the kernel's user functions
(core.kernel.users), whose ``clock`` it reads so tests can move time.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
from dataclasses import dataclass

import sqlalchemy as sa

from core.kernel import users

RESET_TOKEN_MINUTES = 60

@dataclass(frozen=True)
class ResetTarget:
    id: str
    username: str
    email: str
    preferences: dict


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def reset_targets(site, name_or_email: str) -> list[ResetTarget]:
    """Active local users with an email address whose user name or email is
    ``name_or_email`` (a directory user's password is reset in the directory)."""
    key = (name_or_email or "").strip().lower()
    if not key:
        return []
    table = users.users_table(site)
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(table).where(
            table.c.active.is_(True), table.c.auth_source == "local",
            table.c.email.is_not(None), table.c.email != "",
            sa.or_(sa.func.lower(table.c.username) == key, sa.func.lower(table.c.email) == key))
            .order_by(table.c.username)).all()
    return [ResetTarget(r.id, r.username, r.email,
                        json.loads(r.preferences) if r.preferences else {}) for r in rows]


def issue_reset_token(site, user_id: str) -> str:
    """A new single-use reset token for the user; only its sha256 is stored."""
    token = secrets.token_urlsafe(32)
    stamp = users.clock()
    resets = site.tables.tables["crbm_password_resets"]
    with site.engine.begin() as conn:
        conn.execute(resets.insert().values(
            token_hash=_token_hash(token), user_id=user_id, created_at=stamp,
            expires_at=stamp + dt.timedelta(minutes=RESET_TOKEN_MINUTES)))
    return token


def discard_reset_token(site, token: str) -> None:
    resets = site.tables.tables["crbm_password_resets"]
    with site.engine.begin() as conn:
        conn.execute(resets.delete().where(resets.c.token_hash == _token_hash(token)))


def _valid_token(resets: sa.Table, token: str):
    return sa.and_(resets.c.token_hash == _token_hash(token or ""), resets.c.used_at.is_(None),
                   resets.c.expires_at > users.clock())


def reset_token_user(site, token: str) -> users.User | None:
    """The (active) user an unused, unexpired token belongs to, or None."""
    resets, table = site.tables.tables["crbm_password_resets"], users.users_table(site)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).join(resets, resets.c.user_id == table.c.id)
                           .where(_valid_token(resets, token), table.c.active.is_(True))).first()
    return None if row is None else users.User(row.id, row.username, row.is_admin)


def reset_password(site, token: str, password: str) -> users.User | None:
    """Use a reset token: set the password (rules checked), end every session, clear the
    lockout. None when the token is unknown, used or expired (nothing changes)."""
    user = reset_token_user(site, token)
    if user is None:
        return None
    users.check_password_rules(password, user.username)
    resets = site.tables.tables["crbm_password_resets"]
    with site.engine.begin() as conn:
        used = conn.execute(resets.update().where(_valid_token(resets, token))
                            .values(used_at=users.clock()))
        if used.rowcount != 1:  # used meanwhile by another request
            return None
        users.store_password(site, conn, user.id, password, False)
    return user
