"""Scheduled reports as their recipients and owners meet them: a daily report reaches a real
SMTP server (aiosmtpd) with its workbook attached, whose figures are the records'; the job
run twice for one due time sends one mail; a report whose owner lost access to a module it
reads is not mailed, and the owner is told why; a schedule is checked on save (a bad
address named) and its next run worked out in the company calendar's time zone."""
from __future__ import annotations

import datetime as dt
import io
import json
import zoneinfo
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa

from core import jobs
from core.apps.admin import access_admin as aa
from core.jobs import scheduler
from core.kernel.errors import ValidationError
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import free_port, smtp_settings
from plugins.reports import runs, scheduling

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
REPORT = {"module": "accounts",
          "columns": [{"via": "opportunities", "field": "amount", "aggregate": "sum"},
                      {"field": "id", "aggregate": "count"}],
          "group_by": [{"field": "industry"}]}


@pytest.fixture(autouse=True)
def paris(site):
    site.set_setting("calendar", {"time_zone": "Europe/Paris"})


def world(site, tag: str) -> None:
    """Banking: two accounts, deals of 1000.50 + 200 and 300; energy: one, a deal of 40."""
    accounts = site.records.create_many("accounts", [
        {"name": f"{tag} bank 1", "industry": "banking"},
        {"name": f"{tag} bank 2", "industry": "banking"},
        {"name": f"{tag} power", "industry": "energy"}], SYSTEM_USER)
    site.records.create_many("opportunities", [
        {"name": f"{tag} deal {i}", "account_id": accounts[a], "amount": amount,
         "sales_stage": "prospecting", "date_closed": "2026-06-30"}
        for i, (a, amount) in enumerate([(0, "1000.50"), (0, "200"), (1, "300"), (2, "40")])],
        SYSTEM_USER)


def report(site, owner, tag: str, **schedule) -> dict:
    definition = {**REPORT, "filters": [{"field": "name", "op": "starts", "value": tag}]}
    values = {"name": f"{tag} by industry", "definition": json.dumps(definition),
              "assigned_user_id": owner.id, "schedule_frequency": "daily",
              "schedule_time": "07:30",
              "schedule_recipients": "boss@example.com, Finance <finance@example.com>",
              "schedule_format": "xlsx", **schedule}
    return site.records.create("reports", values, owner)


def saved(site, report_id: str) -> list[dict]:
    table = runs.table(site)
    with site.engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(table).where(
            table.c.report_id == report_id)).mappings()]


def test_a_daily_report_reaches_the_inbox_with_its_workbook(site, admin, smtp_inbox):
    world(site, "Sched")
    made = report(site, admin, "Sched")
    due = made["schedule_next_run"]
    # 07:30 in Paris, the first one after now
    assert due.astimezone(PARIS).time() == dt.time(7, 30)
    assert dt.timedelta(0) < due - dt.datetime.now(dt.UTC) <= dt.timedelta(days=1)
    # not due yet: nothing queued
    assert scheduler.run_task(site, scheduling.TASK, due - dt.timedelta(minutes=5)) == \
        "0 scheduled reports queued"
    assert scheduler.run_task(site, scheduling.TASK, due) == "1 scheduled reports queued"
    jobs.run_due_jobs(site)
    [message] = smtp_inbox.messages
    assert sorted(smtp_inbox.envelopes[0].rcpt_tos) == ["boss@example.com",
                                                          "finance@example.com"]
    assert message["Subject"] == "Report: Sched by industry"
    stamp = f"{due.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"
    assert message["Message-ID"].strip() == f"<report-{made['id']}-{stamp}@example.com>"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_filename().endswith(".xlsx")
    book = openpyxl.load_workbook(io.BytesIO(attachment.get_content()))
    rows = [list(r) for r in book.active.iter_rows(values_only=True)]
    assert rows[0] == ["Industry", "Opportunities: Opportunity amount (Sum)", "Number of Accounts",
                       "Records"]
    figures = {r[0]: (Decimal(str(r[1])).quantize(Decimal("0.01")), r[2], r[3])
               for r in rows[1:]}
    assert figures == {"Banking": (Decimal("1500.50"), 2, 2),
                       "Energy": (Decimal("40.00"), 1, 1),
                       "Total": (Decimal("1540.50"), 3, 3)}
    # the run is saved, the schedule moved on by a day
    [run] = saved(site, made["id"])
    assert (run["trigger"], run["status"], run["format"], run["row_count"]) == \
        ("scheduled", "sent", "xlsx", 3)
    assert bytes(run["content"]) == attachment.get_content()
    after = site.records.get("reports", made["id"], admin)
    following = after["schedule_next_run"].astimezone(PARIS)
    assert (following.date(), following.time()) == \
        (due.astimezone(PARIS).date() + dt.timedelta(days=1), dt.time(7, 30))
    assert after["schedule_last_sent"] is not None


def test_the_job_run_twice_for_one_due_time_sends_one_mail(site, admin, smtp_inbox):
    world(site, "Twice")
    made = report(site, admin, "Twice", schedule_format="csv")
    due = made["schedule_next_run"]
    payload = {"report_id": made["id"], "due": due.isoformat()}
    assert scheduling.send_job(site, payload).startswith("mailed")
    assert scheduling.send_job(site, payload) == "already sent"  # a redelivered job
    # a second job queued for the same due (a scan racing), run through the queue
    jobs.enqueue(site, scheduling.JOB, payload)
    jobs.run_due_jobs(site)
    assert scheduler.run_task(site, scheduling.TASK, due) == "0 scheduled reports queued"
    assert len(smtp_inbox.messages) == 1
    [attachment] = list(smtp_inbox.messages[0].iter_attachments())
    text = attachment.get_content()
    text = text.decode("utf-8-sig") if isinstance(text, bytes) else text
    assert "Banking" in text and "1500.5" in text
    assert len(saved(site, made["id"])) == 1


def test_a_failed_send_is_retried_then_sent_once(site, admin, smtp_inbox):
    world(site, "Retry")
    made = report(site, admin, "Retry")
    payload = {"report_id": made["id"], "due": made["schedule_next_run"].isoformat()}
    good = site.settings["smtp"]
    site.set_setting("smtp", smtp_settings(free_port()))  # nothing answers there
    with pytest.raises(Exception, match="Nothing answers"):
        scheduling.send_job(site, payload)
    [run] = saved(site, made["id"])
    assert (run["status"], run["attempts"]) == ("pending", 1)  # the queue's retry takes it
    site.set_setting("smtp", good)
    assert scheduling.send_job(site, payload).startswith("mailed")
    assert len(smtp_inbox.messages) == 1


def test_an_owner_who_lost_access_is_told_and_nothing_is_sent(site, admin, smtp_inbox):
    world(site, "Lost")
    rita = create_user(site, "rita", "correct horse battery")
    made = report(site, rita, "Lost")
    role = aa.create_role(site, "No accounts")
    aa.set_role_rules(site, role, {"accounts": ("disabled", {})})
    aa.set_user_roles(site, rita.id, [role])
    due = made["schedule_next_run"]
    assert scheduler.run_task(site, scheduling.TASK, due) == "1 scheduled reports queued"
    jobs.run_due_jobs(site)
    assert smtp_inbox.messages == []
    notes = site.tables.tables["crbm_notifications"]
    with site.engine.connect() as conn:
        told = conn.execute(sa.select(notes.c.user_id, notes.c.message, notes.c.record_id)).all()
    assert [(t.user_id, t.record_id) for t in told] == [(rita.id, made["id"])]
    assert "“Lost by industry” was not sent" in told[0].message
    assert "Accounts" in told[0].message
    [run] = saved(site, made["id"])
    assert run["status"] == "refused" and not run["content"]
    # the schedule moved on: the next scan does not try (and tell) again
    assert scheduler.run_task(site, scheduling.TASK, due + dt.timedelta(minutes=5)) == \
        "0 scheduled reports queued"
    # a retried job for that due sends nothing and tells nobody twice
    assert scheduling.send_job(site, {"report_id": made["id"], "due": due.isoformat()}) == \
        "already refused"
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(notes)).scalar() == 1


def test_schedules_are_checked_on_save(site, admin):
    with pytest.raises(ValidationError) as refused:
        report(site, admin, "Bad", schedule_recipients="ok@example.com, not an address")
    assert "'not an address' is not an email address" in str(
        refused.value.errors["schedule_recipients"])
    with pytest.raises(ValidationError) as refused:
        report(site, admin, "Bad", schedule_recipients="")
    assert set(refused.value.errors) == {"schedule_recipients"}
    with pytest.raises(ValidationError) as refused:
        report(site, admin, "Bad", schedule_frequency="weekly", schedule_time="25:00")
    assert set(refused.value.errors) == {"schedule_time", "schedule_weekday"}
    with pytest.raises(ValidationError) as refused:
        report(site, admin, "Bad", schedule_frequency="monthly")
    assert set(refused.value.errors) == {"schedule_day"}
    # not scheduled: no next run, no address needed
    plain = report(site, admin, "Plain", schedule_frequency="none", schedule_recipients=None)
    assert plain["schedule_next_run"] is None
    # scheduled later: the next run appears; a save cannot set it by hand
    weekly = site.records.update("reports", plain["id"], {
        "schedule_frequency": "weekly", "schedule_weekday": "friday", "schedule_time": "9:05",
        "schedule_recipients": "team@example.com"}, admin)
    local = weekly["schedule_next_run"].astimezone(PARIS)
    assert (local.weekday(), local.time(), weekly["schedule_time"]) == (4, dt.time(9, 5), "09:05")


def test_next_runs_follow_the_calendar():
    def at(text):
        return dt.datetime.fromisoformat(text).replace(tzinfo=PARIS)

    monthly = {"schedule_frequency": "monthly", "schedule_day": 31, "schedule_time": "06:00"}
    # the 31st is February's last day, then March's 31st
    first = scheduling.next_run(monthly, at("2026-02-10T12:00"), PARIS)
    assert first.astimezone(PARIS) == at("2026-02-28T06:00")
    assert scheduling.next_run(monthly, first, PARIS).astimezone(PARIS) == at("2026-03-31T06:00")
    # 08:00 in Paris stays 08:00 across the change to summer time (UTC 07:00, then 06:00)
    daily = {"schedule_frequency": "daily", "schedule_time": "08:00"}
    before = scheduling.next_run(daily, at("2026-03-27T09:00"), PARIS)
    after = scheduling.next_run(daily, before, PARIS)
    assert (before.hour, after.hour) == (7, 6)
    assert after.astimezone(PARIS) == at("2026-03-29T08:00")  # summer time from the 29th
    weekly = {"schedule_frequency": "weekly", "schedule_weekday": "monday",
              "schedule_time": "07:00"}
    assert scheduling.next_run(weekly, at("2026-03-30T07:00"), PARIS).astimezone(PARIS) == \
        at("2026-04-06T07:00")  # strictly after
    assert scheduling.next_run({"schedule_frequency": "none"}, at("2026-01-01T00:00"),
                               PARIS) is None
