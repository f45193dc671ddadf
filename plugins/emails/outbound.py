"""The outbound queue (issue 21, implementation guide §7.4.1-7.4.2): the emails users send
from CRBM, sent by a job, with retries and a per-run limit.

The contract (the mail client and anything else that sends):

- To send an email, save it with status ``queued`` (and ``send_at`` for "send later")
  through the record service, then call ``enqueue(site)`` — after the commit
  (``jobs.after_commit`` inside a transaction). ``jobs.run_due_jobs(site)`` in tests.
- The job ``emails.outbound`` sends at most ``send_batch`` (Admin → Email settings) due
  emails per run, oldest first, and queues itself again while more are due, and for the
  next "send later" time; the scheduled task ``emails.outbound`` (every minute) is the
  safety net for a queue left behind (a worker stopped, a site restarted).
- **Exactly once per email**, however many workers or redeliveries: each email is taken
  with a compare-and-set UPDATE (``queued`` -> ``sending``); a second job finds it taken.
  A worker that died while sending leaves it ``sending``: taken again after ``STALE`` —
  that one case may send twice, which is why the Message-ID is the email's own (fixed at
  the first try): mail clients show one message.
- What goes out: From the email's mail account address (else the owner's, else the site's),
  To/Cc/Bcc, the auto-Bcc of the settings, In-Reply-To/References of a reply, the text
  and the HTML alternative (with the tracking pixel when tracking is on — tracking.py),
  its attachments (attachments.py). Through the mail account's own SMTP server when it
  says so, else the site's (Admin → Outgoing mail).
- Sent: status ``sent``, ``date_sent``, the owner's Sent folder. Refused by the server or
  the settings: ``send_attempts`` + 1, ``last_error`` (the reason, never the password), back
  to ``queued`` with a growing delay (``BACKOFF``); after ``MAX_ATTEMPTS`` ``failed``.
"""
from __future__ import annotations

import datetime as dt
import html as html_module
import logging

import nh3
import sqlalchemy as sa

from core import jobs
from core.apps.documents import mail
from core.kernel import crypto
from core.kernel.errors import N_, Message
from core.kernel.hooktypes import JobHandler, ScheduledTask
from plugins.emails import attachments, folders, mailboxes
from plugins.emails.settings import email_settings

log = logging.getLogger(__name__)

JOB = "emails.outbound"
MODULE = "emails"
MAX_ATTEMPTS = 5
BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=15),
           dt.timedelta(hours=1))
STALE = dt.timedelta(minutes=15)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def enqueue(site, at: dt.datetime | None = None) -> None:
    """Run the queue as soon as a worker can (or at ``at``); one pending run at a time."""
    jobs.enqueue(site, JOB, {}, at=at, key=JOB if at is None else f"{JOB}:{at.isoformat()}")


def _table(site) -> sa.Table:
    return site.records.table(site.registry.module(MODULE))


def _due(table, now):
    stale = sa.and_(table.c.status == "sending", table.c.modified_at < now - STALE)
    waiting = sa.and_(table.c.status == "queued",
                      sa.or_(table.c.send_at.is_(None), table.c.send_at <= now))
    return sa.and_(table.c.deleted.is_(False), sa.or_(waiting, stale))


def run_queue(site, payload: dict | None = None) -> str:
    """Send the due emails, at most a batch; what was done, in one line."""
    table, now = _table(site), _now()
    batch = email_settings(site).send_batch
    with site.engine.connect() as conn:
        ids = list(conn.execute(sa.select(table.c.id).where(_due(table, now)).order_by(
            sa.func.coalesce(table.c.send_at, table.c.created_at), table.c.id)
            .limit(batch + 1)).scalars())
        later = conn.execute(sa.select(sa.func.min(table.c.send_at)).where(
            table.c.deleted.is_(False), table.c.status == "queued",
            table.c.send_at > now)).scalar()
    sent = failed = 0
    for email_id in ids[:batch]:
        outcome = send_one(site, email_id)
        sent += outcome == "sent"
        failed += outcome == "failed"
    if len(ids) > batch:
        enqueue(site)  # more are due: another run, after this one
    if later is not None:
        later = later if later.tzinfo else later.replace(tzinfo=dt.UTC)
        enqueue(site, at=later)
    return f"{sent} sent, {failed} not sent"


def _take(site, table, email_id: str) -> dict | None:
    """The email, now ``sending``, if this worker took it; None if another did."""
    now = _now()
    with site.engine.begin() as conn:
        taken = conn.execute(table.update().where(table.c.id == email_id, _due(table, now))
                             .values(status="sending", modified_at=now)).rowcount
        if not taken:
            return None
        row = conn.execute(sa.select(table).where(table.c.id == email_id)).mappings().first()
        record = dict(row)
        if not record.get("message_id"):  # fixed at the first try (see the docstring)
            record["message_id"] = f"<{email_id}@{_domain(site, record)}>"
            conn.execute(table.update().where(table.c.id == email_id)
                         .values(message_id=record["message_id"]))
    return record


def _domain(site, record) -> str:
    smtp = site.settings.get("smtp") if isinstance(site.settings.get("smtp"), dict) else {}
    address = record.get("from_address") or smtp.get("from_address") or "crbm.invalid"
    return str(address).rpartition("@")[2].strip(" >") or "crbm.invalid"


def _sender(site, conn, record) -> tuple[str | None, dict | None]:
    """(From address, SMTP settings to send with: None for the site's) of an email."""
    accounts = site.registry.modules.get("mail_accounts")
    if accounts is not None and record.get("mail_account_id"):
        table = site.records.table(accounts)
        account = conn.execute(sa.select(table).where(
            table.c.id == record["mail_account_id"], table.c.deleted.is_(False))).mappings().first()
        if account is not None:
            own = None
            if account["smtp_mode"] == "own" and account["smtp_host"]:
                security = account["smtp_security"] or "starttls"
                own = {"host": account["smtp_host"], "port": account["smtp_port"],
                       "ssl": security == "ssl", "starttls": security == "starttls",
                       "username": account["smtp_username"] or "",
                       # sealed apart from the record (mailboxes.py), given back in clear
                       "password": mailboxes.credentials(
                           site, conn, "mail_accounts", [account["id"]]
                       ).get(account["id"], {}).get("smtp_password", ""),
                       "from_address": account["email_address"]}
            return account["email_address"], own
    if record.get("from_address"):
        return record["from_address"], None
    users = site.tables.tables["crbm_users"]
    email = conn.execute(sa.select(users.c.email).where(
        users.c.id == record.get("assigned_user_id"))).scalar()
    return email or None, None


def _text_of(record) -> str:
    if record.get("body"):
        return record["body"]
    if record.get("body_html"):  # the text alternative of an HTML-only email
        return html_module.unescape(nh3.clean(record["body_html"], tags=set())).strip()
    return ""


def send_one(site, email_id: str) -> str:
    """Send one email if this worker takes it: "sent", "retry", "failed" or "taken"."""
    from plugins.emails import tracking

    table = _table(site)
    record = _take(site, table, email_id)
    if record is None:
        return "taken"
    settings = email_settings(site)
    files = attachments.listed(site, [email_id]).get(email_id, [])
    try:
        with site.engine.connect() as conn:
            from_address, own_smtp = _sender(site, conn, record)
        html = record.get("body_html")
        if html and settings.tracking:
            html = tracking.with_pixel(site, email_id, html)
        bcc = [a for a in (record.get("bcc_addresses"), settings.auto_bcc) if a]
        sent = mail.send_mail(
            site, record.get("to_addresses") or "", record.get("name") or "", _text_of(record),
            cc=record.get("cc_addresses") or (), bcc=", ".join(bcc), html=html,
            message_id=record["message_id"], smtp=own_smtp, from_address=from_address,
            headers={"In-Reply-To": record.get("in_reply_to"),
                     "References": record.get("references")},
            attachments=[mail.Attachment(f["name"], attachments.read(site, f),
                                         f["content_type"] if "/" in f["content_type"]
                                         else "application/octet-stream") for f in files])
    except (mail.MailError, crypto.SealError, OSError) as exc:
        return _failed(site, table, record, exc)
    with site.engine.begin() as conn:
        sent_folder = folders.ensure_personal(site, conn, record["assigned_user_id"])["sent"] \
            if record.get("assigned_user_id") else record.get("folder_id")
        conn.execute(table.update().where(table.c.id == email_id).values(
            status="sent", date_sent=sent.sent_at, folder_id=sent_folder, last_error=None,
            from_address=(sent.from_address or "")[:255], is_read=True,
            send_attempts=(record.get("send_attempts") or 0) + 1, modified_at=_now()))
    return "sent"


def _failed(site, table, record, exc) -> str:
    attempts = (record.get("send_attempts") or 0) + 1
    reason = exc.args[0] if exc.args else exc
    text = str(reason)
    if isinstance(reason, Message):  # English in the record; the page translates nothing
        text = reason.template % reason.params if reason.params else reason.template
    final = attempts >= MAX_ATTEMPTS
    values = {"send_attempts": attempts, "last_error": text[:255], "modified_at": _now(),
              "status": "failed" if final else "queued"}
    if not final:
        values["send_at"] = _now() + BACKOFF[min(attempts, len(BACKOFF)) - 1]
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id == record["id"]).values(**values))
    log.warning("email %s not sent (try %s): %s", record["id"], attempts, text)
    if not final:
        enqueue(site, at=values["send_at"])
    return "failed" if final else "retry"


def job_handlers() -> list[JobHandler]:
    return [JobHandler(JOB, run_queue, retries=3)]


def scheduled_tasks() -> list[ScheduledTask]:
    return [ScheduledTask("emails.outbound", N_("Send queued emails"), run_task, "@every 1m")]


def run_task(site, due) -> str:
    """The scheduled task: the queue's run (a module function: the task compares equal
    from one call of ``crbm_scheduled_tasks`` to the next)."""
    return run_queue(site)
