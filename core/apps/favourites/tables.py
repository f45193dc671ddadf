"""The favourites' table (``crbm_favourites``, through ``crbm_tables``): the records each
user starred, one row per (user, module, record).

The primary key is that triple, so a record is starred at most once per user on every
database and starring it again (a double click, a form sent twice) changes nothing; it is
also the index the two reads use: "is this record starred" (the detail page) and "the
user's favourites" (the favourites page), both by ``user_id`` first. A record deleted or no
longer readable keeps its row (it shows again once restored or readable again); the
admin purge of deleted records drops rows of purged records with every other
``crbm_`` table's ``module`` + ``record_id`` rows (core/apps/admin/prune.py).
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime

TABLE = "crbm_favourites"


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        TABLE, metadata,
        sa.Column("user_id", ID, primary_key=True),
        sa.Column("module", sa.String(60), primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
