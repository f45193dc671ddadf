"""The tables of the job queue and the scheduler, in the site's own database (registered by
``core.apps.scheduler`` through ``crbm_tables``).

``crbm_jobs`` is the journal of each job CRBM enqueued — not the queue itself (that is
procrastinate's or Huey's storage): it keeps what the engines do not keep the same way,
the job's key (replace-by-key, cancel), its outcome and the message of a failure, so the
same questions get the same answers on every database.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.fields import UTCDateTime


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        "crbm_jobs", metadata,
        sa.Column("id", sa.String(32), primary_key=True),  # the idempotency key of a job
        sa.Column("name", sa.String(100), nullable=False),  # its JobHandler
        sa.Column("job_key", sa.String(200)),  # replace-by-key (enqueue ..., key=)
        sa.Column("status", sa.String(16), nullable=False),  # pending done failed cancelled
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("message", sa.Text),  # the last failure
        sa.Column("engine_ref", sa.String(64)),  # the engine's id of the pending run
        sa.Column("run_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Index("ix_crbm_jobs_key", "job_key", "status"),
        sa.Index("ix_crbm_jobs_updated", "status", "updated_at"),
    )
    sa.Table(
        "crbm_scheduler_tasks", metadata,
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("schedule", sa.String(100)),  # the administrator's, else the task's own
        sa.Column("enabled", sa.Boolean),  # the administrator's, else the task's own
        sa.Column("next_due", UTCDateTime()),  # claimed by compare-and-set (run_due)
        sa.Column("last_start", UTCDateTime()),
        sa.Column("last_duration", sa.Float),
        sa.Column("last_status", sa.String(16)),  # ok failed running
        sa.Column("last_result", sa.String(500)),  # in English
        sa.Column("last_message", sa.Text),  # a Message result: its template and params (JSON)
    )
    sa.Table(
        "crbm_scheduler_runs", metadata,
        sa.Column("task", sa.String(100), primary_key=True),
        sa.Column("due", UTCDateTime(), primary_key=True),  # one run per due time
        sa.Column("started", UTCDateTime(), nullable=False),
        sa.Column("duration", sa.Float),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("result", sa.String(500)),
    )
    sa.Table(
        "crbm_scheduler_triggers", metadata,  # when run_due last ran, by whom (health)
        sa.Column("source", sa.String(20), primary_key=True),  # external, worker
        sa.Column("last_at", UTCDateTime(), nullable=False),
    )
