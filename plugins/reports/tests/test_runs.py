"""Saved runs: "Save a run now" keeps the file (CSRF-checked), the runs page lists and
serves it to whoever may view the report and to nobody else (the 404 of an unknown
report), and the daily pruning task removes only the runs older than the days kept."""
from __future__ import annotations

import datetime as dt
import io
import json

import openpyxl
import sqlalchemy as sa

from core.apps.admin import access_admin as aa
from core.jobs import scheduler
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import signed_in
from plugins.reports import runs, scheduling

DEFINITION = {"module": "accounts", "columns": [{"field": "id", "aggregate": "count"}],
              "filters": [{"field": "name", "op": "starts", "value": "Run "}],
              "group_by": [{"field": "industry"}]}


def a_report(site, owner) -> dict:
    site.records.create_many("accounts", [
        {"name": f"Run {i}", "industry": "banking" if i % 2 else "energy"} for i in range(5)],
        SYSTEM_USER)
    return site.records.create("reports", {"name": "Accounts by industry",
                                           "definition": json.dumps(DEFINITION),
                                           "assigned_user_id": owner.id}, owner)


def test_runs_are_saved_listed_and_served_only_to_who_may_view_the_report(site, admin, web):
    made = a_report(site, admin)
    url = f"/reports/{made['id']}/runs"
    page = web.get(url)
    assert page.status_code == 200 and "No saved runs yet." in page.text
    assert web.post(url, data={"format": "xlsx"}).status_code == 403  # no CSRF token
    saved = web.post(url, data={"_csrf": web.csrf, "format": "xlsx"}, follow_redirects=False)
    assert (saved.status_code, saved.headers["location"]) == (303, url)
    web.post(url, data={"_csrf": web.csrf, "format": "csv"})
    found = {r["format"]: r for r in runs.listed(site, made["id"])}
    csv_run, xlsx_run = found["csv"], found["xlsx"]
    assert (xlsx_run["format"], xlsx_run["trigger"], xlsx_run["row_count"]) == \
        ("xlsx", "manual", 5)
    listing = web.get(url).text
    assert f"/reports/{made['id']}/runs/{xlsx_run['id']}" in listing
    got = web.get(f"{url}/{xlsx_run['id']}")
    assert got.headers["content-type"].startswith("application/vnd.openxmlformats")
    book = openpyxl.load_workbook(io.BytesIO(got.content))
    rows = {r[0]: r[1] for r in book.active.iter_rows(min_row=2, values_only=True)}
    assert rows == {"Banking": 2, "Energy": 3, "Total": 5}
    assert web.get(f"{url}/{csv_run['id']}").content.decode("utf-8-sig").startswith("Industry,")
    bad = web.post(url, data={"_csrf": web.csrf, "format": "exe"}, follow_redirects=True)
    assert "&#39;exe&#39; is not a format" in bad.text or "'exe' is not a format" in bad.text

    # Otto may view only his own reports: to him this report and its runs do not exist
    role = aa.create_role(site, "Own reports")
    aa.set_role_rules(site, role, {"reports": ("enabled", {"view": "owner", "list": "owner",
                                                           "edit": "owner"})})
    otto = create_user(site, "otto", "correct horse battery")
    aa.set_user_roles(site, otto.id, [role])
    with signed_in(site, "otto", "correct horse battery") as client:
        assert client.get(url).status_code == 404
        assert client.get(f"{url}/{xlsx_run['id']}").status_code == 404
        assert client.post(url, data={"_csrf": client.csrf, "format": "csv"}).status_code == 404
    assert len(runs.listed(site, made["id"])) == 2
    # once the report is his, he may read them
    site.records.update("reports", made["id"], {"assigned_user_id": otto.id}, admin)
    with signed_in(site, "otto", "correct horse battery") as client:
        assert client.get(f"{url}/{xlsx_run['id']}").content == got.content
        # a run of another report is not found under this one
        other = a_report(site, admin)
        assert client.get(f"/reports/{other['id']}/runs/{xlsx_run['id']}").status_code == 404


def test_pruning_removes_only_the_runs_older_than_the_days_kept(site, admin):
    made = a_report(site, admin)
    user = admin
    for _ in range(4):
        runs.save_manual(site, made, user, runs.Made(b"x" * 10, 1, "csv"))
    table = runs.table(site)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    ids = [r["id"] for r in runs.listed(site, made["id"])]
    ages = {ids[0]: 45, ids[1]: 31, ids[2]: 29, ids[3]: 0}  # days
    with site.engine.begin() as conn:
        for run_id, days in ages.items():
            conn.execute(table.update().where(table.c.id == run_id)
                         .values(ran_at=now - dt.timedelta(days=days)))
        # a scheduled run still being mailed is never pruned, however old
        conn.execute(table.insert().values(
            id="00000000-0000-0000-0000-0000000000aa", report_id=made["id"],
            run_key="scheduled:x", trigger="scheduled", status="sending", attempts=0,
            ran_at=now - dt.timedelta(days=90), format="xlsx", size=0))
    assert scheduler.run_task(site, scheduling.PRUNE_TASK, now) == \
        "2 saved runs older than 30 days removed"
    with site.engine.connect() as conn:
        left = set(conn.execute(sa.select(table.c.id)).scalars())
    assert left == {ids[2], ids[3], "00000000-0000-0000-0000-0000000000aa"}
    site.set_setting("reports", {"runs_kept_days": 10})
    assert runs.kept_days(site) == 10
    assert scheduler.run_task(site, scheduling.PRUNE_TASK, now + dt.timedelta(minutes=1)) == \
        "1 saved runs older than 10 days removed"
    site.set_setting("reports", {"runs_kept_days": "forever"})  # unusable: the default
    assert runs.kept_days(site) == runs.DEFAULT_KEPT_DAYS
