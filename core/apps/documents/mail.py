"""Sending mail through the site's SMTP server.

Settings: ``site.settings["smtp"]`` = {host, port, username, password, starttls (bool),
ssl (bool), from_address, from_name}, set at *Admin → Outgoing mail* (core/apps/documents/admin_mail.py)
or with ``crbm settings set smtp.host mail.example.com`` ... The password is stored sealed
(``core.kernel.crypto``: encrypted with a key derived from the site's secret key) and unsealed
here, just before use. Nothing here logs the SMTP password or a message's text (which may
hold a secret link).

``send_mail`` sends one message (plain text, or text with an HTML alternative; optional cc
and attachments) and returns what left as a ``SentMail``; a caller that may retry (a job)
gives the ``message_id`` so a repeated message carries the same Message-ID. ``send_record_mail`` does the same for a message about a record and
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
import socket
import ssl as ssl_module
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr, make_msgid
from pathlib import PurePosixPath, PureWindowsPath

from core.kernel import crypto
from core.kernel.errors import N_, CrbmError, Message

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
    html: str | None = None  # the HTML alternative, when the message had one


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

def is_configured(settings: dict) -> bool:
    """Whether the site settings name a mail server and a from address."""
    smtp = settings.get("smtp")
    return isinstance(smtp, dict) and bool(smtp.get("host")) and bool(smtp.get("from_address"))


def smtp_settings(site, smtp: dict | None = None) -> dict:
    """The SMTP settings to send with (the site's, or ``smtp``: settings being tried
    before they are saved), their password unsealed."""
    if smtp is None:
        smtp = site.settings.get("smtp")
    if not is_configured({"smtp": smtp}):
        raise MailError(Message(N_("Mail is not configured: set the mail server and the from "
                                   "address at Admin → Outgoing mail.")))
    try:
        password = crypto.unseal(site, smtp.get("password"))
    except crypto.SealError:
        raise MailError(Message(N_("The stored mail server password cannot be read (the "
                                   "site's secret key changed?): enter it again at Admin → "
                                   "Outgoing mail."))) from None
    return {**smtp, "password": password}


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
              cc: str | Iterable[str] = (), attachments: Iterable[Attachment] = (),
              smtp: dict | None = None, html: str | None = None,
              message_id: str | None = None, bcc: str | Iterable[str] = (),
              headers: dict[str, str] | None = None,
              from_address: str | None = None) -> SentMail:
    """Send one plain-text message (with ``attachments``, each with its MIME type) to
    ``to`` and ``cc``: a comma separated str or a list. Raises MailError saying what went
    wrong; nothing is sent when an address or the settings are bad. ``smtp``: settings
    to try instead of the site's (the administration page's test message). ``html``: an
    HTML alternative to ``text`` (multipart/alternative; the caller sanitizes it).
    ``message_id``: the Message-ID header ("<...@...>") instead of a fresh one. ``bcc``:
    blind copies (in the envelope, never in the headers); ``headers``: more headers
    (In-Reply-To, References); ``from_address``: the sender instead of the settings' (a
    user writing from their own address)."""
    smtp = smtp_settings(site, smtp)
    recipients = parse_addresses(to, "to")
    copies = parse_addresses(cc, "cc")
    blind = parse_addresses(bcc, "bcc")
    if not recipients:
        raise MailError(Message(N_("no recipient: give at least one email address")),
                        field="to")
    attachments = tuple(attachments)
    host, use_ssl = str(smtp["host"]), bool(smtp.get("ssl"))
    try:
        port = int(smtp.get("port") or (465 if use_ssl else 25))
    except (TypeError, ValueError):
        raise MailError(f"smtp.port must be a number, not {smtp.get('port')!r}") from None
    sender = from_address
    from_address = parse_addresses(str(from_address or smtp["from_address"]), "from")[:1]
    if not from_address:
        raise MailError(Message(N_("no from address: set one at Admin → Outgoing mail")))
    from_address = from_address[0]
    if smtp.get("from_name") and "<" not in from_address and not sender:
        from_address = formataddr((str(smtp["from_name"]), from_address))
    subject = " ".join(str(subject).split())  # one header line, whatever a template made
    sent_at = dt.datetime.now(dt.UTC).replace(microsecond=0)
    message = EmailMessage()
    message["From"] = from_address
    message["To"] = ", ".join(recipients)
    if copies:
        message["Cc"] = ", ".join(copies)
    if blind:  # smtplib's send_message puts it in the envelope and drops the header
        message["Bcc"] = ", ".join(blind)
    message["Subject"] = subject
    message["Date"] = format_datetime(sent_at)
    for name, value in (headers or {}).items():
        if value:
            message[name] = " ".join(str(value).split())  # one line: no header injection
    message["Message-ID"] = message_id or make_msgid(
        domain=from_address.rpartition("@")[2].rstrip(">") or None)
    message.set_content(text)
    if html is not None:
        message.add_alternative(html, subtype="html")
    for attachment in attachments:
        _attach(message, attachment)
    _deliver(smtp, host, port, use_ssl, message)
    return SentMail(to=recipients, cc=copies, subject=subject, text=text,
                    attachments=attachments, message_id=message["Message-ID"],
                    sent_at=sent_at, from_address=from_address, html=html)


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
    except smtplib.SMTPAuthenticationError as exc:
        raise MailError(Message(N_("The mail server %(server)s refused the user name or "
                                   "password: %(reason)s"),
                                server=f"{host}:{port}", reason=_reply(exc))) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise MailError(_explained(exc, f"{host}:{port}")) from None


def _reply(exc: smtplib.SMTPResponseException) -> str:
    text = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) \
        else str(exc.smtp_error)
    return f"{exc.smtp_code} {text}".strip()


def _explained(exc: Exception, server: str) -> Message:
    """What went wrong, in words an administrator can act on (the server's own answer
    or the system's error at the end)."""
    reason = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, ConnectionRefusedError):
        return Message(N_("Nothing answers at %(server)s (connection refused): check the "
                          "mail server's name and port."), server=server)
    if isinstance(exc, socket.gaierror):
        return Message(N_("The mail server's name in %(server)s cannot be found: %(reason)s"),
                       server=server, reason=reason)
    if isinstance(exc, TimeoutError | socket.timeout):
        return Message(N_("The mail server %(server)s did not answer within %(seconds)d "
                          "seconds: check the name, the port and any firewall."),
                       server=server, seconds=TIMEOUT_SECONDS)
    if isinstance(exc, ssl_module.SSLError):
        if "certificate" in reason.lower():
            return Message(N_("The mail server %(server)s has a certificate this machine "
                              "does not trust: %(reason)s"), server=server, reason=reason)
        return Message(N_("The secure connection to %(server)s failed (%(reason)s): check "
                          "the security setting and the port (SSL/TLS is usually port 465, "
                          "STARTTLS 587)."), server=server, reason=reason)
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return Message(N_("The mail server %(server)s does not offer STARTTLS: choose "
                          "another security setting."), server=server)
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        refused = "; ".join(f"{address}: {code} {answer.decode(errors='replace')}"
                            for address, (code, answer) in exc.recipients.items())
        return Message(N_("The mail server %(server)s refused the recipient: %(reason)s"),
                       server=server, reason=refused)
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return Message(N_("The mail server %(server)s refused the from address: %(reason)s"),
                       server=server, reason=_reply(exc))
    if isinstance(exc, smtplib.SMTPServerDisconnected | ConnectionResetError):
        return Message(N_("The mail server %(server)s closed the connection (%(reason)s): "
                          "check the security setting and the port."),
                       server=server, reason=reason)
    if isinstance(exc, smtplib.SMTPResponseException):
        return Message(N_("The mail server %(server)s answered: %(reason)s"),
                       server=server, reason=_reply(exc))
    return Message(N_("Could not send mail through %(server)s: %(reason)s"),
                   server=server, reason=reason)


def send_record_mail(site, user, module_name: str | None, record_id: str | None,
                     to: str | Iterable[str], subject: str, text: str, *,
                     cc: str | Iterable[str] = (),
                     attachments: Iterable[Attachment] = (), html: str | None = None,
                     message_id: str | None = None) -> SentMail:
    """Send a message about a record (``send_mail``, with its ``html`` alternative and
    ``message_id`` when given), then call ``crbm_mail_sent`` so it is kept in the
    record's history.

    Once the message has left it cannot be called back, so a failing history hook does
    not fail the send: raising would tell the user it was not sent and invite a second
    copy to the customer. The failure is logged (which message, which record, the error;
    never the message's text or attachments) and the SentMail returned.
    """
    sent = send_mail(site, to, subject, text, cc=cc, attachments=attachments, html=html,
                     message_id=message_id)
    try:
        site.hook.crbm_mail_sent(site=site, mail=sent, user=user, module=module_name,
                                 record_id=record_id)
    except Exception as exc:  # noqa: BLE001 - any plugin's failure; the mail is gone
        log.error("mail %s about %s %s was sent but not kept in its history: %s: %s",
                  sent.message_id, module_name, record_id, type(exc).__name__, exc)
    return sent
