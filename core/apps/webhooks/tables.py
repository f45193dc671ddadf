"""The webhooks application's tables (``crbm_tables``): subscriptions and their delivery log,
the outbox each save writes to in its own transaction."""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        "crbm_webhooks", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("events", sa.String(60), nullable=False),  # "created updated deleted"
        sa.Column("fields", sa.Text),  # updates only when one of these (space separated) changed
        sa.Column("secret", sa.String(128), nullable=False),  # HMAC-SHA256 key
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("user_id", ID, nullable=False),  # deliveries carry what this user may see
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", ID),
        sa.Index("ix_crbm_webhooks_module", "module"),  # every save looks its module up
    )
    sa.Table(
        "crbm_webhook_deliveries", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("webhook_id", ID, nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("record_id", ID, nullable=False),
        sa.Column("body", sa.Text, nullable=False),  # the JSON sent, as signed
        sa.Column("status", sa.String(20), nullable=False),  # pending, delivered, failed
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime()),
        sa.Column("last_status_code", sa.Integer),
        sa.Column("last_error", sa.String(500)),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("delivered_at", UTCDateTime()),
        sa.Index("ix_crbm_webhook_deliveries_due", "status", "next_attempt_at"),
        sa.Index("ix_crbm_webhook_deliveries_hook", "webhook_id", "created_at"),
    )
