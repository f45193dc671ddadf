"""Notifying users: the one call plugins make (part of the public surface, docs/plugins.md).

    from core.apps.notifications import notify
    notify(site, [user_id, ...], "Acme was assigned to you", module="accounts",
           record_id=acme_id, key=f"assign:{acme_id}:{version}", connection=conn)

- **One row per active user.** Unknown and inactive users are skipped (a workflow naming
  someone who has left must not fail the save); how many is on the result's ``skipped``.
- **In the caller's transaction** when ``connection`` is given: a save that rolls back
  leaves no notification behind, as the webhook outbox does. Without it, its own.
- **Idempotent with ``key``**: a second call with the same key adds nothing for a user who
  already has it — a retried or redelivered job notifies once. The unique index decides
  (ON CONFLICT DO NOTHING / INSERT IGNORE), so two workers racing cannot both insert.
- **Set-based**: one SELECT of the active users, one INSERT ... SELECT for all of them.
- The message is stored as given, plain text (the page escapes it); it is not translated:
  the caller writes it in the reader's language if it knows it.
- ``url`` is where the notification leads: a path of this site ("/m/accounts/<id>") or an
  http(s) address. About a record (``module`` + ``record_id``) without a ``url``, it leads
  to the record — and the link is shown only while the user may still view the record.

Bad arguments raise ``ValidationError`` ({argument: message}) and write nothing.
"""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from core.apps.notifications.tables import MAX_KEY, MAX_MESSAGE, MAX_URL, TABLE
from core.kernel.errors import N_, Message, ValidationError
from core.kernel.fields import UTCDateTime
from core.kernel.records import now

IN_BATCH = 500  # user ids per IN list


class Notified(int):
    """How many notifications were made (an ``int``), with ``skipped``: the users given
    that are unknown or inactive."""

    skipped: int

    def __new__(cls, made: int, skipped: int = 0):
        value = super().__new__(cls, made)
        value.skipped = skipped
        return value


def url_problem(url: str) -> Message | None:
    """Why ``url`` cannot be a notification's link (None: it can). A path of this site or
    an http(s) address: never ``javascript:`` or a protocol-relative ``//host``."""
    if len(url) > MAX_URL:
        return Message(N_("must be at most %(max)s characters"), max=MAX_URL)
    if url.startswith("/") and not url.startswith(("//", "/\\")):
        return None
    lowered = url.lower()
    if lowered.startswith(("https://", "http://")) and len(url) > len("https://") \
            and not any(c.isspace() for c in url):
        return None
    return Message(N_("must be a path of this site (/...) or an http(s) address"))


def _checked(site, user_ids, message, module, record_id, url, key) -> tuple[list[str], dict]:
    errors: dict = {}
    if isinstance(user_ids, (str, bytes)) or not isinstance(user_ids, Iterable):
        errors["user_ids"] = Message(N_("must be a list of user ids"))
        ids: list[str] = []
    else:
        ids = list(dict.fromkeys(str(u) for u in user_ids if u))
    if not isinstance(message, str) or not message.strip():
        errors["message"] = Message(N_("is required"))
    elif len(message) > MAX_MESSAGE:
        errors["message"] = Message(N_("must be at most %(max)s characters"), max=MAX_MESSAGE)
    if (module is None) != (record_id is None):
        errors["record_id" if module else "module"] = Message(
            N_("module and record_id go together"))
    elif module is not None and module not in site.registry.modules:
        errors["module"] = Message(N_("no module named %(name)s"), name=repr(module))
    if url is not None:
        problem = url_problem(url) if isinstance(url, str) else Message(N_("must be text"))
        if problem is not None:
            errors["url"] = problem
    if key is not None and (not isinstance(key, str) or not key or len(key) > MAX_KEY):
        errors["key"] = Message(N_("must be text of 1 to %(max)s characters"), max=MAX_KEY)
    return ids, errors


def _insert(dialect: str, table: sa.Table):
    """INSERT that skips a row whose (user, key) exists: the unique index decides."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        return sqlite.insert(table).on_conflict_do_nothing()
    return sa.insert(table).prefix_with("IGNORE")  # MariaDB / MySQL (values checked above)


def notify(site, user_ids: Iterable[str], message: str, *, module: str | None = None,
           record_id: str | None = None, url: str | None = None, key: str | None = None,
           connection=None) -> Notified:
    """Notify each active user of ``user_ids``; returns how many notifications were made
    (``.skipped``: unknown or inactive users). See the module's docstring."""
    ids, errors = _checked(site, user_ids, message, module, record_id, url, key)
    if errors:
        raise ValidationError(errors)
    if not ids:
        return Notified(0)
    if connection is not None:
        return _notify(site, connection, ids, message, module, record_id, url, key)
    with site.engine.begin() as conn:
        return _notify(site, conn, ids, message, module, record_id, url, key)


def _notify(site, conn, ids, message, module, record_id, url, key) -> Notified:
    table, users = site.tables.tables[TABLE], site.tables.tables["crbm_users"]
    made = active = 0
    values = {"message": sa.literal(message, sa.Text), "module": sa.literal(module, sa.String),
              "record_id": sa.literal(None if record_id is None else str(record_id), sa.String),
              "url": sa.literal(url, sa.String), "key": sa.literal(key, sa.String),
              "created_at": sa.literal(now(), UTCDateTime())}
    for start in range(0, len(ids), IN_BATCH):
        batch = ids[start:start + IN_BATCH]
        chosen = sa.and_(users.c.id.in_(batch), users.c.active.is_(True))
        active += conn.execute(sa.select(sa.func.count()).where(chosen)).scalar_one()
        rows = sa.select(users.c.id, *(v.label(k) for k, v in values.items())).where(chosen)
        insert = _insert(conn.dialect.name, table).from_select(["user_id", *values], rows)
        if conn.dialect.name == "postgresql":  # psycopg reports no rowcount for INSERT ... SELECT
            made += len(conn.execute(insert.returning(table.c.id)).all())
        else:
            made += conn.execute(insert).rowcount
    return Notified(made, len(ids) - active)
