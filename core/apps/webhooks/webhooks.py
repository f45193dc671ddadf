"""Webhooks: record events sent to other systems, signed, retried, logged.

Three parts:

* **Subscriptions** (``crbm_webhooks``): a URL, a module, the events wanted (created,
  updated, deleted), optionally the fields whose change makes an update worth sending, and
  the user whose rights decide which records are sent (its owner). Each has a secret: the
  key of the HMAC-SHA256 signature of every body (kept readable: it must sign).
* **The outbox** (``crbm_webhook_deliveries``): the kernel's own ``crbm_after_save`` and
  ``crbm_after_delete`` write one row per matching subscription per record, with the JSON
  body, *in the save's transaction*: a rolled-back save sends nothing and a committed one
  is never lost. Nothing is sent during a save, so a dead endpoint never slows one.
* **Delivery** (``deliver_due``, run by the scheduler every few seconds): claims due rows,
  POSTs them with a short timeout, and records the outcome; failures are retried with
  growing, jittered delays until the last attempt marks the delivery failed.

docs/webhooks.md is the user's side of this (payload, headers, verifying a signature).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import random
import secrets
import threading
import uuid
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import sqlalchemy as sa

from core.kernel.errors import N_, Message, NotFoundError, ValidationError
from core.kernel.fields import UTC
from core.kernel.hookspecs import hookimpl
from core.kernel.records import User

log = logging.getLogger(__name__)

EVENTS = ("created", "updated", "deleted")
BACKOFF = (30, 120, 600, 3600, 21600)  # seconds before retry 1, 2, 3...; the last repeats
MAX_ATTEMPTS = 8
TIMEOUT = 5.0  # seconds for connecting, and for each read, of one delivery
WORKERS = 4  # subscriptions served at once by one deliver_due run
LEASE = dt.timedelta(minutes=15)  # a claimed delivery another worker may take over after this
KEEP_DAYS = 30  # delivered and failed deliveries older than this are pruned
MAX_URL = 2000
SETTINGS = {  # site settings read by deliver_due, with their defaults
    "webhooks_max_attempts": MAX_ATTEMPTS,
    "webhooks_backoff_seconds": list(BACKOFF),
    "webhooks_timeout_seconds": TIMEOUT,
}


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def _t(site, name: str) -> sa.Table:
    return site.tables.tables[name]


# -- subscriptions ------------------------------------------------------------------------

def check_url(url: str) -> Message | None:
    """Why ``url`` cannot receive webhooks, or None: an absolute http(s) URL without
    credentials (they would end up in logs and on the admin page)."""
    if not url:
        return Message(N_("is required"))
    if len(url) > MAX_URL:
        return Message(N_("is longer than %(max)s characters"), max=MAX_URL)
    if any(c.isspace() or ord(c) < 32 for c in url):
        return Message(N_("must not contain spaces"))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError:
        return Message(N_("is not a valid address"))
    if parts.scheme.lower() not in ("http", "https"):
        return Message(N_("must start with http:// or https://"))
    if not parts.hostname:
        return Message(N_("must be an absolute address with a host name"))
    if parts.username is not None or parts.password is not None:
        return Message(N_("must not contain a user name or password"))
    return None


def _private_host(url: str) -> bool:
    """Whether the URL names this machine or a private network by name or address
    (a user who is not an administrator must not make the server call those)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost" or host.endswith((".localhost", ".local")):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def _names(value) -> list[str]:
    """A list of names from a list or a text separated by spaces or commas."""
    if value is None:
        return []
    if isinstance(value, str):
        value = value.replace(",", " ").split()
    return [str(v).strip() for v in value if str(v).strip()]


def _validate(site, actor: User, owner: User, values: Mapping) -> tuple[dict, dict]:
    """The row values a subscription would have, and the errors ({field: Message})."""
    errors: dict = {}
    url = str(values.get("url") or "").strip()
    problem = check_url(url)
    if problem is None and not actor.is_admin and _private_host(url) and \
            not site.settings.get("webhooks_allow_private_urls"):
        problem = Message(N_("must be a public address"))
    if problem is not None:
        errors["url"] = problem
    module_name = str(values.get("module") or "").strip()
    module = site.registry.modules.get(module_name)
    if not module_name:
        errors["module"] = Message(N_("is required"))
    elif module is None:
        errors["module"] = Message(N_("no module named %(name)s"), name=repr(module_name))
    elif site.access.mode(owner, module) == "disabled" or \
            not site.access.can(owner, module, "list"):
        errors["module"] = Message(N_("%(user)s may not list %(module)s"),
                                   user=owner.username, module=module.label)
    raw_events = values.get("events")
    events = _names(raw_events) if isinstance(raw_events, (str, list, tuple)) else None
    if events is None and raw_events is not None:
        errors["events"] = Message(N_("must be a list of events"))
    elif not events:
        errors["events"] = Message(N_("choose at least one event"))
    else:
        unknown = [e for e in events if e not in EVENTS]
        if unknown:
            errors["events"] = Message(N_("unknown event %(event)s (use %(events)s)"),
                                       event=repr(unknown[0]), events=", ".join(EVENTS))
    raw_fields = values.get("fields")
    fields = _names(raw_fields) if isinstance(raw_fields, (str, list, tuple)) or \
        raw_fields is None else None
    if fields is None:
        errors["fields"] = Message(N_("must be a list of field names"))
    elif module is not None:
        unknown = [f for f in fields if f not in module.fields or not module.fields[f].stored]
        if unknown:
            errors["fields"] = Message(N_("%(module)s has no field %(field)s"),
                                       module=module.label, field=repr(unknown[0]))
    active = values.get("active", True)
    if not isinstance(active, bool):
        errors["active"] = Message(N_("must be true or false"))
    row = {"url": url, "module": module_name,
           "events": " ".join(e for e in EVENTS if e in (events or ())),
           "fields": " ".join(dict.fromkeys(fields)) if fields else None,
           "active": active is not False, "user_id": owner.id}
    return row, errors


def _owner(site, actor: User, owner_id: str | None) -> User:
    """Whose rights the subscription's deliveries follow: the actor, or (administrators
    only) another active user."""
    if not owner_id or owner_id == actor.id:
        return actor
    if not actor.is_admin:
        raise ValidationError({"user_id": Message(N_("only administrators may choose "
                                                     "another user"))})
    users = _t(site, "crbm_users")
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(users.c.id, users.c.username, users.c.is_admin)
                           .where(users.c.id == str(owner_id), users.c.active.is_(True))
                           ).first()
    if row is None:
        raise ValidationError({"user_id": Message(N_("no active user with id %(id)s"),
                                                  id=owner_id)})
    return User(row.id, row.username, row.is_admin)


def subscribe(site, user: User, url: str, module: str, events: Iterable[str] | str,
              fields: Iterable[str] | str | None = None, *, active: bool = True,
              owner_id: str | None = None) -> dict:
    """Create a subscription owned by ``user`` (or by ``owner_id``, for administrators).

    Returns it with its ``secret``: the caller shows it to whoever will verify the
    signatures. Raises ``ValidationError`` ({field: message}) and writes nothing when any
    value is wrong.
    """
    owner = _owner(site, user, owner_id)
    row, errors = _validate(site, user, owner, {"url": url, "module": module, "events": events,
                                                "fields": fields, "active": active})
    if errors:
        raise ValidationError(errors)
    row.update(id=str(uuid.uuid4()), secret=secrets.token_urlsafe(32), created_at=utcnow(),
               created_by=user.id)
    with site.engine.begin() as conn:
        conn.execute(_t(site, "crbm_webhooks").insert().values(**row))
    return get_subscription(site, row["id"])


def update_subscription(site, user: User, webhook_id: str, values: Mapping) -> dict:
    """Change a subscription's URL, module, events, fields, owner or active flag."""
    current = get_subscription(site, webhook_id)
    owner = _owner(site, user, values.get("user_id") or current["user_id"])
    merged = {**current, "events": current["events"], "fields": current["fields"], **values}
    row, errors = _validate(site, user, owner, merged)
    if errors:
        raise ValidationError(errors)
    table = _t(site, "crbm_webhooks")
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == current["id"]).values(**row))
    return get_subscription(site, webhook_id)


def new_secret(site, webhook_id: str) -> dict:
    """Replace a subscription's secret (when the old one may have leaked)."""
    table = _t(site, "crbm_webhooks")
    with site.engine.begin() as conn:
        done = conn.execute(table.update().where(table.c.id == str(webhook_id))
                            .values(secret=secrets.token_urlsafe(32))).rowcount
    if not done:
        raise NotFoundError(f"no webhook with id {webhook_id}")
    return get_subscription(site, webhook_id)


def delete_subscription(site, webhook_id: str) -> None:
    """Remove a subscription and its delivery log (pending deliveries are not sent)."""
    hooks, deliveries = _t(site, "crbm_webhooks"), _t(site, "crbm_webhook_deliveries")
    with site.engine.begin() as conn:
        conn.execute(deliveries.delete().where(deliveries.c.webhook_id == str(webhook_id)))
        if not conn.execute(hooks.delete().where(hooks.c.id == str(webhook_id))).rowcount:
            raise NotFoundError(f"no webhook with id {webhook_id}")


def _subscription_query(site):
    """Subscriptions with their owner's name and their latest delivery's status and time
    (correlated subqueries along the (webhook_id, created_at) index)."""
    hooks, users = _t(site, "crbm_webhooks"), _t(site, "crbm_users")
    deliveries = _t(site, "crbm_webhook_deliveries")

    def latest(column):
        return sa.select(column).where(deliveries.c.webhook_id == hooks.c.id) \
            .order_by(deliveries.c.created_at.desc(), deliveries.c.id.desc()).limit(1) \
            .correlate(hooks).scalar_subquery()

    return sa.select(hooks, users.c.username.label("owner"),
                     latest(deliveries.c.status).label("last_status"),
                     latest(deliveries.c.created_at).label("last_delivery_at")) \
        .select_from(hooks.outerjoin(users, users.c.id == hooks.c.user_id))


def _subscription(row) -> dict:
    out = dict(row)
    out["events"] = out["events"].split()
    out["fields"] = out["fields"].split() if out["fields"] else None
    return out


def subscriptions(site, user: User | None = None) -> list[dict]:
    """Every subscription (those owned by ``user`` when given) with its last delivery's
    status and time, in one query."""
    hooks = _t(site, "crbm_webhooks")
    stmt = _subscription_query(site).order_by(hooks.c.module, hooks.c.url, hooks.c.id)
    if user is not None:
        stmt = stmt.where(hooks.c.user_id == user.id)
    with site.engine.connect() as conn:
        return [_subscription(r) for r in conn.execute(stmt).mappings()]


def get_subscription(site, webhook_id: str, user: User | None = None) -> dict:
    """One subscription (NotFoundError if it does not exist or, with ``user``, is not
    theirs)."""
    hooks = _t(site, "crbm_webhooks")
    stmt = _subscription_query(site).where(hooks.c.id == str(webhook_id))
    if user is not None:
        stmt = stmt.where(hooks.c.user_id == user.id)
    with site.engine.connect() as conn:
        row = conn.execute(stmt).mappings().first()
    if row is None:
        raise NotFoundError(f"no webhook with id {webhook_id}")
    return _subscription(row)


def deliveries(site, webhook_id: str, limit: int = 100) -> list[dict]:
    """A subscription's delivery log, newest first."""
    table = _t(site, "crbm_webhook_deliveries")
    stmt = sa.select(table).where(table.c.webhook_id == str(webhook_id)) \
        .order_by(table.c.created_at.desc(), table.c.id.desc()).limit(limit)
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(stmt).mappings()]


def retry(site, delivery_id: str, webhook_id: str | None = None, when=None) -> bool:
    """Send a failed (or waiting) delivery at the next run ("Retry now"). It gets one more
    attempt; failing again marks it failed again. Returns whether there was one to retry."""
    table = _t(site, "crbm_webhook_deliveries")
    stmt = table.update().where(table.c.id == str(delivery_id),
                                table.c.status.in_(("failed", "pending")))
    if webhook_id is not None:
        stmt = stmt.where(table.c.webhook_id == str(webhook_id))
    with site.engine.begin() as conn:
        return bool(conn.execute(stmt.values(status="pending",
                                             next_attempt_at=when or utcnow())).rowcount)


def prune(site, when: dt.datetime | None = None, keep_days: int = KEEP_DAYS) -> int:
    """Forget delivered and failed deliveries older than ``keep_days``."""
    table = _t(site, "crbm_webhook_deliveries")
    cutoff = (when or utcnow()) - dt.timedelta(days=keep_days)
    with site.engine.begin() as conn:
        return conn.execute(table.delete().where(table.c.status.in_(("delivered", "failed")),
                                                 table.c.created_at < cutoff)).rowcount


# -- the outbox: written in the saving transaction ----------------------------------------

def _record_json(site, module, record: Mapping) -> dict:
    """The record as the API shows it (core.api.schemas: decimals as exact strings,
    times in UTC ISO 8601), with the fields the write holds."""
    from core.api.schemas import shapes  # core.api imports this module
    shape = shapes(site.registry, module)
    return shape.record_json(record, [name for name in shape.readable if name in record])


def _time_json(value: dt.datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _matching(site, conn, module_name: str) -> list[dict]:
    """The active subscriptions to a module whose owner is active: one indexed query."""
    hooks, users = _t(site, "crbm_webhooks"), _t(site, "crbm_users")
    stmt = sa.select(hooks.c.id, hooks.c.events, hooks.c.fields, hooks.c.user_id,
                     users.c.username, users.c.is_admin) \
        .join(users, users.c.id == hooks.c.user_id) \
        .where(hooks.c.module == module_name, hooks.c.active.is_(True),
               users.c.active.is_(True))
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _viewable(site, conn, module, owner: User, ids: list[str]) -> set[str]:
    """Which of these records the owner may view, on the saving connection (so it sees
    the write). Deleted records count: a delete is announced to whoever could see it."""
    if not site.access.restricts(owner, module, "view"):
        return set(ids)
    return site.records.allowed(module.name, ids, owner, "view", connection=conn, deleted=True)


def enqueue(site, conn, module, events: Sequence[tuple[str, Mapping, list[str]]]) -> int:
    """Write the deliveries for ``events`` — (event, record, changed field names) — of one
    module into the outbox, on ``conn`` (the write's transaction). Returns how many."""
    if site is None or not events:
        return 0
    subscriptions = _matching(site, conn, module.name)
    if not subscriptions:
        return 0
    stamp = utcnow()
    rows = []
    viewable: dict[str, set[str]] = {}  # owner id -> the record ids they may view
    as_json: dict[int, dict] = {}  # event index -> its record as JSON (made once)
    for sub in subscriptions:
        wanted = set(sub["events"].split())
        fields = set(sub["fields"].split()) if sub["fields"] else None
        chosen = [(index, event, record, changed)
                  for index, (event, record, changed) in enumerate(events)
                  if event in wanted and
                  (event != "updated" or fields is None or fields.intersection(changed))]
        if not chosen:
            continue
        owner = User(sub["user_id"], sub["username"], sub["is_admin"])
        if owner.id not in viewable:
            viewable[owner.id] = _viewable(site, conn, module, owner,
                                           [str(r["id"]) for _, r, _ in events])
        for index, event, record, changed in chosen:
            if str(record["id"]) not in viewable[owner.id]:
                continue
            if index not in as_json:
                as_json[index] = _record_json(site, module, record)
            delivery_id = str(uuid.uuid4())
            body = {"id": delivery_id, "event": event, "module": module.name,
                    "record_id": str(record["id"]), "occurred_at": _time_json(stamp)}
            if event == "updated":
                body["changed"] = list(changed)
            body["record"] = as_json[index]
            rows.append({"id": delivery_id, "webhook_id": sub["id"], "event": event,
                         "module": module.name, "record_id": str(record["id"]),
                         "body": json.dumps(body, separators=(",", ":")),
                         "status": "pending", "attempts": 0, "next_attempt_at": stamp,
                         "created_at": stamp})
    if rows:
        conn.execute(_t(site, "crbm_webhook_deliveries").insert(), rows)
    return len(rows)


@hookimpl(trylast=True)
def crbm_after_save(site, module, batch, connection):
    events = []
    for change in batch:
        changed = [] if change.is_new else list(change.changes)
        if not change.is_new:  # a module feature's data the write replaced (the lines)
            changed += list(change.features)
        events.append(("created" if change.is_new else "updated", change.record, changed))
    enqueue(site, connection, module, events)


@hookimpl(trylast=True)
def crbm_after_derived(site, module, batch, connection):
    """Figures the system set (``RecordService.set_derived``) are updates like any other
    to a subscriber: the record and the fields that moved."""
    enqueue(site, connection, module,
            [("updated", change.record, list(change.changes)) for change in batch])


@hookimpl(trylast=True)
def crbm_after_delete(site, module, records, connection):
    enqueue(site, connection, module, [("deleted", record, []) for record in records])


# -- delivery -----------------------------------------------------------------------------

def signature(secret: str, body: bytes) -> str:
    """The X-CRBM-Signature header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass
class Outcome:
    """What one deliver_due run did."""

    delivered: int = 0
    retrying: int = 0
    failed: int = 0
    deferred: int = 0  # not tried: an earlier one to the same subscription failed this run
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def count(self, what: str, n: int = 1) -> None:  # called from the sending threads
        with self._lock:
            setattr(self, what, getattr(self, what) + n)


def backoff_delay(attempts: int, schedule: Sequence[float], rng=random) -> dt.timedelta:
    """How long to wait after the ``attempts``-th failure: the schedule's entry (the last
    repeats), give or take 10 % so many failed deliveries do not come back at once."""
    base = float(schedule[min(attempts, len(schedule)) - 1]) if schedule else 0.0
    return dt.timedelta(seconds=base * rng.uniform(0.9, 1.1))


def _due(site, conn, when: dt.datetime, limit: int) -> list[dict]:
    """Due deliveries of active subscriptions, oldest first: pending ones whose time has
    come, and claimed ones whose claim has lapsed (a worker died while sending)."""
    table, hooks = _t(site, "crbm_webhook_deliveries"), _t(site, "crbm_webhooks")
    stmt = sa.select(table.c.id, table.c.webhook_id, table.c.event, table.c.body,
                     table.c.attempts, table.c.next_attempt_at, hooks.c.url, hooks.c.secret) \
        .join(hooks, hooks.c.id == table.c.webhook_id) \
        .where(table.c.status.in_(("pending", "sending")), table.c.next_attempt_at <= when,
               hooks.c.active.is_(True)) \
        .order_by(table.c.next_attempt_at, table.c.created_at, table.c.id).limit(limit)
    return [dict(r) for r in conn.execute(stmt).mappings()]


def _claim(site, rows: list[dict], when: dt.datetime) -> list[dict]:
    """Mark rows as being sent by this worker. A row another worker claimed first (its
    UPDATE committed, or holds the row lock until it does) no longer matches, so each
    delivery is sent once. Rows are locked in id order: two workers never deadlock."""
    table = _t(site, "crbm_webhook_deliveries")
    claimed = set()
    with site.engine.begin() as conn:
        for row in sorted(rows, key=lambda r: r["id"]):
            done = conn.execute(table.update().where(
                table.c.id == row["id"], table.c.status.in_(("pending", "sending")),
                table.c.next_attempt_at <= when)
                .values(status="sending", next_attempt_at=when + LEASE)).rowcount
            if done == 1:
                claimed.add(row["id"])
    return [row for row in rows if row["id"] in claimed]  # still oldest first


def _send(client, row: dict) -> tuple[int | None, str | None]:
    """POST one delivery: (status code, error). The response body is never read."""
    import httpx

    body = row["body"].encode()
    headers = {"Content-Type": "application/json", "User-Agent": "CRBM-Webhooks",
               "X-CRBM-Event": row["event"], "X-CRBM-Delivery": row["id"],
               "X-CRBM-Signature": signature(row["secret"], body)}
    try:
        with client.stream("POST", row["url"], content=body, headers=headers) as response:
            code = response.status_code
    except (httpx.HTTPError, httpx.InvalidURL, ValueError, OSError) as exc:
        return None, (f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)[:500]
    if 200 <= code < 300:
        return code, None
    return code, f"HTTP {code}"


def deliver_due(site, now: dt.datetime | None = None, limit: int = 100, *,
                backoff: Sequence[float] | None = None, timeout: float | None = None,
                workers: int = WORKERS, rng=random) -> Outcome:
    """Send the deliveries that are due at ``now`` (default: now), at most ``limit``.

    Each subscription's deliveries go in the order they were made, one at a time; the
    subscriptions are served in parallel (``workers`` threads), so a slow or dead endpoint
    holds up only its own. When one fails, the others to the same subscription wait with
    it (``deferred``) instead of each costing a timeout.
    """
    import httpx

    when = now or utcnow()
    settings = site.settings
    backoff = backoff if backoff is not None else \
        settings.get("webhooks_backoff_seconds", SETTINGS["webhooks_backoff_seconds"])
    timeout = timeout if timeout is not None else \
        float(settings.get("webhooks_timeout_seconds", TIMEOUT))
    max_attempts = int(settings.get("webhooks_max_attempts", MAX_ATTEMPTS))
    with site.engine.connect() as conn:
        due = _due(site, conn, when, limit)
    claimed = _claim(site, due, when) if due else []
    outcome = Outcome()
    if not claimed:
        return outcome
    by_hook: dict[str, list[dict]] = {}
    for row in claimed:
        by_hook.setdefault(row["webhook_id"], []).append(row)

    def serve(rows: list[dict]) -> None:
        for index, row in enumerate(rows):
            code, error = _send(client, row)
            retry_at = _record(site, row, when, code, error, backoff, max_attempts, rng,
                               outcome)
            if error is not None:  # the endpoint is failing: the rest wait with this one
                _defer(site, rows[index + 1:], retry_at or when + backoff_delay(1, backoff,
                                                                               rng))
                outcome.count("deferred", len(rows) - index - 1)
                return

    with httpx.Client(timeout=timeout, follow_redirects=False) as client, \
            ThreadPoolExecutor(max_workers=max(1, min(workers, len(by_hook)))) as pool:
        for future in [pool.submit(serve, rows) for rows in by_hook.values()]:
            future.result()
    return outcome


def _record(site, row: dict, when: dt.datetime, code: int | None, error: str | None,
            backoff: Sequence[float], max_attempts: int, rng, outcome: Outcome):
    """Store what an attempt gave; returns when it will be tried again (None: not)."""
    table = _t(site, "crbm_webhook_deliveries")
    attempts = row["attempts"] + 1
    values = {"attempts": attempts, "last_status_code": code, "last_error": error}
    retry_at = None
    if error is None:
        values.update(status="delivered", delivered_at=utcnow(), next_attempt_at=None)
        outcome.count("delivered")
    elif attempts >= max_attempts:
        values.update(status="failed", next_attempt_at=None)
        outcome.count("failed")
    else:
        retry_at = when + backoff_delay(attempts, backoff, rng)
        values.update(status="pending", next_attempt_at=retry_at)
        outcome.count("retrying")
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == row["id"], table.c.status == "sending")
                     .values(**values))
    if error is not None:
        log.info("webhook delivery %s to subscription %s failed (attempt %s): %s",
                 row["id"], row["webhook_id"], attempts, error)
    return retry_at


def _defer(site, rows: list[dict], until: dt.datetime) -> None:
    """Give claimed rows back, untried, to be sent at ``until``."""
    if not rows:
        return
    table = _t(site, "crbm_webhook_deliveries")
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id.in_([r["id"] for r in rows]),
                                          table.c.status == "sending")
                     .values(status="pending", next_attempt_at=until))
