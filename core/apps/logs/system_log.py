"""Reading the site's log for Administration → System log (1CRM's View System Log,
implementation guide §7.2.5): the newest lines first, searched, filtered by level or by a
request id, and "since the last mark point".

A **mark point** is a line an administrator writes on purpose (``mark``: logger
``crbm.mark``, ``"mark": true``) before reproducing a problem; "since the mark" then shows
only what happened after it, in every process of the site.

Only the end of the file is read (``TAIL_BYTES``): the page is for what happened lately,
and reading stays as fast on a log of gigabytes. A line that is not JSON (written by hand,
or before structured logging) is shown as it is.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from core.apps.logs.setup import JsonFormatter

TAIL_BYTES = 8 * 2**20
SHOWN = 500
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
mark_log = logging.getLogger("crbm.mark")


@dataclass(frozen=True)
class Entry:
    ts: str
    level: str
    logger: str
    msg: str
    request_id: str | None
    exc: str | None
    mark: bool
    line: str  # the whole line, what the search reads

    @property
    def when(self) -> dt.datetime | None:
        """``ts`` as a datetime, for the reader's format (None when it is not one)."""
        try:
            return dt.datetime.fromisoformat(self.ts)  # (Python 3.11 reads the "Z")
        except ValueError:
            return None


def _parse(line: str) -> Entry:
    try:
        data = json.loads(line)
    except ValueError:
        data = None
    if not isinstance(data, dict):  # a line written by hand, or before structured logs
        return Entry("", "", "", line, None, None, False, line)
    return Entry(str(data.get("ts", "")), str(data.get("level", "")),
                 str(data.get("logger", "")), str(data.get("msg", "")),
                 data.get("request_id"), data.get("exc"), bool(data.get("mark")), line)


def tail_lines(path: Path | None, max_bytes: int = TAIL_BYTES) -> list[str]:
    """The file's last whole lines within ``max_bytes``, oldest first."""
    if path is None or not path.is_file():
        return []
    with path.open("rb") as file:
        size = file.seek(0, os.SEEK_END)
        file.seek(max(0, size - max_bytes))
        data = file.read()
    if size > max_bytes:  # the first line read is cut: drop it
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    return data.decode("utf-8", "replace").splitlines()


def entries(path: Path | None, *, search: str = "", level: str = "",
            request_id: str = "", since_mark: bool = False,
            limit: int = SHOWN) -> tuple[list[Entry], int]:
    """(the matching entries, newest first, at most ``limit``; how many matched)."""
    parsed = [_parse(line) for line in tail_lines(path) if line.strip()]
    if since_mark:
        last = max((i for i, e in enumerate(parsed) if e.mark), default=None)
        parsed = parsed[last:] if last is not None else parsed
    floor = LEVELS.index(level) if level in LEVELS else 0
    needle = search.casefold()
    found = [e for e in parsed
             if (not needle or needle in e.line.casefold())
             and (not floor or (e.level in LEVELS and LEVELS.index(e.level) >= floor))
             and (not request_id or e.request_id == request_id)]
    return found[::-1][:limit], len(found)


def mark(path: Path, user_name: str, note: str = "") -> None:
    """Append a mark point to the log file: one write, as every process appends its lines
    (whether or not this process logs to the file itself)."""
    record = mark_log.makeRecord(mark_log.name, logging.WARNING, __file__, 0,
                                 "Mark point set by %s%s",
                                 (user_name, f": {note}" if note else ""), None,
                                 extra={"mark": True})
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as file:
        file.write(JsonFormatter().format(record) + "\n")
