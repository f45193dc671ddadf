"""Assignment notifications: telling a user a record was assigned to them (implementation
guide 2.1: "automatic email notifications to sales people when a new lead or opportunity
is assigned to them").

A module opts in with ``features: {notify_assignment: true}`` (it must be assignable).
When a save gives a record an assigned user other than the user saving it — a new record
made for someone, a reassignment, a web form's lead given to "Assign New Leads To" — the
new assignee gets:

- **a notification** (the bell), written in the save's transaction (a rolled-back save
  notifies no one), set-based for the whole batch: one read of the assignees, one
  INSERT of all the rows, keyed ``assigned:<module>:<id>:<version>`` so nothing is
  notified twice; in the assignee's language;
- **an email**, when their preference "Email me when a record is assigned to me" is on
  (the default; Preferences page, ``email_enabled``/``set_email``): one job per assignee
  and save, queued after the commit (``core.jobs.after_commit``), sent through the site's
  outgoing mail (``core.apps.documents.mail``). The job mails the notifications the save
  made that are not mailed yet and marks them (``emailed_at``): a redelivered job sends
  nothing twice. A site without outgoing mail, or a user without an address, gets the
  bell only (the job says so and ends: no retry).
"""
from __future__ import annotations

import hashlib
import json
import logging

import sqlalchemy as sa

from core.apps.notifications.api import _insert
from core.apps.notifications.tables import MAX_MESSAGE, PREFERENCES, TABLE
from core.kernel import i18n
from core.kernel.errors import N_
from core.kernel.hooktypes import JobHandler, ModuleFeature
from core.kernel.records import now

FEATURE = "notify_assignment"
JOB = "notifications.assignment_mail"
IN_BATCH = 500
MAX_LISTED = 20  # records named in one mail; the rest are counted
log = logging.getLogger(__name__)


class NotifyAssignment(ModuleFeature):
    """``features.notify_assignment`` (checked: the module must be assignable)."""

    name = FEATURE
    label = N_("assignment notifications")

    def check(self, module, options, registry):
        return [] if module.features.get("assignable") else \
            [("", "needs features.assignable: only assigned records are assigned to someone")]


def _users(site, conn, ids: list[str]) -> dict[str, dict]:
    users, prefs = site.tables.tables["crbm_users"], site.tables.tables[PREFERENCES]
    out = {}
    for start in range(0, len(ids), IN_BATCH):
        stmt = sa.select(users.c.id, users.c.username, users.c.display_name, users.c.email,
                         users.c.active, users.c.preferences, prefs.c.assignment_email,
                         users.c.is_admin) \
            .select_from(users.outerjoin(prefs, prefs.c.user_id == users.c.id)) \
            .where(users.c.id.in_(ids[start:start + IN_BATCH]))
        out.update({row.id: dict(row._mapping) for row in conn.execute(stmt)})
    return out


def _preferences(user_row: dict | None) -> i18n.Preferences:
    try:
        stored = json.loads(user_row["preferences"]) if user_row and user_row["preferences"] \
            else None
    except ValueError:
        stored = None
    return i18n.Preferences.from_dict(stored)


def _translator(site, user_row: dict | None):
    return i18n.gettext_for(_preferences(user_row), site.locale_dirs)


def on_save(site, module, batch, user, connection) -> None:
    """``crbm_after_save`` for modules with the feature (see the module's docstring)."""
    if not module.features.get(FEATURE):
        return
    assigned = [change.record for change in batch
                if (change.is_new or "assigned_user_id" in change.changes)
                and change.record.get("assigned_user_id")
                and change.record["assigned_user_id"] != user.id]
    if not assigned:
        return
    people = _users(site, connection, sorted({r["assigned_user_id"] for r in assigned}
                                             | {user.id}))
    actor = people.get(user.id)
    by = (actor["display_name"] or actor["username"]) if actor else user.username
    translators: dict[str, object] = {}
    rows, keys = [], {}
    stamp, name_field = now(), module.name_field
    for record in assigned:
        person = people.get(record["assigned_user_id"])
        if person is None or not person["active"]:
            continue  # unknown or gone: the save goes on
        tr = translators.get(person["id"])
        if tr is None:
            tr = translators[person["id"]] = _translator(site, person)
        name = (record.get(name_field) if name_field else None) or record["id"]
        message = tr.gettext("%(module)s “%(name)s” was assigned to you by %(user)s.") % {
            "module": tr.gettext(module.label_singular), "name": name, "user": by}
        key = f"assigned:{module.name}:{record['id']}:{record.get('version', 1)}"
        rows.append({"user_id": person["id"], "message": message[:MAX_MESSAGE],
                     "module": module.name, "record_id": str(record["id"]), "url": None,
                     "key": key, "created_at": stamp})
        keys.setdefault(person["id"], []).append(key)
    if not rows:
        return
    table = site.tables.tables[TABLE]
    connection.execute(_insert(connection.dialect.name, table), rows)
    from core import jobs

    for user_id, made in keys.items():
        person = people[user_id]
        if person["email"] and person["assignment_email"] is not False:
            jobs.after_commit(site, connection, JOB, {"user_id": user_id, "keys": made})


# -- the user's choice -------------------------------------------------------------------------

def email_enabled(site, user_id: str) -> bool:
    """Whether the user is mailed when a record is assigned to them (default: yes)."""
    prefs = site.tables.tables[PREFERENCES]
    with site.engine.connect() as conn:
        found = conn.execute(sa.select(prefs.c.assignment_email)
                             .where(prefs.c.user_id == user_id)).scalar()
    return found is not False


def set_email(site, user_id: str, enabled: bool) -> None:
    prefs = site.tables.tables[PREFERENCES]
    with site.engine.begin() as conn:
        if conn.execute(prefs.update().where(prefs.c.user_id == user_id)
                        .values(assignment_email=bool(enabled))).rowcount == 0:
            conn.execute(prefs.insert().values(user_id=user_id, assignment_email=bool(enabled)))


# -- the mail (a job) --------------------------------------------------------------------------

def send_mail_job(site, payload: dict) -> str:
    """Mail the assignee the notifications ``payload["keys"]`` not mailed yet."""
    from core.apps.documents import mail  # documents load on first use

    user_id, keys = str(payload["user_id"]), [str(k) for k in payload.get("keys") or ()]
    table = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        person = _users(site, conn, [user_id]).get(user_id)
        notes = conn.execute(sa.select(table.c.id, table.c.message, table.c.module,
                                       table.c.record_id)
                             .where(table.c.user_id == user_id, table.c.key.in_(keys),
                                    table.c.emailed_at.is_(None))
                             .order_by(table.c.id)).all() if keys else []
    if not notes:
        return "nothing left to mail"
    if person is None or not person["active"] or not person["email"] \
            or person["assignment_email"] is False:
        return "no mail: the user is inactive, has no address or does not want it"
    if not mail.is_configured(site.settings):
        return "no mail: outgoing mail is not set up"
    from core.apps.notifications import fields
    from core.kernel.records import User

    tr = _translator(site, person)
    base = str(site.settings.get("base_url") or "").rstrip("/")
    reader = User(person["id"], person["username"], bool(person["is_admin"]))
    more = fields.lines(site, reader, i18n.formatter(_preferences(person), site.locale_dirs),
                        [(n.module, n.record_id) for n in notes[:MAX_LISTED] if n.module])
    lines = []
    for note in notes[:MAX_LISTED]:
        lines.append(note.message)
        lines.extend(more.get((note.module, note.record_id), ()))  # Admin → Notification emails
        if base and note.module and note.record_id:
            lines.append(f"{base}/m/{note.module}/{note.record_id}")
        lines.append("")
    if len(notes) > MAX_LISTED:
        lines.append(tr.ngettext("… and %(num)s more.", "… and %(num)s more.",
                                 len(notes) - MAX_LISTED) % {"num": len(notes) - MAX_LISTED})
    subject = notes[0].message if len(notes) == 1 else tr.ngettext(
        "%(num)s record was assigned to you", "%(num)s records were assigned to you",
        len(notes)) % {"num": len(notes)}
    digest = hashlib.sha256(f"crbm-assigned:{user_id}:{','.join(keys)}".encode()).hexdigest()
    smtp = site.settings.get("smtp")
    sender = str(smtp.get("from_address") or "") if isinstance(smtp, dict) else ""
    domain = sender.rpartition("@")[2].strip(" >") or "crbm.invalid"
    mail.send_mail(site, person["email"], subject, "\n".join(lines).strip() + "\n",
                   message_id=f"<{digest[:40]}@{domain}>")  # MailError: the queue retries
    with site.engine.begin() as conn:
        conn.execute(table.update().where(table.c.id.in_([n.id for n in notes]))
                     .values(emailed_at=now()))
    return f"mailed {len(notes)}"


def job_handlers() -> list[JobHandler]:
    return [JobHandler(JOB, send_mail_job, retries=5)]
