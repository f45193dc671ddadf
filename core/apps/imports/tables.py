"""The import application's tables (``crbm_tables``): import sessions, what each did to
which record (to accept or undo it), its skipped rows, links waiting for
records later in the file, and saved mappings."""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        "crbm_import_sessions", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("file_name", sa.String(255), nullable=False),
        sa.Column("header", sa.JSON, nullable=False),  # the file's first row
        sa.Column("columns", sa.JSON, nullable=False),  # a field (or null) per column
        sa.Column("options", sa.JSON, nullable=False),  # run.Options
        # queued, running, done, failed; accepted or rejected once decided on
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("total", sa.Integer),  # rows in the file, once counted
        sa.Column("processed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created", sa.Integer, nullable=False, server_default="0"),
        sa.Column("updated", sa.Integer, nullable=False, server_default="0"),
        sa.Column("skipped", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message", sa.Text),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Index("ix_crbm_import_sessions_user", "user_id", "created_at"),
    )
    sa.Table(
        "crbm_import_records", metadata,
        sa.Column("session_id", ID, primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("action", sa.String(10), nullable=False),  # created, updated
        sa.Column("previous", sa.JSON),  # an update's replaced values, by field
    )
    sa.Table(  # links to records of the same module met before them: set at the end
        "crbm_import_links", metadata,
        sa.Column("session_id", ID, primary_key=True),
        sa.Column("record_id", ID, primary_key=True),
        sa.Column("field", sa.String(60), primary_key=True),
        sa.Column("value", sa.String(255), nullable=False),  # an id or a name, as the file had it
        sa.Column("line_no", sa.Integer, nullable=False),
    )
    sa.Table(
        "crbm_import_skipped", metadata,
        sa.Column("session_id", ID, primary_key=True),
        sa.Column("line_no", sa.Integer, primary_key=True),
        sa.Column("reason", sa.JSON, nullable=False),  # {"template", "params"}: translatable
        sa.Column("cells", sa.JSON, nullable=False),  # the row as the file had it
    )
    sa.Table(
        "crbm_import_mappings", metadata,
        sa.Column("id", ID, primary_key=True),
        sa.Column("module", sa.String(60), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("columns", sa.JSON, nullable=False),  # header -> field (or null)
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("created_by", ID),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.UniqueConstraint("module", "name", name="uq_crbm_import_mappings_name"),
    )
