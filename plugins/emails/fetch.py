"""Fetching mail: each active mailbox's new messages filed as email records.

The scheduled task ``emails.fetch_mail`` (every 5 minutes) queues one job per active
mailbox — a user's mail account or a group inbox — keyed by the mailbox, so a slow server
never piles up runs: the job ``emails.fetch`` (``fetch_mailbox``) does the work.

Contract:

- **New messages only, per folder.** ``emails_fetch_state`` keeps, per mailbox and folder,
  the folder's UIDVALIDITY and the last UID filed. A run asks IMAP for the UIDs above it,
  at most the mailbox's ``batch_size`` (capped by the site's ``fetch_batch``) in all, the
  oldest first. A changed UIDVALIDITY (the server rebuilt the folder) starts that folder
  again from the first message; what was filed already is recognised (below).
- **Each message filed once per mailbox.** Its ``message_key`` is the mailbox id and its
  Message-ID (a hash of its header block when it has none); a key already in ``emails``
  (deleted ones included) is not filed again. So re-running, a redelivered job, a
  UIDVALIDITY change, or a message moved on the server between runs from one monitored
  folder to another files nothing twice and loses nothing (it is new in its new folder).
- **One transaction per batch**: the emails (``records.create_many``: the save hooks run
  once for the batch — auto-linking, threading), their attachments
  (``attachments.add``), the raw message when the site keeps it, and the folder's new
  last UID commit together; files stored for a batch that failed are removed. A batch a
  save hook refuses is filed message by message, and a message refused alone is skipped
  (named in ``last_error``) rather than blocking the folder.
- **What is filed**: subject, from/to/cc, date sent, text and HTML body (the html field
  sanitizes it), Message-ID, In-Reply-To, References; inbound and "received", unread, in
  the owner's Inbox (a mail account) or the group folder (a group inbox); messages of the
  mailbox's ``sent_folder`` are outbound and "sent", in the owner's Sent folder. An
  attachment over the site's size limit is left out with a note at the end of the body;
  a message that cannot be read at all is skipped and named in ``last_error``.
- The mailbox's ``last_fetch_at`` and ``last_error`` say how the last run went (in the
  owner's language); a server that refuses the sign-in is a ``last_error``, not a failed
  job. POP3 mailboxes have only their inbox; their messages are recognised by key from
  their headers (TOP), and only new ones are downloaded.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import imaplib
import json
import logging
import poplib

import sqlalchemy as sa

from core.kernel import i18n
from core.kernel.database import ID
from core.kernel.errors import N_, CrbmError, Message
from core.kernel.fields import UTCDateTime
from core.kernel.hooktypes import JobHandler, ScheduledTask
from core.kernel.records import SYSTEM_USER, User
from core.web import uploads
from plugins.emails import attachments, folders, mailboxes, settings
from plugins.emails.parse import ParseError, parse

EMAILS = "emails"
STATE = "emails_fetch_state"
TASK = "emails.fetch_mail"
JOB = "emails.fetch"
CHUNK = 100  # messages downloaded and filed per transaction
POP3_INBOX = "INBOX"
log = logging.getLogger(__name__)


def tables(metadata) -> None:
    sa.Table(STATE, metadata,
             sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
             sa.Column("module", sa.String(60), nullable=False),
             sa.Column("mailbox_id", ID, nullable=False),
             sa.Column("folder", sa.String(255), nullable=False),
             sa.Column("uidvalidity", sa.BigInteger),
             sa.Column("last_uid", sa.BigInteger, nullable=False, default=0),
             sa.Column("updated_at", UTCDateTime()),
             sa.UniqueConstraint("module", "mailbox_id", "folder", name="uq_emails_fetch_state"))


# -- the scheduled task and the job -----------------------------------------------------------

def scheduled_tasks() -> list[ScheduledTask]:
    return [ScheduledTask(TASK, N_("Fetch mail from mail accounts and group inboxes"),
                          run_task, "@every 5m")]


def job_handlers() -> list[JobHandler]:
    return [JobHandler(JOB, run_job, retries=2)]


def active_mailboxes(site) -> list[tuple[str, str]]:
    """(module, id) of every mailbox to fetch."""
    out = []
    with site.engine.connect() as conn:
        for name in mailboxes.MODULES:
            module = site.registry.modules.get(name)
            if module is None:
                continue
            table = site.records.table(module)
            out += [(name, row.id) for row in conn.execute(sa.select(table.c.id).where(
                table.c.deleted.is_(False), table.c.active.is_(True)).order_by(table.c.id))]
    return out


def run_task(site, due) -> str:
    from core import jobs

    found = active_mailboxes(site)
    for module, record_id in found:
        jobs.enqueue(site, JOB, {"module": module, "id": record_id},
                     key=f"{JOB}:{module}:{record_id}")
    return f"queued {len(found)} mailboxes"


def run_job(site, payload: dict) -> str:
    module = str(payload.get("module"))
    if module not in mailboxes.MODULES:
        return f"no such mailbox module {module!r}"
    return fetch_mailbox(site, module, str(payload.get("id"))).summary()


# -- one run -------------------------------------------------------------------------------------

class Run:
    """What a run did, for the job's result and the mailbox's ``last_error``."""

    def __init__(self):
        self.filed = 0
        self.seen = 0
        self.problems: list[Message] = []

    def summary(self) -> str:
        text = f"filed {self.filed} of {self.seen} messages"
        return text + (f"; {len(self.problems)} problems: " + "; ".join(self.problems)
                       if self.problems else "")


def fetch_mailbox(site, module: str, mailbox_id: str) -> Run:
    """Fetch one mailbox now (the job's work; tests and the bench call it directly)."""
    run = Run()
    with site.engine.connect() as conn:
        box = mailboxes.load(site, conn, module, mailbox_id)
    if box is None:
        run.problems.append(Message(N_("The mailbox no longer exists.")))
        return run
    limit = max(1, min(box.batch_size or 1, settings.email_settings(site).fetch_batch))
    target = _Target(site, box)
    try:
        if target.actor is None:
            raise mailboxes.MailboxError(Message(N_("The mailbox has no owner to file its "
                                                    "messages for.")))
        if box.protocol == "pop3":
            _fetch_pop3(site, box, target, limit, run)
        else:
            _fetch_imap(site, box, target, limit, run)
    except mailboxes.MailboxError as error:
        run.problems.insert(0, error.message)
    except (OSError, imaplib.IMAP4.error, poplib.error_proto) as error:
        # the server went away mid-run: what was filed stays filed, the next run goes on
        run.problems.insert(0, mailboxes.failure(error, box, signing_in=False).message)
    _record_outcome(site, box, run)
    return run


class _Target:
    """Where a mailbox's messages go: its owner and their folders."""

    def __init__(self, site, box: mailboxes.Mailbox):
        self.box = box
        self.owner = box.owner_user_id
        self.inbox = self.sent = None
        # the emails are written as their owner: the links they carry (the mail account,
        # private to its owner) are checked with the writer's sight
        self.actor = SYSTEM_USER if box.is_group else None
        if not self.owner:
            return
        users = site.tables.tables["crbm_users"]
        with site.engine.begin() as conn:
            row = conn.execute(sa.select(users.c.id, users.c.username, users.c.is_admin)
                               .where(users.c.id == self.owner)).first()
            if row is None:
                self.owner = None
                return
            self.actor = User(id=row.id, username=row.username, is_admin=bool(row.is_admin))
            if box.is_group:
                self.inbox = box.group_folder_id or \
                    folders.ensure_group(site, conn)["Group Inbox"]
            else:
                mine = folders.ensure_personal(site, conn, self.owner)
                self.inbox, self.sent = mine["inbox"], mine["sent"]
        self.sent = self.sent or self.inbox


def _fetch_imap(site, box, target, limit: int, run: Run) -> None:
    client = mailboxes.imap(box)
    try:
        budget = limit
        for folder in box.monitored:
            if budget <= 0:
                break
            try:
                selected = client.select_folder(folder, readonly=True)
            except Exception as error:  # noqa: BLE001 - one missing folder; the others go on
                run.problems.append(Message(N_("Folder %(folder)s: %(reason)s"),
                                            folder=folder, reason=mailboxes.reason(error)))
                continue
            uidvalidity = int(selected.get(b"UIDVALIDITY") or 0)
            state = _state(site, box, folder)
            last = state["last_uid"] if state["uidvalidity"] == uidvalidity else 0
            uids = sorted(u for u in client.search(["UID", f"{last + 1}:*"]) if u > last)
            uids = uids[:budget]
            budget -= len(uids)
            sent = folder == box.sent_folder
            for at in range(0, len(uids), CHUNK):
                chunk = uids[at:at + CHUNK]
                found = client.fetch(chunk, [b"BODY.PEEK[]"])
                # a message deleted since the search is simply not there any more
                items = [(uid, found[uid][b"BODY[]"]) for uid in chunk
                         if b"BODY[]" in found.get(uid, {})]
                _file(site, box, target, folder, uidvalidity, items, sent, run,
                      last_uid=chunk[-1])
    finally:
        with contextlib.suppress(Exception):
            client.logout()


def _fetch_pop3(site, box, target, limit: int, run: Run) -> None:
    session = mailboxes.pop3(box)
    try:
        count = len(session.list()[1])
        keyed = []  # (number, key) of every message, from its headers
        for number in range(1, count + 1):
            head = b"\r\n".join(session.top(number, 0)[1])
            keyed.append((number, _key_of_head(box, head)))
        known = _known_keys(site, [key for _, key in keyed])
        new = [number for number, key in keyed if key not in known][:limit]
        for at in range(0, len(new), CHUNK):
            items = [(number, b"\r\n".join(session.retr(number)[1]) + b"\r\n")
                     for number in new[at:at + CHUNK]]
            _file(site, box, target, POP3_INBOX, None, items, False, run, last_uid=None)
    finally:
        with contextlib.suppress(Exception):
            session.quit()


def _key_of_head(box, head: bytes) -> str:
    try:
        return message_key(box.id, parse(head + b"\r\n\r\n"))
    except ParseError:
        return message_key(box.id, None, head)


def message_key(mailbox_id: str, parsed, head: bytes = b"") -> str:
    """The mailbox id and the Message-ID; a hash of the header block without one (the
    same bytes in every folder the server files it in)."""
    message_id = parsed.message_id if parsed is not None else ""
    if message_id and len(message_id) <= 200:
        return f"{mailbox_id}:{message_id}"
    source = message_id.encode() if message_id else (parsed.key_source if parsed else head)
    return f"{mailbox_id}:sha256:{hashlib.sha256(source).hexdigest()}"


# -- filing --------------------------------------------------------------------------------------

def _state(site, box, folder: str) -> dict:
    """The folder's state row (made if missing): uidvalidity and last_uid."""
    table = site.tables.tables[STATE]
    where = (table.c.module == box.module, table.c.mailbox_id == box.id,
             table.c.folder == folder)
    with site.engine.begin() as conn:
        row = conn.execute(sa.select(table.c.uidvalidity, table.c.last_uid).where(*where)).first()
        if row is None:
            try:
                with conn.begin_nested():
                    conn.execute(table.insert().values(module=box.module, mailbox_id=box.id,
                                                       folder=folder, last_uid=0))
            except sa.exc.IntegrityError:
                pass  # made meanwhile by another run
            row = conn.execute(sa.select(table.c.uidvalidity, table.c.last_uid)
                               .where(*where)).first()
    return {"uidvalidity": row.uidvalidity, "last_uid": row.last_uid}


def _known_keys(site, keys, conn=None) -> set[str]:
    table = site.records.table(site.registry.module(EMAILS))
    keys = sorted(set(keys))
    found: set[str] = set()
    with contextlib.nullcontext(conn) if conn is not None else site.engine.connect() as c:
        for at in range(0, len(keys), 500):
            found |= set(c.execute(sa.select(table.c.message_key).where(
                table.c.message_key.in_(keys[at:at + 500]))).scalars())
    return found


def _file(site, box, target, folder: str, uidvalidity, items, sent: bool, run: Run, *,
          last_uid: int | None) -> None:
    """File one chunk of ``(uid, raw)``: one transaction with the folder's new last UID
    (None: POP3, no UIDs)."""
    run.seen += len(items)
    keep_raw = settings.email_settings(site).keep_raw
    limit = attachments.max_bytes(site)
    prepared = []  # (key, values, files, raw)
    for uid, raw in items:
        try:
            parsed = parse(raw)
        except Exception as error:  # noqa: BLE001 - a message that cannot be read is skipped
            run.problems.append(Message(N_("A message in %(folder)s could not be read "
                                           "(%(reason)s)."), folder=folder,
                                        reason=str(error)[:100]))
            log.info("mailbox %s: message %s in %s skipped: %s", box.id, uid, folder, error)
            continue
        key = message_key(box.id, parsed)
        values, files = _values(site, box, target, parsed, key, sent, limit)
        prepared.append((key, values, files, raw if keep_raw else None))
    try:
        _write(site, box, target, folder, uidvalidity, last_uid, prepared, run)
    except CrbmError:
        # a save hook refused something in the batch: file one by one, skip who is refused
        for one in prepared:
            try:
                _write(site, box, target, folder, None, None, [one], run)
            except CrbmError as error:
                run.problems.append(Message(N_("A message in %(folder)s was not filed "
                                               "(%(reason)s)."), folder=folder,
                                            reason=str(error)[:100]))
        _write(site, box, target, folder, uidvalidity, last_uid, [], run)


def _write(site, box, target, folder, uidvalidity, last_uid, prepared, run: Run) -> None:
    stored: list[str] = []
    state = site.tables.tables[STATE]
    files_dir = site.folder / "files"
    try:
        with site.engine.begin() as conn:
            where = (state.c.module == box.module, state.c.mailbox_id == box.id,
                     state.c.folder == folder)
            # one run at a time files into a folder: the second waits, then sees the first's
            conn.execute(sa.select(state.c.id).where(*where).with_for_update()).first()
            known = _known_keys(site, [key for key, *_ in prepared], conn)
            rows, extras = [], []
            for key, values, files, raw in prepared:
                if key in known:
                    continue
                known.add(key)
                if raw is not None:
                    values["raw_message"] = uploads.store(files_dir, "message.eml", raw)
                    stored.append(values["raw_message"])
                rows.append(values)
                extras.append(files)
            ids = site.records.create_many(EMAILS, rows, target.actor, connection=conn) \
                if rows else []
            for email_id, files in zip(ids, extras, strict=True):
                stored += attachments.add(site, conn, email_id, files)
            if last_uid is not None:
                conn.execute(state.update().where(*where).values(
                    uidvalidity=uidvalidity, last_uid=last_uid,
                    updated_at=dt.datetime.now(dt.UTC)))
        run.filed += len(rows)
    except BaseException:
        attachments.discard(site, stored)
        raise


def _fit(module, name: str, text: str | None) -> str | None:
    if not text:
        return None
    size = module.fields[name].spec.get("max_size")
    return text[:size] if size else text


def _values(site, box, target, parsed, key: str, sent: bool, limit: int):
    """The email record's values and the files to attach (those within the limit)."""
    emails = site.registry.module(EMAILS)
    kept, left_out = [], []
    for f in parsed.files:
        (kept if len(f.data) <= limit else left_out).append(f)
    body = parsed.text
    if left_out:
        notes = [Message(N_("[Attachment %(file)s (%(size)s MB) was not kept: it is larger "
                            "than %(limit)s MB.]"), file=uploads.safe_name(f.name),
                         size=f"{len(f.data) / 2**20:.1f}", limit=f"{limit / 2**20:g}")
                 for f in left_out]
        body = (body.rstrip() + "\n\n" if body.strip() else "") + "\n".join(
            _owner_text(site, target.owner, note) for note in notes)
    values = {
        "name": _fit(emails, "name", parsed.subject) or "-",
        "from_address": _fit(emails, "from_address", parsed.from_address),
        "to_addresses": parsed.to or None,
        "cc_addresses": parsed.cc or None,
        "date_sent": parsed.date or dt.datetime.now(dt.UTC),
        "body": body or None,
        "body_html": parsed.html or None,
        "direction": "outbound" if sent else "inbound",
        "status": "sent" if sent else "received",
        "message_id": _fit(emails, "message_id", parsed.message_id),
        "in_reply_to": _fit(emails, "in_reply_to", parsed.in_reply_to),
        "references": parsed.references or None,
        "is_read": False,
        "message_key": key,
        "folder_id": target.sent if sent else target.inbox,
        "assigned_user_id": target.owner,
        ("group_inbox_id" if box.is_group else "mail_account_id"): box.id,
    }
    return {k: v for k, v in values.items() if k in emails.fields}, kept


# -- the mailbox's own record of the run -----------------------------------------------------------

def _formatter(site, user_id: str | None):
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        stored = conn.execute(sa.select(users.c.preferences).where(
            users.c.id == str(user_id))).scalar() if user_id else None
    try:
        prefs = json.loads(stored) if stored else None
    except ValueError:
        prefs = None
    chosen = i18n.effective_preferences(i18n.Preferences.from_dict(prefs), site.locale_dirs)
    return i18n.formatter(chosen, site.locale_dirs)


def _owner_text(site, user_id, message: Message) -> str:
    fmt = _formatter(site, user_id)
    template = fmt.gettext(message.template)
    return template % message.params if message.params else template


def _record_outcome(site, box, run: Run) -> None:
    module = site.registry.module(box.module)
    table = site.records.table(module)
    error = None
    if run.problems:
        fmt = _formatter(site, box.owner_user_id)
        texts = [fmt.gettext(p.template) % p.params if p.params else fmt.gettext(p.template)
                 for p in run.problems]
        error = _fit(module, "last_error", "; ".join(texts))
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == box.id).values(
            last_fetch_at=dt.datetime.now(dt.UTC), last_error=error))

