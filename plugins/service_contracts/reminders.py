"""Expiry reminders of service subcontracts (1CRM's scheduler job "Scanning for expired
service sub-contracts, to send reminder emails"; user guide: "Automatic email reminders are
sent when contracts are close to expiry").

The contract: **one reminder per subcontract and end date**, however many workers,
scheduler triggers or redelivered jobs there are, sent ``reminder_days`` (the site setting
``service_contracts``, default 30; 0 turns reminders off) before the end date to the
subcontract's assigned user (the account manager).

- The scheduled task ``service_contracts.expiry`` (daily) reads the active subcontracts
  ending between today and today + ``reminder_days`` in one query, and **claims** each by
  inserting a row under the unique key ``<id>:<end date>`` into
  ``service_contract_reminders`` (INSERT ignoring conflicts, a claim token per scan): of two
  scans racing, only one inserts. Moving the end date (a renewal) makes a new key: the new
  end is reminded in its turn.
- For each claimed reminder, in the claim's transaction: an in-app notification (keyed, so
  never twice) and, when the emails plugin is active, an email to the user saved as
  ``queued`` and filed on the subcontract — the outbound queue sends it exactly once
  (plugins/emails/outbound.py) and it shows in the subcontract's History.
"""
from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.errors import N_
from core.kernel.hooktypes import ScheduledTask

SETTING = "service_contracts"
TABLE = "service_contract_reminders"
TASK = "service_contracts.expiry"
MODULE = "subcontracts"
DEFAULT_DAYS = 30


def tables(metadata: sa.MetaData) -> None:
    sa.Table(
        TABLE, metadata,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(100), nullable=False, unique=True),
        sa.Column("subcontract_id", ID, nullable=False),
        sa.Column("date_end", sa.Date, nullable=False),
        sa.Column("claim", sa.String(32), nullable=False),  # the scan that inserted it
        sa.Index("ix_service_contract_reminders_claim", "claim"),
    )


def reminder_days(site) -> int:
    """Days ahead of the end date the reminder goes out (0: none); never raises."""
    stored = site.settings.get(SETTING)
    days = stored.get("reminder_days") if isinstance(stored, dict) else None
    ok = isinstance(days, int) and not isinstance(days, bool) and 0 <= days <= 365
    return days if ok else DEFAULT_DAYS


def scheduled_tasks() -> list[ScheduledTask]:
    return [ScheduledTask(TASK, N_("Remind account managers of service subcontracts ending soon"),
                          run_task, "0 6 * * *")]


def run_task(site, due) -> str:
    from core.apps.calendar.settings import calendar_settings
    today = due.astimezone(calendar_settings(site).tz).date()
    return f"reminded of {scan(site, today)} subcontracts"


def ending(site, conn, today: dt.date, days: int) -> list:
    table = site.records.table(site.registry.module(MODULE))
    return conn.execute(sa.select(
        table.c.id, table.c.name, table.c.date_end, table.c.assigned_user_id,
        table.c.account_id,
    ).where(table.c.deleted.is_(False), table.c.status == "active",
            table.c.assigned_user_id.is_not(None),
            table.c.date_end >= today,
            table.c.date_end <= today + dt.timedelta(days=days))).all()


def scan(site, today: dt.date) -> int:
    """Claim and send the reminders due ``today``; how many this call claimed."""
    from core.apps.notifications.api import _insert as insert_ignoring
    from core.apps.notifications.api import notify

    days = reminder_days(site)
    if days == 0:
        return 0
    table = site.tables.tables[TABLE]
    token = uuid.uuid4().hex
    with site.engine.begin() as conn:
        found = {f"{row.id}:{row.date_end.isoformat()}": row
                 for row in ending(site, conn, today, days)}
        if not found:
            return 0
        conn.execute(insert_ignoring(conn.dialect.name, table),
                     [{"key": key, "subcontract_id": row.id, "date_end": row.date_end,
                       "claim": token} for key, row in found.items()])
        mine = [found[key] for key in conn.execute(
            sa.select(table.c.key).where(table.c.claim == token)).scalars()]
        if not mine:
            return 0
        people = _people(site, conn, {row.assigned_user_id for row in mine})
        emails = []
        for row in mine:
            person = people.get(row.assigned_user_id)
            if person is None or not person["active"]:
                continue
            fmt = _formatter(site, person)
            text = fmt.gettext("Service subcontract “%(name)s” ends on %(date)s.") % {
                "name": row.name, "date": fmt.date(row.date_end)}
            notify(site, [person["id"]], text, module=MODULE, record_id=row.id,
                   key=f"subcontract-expiry:{row.id}:{row.date_end.isoformat()}",
                   connection=conn)
            if person["email"]:
                emails.append(_email(row, person, fmt, text))
        if emails and "emails" in site.registry.modules:
            from core import jobs
            from core.kernel.records import SYSTEM_USER
            site.records.create_many("emails", emails, SYSTEM_USER, connection=conn)
            jobs.after_commit(site, conn, "emails.outbound", {}, key="emails.outbound")
    return len(mine)


def _email(row, person: dict, fmt, text: str) -> dict:
    body = "\n\n".join([text, fmt.gettext(
        "Prepare the renewal proposal for the customer before it ends.")])
    return {"name": fmt.gettext("Renewal due: %(name)s") % {"name": row.name},
            "to_addresses": person["email"], "body": body, "direction": "outbound",
            "status": "queued", "parent_type": MODULE, "parent_id": row.id,
            "account_id": row.account_id, "assigned_user_id": person["id"],
            "is_read": True}


def _people(site, conn, ids) -> dict[str, dict]:
    users = site.tables.tables["crbm_users"]
    return {row.id: dict(row._mapping) for row in conn.execute(
        sa.select(users.c.id, users.c.email, users.c.active, users.c.preferences)
        .where(users.c.id.in_(sorted(ids))))}


def _formatter(site, person: dict):
    import json

    from core.kernel import i18n
    try:
        stored = json.loads(person["preferences"]) if person["preferences"] else None
    except ValueError:
        stored = None
    prefs = i18n.effective_preferences(i18n.Preferences.from_dict(stored), site.locale_dirs)
    return i18n.formatter(prefs, site.locale_dirs)
