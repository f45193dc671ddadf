"""What a log line is about: the request or the job a process is working on.

The web's request-id middleware (``core.web.request_ids``) and the job runner
(``core.jobs.runner``) set ``correlation_id`` for the time of one request or one job; the
JSON log formatter (``core.apps.logs.setup``) writes it on every line logged meanwhile, so
an administrator finds every line of one request — across the web, the API and the job it
queued — by that id (Administration → System log, or ``grep`` on the file). A context
variable, so each thread and each asyncio task has its own.
"""
from __future__ import annotations

import contextlib
import contextvars

correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "crbm_correlation_id", default=None)


@contextlib.contextmanager
def correlated(value: str | None):
    """Log under ``value`` inside the block, and under what was before after it."""
    token = correlation_id.set(value)
    try:
        yield
    finally:
        correlation_id.reset(token)
