"""Structured logs: every line one JSON object, in the site's log file and, on request, on
standard error.

A line holds ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, ``pid``, the
``request_id`` of the request or job it happened in (``core.log_context``), the fields a
caller passed as ``extra`` (the access log's ``http`` and ``user_id``, a mark point's
``mark``) and ``exc`` (the traceback) for an error. One object per line: ``jq``, Loki or
any log shipper reads it, and Administration → System log searches it.

``configure(site)`` is called by every long-running process — ``crbm serve`` (and each of
its ``--workers``) and ``crbm worker`` — never by tests or one-off commands:

- **The file** ``<site>/logs/crbm.log`` (site.yaml ``logging: {file: PATH}``; ``false``
  for none), at ``logging.level`` (default INFO). Every process of the site appends to it:
  each line is one ``write`` on a file opened with O_APPEND, so lines never interleave;
  ``WatchedFileHandler`` reopens it when it is rotated (``rotate``, a daily scheduled task,
  or the system's logrotate), so no process keeps writing to a renamed file.
- **Standard error**: warnings and errors as text for a person at a terminal, or — with
  ``logging: {console: json}`` (or ``CRBM_LOG_CONSOLE=json``), for containers and
  journald — every line at ``logging.level`` as JSON.

Secrets are never logged: nothing logs a password, a token or a sealed setting, and the
diagnostic bundle redacts the configuration it copies.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
import traceback
from logging.handlers import WatchedFileHandler
from pathlib import Path

from core.kernel.errors import N_, Message
from core.log_context import correlation_id

# what every LogRecord has: the rest of its __dict__ is a caller's ``extra``
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {
    "message", "asctime", "taskName", "request_id", "color_message"}  # (uvicorn's, ANSI)
ROTATE_BYTES = 20 * 2**20
KEEP_ROTATED = 5


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {"ts": dt.datetime.fromtimestamp(record.created, dt.UTC)
                .isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "level": record.levelname, "logger": record.name,
                "msg": record.getMessage(), "pid": record.process}
        request_id = getattr(record, "request_id", None) or correlation_id.get()
        if request_id:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """For a person at a terminal: time, level, logger, message [request id]."""

    def __init__(self):
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", None) or correlation_id.get()
        return f"{text} [{request_id}]" if request_id else text


class AlreadyLogged(logging.Filter):
    """uvicorn logs again, as "Exception in ASGI application", an error the application's
    500 handler (core/web/app.py) has just logged with its request id: once is enough."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.msg != "Exception in ASGI application"


def log_file(site) -> Path | None:
    """The site's log file, or None when site.yaml turns it off."""
    setting = (site.config.get("logging") or {}).get("file", True)
    if setting is False:
        return None
    return Path(setting) if isinstance(setting, str) else site.folder / "logs" / "crbm.log"


def configure(site, stream=None) -> None:
    """Send the process's logging to the site's file and standard error (replacing what
    an earlier call set up: one site per process)."""
    config = site.config.get("logging") or {}
    level = logging.getLevelName(str(config.get("level", "INFO")).upper())
    level = level if isinstance(level, int) else logging.INFO
    root = logging.getLogger()
    for handler in [h for h in root.handlers if getattr(h, "crbm", False)]:
        root.removeHandler(handler)
        handler.close()
    handlers: list[logging.Handler] = []
    path = log_file(site)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        to_file = WatchedFileHandler(path, encoding="utf-8")
        to_file.setFormatter(JsonFormatter())
        handlers.append(to_file)
    console = os.environ.get("CRBM_LOG_CONSOLE") or config.get("console", "text")
    to_console = logging.StreamHandler(stream or sys.stderr)
    to_console.setFormatter(JsonFormatter() if console == "json" else TextFormatter())
    to_console.setLevel(level if console == "json" else logging.WARNING)
    handlers.append(to_console)
    for handler in handlers:
        handler.crbm = True
        handler.addFilter(AlreadyLogged())
        root.addHandler(handler)
    root.setLevel(level)


def rotate(path: Path, max_bytes: int = ROTATE_BYTES, keep: int = KEEP_ROTATED) -> bool:
    """Rename ``crbm.log`` to ``crbm.log.1`` (and so on, ``keep`` of them) once it is over
    ``max_bytes``; the processes writing it reopen a new one on their next line. True
    when it rotated. Safe to run twice: the second call finds a small file."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
    except FileNotFoundError:
        return False
    for n in range(keep - 1, 0, -1):
        older = path.with_name(f"{path.name}.{n}")
        if older.exists():
            os.replace(older, path.with_name(f"{path.name}.{n + 1}"))
    os.replace(path, path.with_name(f"{path.name}.1"))
    return True


def rotate_task(site, due):
    """The Scheduler's "Rotate the system log": what it did, for the Scheduler page."""
    path = log_file(site)
    if path is None or not rotate(path):
        return Message(N_("Nothing to rotate: the log is under %(mb)d MB."),
                       mb=ROTATE_BYTES // 2**20)
    return Message(N_("The log was rotated; the last %(n)d are kept."), n=KEEP_ROTATED)
