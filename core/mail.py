"""Sending mail through the site's SMTP server.

Settings: ``site.settings["smtp"]`` = {host, port, username, password, starttls (bool),
ssl (bool), from_address} (``crbm settings set smtp.host mail.example.com`` ...).
Nothing here logs the SMTP password or a message's text (which may hold a secret link).
"""
from __future__ import annotations

import smtplib
import ssl as ssl_module
from email.message import EmailMessage
from email.utils import make_msgid

from core.errors import CrbmError

TIMEOUT_SECONDS = 30


class MailError(CrbmError):
    """Mail could not be sent (not configured, or the server refused or was unreachable)."""


def smtp_settings(site) -> dict:
    smtp = site.settings.get("smtp")
    if not isinstance(smtp, dict) or not smtp.get("host") or not smtp.get("from_address"):
        raise MailError("mail is not configured: set smtp.host and smtp.from_address "
                        "(crbm settings set smtp.host mail.example.com)")
    return smtp


def send_mail(site, to: str, subject: str, text: str) -> None:
    """Send one plain-text message to ``to``; raises MailError saying what went wrong."""
    smtp = smtp_settings(site)
    host, use_ssl = str(smtp["host"]), bool(smtp.get("ssl"))
    try:
        port = int(smtp.get("port") or (465 if use_ssl else 25))
    except (TypeError, ValueError):
        raise MailError(f"smtp.port must be a number, not {smtp.get('port')!r}") from None
    message = EmailMessage()
    message["From"] = smtp["from_address"]
    message["To"] = to
    message["Subject"] = subject
    message["Message-ID"] = make_msgid(domain=str(smtp["from_address"]).rpartition("@")[2] or None)
    message.set_content(text)
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
