"""Dashboards: the standard dashlets' figures against hand-computed ones, what a Team-level
user's dashlets leave out, drill-downs listing exactly a segment's records, the home page's
statements (a constant per dashlet: the same with 10 and with 100 records), and managing
dashboards: add, remove, reorder, resize, tabs, the administrator's maximum, published
defaults per role; the site without dashboards, and dashboards without a dashlet plugin."""
from __future__ import annotations

import datetime as dt
import json
import re
from contextlib import contextmanager

import pytest
import sqlalchemy as sa
import time_machine
from dateutil.relativedelta import relativedelta
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.apps.calendar.settings import calendar_settings
from core.kernel.i18n import Preferences, formatter
from core.kernel.records import SYSTEM_USER
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, csrf_of, signed_in
from core.web.app import create_app
from plugins.dashboards import store
from plugins.dashboards.dashlets import Registry
from plugins.opportunities import glue_dashboards as opp

PASSWORD = "a long enough password 1"
EIGHT = ["activities.upcoming", "opportunities.pipeline_by_stage",
         "opportunities.pipeline_by_month", "opportunities.pipeline_by_source",
         "opportunities.top_open", "activities.my_open_tasks", "cases.my_open",
         "leads.by_status"]


def fmt():
    return formatter(Preferences())


def render(site, user, name, options=None):
    return Registry.of(site).types[name].render(site, user, options or {}, fmt())


def series(drawn, index=0) -> dict[str, tuple[float, str]]:
    """label -> (value, url) of a chart's series."""
    return {d["name"]: (d["value"], d["url"]) for d in drawn.chart["series"][index]["data"]}


@contextmanager
def statements(site):
    seen: list[str] = []

    def count(conn, cursor, statement, *args):
        seen.append(statement)
    sa.event.listen(site.engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", count)


@pytest.fixture
def world(site, admin):
    """Deals of the admin and of Rob, on one account; closing this month and later."""
    rob = create_user(site, "rob", PASSWORD)
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    today = calendar_settings(site).today()
    first = today.replace(day=1)
    next_month = first + relativedelta(months=1)

    def deal(name, owner, amount, stage, closes, source=None, **more):
        return {"name": name, "account_id": acme["id"], "amount": amount,
                "sales_stage": stage, "date_closed": closes, "assigned_user_id": owner.id,
                "lead_source": source, **more}

    ids = site.records.create_many("opportunities", [
        deal("A1", admin, "10000", "prospecting", first, "web_site"),        # 10 %
        deal("A2", admin, "2000", "prospecting", next_month, "cold_call"),   # 10 %
        deal("A3", admin, "5000", "negotiation_review", next_month, "web_site"),  # 80 %
        deal("A4", admin, "7000", "closed_won", first, "web_site"),
        deal("A5", admin, "1000", "qualification", first, None, probability=50),
        deal("R1", rob, "3000", "prospecting", first, "web_site"),
        deal("R2", rob, "4000", "closed_lost", next_month, "cold_call"),
    ], admin)
    return {"rob": rob, "acme": acme, "first": first, "next": next_month,
            "ids": dict(zip(["A1", "A2", "A3", "A4", "A5", "R1", "R2"], ids, strict=True))}


def test_my_pipeline_by_stage_is_face_and_weighted_per_open_stage(site, admin, world):
    drawn = render(site, admin, opp.BY_STAGE)
    face, weighted = series(drawn, 0), series(drawn, 1)
    assert {k: v for k, (v, _) in face.items()} == {
        "Prospecting": 12000.0, "Qualification": 1000.0, "Negotiation/Review": 5000.0}
    assert {k: v for k, (v, _) in weighted.items()} == {
        "Prospecting": 1200.0, "Qualification": 500.0, "Negotiation/Review": 4000.0}
    # a stage's bars open the list filtered by stage and assignee (list filters)
    assert face["Prospecting"][1] == \
        f"/m/opportunities?f_sales_stage=prospecting&f_assigned_user_id={admin.id}"
    table = {row[0].text: row for row in drawn.table.rows}
    assert [c.text for c in table["Prospecting"][1:]] == ["2", "$12,000", "$1,200"]
    assert render(site, world["rob"], opp.BY_STAGE).chart["series"][0]["data"][0]["value"] \
        == 3000.0


def test_pipeline_by_month_and_by_source(site, admin, world):
    months = render(site, admin, opp.BY_MONTH)
    values = [d["value"] for d in months.chart["series"][0]["data"]]
    assert len(values) == 12
    assert values[:2] == [14000.0, 7000.0]  # A1 A5 R1 | A2 A3 (won and lost left out)
    assert sum(values[2:]) == 0
    sources = {k: v for k, (v, _) in series(render(site, admin, opp.BY_SOURCE)).items()}
    assert sources == {"Web Site": 18000.0, "Cold Call": 2000.0, "(none)": 1000.0}


def drilled(web, url) -> set[str]:
    page = web.get(url)
    assert page.status_code == 200, url
    return set(re.findall(r'<tr data-id="([0-9a-f-]{36})">', page.text))


def test_drill_downs_list_exactly_the_segments_records(site, admin, world, web):
    ids = world["ids"]
    months = series(render(site, admin, opp.BY_MONTH))
    first_label = next(iter(months))
    assert drilled(web, months[first_label][1]) == {ids["A1"], ids["A5"], ids["R1"]}
    sources = series(render(site, admin, opp.BY_SOURCE))
    assert drilled(web, sources["Web Site"][1]) == {ids["A1"], ids["A3"], ids["R1"]}
    assert drilled(web, sources["(none)"][1]) == {ids["A5"]}
    stage = series(render(site, admin, opp.BY_STAGE))["Prospecting"][1]
    listed = web.get(stage).text  # the module's own list, filtered
    assert {ids["A1"], ids["A2"]} <= set(re.findall(r"/m/opportunities/([0-9a-f-]{36})", listed))
    assert ids["R1"] not in listed
    # a made-up segment is a clear 404, not a server error
    assert web.get("/dashboards/drill/opportunities.pipeline_by_month/13-2026").status_code == 404
    assert web.get("/dashboards/drill/nothing.here/x").status_code == 404


def test_leads_by_status_link_the_filtered_list(site, admin, web):
    site.records.create_many("leads", [
        {"last_name": n, "status": s} for n, s in
        (("Ann", "new"), ("Bob", "new"), ("Cid", "dead"))], admin)
    drawn = series(render(site, admin, "leads.by_status"))
    assert {k: v for k, (v, _) in drawn.items()} == {"New": 2.0, "Dead": 1.0}
    assert drawn["New"][1] == "/m/leads?f_status=new"
    listed = web.get(drawn["New"][1]).text
    assert "Ann" in listed and "Bob" in listed and "Cid" not in listed
    assert len(drilled(web, "/dashboards/drill/leads.by_status/dead")) == 1


def test_a_team_level_users_dashlets_leave_out_what_they_cannot_see(site, admin, world):
    aa.save_settings(site, {"inherit_created_by": False})
    east = aa.create_team(site, "East")
    tess = create_user(site, "tess", PASSWORD)
    aa.set_team_members(site, east, add=[tess.id])
    role = aa.create_role(site, "Team sales")
    rights = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}
    aa.set_role_rules(site, role, {"opportunities": ("enabled", rights),
                                   "leads": ("enabled", rights)})
    aa.set_user_roles(site, tess.id, [role])
    site.records.create("opportunities", {
        "name": "East deal", "account_id": world["acme"]["id"], "amount": "800",
        "sales_stage": "prospecting", "date_closed": world["first"],
        "lead_source": "web_site", "assigned_user_id": world["rob"].id},
        SYSTEM_USER, teams=[east])
    site.records.create("leads", {"last_name": "Seen", "status": "new"}, SYSTEM_USER,
                        teams=[east])
    site.records.create("leads", {"last_name": "Unseen", "status": "new"}, SYSTEM_USER)
    sources = {k: v for k, (v, _) in series(render(site, tess, opp.BY_SOURCE)).items()}
    assert sources == {"Web Site": 800.0}
    months = render(site, tess, opp.BY_MONTH).chart["series"][0]["data"]
    assert months[0]["value"] == 800.0 and sum(d["value"] for d in months) == 800.0
    assert [r[0].text for r in render(site, tess, opp.TOP_OPEN).table.rows] == ["East deal"]
    assert series(render(site, tess, "leads.by_status"))["New"][0] == 1.0
    # her drill-down lists only what she may see, too
    with signed_in(site, "tess", PASSWORD) as web:
        url = series(render(site, tess, opp.BY_SOURCE))["Web Site"][1]
        assert len(drilled(web, url)) == 1
        assert web.get("/").status_code == 200


def eight(site, admin):
    """A stored dashboard of the eight standard dashlets of other plugins."""
    with site.engine.begin() as conn:
        tab = store.own(site, admin, store.STARTING, conn)
    store.change(site, admin, tab, lambda d: d.dashlets.__setitem__(slice(None), [
        {"id": f"d{i}", "type": name, "width": 1, "options": {}}
        for i, name in enumerate(EIGHT)]))
    return tab


def add_records(site, admin, account_id, n, start):
    today = calendar_settings(site).today()
    stages = opp.open_stages(site)
    site.records.create_many("opportunities", [
        {"name": f"Deal {i}", "account_id": account_id, "amount": str(100 + i),
         "sales_stage": stages[i % len(stages)], "date_closed": today + dt.timedelta(days=i % 300),
         "lead_source": ["web_site", "cold_call", None][i % 3]} for i in range(start, start + n)],
        admin)
    site.records.create_many("tasks", [{"name": f"Task {i}", "status": "not_started",
                                         "date_due": today + dt.timedelta(days=i % 10)}
                                        for i in range(start, start + n)], admin)
    site.records.create_many("leads", [{"last_name": f"Lead {i}",
                                        "status": ["new", "assigned", "dead"][i % 3]}
                                       for i in range(start, start + n)], admin)
    site.records.create_many("cases", [{"name": f"Case {i}", "account_id": account_id,
                                        "status": "new"} for i in range(start, start + n)],
                             admin)


def test_the_home_page_costs_a_constant_number_of_statements(site, admin, web):
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    eight(site, admin)
    # one frozen minute: what a request writes now and then along the page (the session's
    # touch, activity tracking) is written by the warming request, not by a measured one
    with time_machine.travel(dt.datetime.now(dt.UTC), tick=False):
        add_records(site, admin, acme["id"], 10, 0)
        web.get("/")  # warm: grants, registry caches
        with statements(site) as seen:
            page = web.get("/")
        assert page.status_code == 200
        assert page.text.count('class="dashlet ') == 8
        few = len(seen)
        add_records(site, admin, acme["id"], 90, 10)
        web.get("/")
        with statements(site) as seen:
            assert web.get("/").status_code == 200
    assert len(seen) == few, "\n".join(seen)
    assert few <= 2 + 8 * 3  # the user, the dashboards, at most three per dashlet


def post(web, url, **data):
    return web.post(url, data={"_csrf": web.csrf, **data}, follow_redirects=False)


def tabs(site, user):
    return store.dashboards(site, user)


def test_add_remove_resize_reorder_and_tabs(site, admin, web):
    start = tabs(site, admin)[0]
    assert not start.stored and [d["type"] for d in start.dashlets] == \
        [t.name for t in Registry.of(site).standard()]
    assert site.engine.connect().execute(  # a GET writes nothing
        sa.select(sa.func.count()).select_from(site.tables.tables[store.TABLE])).scalar() == 0
    reply = post(web, "/dashboards/new/add", type="leads.by_status")
    assert reply.status_code == 303
    mine = tabs(site, admin)
    assert len(mine) == 1 and mine[0].stored
    tab = mine[0].id
    assert reply.headers["location"] == f"/?tab={tab}"
    assert [d["type"] for d in mine[0].dashlets][-1] == "leads.by_status"
    added = mine[0].dashlets[-1]["id"]
    post(web, f"/dashboards/{tab}/resize", dashlet=added, width="3")
    assert tabs(site, admin)[0].dashlets[-1]["width"] == 3
    post(web, f"/dashboards/{tab}/move", dashlet=added, step="up")
    assert tabs(site, admin)[0].dashlets[-2]["id"] == added
    ids = [d["id"] for d in tabs(site, admin)[0].dashlets]
    reordered = list(reversed(ids))
    answer = web.post(f"/dashboards/{tab}/order", data={"_csrf": web.csrf,
                                                        "order": ",".join(reordered)},
                      headers={"Accept": "application/json"})
    assert answer.json() == {"ok": True, "tab": tab}
    assert [d["id"] for d in tabs(site, admin)[0].dashlets] == reordered
    bad = web.post(f"/dashboards/{tab}/order", data={"_csrf": web.csrf, "order": "x,y"},
                   headers={"Accept": "application/json"})
    assert bad.status_code == 422 and "each dashlet" in bad.json()["error"]
    no_csrf = web.post(f"/dashboards/{tab}/order", data={"order": ",".join(ids)})
    assert no_csrf.status_code == 403
    post(web, f"/dashboards/{tab}/remove", dashlet=added)
    assert added not in [d["id"] for d in tabs(site, admin)[0].dashlets]
    post(web, f"/dashboards/{tab}/rename", name="Sales")
    post(web, "/dashboards/new", name="Service")
    names = [t.name for t in tabs(site, admin)]
    assert names == ["Sales", "Service"]
    second = tabs(site, admin)[1].id
    home = web.get(f"/?tab={second}").text
    assert "This dashboard is empty" in home and ">Sales</a>" in home
    post(web, f"/dashboards/{second}/add", type="cases.my_open")
    post(web, f"/dashboards/{second}/delete")
    assert [t.name for t in tabs(site, admin)] == ["Sales"]
    refused = post(web, f"/dashboards/{tab}/delete")
    assert "only dashboard" in web.get(refused.headers["location"]).text
    # another user's dashboard is not reachable through its id
    create_user(site, "rob", PASSWORD)
    with signed_in(site, "rob", PASSWORD) as rob:
        post(rob, f"/dashboards/{tab}/rename", name="Mine now")
    assert tabs(site, admin)[0].name == "Sales"


def test_the_administrators_maximum_is_refused_clearly(site, admin, web):
    site.set_setting(store.SETTING, {"max_dashlets": 3})
    tab = None
    for _ in range(20):  # the standard dashboard has more than 3: first remove down to 2
        mine = tabs(site, admin)[0]
        if mine.stored and len(mine.dashlets) <= 2:
            break
        post(web, f"/dashboards/{mine.id}/remove", dashlet=mine.dashlets[0]["id"])
    tab = tabs(site, admin)[0].id
    assert post(web, f"/dashboards/{tab}/add", type="leads.by_status").status_code == 303
    refused = post(web, f"/dashboards/{tab}/add", type="cases.my_open")
    text = web.get(refused.headers["location"]).text
    assert "a dashboard holds at most 3 dashlets" in text
    assert len(tabs(site, admin)[0].dashlets) == 3
    bad = post(web, f"/dashboards/{tab}/add", type="no.such")
    assert "there is no dashlet" in web.get(bad.headers["location"]).text
    # Admin → Dashboards sets it; a bad value is named
    page = web.post("/admin/dashboards", data={"_csrf": web.csrf, "max_dashlets": "0"})
    assert page.status_code == 422 and "is not a whole number from 1 to 50" in page.text
    web.post("/admin/dashboards", data={"_csrf": web.csrf, "max_dashlets": "20"})
    assert store.max_dashlets(site) == 20


def test_a_role_default_published_by_an_administrator(site, admin, web):
    role = aa.create_role(site, "Support")
    sue, ned = create_user(site, "sue", PASSWORD), create_user(site, "ned", PASSWORD)
    aa.set_user_roles(site, sue.id, [role])
    post(web, "/dashboards/new/rename", name="Support desk")
    tab = tabs(site, admin)[0].id
    store.change(site, admin, tab, lambda d: d.dashlets.__setitem__(slice(None), [
        {"id": "c1", "type": "cases.my_open", "width": 2, "options": {}}]))
    post(web, f"/dashboards/{tab}/publish", role=role)
    assert [p["role"] for p in store.published(site)] == ["Support"]
    start = tabs(site, sue)[0]
    assert (start.name, [d["type"] for d in start.dashlets], start.stored) == \
        ("Support desk", ["cases.my_open"], False)
    assert [d["type"] for d in tabs(site, ned)[0].dashlets] == \
        [t.name for t in Registry.of(site).standard()]
    with signed_in(site, "sue", PASSWORD) as client:
        home = client.get("/").text
        assert "My open cases" in home and "Support desk" in home
        post(client, "/dashboards/new/add", type="leads.by_status")  # now her own copy
        refused = post(client, f"/dashboards/{tabs(site, sue)[0].id}/publish", role=role)
        assert "only administrators" in client.get(refused.headers["location"]).text
    assert [d["type"] for d in tabs(site, sue)[0].dashlets] == ["cases.my_open",
                                                                "leads.by_status"]
    assert [d["type"] for d in tabs(site, admin)[0].dashlets] == ["cases.my_open"]
    assert "Support desk" in web.get("/admin/dashboards").text


def test_recently_viewed_is_a_dashlet(site, admin, web):
    acme = site.records.create("accounts", {"name": "Acme"}, admin)
    web.get(f"/m/accounts/{acme['id']}")
    home = web.get("/").text
    assert "Recently viewed" in home and f'href="/m/accounts/{acme["id"]}">Acme</a>' in home
    assert home.count("Welcome, admin") == 1


def test_a_chart_carries_its_option_and_table(site, admin, world, web):
    home = web.get("/").text
    charts = re.findall(r'<div class="dash-chart" data-chart[^>]*><script type="application/json">'
                        r'(.*?)</script>', home)
    assert charts
    option = json.loads(charts[0])
    assert option["aria"] == {"enabled": True}
    assert all(d["url"] for s in option["series"] for d in s["data"])
    assert "<table class=\"dash-table\">" in home


def test_labels_cannot_break_out_of_the_chart_script():
    from plugins.dashboards import web as pages

    text = pages._json({"name": "</script><b>&"})
    assert "</script>" not in text and json.loads(text) == {"name": "</script><b>&"}


@pytest.mark.parametrize("gone", ["opportunities", "activities", "cases", "leads", "reports"])
def test_dashboards_without_a_dashlet_plugin(make_site, gone):
    site = make_site()
    site.disable_plugin(gone, with_dependents=True)
    admin = create_user(site, "boss", PASSWORD, is_admin=True)
    names = set(Registry.of(site).types)
    assert not {n for n in names if n.startswith(gone + ".")}
    assert "dashboards.recent" in names
    with site.engine.begin() as conn:  # a dashboard holding a dashlet of the gone plugin
        tab = store.own(site, admin, store.STARTING, conn)
    store.change(site, admin, tab, lambda d: d.dashlets.__setitem__(slice(None), [
        {"id": "a", "type": "dashboards.recent", "width": 1, "options": {}},
        {"id": "gone", "type": f"{gone}.something", "width": 1, "options": {}},
        {"id": "b", "type": "dashboards.modules", "width": 2, "options": {}}]))
    with TestClient(create_app(site)) as web:
        web.post("/login", data={"_csrf": csrf_of(web.get("/login").text),
                                 "username": "boss", "password": PASSWORD})
        home = web.get("/")
        assert home.status_code == 200 and "Recently viewed" in home.text
        assert home.text.count('class="dashlet ') == 2  # absent while its plugin is
        csrf = csrf_of(home.text)
        web.post(f"/dashboards/{tab}/order", data={"_csrf": csrf, "order": "b,a"})
    # the hidden one keeps its place after the others, to come back with its plugin
    assert [d["id"] for d in store.dashboards(site, admin)[0].dashlets] == ["b", "a", "gone"]


def test_the_core_home_page_comes_back_without_dashboards(make_site):
    site = make_site()
    site.disable_plugin("dashboards", with_dependents=True)
    assert site.check_schema().in_sync
    create_user(site, "boss", ADMIN_PASSWORD, is_admin=True)
    with signed_in(site, "boss") as web:
        home = web.get("/")
        assert home.status_code == 200 and "Welcome, boss" in home.text
        assert "data-dash" not in home.text and "Recently viewed" in home.text


def test_a_saved_reports_chart_on_a_dashboard(site, admin, world, web):
    report = site.records.create("reports", {"name": "Pipeline by stage", "definition": json.dumps(
        {"module": "opportunities", "columns": [{"field": "amount", "aggregate": "sum"},
                                                {"field": "id", "aggregate": "count"}],
         "group_by": [{"field": "sales_stage"}], "chart": {"type": "bar", "column": 0}})},
        admin)
    kind = Registry.of(site).types["reports.report"]
    assert (report["id"], "Pipeline by stage") in kind.choices(site, admin)
    drawn = render(site, admin, "reports.report", {"value": report["id"]})
    bars = series(drawn)
    assert {k: v for k, (v, _) in bars.items()} == {
        "Prospecting": 15000.0, "Qualification": 1000.0, "Negotiation/Review": 5000.0,
        "Closed Won": 7000.0, "Closed Lost": 4000.0}
    assert bars["Prospecting"][1] == f"/reports/{report['id']}/records?g0=prospecting"
    assert [c.text for c in drawn.table.rows[0]] == ["Prospecting", "$15,000.00", "3"]
    # headed by the report's name, its columns worded as on the report's page
    assert drawn.title == "Pipeline by stage"
    assert list(drawn.table.headers) == ["Sales stage", "Opportunity amount (Sum)",
                                         "Number of Opportunities"]
    # added through the chooser, with the report as its option; a wrong option is refused
    post(web, "/dashboards/new/add", type="reports.report", option=report["id"])
    assert tabs(site, admin)[0].dashlets[-1]["options"] == {"value": report["id"]}
    refused = post(web, f"/dashboards/{tabs(site, admin)[0].id}/add", type="reports.report",
                   option="nope")
    assert "choose one of the offered values" in web.get(refused.headers["location"]).text
    assert "Pipeline by stage" in web.get("/").text
    # a report deleted since says so in its place
    site.records.delete("reports", report["id"], admin)
    gone = render(site, admin, "reports.report", {"value": report["id"]})
    assert gone.error and "deleted" in gone.error
