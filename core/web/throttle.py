"""Counting requests across every worker: per-IP throttles on signing in and password
reset requests, and the API's rate limits (``core.api.ratelimit``).

The counts live in the database (``crbm_rate_counters``: one row per key and window,
``hits``), so every worker process sharing it sees the same numbers; the embedded default
has no Redis, and a count kept in one process lets N workers allow N times the limit.

**How a limit is counted.** A ``Rule`` allows ``limit`` events per ``window`` seconds, as
a *sliding window counter*: time is cut into fixed windows and the estimate is

    hits of the previous window x the share of it still inside the last ``window``
    seconds + hits of the current window,

which follows a true sliding window closely with two counters a key. One more event is
allowed while ``estimate + 1 <= limit``; otherwise the answer says how many seconds until
it will be (``Verdict.retry_after``).

**Writes.** ``record`` adds events at once (one upsert per key: ``INSERT ... ON CONFLICT
DO UPDATE SET hits = hits + n`` or MySQL's ``ON DUPLICATE KEY UPDATE``): the sign-in and
reset throttles count POSTs, one write each. ``take`` is for busy keys (the API): it reads
the counts on every call but keeps the hits it allowed in memory and writes them in one
statement when they reach ``batch_size(limit)`` (a 50th of the limit, 1 to 100) or when
the key is within that many of its limit, or when its window has moved on. So most API
requests only read, and never take SQLite's writer lock. The price, stated in
docs/security.md: each *other* worker may hold up to ``batch_size - 1`` hits of a key not
yet written, so with W workers a key may get up to ``limit + (W - 1) x (batch_size - 1)``
requests in a window; and a request running while another request of the same worker
writes a batch may miss that batch (read before the write committed, counted after it
left memory), so parallel requests on one worker may pass the limit by up to a batch too.
Requests one after another on one worker get exactly the limit. A worker that dies loses
its unwritten hits (fewer than ``batch_size``).

Rows older than two hours are deleted now and then by the worker that writes (at most
every ``SWEEP_SECONDS``). ``clock`` (wall-clock seconds, shared by all processes) is the
one source of time; tests replace it.
"""
from __future__ import annotations

import ipaddress
import math
import threading
import time
import weakref
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import mysql, postgresql, sqlite

KEEP_SECONDS = 2 * 3600  # counts older than this matter to no rule
SWEEP_SECONDS = 600  # how often a writing worker deletes them
MAX_BATCH = 100


def clock() -> float:
    """Seconds since the epoch (wall clock: every worker must agree)."""
    return time.time()


@dataclass(frozen=True)
class Rule:
    name: str  # the key prefix: "login-ip", "api-user"...
    limit: int  # events allowed per window; 0 or less: no limit
    window: int  # seconds

    def key(self, subject: str) -> str:
        return f"{self.name}:{subject}"[:120]


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int  # events still allowed now (after this one, for take)
    retry_after: int = 0  # seconds until one more is allowed (when not allowed)


def batch_size(limit: int) -> int:
    """How many allowed hits a worker may keep unwritten (see the module docstring)."""
    return max(1, min(MAX_BATCH, limit // 50))


def ip_subject(ip: str) -> str:
    """What a per-IP throttle counts: the IPv4 address, or the IPv6 /64 network (one
    customer's line gets a whole /64, so counting single addresses would count nothing)."""
    try:
        address = ipaddress.ip_address((ip or "").split("%")[0])
    except ValueError:
        return (ip or "unknown")[:64]
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def _estimate(rule: Rule, at: float, previous: float, current: float) -> float:
    share = 1 - (at % rule.window) / rule.window  # of the previous window, still counted
    return previous * share + current


def _retry_after(rule: Rule, at: float, previous: float, current: float) -> int:
    """Seconds from ``at`` until the estimate allows one more event."""
    start = at - at % rule.window
    room = rule.limit - 1
    if current <= room:  # later in this window, as the previous one weighs less
        moment = start + rule.window * (1 - room_share(room - current, previous))
    else:  # in the next window, as this one (then the previous) weighs less
        moment = start + rule.window * (2 - room_share(room, current))
    return max(1, math.ceil(moment - at))


def room_share(room: float, hits: float) -> float:
    return 1.0 if hits <= 0 else min(1.0, room / hits)


class Counters:
    """The counters of one site's database, with this process's unwritten hits."""

    def __init__(self, engine: sa.Engine, table: sa.Table):
        self.engine, self.table = engine, table
        self._pending: dict[str, dict[int, int]] = {}  # key -> window start -> hits
        self._lock = threading.Lock()
        self._swept = 0.0

    # -- reading and writing ---------------------------------------------------------------

    def _counts(self, rule: Rule, key: str, start: int,
                stored: dict[tuple[str, int], int]) -> tuple[int, int]:
        """(previous, current) window hits: the database's and this process's unwritten
        ones. Call with the lock held."""
        mine = self._pending.get(key, {})
        before = start - rule.window
        return (stored.get((key, before), 0) + mine.get(before, 0),
                stored.get((key, start), 0) + mine.get(start, 0))

    def _read(self, keys: list[str], starts: list[int]) -> dict[tuple[str, int], int]:
        table = self.table
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(table.c.key, table.c.window_start, table.c.hits)
                                .where(table.c.key.in_(sorted(set(keys))),
                                       table.c.window_start.in_(sorted(set(starts))))).all()
        return {(row.key, row.window_start): row.hits for row in rows}

    def _upsert(self, conn, rows: list[dict]) -> None:
        table, dialect = self.table, self.engine.dialect.name
        if dialect in ("mysql", "mariadb"):
            statement = mysql.insert(table).values(rows)
            conn.execute(statement.on_duplicate_key_update(
                hits=table.c.hits + statement.inserted.hits))
            return
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = insert(table).values(rows)
        conn.execute(statement.on_conflict_do_update(
            index_elements=[table.c.key, table.c.window_start],
            set_={"hits": table.c.hits + statement.excluded.hits}))

    def _write(self, increments: dict[tuple[str, int], int], at: float) -> None:
        rows = [{"key": key, "window_start": start, "hits": hits}
                for (key, start), hits in sorted(increments.items()) if hits]
        if not rows:
            return
        sweep = at - self._swept >= SWEEP_SECONDS
        with self.engine.begin() as conn:
            self._upsert(conn, rows)
            if sweep:
                conn.execute(self.table.delete().where(
                    self.table.c.window_start < int(at) - KEEP_SECONDS))
        if sweep:
            self._swept = at
            with self._lock:  # hits of keys unused since then count for nothing now
                for key in [key for key, mine in self._pending.items()
                            if max(mine) < at - KEEP_SECONDS]:
                    del self._pending[key]

    # -- the two ways to count -------------------------------------------------------------

    def check(self, rule: Rule, subject: str) -> Verdict:
        """Would one more event be allowed? Reads only."""
        if rule.limit <= 0:
            return Verdict(True, 0, 0)
        at = clock()
        key, start = rule.key(subject), _window(rule, at)
        stored = self._read([key], [start, start - rule.window])
        with self._lock:
            previous, current = self._counts(rule, key, start, stored)
        estimate = _estimate(rule, at, previous, current)
        if estimate + 1 <= rule.limit:
            return Verdict(True, rule.limit, int(rule.limit - estimate))
        return Verdict(False, rule.limit, 0, _retry_after(rule, at, previous, current))

    def record(self, rule: Rule, subject: str, n: int = 1) -> None:
        """Count ``n`` events now (written at once)."""
        if rule.limit > 0 and n > 0:
            at = clock()
            self._write({(rule.key(subject), _window(rule, at)): n}, at)

    def take(self, rules: list[tuple[Rule, str]], *, at: float | None = None,
             stored: dict[tuple[str, int], int] | None = None) -> list[Verdict]:
        """One event under each (rule, subject) with a limit, or none at all if any of
        them refuses: a verdict for each (the refusing ones not ``allowed``). The hits
        are written in batches (see the module docstring). ``stored``: the counts of the
        rules' current and previous windows at ``at``, when the caller read them along
        with something else (``hits_column``); else they are read here."""
        rules = [(rule, subject) for rule, subject in rules if rule.limit > 0]
        if not rules:
            return []
        at = clock() if at is None or stored is None else at
        keyed = [(rule, rule.key(subject), _window(rule, at)) for rule, subject in rules]
        if stored is None:
            stored = self._read([key for _, key, _ in keyed],
                                [s for rule, _, start in keyed
                                 for s in (start, start - rule.window)])
        flush: dict[tuple[str, int], int] = {}
        with self._lock:
            seen = [self._counts(rule, key, start, stored) for rule, key, start in keyed]
            if any(_estimate(rule, at, *counted) + 1 > rule.limit
                   for (rule, _, _), counted in zip(keyed, seen, strict=True)):
                return [Verdict(True, rule.limit, int(rule.limit - estimate))
                        if (estimate := _estimate(rule, at, *counted)) + 1 <= rule.limit
                        else Verdict(False, rule.limit, 0, _retry_after(rule, at, *counted))
                        for (rule, _, _), counted in zip(keyed, seen, strict=True)]
            verdicts = []
            for (rule, key, start), (previous, current) in zip(keyed, seen, strict=True):
                mine = self._pending.setdefault(key, {})
                mine[start] = mine.get(start, 0) + 1
                remaining = int(rule.limit - _estimate(rule, at, previous, current + 1))
                verdicts.append(Verdict(True, rule.limit, remaining))
                batch = batch_size(rule.limit)
                # write when the batch is full, near the limit (the others must see it), or
                # when the window moved on (the previous one still counts, partly)
                if mine[start] >= batch or remaining < batch or len(mine) > 1:
                    flush.update({(key, s): hits for s, hits in mine.items()
                                  if s >= start - rule.window})
                    del self._pending[key]
        if flush:
            try:
                self._write(flush, at)
            except sa.exc.SQLAlchemyError:
                with self._lock:  # keep them for the next write
                    for (key, s), hits in flush.items():
                        mine = self._pending.setdefault(key, {})
                        mine[s] = mine.get(s, 0) + hits
                raise
        return verdicts


def _window(rule: Rule, at: float) -> int:
    return int(at // rule.window) * rule.window


def windows(rule: Rule, at: float) -> tuple[int, int]:
    """The starts of the current and the previous window at ``at``."""
    start = _window(rule, at)
    return start, start - rule.window


def hits_column(table: sa.Table, key_param: str, start_param: str, label: str):
    """A scalar subquery for the hits of one key and window (bound parameters), so that a
    query run anyway can bring the counts along (the API's bearer-token query does)."""
    return sa.select(table.c.hits).where(table.c.key == sa.bindparam(key_param),
                                         table.c.window_start == sa.bindparam(start_param)) \
        .scalar_subquery().label(label)


_counters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_counters_lock = threading.Lock()


def counters(site) -> Counters:
    """The site's counters (one per Site object, that is per worker process)."""
    found = _counters.get(site)
    if found is None:
        with _counters_lock:
            found = _counters.get(site)
            if found is None:
                found = _counters[site] = Counters(site.engine,
                                                   site.tables.tables["crbm_rate_counters"])
    return found


# -- the per-IP throttles on signing in and on password reset requests --------------------
# Settings (``crbm settings set login_rate_limit_ip 50``): events per IP address (IPv6: per
# /64) per THROTTLE_MINUTES; 0 turns a throttle off. Failed sign-ins count (web and API
# basic authentication), not successful ones; every reset request counts.
THROTTLE_MINUTES = 15
IP_SETTINGS = {"login_rate_limit_ip": 20, "reset_rate_limit_ip": 5}


def _limit(settings: dict, name: str) -> int:
    value = settings.get(name, IP_SETTINGS[name])
    return value if isinstance(value, int) and not isinstance(value, bool) else IP_SETTINGS[name]


def login_rule(settings: dict) -> Rule:
    return Rule("login-ip", _limit(settings, "login_rate_limit_ip"), THROTTLE_MINUTES * 60)


def reset_rule(settings: dict) -> Rule:
    return Rule("reset-ip", _limit(settings, "reset_rate_limit_ip"), THROTTLE_MINUTES * 60)
