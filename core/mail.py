"""Sending mail through the site's SMTP server.

Settings: ``site.settings["smtp"]`` = {host, port, username, password, starttls (bool),
ssl (bool), from_address} (``crbm settings set smtp.host mail.example.com`` ...).
Nothing here logs the SMTP password or a message's text (which may hold a secret link).

``send_mail`` sends one message (plain text, optional cc and attachments) and returns what
left as a ``SentMail``. ``send_record_mail`` does the same for a message about a record and
then hands it to ``crbm_mail_sent`` so a plugin can keep it in the record's history.

What is checked before connecting (so a refused message never half-leaves): the settings,
every recipient address (``MailError`` names the bad one and whether it was in To or Cc)
and each attachment's MIME type. A message that could not be sent raises ``MailError`` and
calls no hook: the user sees the error at once and nothing is filed as sent.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import smtplib
import ssl as ssl_module
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import PurePosixPath, PureWindowsPath

from core.errors import N_, CrbmError, Message

TIMEOUT_SECONDS = 30
log = logging.getLogger(__name__)


class MailError(CrbmError):
    """Mail could not be sent (not configured, a bad address, or the server refused or was
    unreachable). ``field`` is "to" or "cc" when an address was the problem, so a form can
    show the message beside the right input."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    mime_type: str  # "application/pdf"


@dataclass(frozen=True)
class SentMail:
    """A message as it left: what a history record of it needs."""

    to: list[str]
    cc: list[str]
    subject: str
    text: str
    attachments: tuple[Attachment, ...]
    message_id: str
    sent_at: dt.datetime  # aware, UTC
    from_address: str


# -- addresses -----------------------------------------------------------------------------
# One address as people type it: "jane@example.com" or "Jane Doe <jane@example.com>" (the
# name may be quoted, and then may hold a comma). The address itself is checked loosely
# (local@domain, no spaces or specials): intranet names like admin@localhost are fine.

_ADDRESS = re.compile(r'^(?:(?P<name>"[^"]*"|[^"<>]*?)\s*<(?P<angle>[^<>]*)>|(?P<bare>[^<>"]*))$')
_MAILBOX = re.compile(r'^[^@\s<>()\[\],;:"\\]+@(?!\.)(?!.*\.\.)[^@\s<>()\[\],;:"\\]+(?<!\.)$')


def _split(text: str) -> list[str]:
    """Comma (or semicolon) separated addresses; separators inside quotes do not count."""
    parts, current, quoted = [], [], False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char in ",;" and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part.strip() for part in parts if part.strip()]


def _address(text: str, field: str) -> str:
    """``text`` as a header-ready address, or MailError naming it."""
    match = _ADDRESS.match(text)
    address = match and (match["angle"] if match["angle"] is not None else match["bare"])
    if not address or not _MAILBOX.match(address.strip()) or \
            any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise MailError(Message(N_("%(value)s is not an email address"), value=repr(text)),
                        field=field)
    name = (match["name"] or "").strip().strip('"').strip()
    return formataddr((name, address.strip())) if name else address.strip()


def parse_addresses(value: str | Iterable[str] | None, field: str = "to") -> list[str]:
    """Addresses from a comma separated str or a list (each item may itself hold several).
    Raises MailError naming the first bad one."""
    if value is None:
        return []
    items = [value] if isinstance(value, str) else list(value)
    return [_address(part, field) for item in items for part in _split(str(item))]


# -- sending -------------------------------------------------------------------------------

def smtp_settings(site) -> dict:
    smtp = site.settings.get("smtp")
    if not isinstance(smtp, dict) or not smtp.get("host") or not smtp.get("from_address"):
        raise MailError("mail is not configured: set smtp.host and smtp.from_address "
                        "(crbm settings set smtp.host mail.example.com)")
    return smtp


def _attach(message: EmailMessage, attachment: Attachment) -> None:
    maintype, _, subtype = attachment.mime_type.partition("/")
    if not maintype or not subtype or "/" in subtype:
        raise MailError(f"attachment {attachment.filename!r}: {attachment.mime_type!r} is not "
                        "a MIME type such as application/pdf")
    # only the base name travels: a path in the name would tell the recipient our folders
    name = PureWindowsPath(PurePosixPath(attachment.filename).name).name or "attachment"
    message.add_attachment(bytes(attachment.content), maintype=maintype, subtype=subtype,
                           filename=name)


def send_mail(site, to: str | Iterable[str], subject: str, text: str, *,
              cc: str | Iterable[str] = (), attachments: Iterable[Attachment] = ()) -> SentMail:
    """Send one plain-text message (with ``attachments``, each with its MIME type) to
    ``to`` and ``cc``: a comma separated str or a list. Raises MailError saying what went
    wrong; nothing is sent when an address or the settings are bad."""
    smtp = smtp_settings(site)
    recipients = parse_addresses(to, "to")
    copies = parse_addresses(cc, "cc")
    if not recipients:
        raise MailError(Message(N_("no recipient: give at least one email address")),
                        field="to")
    attachments = tuple(attachments)
    host, use_ssl = str(smtp["host"]), bool(smtp.get("ssl"))
    try:
        port = int(smtp.get("port") or (465 if use_ssl else 25))
    except (TypeError, ValueError):
        raise MailError(f"smtp.port must be a number, not {smtp.get('port')!r}") from None
    from_address = str(smtp["from_address"])
    subject = " ".join(str(subject).split())  # one header line, whatever a template made
    sent_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = ", ".join(recipients)
    if copies:
        message["Cc"] = ", ".join(copies)
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2] or None)
    message.set_content(text)
    for attachment in attachments:
        _attach(message, attachment)
    _deliver(smtp, host, port, use_ssl, message)
    return SentMail(to=recipients, cc=copies, subject=subject, text=text,
                    attachments=attachments, message_id=message["Message-ID"],
                    sent_at=sent_at, from_address=from_address)


def _deliver(smtp: dict, host: str, port: int, use_ssl: bool, message: EmailMessage) -> None:
    context = ssl_module.create_default_context()
    try:
        if use_ssl:
            server = smtplib.SMTP_SSL(host, port, timeout=TIMEOUT_SECONDS, context=context)
        else:
            server = smtplib.SMTP(host, port, timeout=TIMEOUT_SECONDS)
        with server:
            if smtp.get("starttls") and not use_ssl:
                server.starttls(context=context)
            if smtp.get("username"):
                server.login(str(smtp["username"]), str(smtp.get("password") or ""))
            server.send_message(message)
    except smtplib.SMTPAuthenticationError:
        raise MailError(f"the mail server {host}:{port} refused the user name or password "
                        "(smtp.username, smtp.password)") from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(f"could not send mail through {host}:{port}: "
                        f"{type(exc).__name__}: {exc}") from None


def send_record_mail(site, user, module_name: str | None, record_id: str | None,
                     to: str | Iterable[str], subject: str, text: str, *,
                     cc: str | Iterable[str] = (),
                     attachments: Iterable[Attachment] = ()) -> SentMail:
    """Send a message about a record (``send_mail``), then call ``crbm_mail_sent`` so it
    is kept in the record's history.

    Once the message has left it cannot be called back, so a failing history hook does
    not fail the send: raising would tell the user it was not sent and invite a second
    copy to the customer. The failure is logged (which message, which record, the error;
    never the message's text or attachments) and the SentMail returned.
    """
    sent = send_mail(site, to, subject, text, cc=cc, attachments=attachments)
    try:
        site.hook.crbm_mail_sent(site=site, mail=sent, user=user, module=module_name,
                                 record_id=record_id)
    except Exception as exc:  # noqa: BLE001 - any plugin's failure; the mail is gone
        log.error("mail %s about %s %s was sent but not kept in its history: %s: %s",
                  sent.message_id, module_name, record_id, type(exc).__name__, exc)
    return sent
