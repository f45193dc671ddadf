"""Recording user activity without database work on the request path.

``ActivityMiddleware`` (pure ASGI, installed by ``core.web.app`` inside the session
middleware) sees every HTTP request. When the request ends it notes, for a signed-in user,
an event in this worker's ``ActivityRecorder``: a dict in memory, no I/O. A background
thread writes what was noted in one batch — one transaction, one statement — every
``FLUSH_SECONDS``, and at shutdown (the application's lifespan calls ``close``), as
``core.web.recent`` does for recent items. An event noted by a worker killed before its
next flush is lost: a few seconds of a time sheet, not a record's data.

Who: the user the request was served as — the one ``page()`` loaded (``state.user``:
checked against the sessions table, so a stale cookie counts for nobody, and the logout
request counts for who logged out), else the API's principal (a bearer token too), else
the session's ``uid`` (routes outside ``page()``). Signed-out requests are no activity;
neither are static files, themes, ``/health``, ``/ready`` and the pages' polls (the bell's
``/notifications/live.json``, an import's ``status.json``): they come without anybody
acting.

What: the second the request started, its kind (``tables``: ``r`` a GET answered 2xx/3xx,
``w`` a POST/PUT/PATCH/DELETE answered 2xx/3xx, ``o`` anything else) and, for requests under
``/m/<module>/...`` and ``/api/v1/<module>/...`` answered 2xx/3xx, the module and the record
(the route's own ``module`` and ``record_id`` parameters: ``/m/accounts/new`` names no
record). A create names its record only in its answer: a write without a record in its path
takes it from the ``Location`` the answer points to (``/m/<module>/<id>``, the API's 201).

The level (settings) is applied when the batch is written, not when the request is noted:
reading the setting costs a query outside a signed-in page, so the thread reads it, with the
company calendar's time zone that gives each event its ``day``. The level is therefore the
one in force at the flush, at most ``FLUSH_SECONDS`` later. Events are keyed per user,
minute, kind, module and record: duplicates within a minute collapse in memory and, across
batches and workers, on the table's primary key (the earlier second kept).
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import time
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

from core.apps.activity_tracking import tables
from core.apps.activity_tracking.settings import activity_settings
from core.web.batched import BatchedWrites

FLUSH_SECONDS = 5.0
IGNORED_PREFIXES = ("/static/", "/theme/")
IGNORED_PATHS = frozenset({"/health", "/ready", "/favicon.ico", "/notifications/live.json"})
POLL_SUFFIXES = ("/status.json",)  # an import's progress bar
WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
                  r"[0-9a-fA-F]{12}$")
log = logging.getLogger(__name__)

Key = tuple[str, int, str, str, str]  # (user, minute, kind, module, record)


def ignored(path: str) -> bool:
    return path in IGNORED_PATHS or path.startswith(IGNORED_PREFIXES) \
        or path.endswith(POLL_SUFFIXES)


def kind_of(method: str, status: int) -> str:
    answered = 200 <= status < 400
    if method in WRITES:
        return "w" if answered else "o"
    return "r" if answered else "o"


def target(scope, status: int, location: str | None) -> tuple[str, str]:
    """(module, record) a request was about, ``""`` for what it did not name."""
    path = scope.get("path", "")
    if not (200 <= status < 400) or not path.startswith(("/m/", "/api/v1/")):
        return "", ""
    params = scope.get("path_params") or {}
    module = params.get("module")
    if not isinstance(module, str) or not module or len(module) > tables.MODULE_LENGTH:
        return "", ""
    record = params.get("record_id")
    if not isinstance(record, str) or not record or len(record) > 36:
        record = ""
    if not record and location and scope.get("method") in WRITES:  # a create
        parts = urlsplit(location).path.split("/")
        if (len(parts) == 4 and parts[1] == "m" or len(parts) == 5 and parts[1:3]
                == ["api", "v1"]) and parts[-2] == module and UUID.match(parts[-1]):
            record = parts[-1]
    return module, record


def user_of(scope) -> str | None:
    state = scope.get("state") or {}
    if "user" in state:  # page() checked the session: None when it was not valid
        user = state["user"]
        return str(user.id) if user is not None else None
    principal = state.get("api_principal")
    if principal is not None:
        return str(principal.user.id)
    uid = (scope.get("session") or {}).get("uid")
    return str(uid) if uid else None


class ActivityMiddleware:
    def __init__(self, app, recorder: ActivityRecorder):
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or ignored(scope["path"]):
            return await self.app(scope, receive, send)
        started = int(time.time())
        answer: list = [500, None]

        async def watch(message):
            if message["type"] == "http.response.start":
                answer[0] = message["status"]
                if 200 <= message["status"] < 400:
                    for name, value in message.get("headers", ()):
                        if name.lower() == b"location":
                            answer[1] = value.decode("latin-1")
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            try:
                uid = user_of(scope)
                if uid:
                    module, record = target(scope, answer[0], answer[1])
                    self.recorder.note(uid, started, kind_of(scope["method"], answer[0]),
                                       module, record)
            except Exception:
                log.exception("user activity could not be noted")


class ActivityRecorder(BatchedWrites):
    """This worker's buffer of events (module docstring; core/web/batched.py)."""

    thread_name, what = "crbm-activity", "user activity"

    def __init__(self, site, interval: float | None = None):
        super().__init__(site, FLUSH_SECONDS if interval is None else interval)

    def note(self, user_id: str, at: int, kind: str, module: str = "",
             record_id: str = "") -> None:
        """Remember an event (no database work here); the earlier second of a minute
        stands."""
        self._note((user_id, at // 60, kind, module, record_id), at, keep_first=True)

    def write(self, pending: dict) -> int:
        """The events as the level says, in one transaction."""
        return write(self.site, pending)


def write(site, pending: dict[Key, int]) -> int:
    """The events as the level keeps them (``off``: none), each with its company day."""
    from core.apps.calendar.settings import calendar_settings
    settings = activity_settings(site)
    if settings.level == "off":
        return 0
    keep_module, keep_record = settings.at_least("modules"), settings.at_least("records")
    zone = calendar_settings(site).tz
    rows: dict[Key, int] = {}
    for (user, minute, kind, module, record), at in pending.items():
        key = (user, minute, kind, module if keep_module else "",
               record if keep_record else "")
        if key not in rows or at < rows[key]:
            rows[key] = at
    days: dict[int, dt.date] = {}  # per minute: a batch spans a few
    values = []
    for (user, minute, kind, module, record), at in rows.items():
        day = days.get(minute)
        if day is None:
            day = days[minute] = dt.datetime.fromtimestamp(minute * 60, zone).date()
        values.append({"user_id": user, "minute": minute, "kind": kind, "module": module,
                       "record_id": record, "at": at, "day": day})
    with site.engine.begin() as conn:
        conn.execute(_upsert(conn, site.tables.tables[tables.EVENTS]), values)
    return len(values)


def _upsert(conn, table: sa.Table):
    """INSERT, or on the same key the earlier ``at``: each database's own upsert (another
    worker may write the same minute at the same moment)."""
    def earlier(given):
        return sa.case((given.at < table.c.at, given.at), else_=table.c.at)
    if conn.dialect.name in ("mysql", "mariadb"):
        stmt = mysql.insert(table)
        return stmt.on_duplicate_key_update(at=earlier(stmt.inserted))
    stmt = (postgresql if conn.dialect.name == "postgresql" else sqlite).insert(table)
    return stmt.on_conflict_do_update(index_elements=[c.name for c in table.primary_key],
                                      set_={"at": earlier(stmt.excluded)})
