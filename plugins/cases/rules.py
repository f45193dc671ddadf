"""What a case save does besides storing it (the cases module's save hooks, plugin.py).

Before the write (values the insert/update itself stores, no second UPDATE):

- **Case queue user** (Admin → Case settings): a new case nobody else was named for — no
  assigned user, or its creator — is assigned to the queue user (implementation guide
  §7.1.1: "the User to which all new Cases will be assigned by default").
- ``pending_since`` is stamped when a case enters the auto-close status (Pending by
  default) and cleared when it leaves it; ``closed_at`` when it is closed. The auto-close
  task (autoclose.py) counts from ``pending_since``.

After the write, in the same transaction, for the whole batch:

- **Notifications**: the assigned user (when it is not they who saved) gets a notification
  of each status change (one per case and version: ``key``, so a retried write notifies
  once). Being given a case — a new one, or reassigned — is the kernel's
  ``notify_assignment`` (a notification, and an email by their preference).
- **Contacts** (setting ``notify_contacts``): the case's contact is mailed when the case is
  created and when its status changes; **surveys** (setting ``surveys``): a closed case's
  contact gets the survey link. Both through the job queue after the commit
  (``jobs.after_commit``: a rolled-back save mails no one), one job per batch,
  each message keyed (mailing.py): a job run twice sends nothing twice.
"""
from __future__ import annotations

from core import jobs
from core.apps.notifications import notify
from core.kernel.errors import N_
from core.kernel.records import now
from plugins.cases import mailing, surveys
from plugins.cases.settings import CLOSED, case_settings

MODULE = "cases"


def before_save(site, batch, user) -> None:
    settings = case_settings(site)
    stamp = now()
    for change in batch:
        record = change.record
        if change.is_new and settings.queue_user_id and \
                record.get("assigned_user_id") in (None, user.id):
            record["assigned_user_id"] = settings.queue_user_id
        if not change.is_new and "status" not in change.changes:
            continue
        status = record.get("status")
        if status == settings.auto_close_status:
            if change.is_new or record.get("pending_since") is None or "status" in change.changes:
                record["pending_since"] = stamp
        else:
            record["pending_since"] = None
        if status in CLOSED:
            record["closed_at"] = record.get("closed_at") or stamp
        else:
            record["closed_at"] = None


def after_save(site, batch, user, connection) -> None:
    settings = case_settings(site)
    events: list[tuple[dict, str]] = []  # (case, "created" | "status")
    for change in batch:
        if change.is_new:
            events.append((change.record, "created"))
        elif "status" in change.changes:
            events.append((change.record, "status"))
    if not events:
        return
    for record, event in events:
        assignee = record.get("assigned_user_id")
        if event == "status" and assignee and assignee != user.id:
            text = N_("Case %(number)s is now %(status)s: %(name)s")
            notify(site, [assignee], text % {
                "number": record.get("number"), "name": record.get("name"),
                "status": _status_label(site, record.get("status"))},
                module=MODULE, record_id=record["id"],
                key=f"cases:{record['id']}:{record.get('version')}", connection=connection)
    items = []
    if settings.notify_contacts:
        items += [{"kind": event, "case": r["id"], "key": f"{event}:{r['id']}:{r['version']}"}
                  for r, event in events if r.get("contact_id")]
    if settings.surveys:
        closing = [r for r, event in events if r.get("contact_id") and
                   r.get("status") in surveys.SURVEYED]
        for survey_id, case_id in surveys.create(site, connection, closing):
            items.append({"kind": "survey", "case": case_id, "survey": survey_id,
                          "key": f"survey:{survey_id}"})
    if items:
        jobs.after_commit(site, connection, mailing.JOB, {"items": items})


def _status_label(site, value) -> str:
    module = site.registry.module(MODULE)
    return dict(site.registry.choices(module.fields["status"])).get(value, str(value))
