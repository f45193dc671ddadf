"""The reports' pages through the web UI (a TestClient signed in): the builder saves a good
definition and shows a bad one's problems beside their rows; the report page shows the
figures of records made here, its groups open exactly their records, its exports carry
the same figures (no formula in a cell); Show SQL is for administrators; a report broken
by a field removed in the Studio, refused by a role or capped by its groups says so."""
from __future__ import annotations

import csv
import io
import json
import re
import uuid

import openpyxl
import pytest

from core.apps.admin import access_admin as aa
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, signed_in
from plugins.reports import compiler, run

BY_INDUSTRY = {"module": "accounts",
               "columns": [{"via": "opportunities", "field": "amount", "aggregate": "sum"},
                           {"field": "id", "aggregate": "count"}],
               "group_by": [{"field": "industry"}], "chart": {"type": "bar", "column": 0}}


@pytest.fixture
def world(site, admin) -> dict:
    """Banking: Alpha (1,000 + 500) and Beta (250); Energy: Gamma (4,000)."""
    ids = {}
    for name, industry, amounts in (("Alpha", "banking", ("1000", "500")),
                                    ("Beta", "banking", ("250",)),
                                    ("Gamma", "energy", ("4000",))):
        ids[name] = site.records.create("accounts", {"name": name, "industry": industry},
                                        admin)["id"]
        site.records.create_many("opportunities", [
            {"name": f"{name} deal {i}", "account_id": ids[name], "amount": amount,
             "amount_currency": "USD", "sales_stage": "prospecting",
             "date_closed": "2026-06-30"} for i, amount in enumerate(amounts)], admin)
    return ids


def report(site, admin, definition: dict, name: str = "By industry") -> str:
    return site.records.create("reports", {"name": name, "definition": json.dumps(definition)},
                               admin)["id"]


def rows_of(html: str, selector: str = r'<tr class="(?:group|subtotal)"[^>]*>') -> list[list[str]]:
    """Each table row's cells as text (tags stripped)."""
    found = []
    for row in re.split(r"</tr>", html):
        if re.search(selector, row):
            cells = re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", row, re.DOTALL)
            found.append([re.sub(r"<[^>]+>", "", c).strip() for c in cells])
    return found


def total_of(html: str) -> list[str]:
    return rows_of(html, r"data-total")[0]


def form_for(web, **fields) -> dict:
    """The builder's form as a browser without JavaScript posts it."""
    data = {"_csrf": web.csrf, "name": "", "description": "", "module": "accounts",
            "sort_column": "", "chart_type": "", "chart_column": ""}
    for prefix, names, count in (("c", ("key", "aggregate", "label"), 4),
                                 ("f", ("key", "op", "value"), 2), ("g", ("key", "by"), 2)):
        for i in range(count):
            for n in names:
                data[f"{prefix}{i}_{n}"] = ""
    data.update(fields)
    return data


# -- the builder ---------------------------------------------------------------------------


def test_the_builder_saves_a_grouped_report_and_runs_it(site, admin, web, world):
    page = web.get("/reports/new?module=accounts")
    assert page.status_code == 200
    # the chooser: the module's fields, a many-to-one link's target's, a relationship's
    assert 'value="industry"' in page.text
    assert 'value="member_of_id.industry"' in page.text
    assert 'value="opportunities.amount"' in page.text
    response = web.post("/reports/new", data=form_for(
        web, name="Pipeline by industry", c0_key="opportunities.amount", c0_aggregate="sum",
        c1_key="id", c1_aggregate="count", g0_key="industry", chart_type="bar",
        chart_column="0"), follow_redirects=False)
    assert response.status_code == 303, response.text
    saved = site.records.list("reports", admin)
    assert [r["name"] for r in saved] == ["Pipeline by industry"]
    assert json.loads(saved[0]["definition"])["group_by"] == [{"field": "industry"}]
    page = web.get(response.headers["location"])
    assert rows_of(page.text) == [["Banking", "$1,750.00", "2", "2"],
                                  ["Energy", "$4,000.00", "1", "1"]]
    # the design page reads it back
    design = web.get(f"/reports/{saved[0]['id']}/design")
    assert re.search(r'<option value="opportunities.amount"[^>]*selected', design.text)


def test_the_builder_refuses_a_bad_definition_beside_its_row_and_saves_nothing(
        site, admin, web):
    response = web.post("/reports/new", data=form_for(
        web, name="Nonsense", c0_key="name", c1_key="name", c1_aggregate="sum",
        g0_key="industry"))
    assert response.status_code == 422
    assert re.search(r'data-problem="c1.aggregate">Aggregate: sum needs a number field',
                     response.text)
    assert re.search(r'data-problem="c0.aggregate">Aggregate: is required in a grouped report',
                     response.text)
    assert site.records.list("reports", admin) == []
    # what was typed stays
    assert 'value="Nonsense"' in response.text


def test_a_filter_value_of_the_wrong_type_is_refused_in_the_builder(site, admin, web):
    response = web.post("/reports/new", data=form_for(
        web, name="Rich", c0_key="name", f0_key="annual_revenue", f0_op="gte", f0_value="lots"))
    assert response.status_code == 422
    assert re.search(r'data-problem="f0.value">Value: ', response.text)
    assert 'value="lots"' in response.text
    assert site.records.list("reports", admin) == []


def test_design_saves_changes_and_more_rows_saves_nothing(site, admin, web, world):
    report_id = report(site, admin, BY_INDUSTRY)
    fields = form_for(web, name="By type", c0_key="opportunities.amount", c0_aggregate="sum",
                      g0_key="account_type", chart_type="pie", chart_column="0")
    longer = web.post(f"/reports/{report_id}/design", data={**fields, "_more": "1"})
    assert longer.status_code == 200 and 'name="c6_key"' in longer.text
    assert json.loads(site.records.get("reports", report_id, admin)["definition"]) == \
        BY_INDUSTRY
    saved = web.post(f"/reports/{report_id}/design", data=fields, follow_redirects=False)
    assert saved.status_code == 303 and saved.headers["location"] == f"/reports/{report_id}"
    stored = site.records.get("reports", report_id, admin)
    assert stored["name"] == "By type"
    assert json.loads(stored["definition"]) == {
        "module": "accounts", "columns": [{"via": "opportunities", "field": "amount",
                                           "aggregate": "sum"}],
        "filters": [], "group_by": [{"field": "account_type"}],
        "chart": {"type": "pie", "column": 0}}
    # another module: its choices, the columns anew
    moved = web.get(f"/reports/{report_id}/design?module=contacts")
    assert "the columns start anew" in moved.text and 'value="last_name"' in moved.text


def test_changing_the_module_reloads_the_choices(site, admin, web):
    page = web.get("/reports/new?module=opportunities&name=Deals")
    assert 'value="sales_stage"' in page.text and 'value="industry"' not in page.text
    assert 'value="Deals"' in page.text


# -- the report, its groups, its exports ------------------------------------------------------


def test_the_report_shows_the_grouped_figures_total_and_chart(site, admin, web, world):
    report_id = report(site, admin, BY_INDUSTRY)
    page = web.get(f"/reports/{report_id}")
    assert page.status_code == 200
    assert rows_of(page.text) == [["Banking", "$1,750.00", "2", "2"],
                                  ["Energy", "$4,000.00", "1", "1"]]
    assert total_of(page.text) == ["Total", "$5,750.00", "3", "3"]
    option = json.loads(re.search(r'<script type="application/json" data-report-chart-option>'
                                  r"(.*?)</script>", page.text, re.DOTALL).group(1))
    assert option["xAxis"]["data"] == ["Banking", "Energy"]
    assert [d["value"] for d in option["series"][0]["data"]] == [1750.0, 4000.0]
    assert option["series"][0]["data"][0]["url"] == f"/reports/{report_id}/records?g0=banking"
    assert option["crbm"]["currency"] == "USD" and option["aria"]["enabled"] is True
    assert f'href="/reports/{report_id}/records?g0=banking">Banking</a>' in page.text


def test_a_group_lists_exactly_its_records(site, admin, web, world):
    report_id = report(site, admin, BY_INDUSTRY)
    page = web.get(f"/reports/{report_id}/records?g0=banking")
    assert page.status_code == 200
    assert "<h1>Industry: Banking</h1>" in page.text
    names = re.findall(r'<a href="/m/accounts/([^"]+)">([^<]+)</a>', page.text)
    assert sorted(names) == sorted([(world["Alpha"], "Alpha"), (world["Beta"], "Beta")])
    assert "2 records" in page.text
    assert total_of(page.text)[1:3] == ["$1,750.00", "2"]
    assert f'href="/reports/{report_id}"' in page.text  # back
    # bad keys: a level the report has not, a value its field cannot hold
    assert web.get(f"/reports/{report_id}/records?g1=x").status_code == 400
    by_size = report(site, admin, {"module": "accounts", "columns": [
        {"field": "id", "aggregate": "count"}], "group_by": [{"field": "employees"}]})
    refused = web.get(f"/reports/{by_size}/records?g0=many")
    assert refused.status_code == 400 and "not a value of Employees" in refused.text


def test_two_levels_show_subtotals_and_each_sub_group_drills_down(site, admin, web, world):
    report_id = report(site, admin, {"module": "opportunities", "columns": [
        {"field": "amount", "aggregate": "sum"}], "group_by": [
        {"via": "account_id", "field": "industry"}, {"field": "account_id"}],
        "chart": {"type": "stacked_bar", "column": 0}})
    page = web.get(f"/reports/{report_id}")
    assert rows_of(page.text) == [["Banking", "Alpha", "$1,500.00", "2"],
                                  ["", "Beta", "$250.00", "1"],
                                  ["Banking", "Subtotal", "$1,750.00", "3"],
                                  ["Energy", "Gamma", "$4,000.00", "1"],
                                  ["Energy", "Subtotal", "$4,000.00", "1"]]
    option = json.loads(re.search(r"data-report-chart-option>(.*?)</script>", page.text,
                                  re.DOTALL).group(1))
    assert option["xAxis"]["data"] == ["Banking", "Energy"]
    assert [s["name"] for s in option["series"]] == ["Alpha", "Beta", "Gamma"]
    beta = option["series"][1]["data"][0]
    drill = web.get(beta["url"])
    assert re.findall(r'<a href="/m/opportunities/[^"]+">([^<]+)</a>', drill.text) == \
        ["Beta deal 0"]


def test_a_list_report_pages_its_rows_with_totals(site, admin, web):
    site.records.create_many("accounts", [{"name": f"Acct {i:03}", "employees": 2}
                                          for i in range(run.PAGE + 5)], admin)
    report_id = report(site, admin, {"module": "accounts", "columns": [
        {"field": "name"}, {"field": "employees", "aggregate": "sum"}]})
    first = web.get(f"/reports/{report_id}")
    names = re.findall(r'<a href="/m/accounts/[^"]+">(Acct \d+)</a>', first.text)
    assert names == [f"Acct {i:03}" for i in range(run.PAGE)]
    assert total_of(first.text) == ["Total", str(2 * (run.PAGE + 5))]
    assert f'href="/reports/{report_id}?page=2"' in first.text
    second = web.get(f"/reports/{report_id}?page=2")
    assert re.findall(r'<a href="/m/accounts/[^"]+">(Acct \d+)</a>', second.text) == \
        [f"Acct {i:03}" for i in range(run.PAGE, run.PAGE + 5)]
    assert "?page=1" in second.text and "?page=3" not in second.text


def test_exports_carry_the_figures_and_no_formula(site, admin, web, world):
    report_id = report(site, admin, BY_INDUSTRY)
    response = web.get(f"/reports/{report_id}/export.csv")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert (rows[1][0], float(rows[1][1]), rows[1][2]) == ("Banking", 1750, "2")
    assert rows[-1][0] == "Total" and float(rows[-1][1]) == 5750
    book = openpyxl.load_workbook(io.BytesIO(web.get(f"/reports/{report_id}/export.xlsx").content))
    sheet = book.active
    values = [[c.value for c in row] for row in sheet.iter_rows()]
    assert values[1][0] == "Banking" and float(values[1][1]) == 1750 and values[1][2] == 2
    assert values[-1][0] == "Total" and float(values[-1][1]) == 5750

    # a name a spreadsheet would run as a formula comes out as text
    site.records.create("accounts", {"name": '=HYPERLINK("x")'}, admin)
    listed = report(site, admin, {"module": "accounts", "columns": [{"field": "name"}],
                                  "filters": [{"field": "name", "op": "starts", "value": "="}]},
                    name="Formulas")
    text = web.get(f"/reports/{listed}/export.csv").content.decode("utf-8-sig")
    assert list(csv.reader(io.StringIO(text)))[1] == ["'=HYPERLINK(\"x\")"]
    cell = openpyxl.load_workbook(io.BytesIO(
        web.get(f"/reports/{listed}/export.xlsx").content)).active.cell(2, 1)
    assert cell.value == '=HYPERLINK("x")' and cell.data_type == "s"


# -- who sees what ---------------------------------------------------------------------------


def user_with(site, rules: dict, name: str | None = None):
    """A user whose one role has ``rules`` ({module: (access, {action: level})}) besides
    every right on reports."""
    role = aa.create_role(site, "Reporters " + uuid.uuid4().hex[:6])
    aa.set_role_rules(site, role, {"reports": ("enabled", {a: "all" for a in (
        "view", "list", "edit", "delete", "report")}), **rules})
    user = create_user(site, name or "tess" + uuid.uuid4().hex[:6], ADMIN_PASSWORD)
    aa.set_user_roles(site, user.id, [role])
    return user


ALL = {a: "all" for a in ("view", "list", "edit", "report", "export")}


def test_show_sql_is_for_administrators_only(site, admin, web, world):
    report_id = report(site, admin, BY_INDUSTRY)
    assert "Show SQL" in web.get(f"/reports/{report_id}").text
    assert "UNION ALL" in web.get(f"/reports/{report_id}").text
    tess = user_with(site, {"accounts": ("enabled", ALL), "opportunities": ("enabled", ALL)})
    mine = report(site, tess, BY_INDUSTRY, name="Hers")
    with signed_in(site, tess.username) as client:
        page = client.get(f"/reports/{mine}")
        assert page.status_code == 200
        assert "$5,750.00" in page.text
        assert "Show SQL" not in page.text and "UNION ALL" not in page.text


def test_a_role_that_disables_a_module_the_report_reads_is_refused_by_name(
        site, admin, world):
    tess = user_with(site, {"accounts": ("enabled", ALL),
                            "opportunities": ("disabled", {})})
    report_id = report(site, tess, BY_INDUSTRY, name="Hers")
    with signed_in(site, tess.username) as client:
        page = client.get(f"/reports/{report_id}")
        assert page.status_code == 403
        assert "You may not run reports on Opportunities" in page.text
        assert client.get(f"/reports/{report_id}/records?g0=banking").status_code == 403


def test_a_report_the_user_may_not_view_is_not_found(site, admin, world):
    tess = user_with(site, {"accounts": ("enabled", ALL), "opportunities": ("enabled", ALL)})
    aa.set_role_rules(site, aa.user_roles(site, tess.id)[0], {"reports": ("enabled", {
        a: "owner" for a in ("view", "list", "edit", "report")})})
    report_id = report(site, admin, BY_INDUSTRY)
    with signed_in(site, tess.username) as client:
        for path in ("", "/design", "/records?g0=banking", "/export.csv"):
            assert client.get(f"/reports/{report_id}{path}").status_code == 404, path


def test_an_export_the_role_does_not_allow_is_refused_with_a_message(site, admin, world):
    tess = user_with(site, {"accounts": ("enabled", {**ALL, "export": "none"}),
                            "opportunities": ("enabled", ALL)})
    report_id = report(site, tess, BY_INDUSTRY, name="Hers")
    with signed_in(site, tess.username) as client:
        page = client.get(f"/reports/{report_id}")
        assert "export.csv" not in page.text
        response = client.get(f"/reports/{report_id}/export.csv", follow_redirects=False)
        assert response.status_code == 303
        assert "Your role does not allow exporting Accounts." in \
            client.get(response.headers["location"]).text


# -- broken, capped ----------------------------------------------------------------------------


def test_a_report_over_a_field_removed_in_the_studio_is_shown_as_broken(site, admin, web, world):
    site.studio.save_field(admin, "accounts", "tier", {"type": "text"}, new=True)
    report_id = report(site, admin, {"module": "accounts", "columns": [
        {"field": "id", "aggregate": "count"}], "group_by": [{"field": "tier"}]})
    assert web.get(f"/reports/{report_id}").status_code == 200
    site.studio.remove_field(admin, "accounts", "tier")
    page = web.get(f"/reports/{report_id}")
    assert page.status_code == 409
    assert "This report is broken" in page.text
    assert re.search(r"<strong>Group level 1 \(tier\)</strong>: Accounts has no field "
                     r"&#39;tier&#39; \(removed\?\)", page.text)
    assert f'href="/reports/{report_id}/design"' in page.text
    design = web.get(f"/reports/{report_id}/design")
    assert design.status_code == 200
    assert 'data-problem="g0.field"' in design.text and "tier (missing)" in design.text
    assert web.get(f"/reports/{report_id}/records?g0=x").status_code == 409
    assert web.get(f"/reports/{report_id}/export.csv", follow_redirects=False).status_code == 303


def test_a_group_by_with_more_groups_than_the_cap_is_capped_with_a_message(
        site, admin, web, monkeypatch):
    # GROUP_CAP is 1,000; a field with 1,001 values would need 1,001 records: the cap is
    # made 3 here instead (compiler reads it when compiling, run.py when cutting the groups)
    monkeypatch.setattr(compiler, "GROUP_CAP", 3)
    monkeypatch.setattr(run, "GROUP_CAP", 3)
    site.records.create_many("accounts", [{"name": f"Acct {i}"} for i in range(5)], admin)
    report_id = report(site, admin, {"module": "accounts", "columns": [
        {"field": "id", "aggregate": "count"}], "group_by": [{"field": "name"}],
        "chart": {"type": "pie", "column": 0}})
    page = web.get(f"/reports/{report_id}")
    assert page.status_code == 200
    assert "More than 3 groups: showing the first 3." in page.text
    assert len(rows_of(page.text)) == 3


def test_the_lists_create_button_opens_the_builder(web):
    reply = web.get("/m/reports/new", follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/reports/new"
