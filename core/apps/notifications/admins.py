"""Telling the administrators that something needs them (a backup failed, storage is low):
a notification for each active administrator and, when mail is set up, one mail to them all.

Once per ``key``: a retried job that fails again makes no second notification and no second
mail (the notification's key is unique; the mail is sent only when the notifications were
new, and its Message-ID comes from the key too). Never raises: telling is best effort, the
caller's own outcome (a failed run, the figures) is what counts.
"""
from __future__ import annotations

import hashlib
import logging

import sqlalchemy as sa

from core.apps.notifications.api import notify

log = logging.getLogger(__name__)


def notify_administrators(site, text: str, *, url: str, key: str, subject: str,
                          footer: str) -> None:
    users = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        admins = conn.execute(sa.select(users.c.id, users.c.email).where(
            users.c.is_admin.is_(True), users.c.active.is_(True))).all()
    if not admins:
        return
    try:
        if not notify(site, [a.id for a in admins], text[:480], url=url, key=key):
            return  # told already, by an earlier try
    except Exception:
        log.exception("could not notify the administrators (%s)", key)
    try:
        from core.apps.documents import mail
        addresses = sorted({a.email for a in admins if a.email})
        if addresses and mail.is_configured(site.settings):
            digest = hashlib.sha256(f"crbm-admins:{key}".encode()).hexdigest()
            mail.send_mail(site, addresses, subject, f"{text}\n\n{footer}\n",
                           message_id=f"<{digest[:40]}@crbm.invalid>")
    except Exception:
        log.exception("could not mail the administrators (%s)", key)
