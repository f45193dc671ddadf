"""Users are kernel records (every module refers to them), with argon2-hashed passwords.

Users are never deleted, only made inactive, so history keeps its authors.
"""
from __future__ import annotations

import re
import secrets
import uuid

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from core.errors import CrbmError, NotFoundError
from core.records import User, now

HASHER = PasswordHasher()
USERNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,59}$")
MIN_PASSWORD = 8


class UserError(CrbmError):
    """A user could not be created or changed (the message says why)."""


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"password must be at least {MIN_PASSWORD} characters")


def create_user(site, username: str, password: str, *, is_admin: bool = False,
                display_name: str | None = None, email: str | None = None,
                must_change_password: bool = False) -> User:
    if not USERNAME_RE.match(username or ""):
        raise UserError(f"{username!r} is not a valid user name "
                        "(letters, digits, . _ @ -; at most 60)")
    check_password_rules(password)
    table = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        taken = conn.execute(sa.select(table.c.id).where(
            sa.func.lower(table.c.username) == username.lower())).first()
        if taken:
            raise UserError(f"user {username!r} already exists")
        user_id = str(uuid.uuid4())
        stamp = now()
        conn.execute(table.insert().values(
            id=user_id, username=username, password_hash=HASHER.hash(password),
            display_name=display_name or username, email=email, is_admin=is_admin,
            active=True, must_change_password=must_change_password,
            created_at=stamp, modified_at=stamp))
    return User(user_id, username, is_admin)


def set_password(site, username: str, password: str, *, must_change: bool = False) -> None:
    check_password_rules(password)
    table = site.tables.tables["crbm_users"]
    with site.engine.begin() as conn:
        result = conn.execute(table.update().where(table.c.username == username).values(
            password_hash=HASHER.hash(password), must_change_password=must_change,
            modified_at=now()))
        if result.rowcount != 1:
            raise NotFoundError(f"no user {username!r}")


def authenticate(site, username: str, password: str) -> User | None:
    """The active user with this name and password, or None."""
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.username == username)).first()
    if row is None or not row.active or not row.password_hash:
        HASHER.hash(password)  # same work either way: no user-name probing by timing
        return None
    try:
        HASHER.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return User(row.id, row.username, row.is_admin)


def get_user(site, username: str) -> User:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.username == username)).first()
    if row is None:
        raise NotFoundError(f"no user {username!r}")
    return User(row.id, row.username, row.is_admin)


def first_admin(site) -> User:
    """The oldest active administrator (owner of demo data and the like)."""
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.is_admin.is_(True), table.c.active.is_(True))
                           .order_by(table.c.created_at).limit(1)).first()
    if row is None:
        raise NotFoundError("the site has no active administrator (crbm user create NAME --admin)")
    return User(row.id, row.username, row.is_admin)
