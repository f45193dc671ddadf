"""The administration's Scheduler page (§7.1.3): every task with its schedule, state, last and
next run; editing a schedule in the page's terms; bad input re-rendered at the task's form
with nothing saved; "Run now" enqueues a run; the external-triggering health indicator."""
from __future__ import annotations

import html

import pytest
import sqlalchemy as sa

from core.apps.scheduler.web import compose, describe
from core.jobs import scheduler
from core.kernel import i18n, users
from core.kernel.users import create_user
from core.testing import signed_in
from tests.pack_util import install_folder


def schedule_of(site, name: str) -> str:
    return next(s for s in scheduler.states(site) if s.name == name).schedule


def row_of(page: str, name: str) -> str:
    start = page.index(f'id="task-{name}"')
    return page[start:page.index("</tr>", start)]


def test_the_page_lists_every_task_and_is_linked_from_the_administration(site, web):
    assert 'href="/admin/scheduler"' in web.get("/admin").text
    page = web.get("/admin/scheduler")
    assert page.status_code == 200
    row = row_of(page.text, "webhooks.deliver")
    assert "Send webhook deliveries" in row and "Run now" in row
    assert '<option value="seconds" selected>' in row and 'name="seconds" value="5"' in row
    assert "has not been seen lately" in page.text


def test_schedules_are_edited_in_the_pages_terms(site, web):
    cases = [({"kind": "daily", "time": "03:30"}, "30 3 * * *"),
             ({"kind": "weekly", "weekday": "5", "time": "18:05"}, "5 18 * * 5"),
             ({"kind": "monthly", "monthday": "1", "time": "00:00"}, "0 0 1 * *"),
             ({"kind": "hourly"}, "0 * * * *"),
             ({"kind": "hourly", "minute": "17"}, "17 * * * *"),
             ({"kind": "seconds", "seconds": "45"}, "@every 45s"),
             ({"kind": "every", "minutes": "15"}, "@every 15m"),
             ({"kind": "cron", "cron": "*/10 8-18 * * 1-5"}, "*/10 8-18 * * 1-5")]
    for fields, expected in cases:
        response = web.post("/admin/scheduler/jobs.prune",
                            data={"_csrf": web.csrf, "enabled": "1", **fields},
                            follow_redirects=False)
        assert response.status_code == 303, response.text
        assert schedule_of(site, "jobs.prune") == expected
    page = web.get("/admin/scheduler").text
    assert '<option value="cron" selected>' in row_of(page, "jobs.prune")
    web.post("/admin/scheduler/jobs.prune", data={"_csrf": web.csrf, "kind": "weekly",
                                                  "weekday": "5", "time": "18:05"})
    row = row_of(web.get("/admin/scheduler").text, "jobs.prune")
    assert '<option value="weekly" selected>' in row and '<option value="5" selected>' in row
    web.post("/admin/scheduler/jobs.prune", data={"_csrf": web.csrf, "kind": "hourly"})
    assert not next(s for s in scheduler.states(site) if s.name == "jobs.prune").enabled


@pytest.mark.parametrize("schedule, kind, fields", [
    ("@every 5s", "seconds", {"seconds": "5"}),
    ("@every 3600s", "seconds", {"seconds": "3600"}),
    ("@every 15m", "every", {"minutes": "15"}),
    ("0 * * * *", "hourly", {"minute": "0"}),
    ("17 * * * *", "hourly", {"minute": "17"}),
    ("30 3 * * *", "daily", {"time": "03:30"}),
    ("5 18 * * 5", "weekly", {"time": "18:05", "weekday": "5"}),
    ("0 0 1 * *", "monthly", {"time": "00:00", "monthday": "1"}),
    ("@every 7200s", "cron", {"cron": "@every 7200s"}),  # past the seconds' bound: as written
    ("@every 2h", "cron", {"cron": "@every 2h"}),
    ("*/10 8-18 * * 1-5", "cron", {"cron": "*/10 8-18 * * 1-5"})])
def test_describe_and_compose_round_trip(schedule, kind, fields):
    described = describe(schedule)
    assert described["kind"] == kind and fields.items() <= described.items()
    assert compose(described) == schedule  # what the form shows is saved back unchanged


def test_bad_input_is_refused_at_the_tasks_form_and_nothing_saved(site, web):
    before = schedule_of(site, "jobs.prune")
    cases = [({"kind": "cron", "cron": "61 * * * *"},
              '"61 * * * *" is not a valid cron expression'),
             ({"kind": "cron", "cron": "@every 2 weeks"}, '"@every 2 weeks" is not a valid interval'),
             ({"kind": "daily", "time": "25:00"}, '"25:00" is not a time of day'),
             ({"kind": "every", "minutes": "0"}, '"0" is not a whole number from 1 to 1440'),
             ({"kind": "seconds", "seconds": "3601"},
              '"3601" is not a whole number from 1 to 3600'),
             ({"kind": "seconds", "seconds": "0"}, '"0" is not a whole number from 1 to 3600'),
             ({"kind": "hourly", "minute": "60"}, '"60" is not a whole number from 0 to 59'),
             ({"kind": "monthly", "monthday": "31", "time": "03:00"},
              '"31" is not a whole number from 1 to 28')]
    for fields, message in cases:
        response = web.post("/admin/scheduler/jobs.prune",
                            data={"_csrf": web.csrf, "enabled": "1", **fields})
        assert response.status_code == 422
        row = html.unescape(row_of(response.text, "jobs.prune"))
        assert message in row  # at the task's own form
        assert message not in html.unescape(row_of(response.text, "webhooks.deliver"))
        assert schedule_of(site, "jobs.prune") == before
    assert web.post("/admin/scheduler/nope.task", data={"_csrf": web.csrf,
                                                        "kind": "hourly"}).status_code == 404


def test_run_now_enqueues_a_run(site, web):
    response = web.post("/admin/scheduler/jobs.prune/run", data={"_csrf": web.csrf},
                        follow_redirects=False)
    assert response.status_code == 303
    table = site.tables.tables["crbm_jobs"]
    with site.engine.connect() as conn:
        keys = list(conn.execute(sa.select(table.c.job_key).where(
            table.c.name == "scheduler.run", table.c.status == "pending")).scalars())
    assert len(keys) == 1 and keys[0].startswith("jobs.prune@")
    assert "will run within a few seconds" in web.get("/admin/scheduler").text


def test_last_run_and_health_are_shown(site, web):
    scheduler.run_task(site, "jobs.prune", scheduler.now())
    scheduler.record_trigger(site, "external")
    page = web.get("/admin/scheduler").text
    row = row_of(page, "jobs.prune")
    assert "Succeeded" in row and "0 finished jobs removed" in row
    assert "External triggering appears to be working." in page


def test_the_page_speaks_french(site, admin):
    install_folder(site, "lang_fr")
    users.save_preferences(site, admin.id, i18n.Preferences(language="fr").to_dict())
    scheduler.run_task(site, "jobs.prune", scheduler.now())
    with signed_in(site, admin.username) as client:
        page = html.unescape(client.get("/admin/scheduler").text)
        row = row_of(page, "jobs.prune")
        assert "Élaguer le journal des travaux d’arrière-plan terminés" in row
        assert "Réussie" in row and "0 travaux terminés supprimés" in row
        assert "Exécuter maintenant" in row and "Chaque jour à" in row
        assert "Toutes les N secondes" in row_of(page, "webhooks.deliver")
        response = client.post("/admin/scheduler/jobs.prune",
                               data={"_csrf": client.csrf, "kind": "cron", "cron": "61 * * * *"})
        assert "« 61 * * * * » n’est pas une expression cron valide" in \
            html.unescape(response.text)


def test_only_administrators_see_it(site, admin):
    create_user(site, "sam", "correct horse battery")
    with signed_in(site, "sam") as client:
        assert client.get("/admin/scheduler").status_code == 403
        assert client.post("/admin/scheduler/jobs.prune/run",
                           data={"_csrf": client.csrf}).status_code == 403
