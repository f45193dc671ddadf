"""The smart lists' tables (``crbm_tables``): the lists, and whom each is shared with.

``crbm_smart_lists`` holds two kinds of rows for a (module, owner): named ones, the smart
list tabs (a list page's saved parameters — search, ``f_<field>`` filters, sort, page size —
its columns and up to three KPIs), and at most one without a name, the owner's own default
columns and KPIs for the module's plain list ("All"). The default row's id is made from the
owner and the module (``lists.default_id``), so the primary key keeps it one per pair on
every database without a partial unique index. Both kinds are read by the list page in one
statement along ``ix_crbm_smart_lists_module`` (the module, then owner or shares).

``crbm_smart_list_shares``: one row per user, team or "everyone" a list is shared with
(``kind`` user | team | everyone; ``target_id`` the user's or team's id, NULL for everyone).
Parameters, columns and KPIs are JSON text: read whole, never queried into.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime

LISTS = "crbm_smart_lists"
SHARES = "crbm_smart_list_shares"


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        LISTS, metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("owner_id", ID, nullable=False),
        sa.Column("name", sa.String(80)),  # NULL: the owner's default columns and KPIs
        sa.Column("params", sa.Text, nullable=False),  # JSON {"q", "f_<field>", "sort", "size"}
        sa.Column("columns", sa.Text, nullable=False),  # JSON [field or group name]; []: layout's
        sa.Column("kpis", sa.Text, nullable=False),  # JSON [{"fn", "field"}], at most three
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("modified_at", UTCDateTime(), nullable=False),
        sa.Index("ix_crbm_smart_lists_module", "module", "owner_id"),
    )
    sa.Table(
        SHARES, metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("list_id", ID, nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),  # user, team, everyone
        sa.Column("target_id", ID),
        sa.Index("ix_crbm_smart_list_shares_list", "list_id"),
        sa.Index("ix_crbm_smart_list_shares_target", "kind", "target_id", "list_id"),
    )
