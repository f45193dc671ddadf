"""Mail to a case's contact: "your case was opened", "your case is now <status>" (setting
``notify_contacts``), the survey link (setting ``surveys``) and the warning that a waiting
case will close (autoclose.py) — the job ``cases.mail``.

Contract: the cases' save hook (rules.py) enqueues one job per batch after the commit with
``items`` (kind, case id, key; the survey id for a survey). The job reads every case and
contact of the batch in two statements, sends each message through
``core.apps.documents.mail.send_record_mail`` (so the emails plugin, when active, files it
on the case's History), its subject carrying the case pattern ("Case ID#: 1001"), and
records its key in ``cases_mail_log``. Idempotent: a key already recorded is not sent
again, and its Message-ID is made from the key, so a job that died between sending and
recording sends a copy that mail clients show as one message. A contact without an email
address, or a case deleted meanwhile, is skipped.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging

import sqlalchemy as sa

from core.apps.documents import mail
from core.kernel import users
from core.kernel.errors import N_
from core.kernel.fields import UTCDateTime
from core.kernel.hooktypes import JobHandler
from core.kernel.records import User
from plugins.cases import surveys
from plugins.cases.settings import case_settings

JOB = "cases.mail"
LOG = "cases_mail_log"
MODULE = "cases"
log = logging.getLogger(__name__)


def tables(metadata) -> None:
    sa.Table(LOG, metadata,
             sa.Column("key", sa.String(120), primary_key=True),
             sa.Column("sent_at", UTCDateTime(), nullable=False))


def job_handlers() -> list[JobHandler]:
    return [JobHandler(JOB, run, retries=5)]


def sent(site, keys: list[str]) -> set[str]:
    """Which of ``keys`` were sent already."""
    table = site.tables.tables[LOG]
    with site.engine.connect() as conn:
        return set(conn.execute(sa.select(table.c.key).where(table.c.key.in_(keys))).scalars())


def _cases(site, ids: list[str]) -> dict[str, dict]:
    cases = site.registry.module(MODULE)
    table = site.records.table(cases)
    contacts = site.records.table(site.registry.module("contacts"))
    with site.engine.connect() as conn:
        rows = conn.execute(sa.select(
            table.c.id, table.c.number, table.c.name, table.c.status, table.c.resolution,
            table.c.assigned_user_id,
            contacts.c.email1.label("email"), contacts.c.first_name, contacts.c.last_name)
            .join(contacts, sa.and_(contacts.c.id == table.c.contact_id,
                                    contacts.c.deleted.is_(False)))
            .where(table.c.id.in_(ids), table.c.deleted.is_(False))).mappings().all()
    return {r["id"]: dict(r) for r in rows}


def message(site, item: dict, case: dict) -> tuple[str, str]:
    """(subject, text) of one item's message."""
    settings = case_settings(site)
    module = site.registry.module(MODULE)
    status = dict(site.registry.choices(module.fields["status"])).get(case["status"],
                                                                      case["status"])
    tag = settings.subject_for(case["number"])
    hello = N_("Hello %(name)s,") % {"name": " ".join(filter(None, (
        case.get("first_name"), case.get("last_name")))) or case["email"]}
    if item["kind"] == "survey":
        subject = f"{tag} " + N_("How did we do?")
        body = N_("Your case \"%(name)s\" was closed. Please tell us how we did: give it 1 "
                  "to 5 stars at this link (it works once):") % {"name": case["name"]}
        return subject, f"{hello}\n\n{body}\n\n{surveys.link(site, item['survey'])}\n"
    if item["kind"] == "warning":
        subject = f"{tag} {case['name']}"
        body = N_("Your case %(number)s is waiting for your answer. Without one it will be "
                  "closed in %(days)s days; reply to this message to keep it open.") % {
            "number": case["number"], "days": item.get("days", "")}
        return subject, f"{hello}\n\n{body}\n"
    if item["kind"] == "created":
        subject = f"{tag} {case['name']}"
        body = N_("We received your request \"%(name)s\" and opened case %(number)s. Keep "
                  "\"%(tag)s\" in the subject when you write about it.") % {
            "name": case["name"], "number": case["number"], "tag": tag}
        return subject, f"{hello}\n\n{body}\n"
    subject = f"{tag} {case['name']}"
    body = N_("Your case %(number)s is now: %(status)s.") % {"number": case["number"],
                                                             "status": status}
    if case.get("resolution"):
        body += "\n\n" + case["resolution"]
    return subject, f"{hello}\n\n{body}\n"


def run(site, payload: dict) -> None:
    items = [i for i in payload.get("items") or () if isinstance(i, dict) and i.get("key")]
    if not items or MODULE not in site.registry.modules:
        return
    done = sent(site, [i["key"] for i in items])
    items = [i for i in items if i["key"] not in done]
    cases = _cases(site, sorted({i["case"] for i in items}))
    table = site.tables.tables[LOG]
    for item in items:
        case = cases.get(item["case"])
        if case is None or not case.get("email"):
            continue
        subject, text = message(site, item, case)
        digest = hashlib.sha256(item["key"].encode()).hexdigest()[:32]
        domain = (site.settings.get("smtp") or {}).get("from_address", "crbm.local")
        message_id = f"<case-{digest}@{str(domain).rpartition('@')[2] or 'crbm.local'}>"
        # filed on the case's History as its assigned user's (the system is no user)
        writer = User(id=case["assigned_user_id"], username="", is_admin=False) \
            if case.get("assigned_user_id") else users.first_admin(site)
        mail.send_record_mail(site, writer, MODULE, case["id"], case["email"], subject,
                              text, message_id=message_id)
        with site.engine.begin() as conn:
            conn.execute(table.insert().values(key=item["key"], sent_at=dt.datetime.now(dt.UTC)))
