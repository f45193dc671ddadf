"""The notifications application's table (``crbm_tables``): one row per notified user.

Read three ways, each along an index: a user's unread ones and their count (the top bar,
on every page: ``ix_crbm_notifications_unread``), a user's list newest first (the page and
the API: ``ix_crbm_notifications_user``; the id is the insertion order, so "newest first"
is ``id DESC`` and a page's cursor is the last id shown), and the pruning of old read ones
(a daily pass over ``read_at``). ``key`` makes a notification idempotent per user (a
retried job): unique with the user; rows without a key never collide (NULLs are distinct
in the unique indexes of SQLite, PostgreSQL and MariaDB alike).
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime

TABLE = "crbm_notifications"
PREFERENCES = "crbm_notification_preferences"
MAX_MESSAGE = 2000  # characters: a line or two about a record, not a mail body
MAX_URL = 2000
MAX_KEY = 200
BADGE_CAP = 100  # the top bar counts unread ones up to this ("99+" from there)


def tables(metadata: sa.MetaData) -> None:
    table = sa.Table(
        TABLE, metadata,
        # a number: rows are made by one INSERT ... SELECT for every user notified, where
        # no database makes a UUID portably; it is the order they were made in, too
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("message", sa.Text, nullable=False),  # plain text, escaped when drawn
        sa.Column("module", sa.String(60)),
        sa.Column("record_id", ID),
        sa.Column("url", sa.String(MAX_URL)),
        sa.Column("key", sa.String(MAX_KEY)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("read_at", UTCDateTime()),
        # when it was also mailed (assignment notices): a redelivered job mails it once
        sa.Column("emailed_at", UTCDateTime()),
        sa.Index("ix_crbm_notifications_unread", "user_id", "read_at", "id"),
        sa.Index("ix_crbm_notifications_user", "user_id", "id"),
        sa.Index("ix_crbm_notifications_key", "user_id", "key", unique=True),
    )
    # A user's choices about notifications; no row: the defaults (assignment_email on)
    sa.Table(
        PREFERENCES, metadata,
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("assignment_email", sa.Boolean, nullable=False),
    )
    # The top bar's count rides on the request's user query (core.kernel.identity
    # user_query: no statement of its own): unread rows up to BADGE_CAP, so a user with
    # thousands unread costs a hundred index entries, not thousands.
    unread = sa.select(sa.literal(1).label("one")).where(
        table.c.user_id == sa.bindparam("uid"), table.c.read_at.is_(None)) \
        .limit(BADGE_CAP).subquery("unread")
    table.info["user_count"] = sa.select(sa.func.count()).select_from(unread).scalar_subquery()
