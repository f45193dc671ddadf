"""Each user's Trash emptied by their own rule (issue 21 point 5: "trash emptied per user
rules").

Contract:

- ``emails_trash_rules`` holds one row per user who chose: how many days an email stays in
  their Trash (``keep_days``, from ``MIN_DAYS`` to ``MAX_DAYS``); a user without a row keeps
  ``DEFAULT_DAYS``. The kernel's preferences are not extended for one number of a plugin.
- The scheduled task ``emails.empty_trash`` deletes (the record service's soft delete) the
  emails that have been in a Trash longer than its owner's rule — "been in" is the email's
  last change, which moving it there is. One statement finds them for every user at once;
  a second run finds nothing more to do (idempotent).
"""
from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime
from core.kernel.records import SYSTEM_USER, User

TABLE = "emails_trash_rules"
TASK = "emails.empty_trash"
DEFAULT_DAYS, MIN_DAYS, MAX_DAYS = 30, 1, 3650
BATCH = 5000  # deleted per run at most; the next run takes the rest


def tables(metadata) -> None:
    sa.Table(TABLE, metadata,
             sa.Column("user_id", ID, primary_key=True),
             sa.Column("keep_days", sa.Integer, nullable=False),
             sa.Column("updated_at", UTCDateTime(), nullable=False))


def keep_days(site, user) -> int:
    table = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        days = conn.execute(sa.select(table.c.keep_days).where(
            table.c.user_id == user.id)).scalar()
    return days or DEFAULT_DAYS


def set_keep_days(site, user, days: int) -> None:
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise ValueError(f"days to keep must be from {MIN_DAYS} to {MAX_DAYS}")
    table = site.tables.tables[TABLE]
    now = dt.datetime.now(dt.UTC)
    with site.engine.begin() as conn:
        changed = conn.execute(table.update().where(table.c.user_id == user.id)
                               .values(keep_days=days, updated_at=now)).rowcount
        if not changed:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert().values(user_id=user.id, keep_days=days,
                                                       updated_at=now))
            except sa.exc.IntegrityError:  # saved meanwhile by another request: ours wins
                conn.execute(table.update().where(table.c.user_id == user.id)
                             .values(keep_days=days, updated_at=now))


def expired(site, now: dt.datetime) -> list[tuple[str, str]]:
    """(id, owner) of the emails past their owner's Trash rule, every user at once."""
    emails = site.records.table(site.registry.module("emails"))
    folders, rules = site.tables.tables["emails_folders"], site.tables.tables[TABLE]
    # the Trash folders grouped by their owner's days (few distinct values): one clause each
    with site.engine.connect() as conn:
        bins = conn.execute(sa.select(folders.c.id, sa.func.coalesce(
            rules.c.keep_days, DEFAULT_DAYS)).select_from(folders.outerjoin(
                rules, rules.c.user_id == folders.c.owner_user_id))
            .where(folders.c.kind == "trash")).all()
        by_days: dict[int, list[str]] = {}
        for folder_id, days in bins:
            by_days.setdefault(int(days), []).append(folder_id)
        if not by_days:
            return []
        clauses = [sa.and_(emails.c.folder_id.in_(ids),
                           emails.c.modified_at < now - dt.timedelta(days=days))
                   for days, ids in by_days.items()]
        return [tuple(r) for r in conn.execute(sa.select(
            emails.c.id, emails.c.assigned_user_id).where(
            emails.c.deleted.is_(False), sa.or_(*clauses)).limit(BATCH))]


def run_task(site, due_at) -> str:
    by_owner: dict[str, list[str]] = {}
    for email_id, owner in expired(site, dt.datetime.now(dt.UTC)):
        by_owner.setdefault(owner or "", []).append(email_id)
    deleted = 0
    for owner, ids in by_owner.items():  # as their owner: a mailbox is theirs (private)
        who = User(owner, "trash", False) if owner else SYSTEM_USER
        deleted += site.records.delete_many("emails", ids, who)
    return f"deleted {deleted} emails from Trash"
