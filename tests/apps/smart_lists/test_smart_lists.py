"""Smart lists (core/apps/smart_lists): saved list tabs shared with users, teams or everyone,
the KPI strip (one statement over the list's own, with the reader's access predicate) and
the column chooser — on the board's test module ``deals`` (tests/apps/board/deals: a
currency amount, a percentage, team-owned records)."""
from __future__ import annotations

import datetime as dt
import html
import re
from decimal import Decimal

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.apps.smart_lists import lists
from core.kernel import i18n
from core.kernel.records import Query
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, csrf_of
from core.web.app import create_app
from tests.apps.board.deals import plugin as deals_plugin

pytestmark = pytest.mark.usefixtures("quick_hashes")
TEAM = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}
DEALS = (  # name, stage, amount, currency, probability, team
    ("Northern lights", "prospecting", "1000", "USD", "10", "North"),
    ("North star", "proposal", "2500.50", "USD", "40", "North"),
    ("Southern cross", "prospecting", "4000", "USD", "20", "South"),
    ("South pole", "negotiation", "800", "USD", "75", "South"),
    ("Lost cause", "lost", "99", "USD", "0", "North"),
)


@pytest.fixture
def world(make_site):
    """Admin; teams North and South; tess and nick Team-level members of North; rita, a
    Team-level member of South; the five deals of DEALS."""
    site = make_site(extra_plugins=[deals_plugin])
    admin = create_user(site, "admin", ADMIN_PASSWORD, is_admin=True)
    teams = {"North": aa.create_team(site, "North"), "South": aa.create_team(site, "South")}
    people = {"admin": admin}
    for name, team in (("tess", "North"), ("nick", "North"), ("rita", "South")):
        people[name] = create_user(site, name, ADMIN_PASSWORD, display_name=name.title())
        aa.set_team_members(site, teams[team], add=[people[name].id])
    role = aa.create_role(site, "Team level")
    aa.set_role_rules(site, role, {m: ("enabled", TEAM) for m in ("deals", "accounts")})
    aa.set_role_teams(site, role, add=list(teams.values()))
    for name, stage, amount, code, probability, team in DEALS:
        site.records.create("deals", {
            "name": name, "stage": stage, "amount": amount, "amount_currency": code,
            "probability": probability, "close_date": dt.date(2027, 3, 31),
            "assigned_user_id": admin.id}, admin, teams=[teams[team]])
    return site, people, teams


def client_of(site, username: str) -> TestClient:
    client = TestClient(create_app(site))
    login = client.get("/login")
    assert client.post("/login", data={"_csrf": csrf_of(login.text), "username": username,
                                       "password": ADMIN_PASSWORD}).status_code == 200
    client.csrf = csrf_of(client.get("/").text)
    return client


def tabs(text: str) -> list[str]:
    nav = re.search(r'<nav class="smart-tabs".*?</nav>', text, re.DOTALL).group(0)
    return [html.unescape(t) for t in re.findall(r'<a href="[^"]+"[^>]*>([^<]+)</a>', nav)]


def current_tab(text: str) -> str:
    nav = re.search(r'<nav class="smart-tabs".*?</nav>', text, re.DOTALL).group(0)
    return html.unescape(re.search(r'aria-current="page"[^>]*>([^<]+)<', nav).group(1))


def kpis_of(text: str) -> dict[str, str]:
    return {html.unescape(k): html.unescape(v) for k, v in re.findall(
        r'<div class="kpi" data-kpi><dt>(.*?)</dt><dd>(.*?)</dd></div>', text)}


def names(text: str) -> list[str]:
    return [html.unescape(n) for n in re.findall(r'<a href="/m/deals/[0-9a-f-]{36}">([^<]+)</a>',
                                                 text)]


def headers(text: str) -> list[str]:
    head = re.search(r"<thead>(.*?)</thead>", text, re.DOTALL).group(1)
    return [html.unescape(h) for h in re.findall(r'<th scope="col"><a [^>]*>([^<▲▼]+?)(?: [▲▼])?</a>',
                                                 head)]


def flash_of(text: str) -> str:
    found = re.search(r'<p class="flash (?:error|info)" role="status">(.*?)</p>', text, re.DOTALL)
    return html.unescape(found.group(1)) if found else ""


def form(pairs) -> dict:
    """Form pairs (repeated names kept in order) as httpx takes them: name -> [values]."""
    out: dict[str, list] = {}
    for key, value in pairs:
        out.setdefault(key, []).append(value)
    return out


def save_as(web, name, params=(), kpis=(), share="private", teams=(), users=(), columns=()):
    data = [("_csrf", web.csrf), ("name", name), ("share", share), *params,
            *(("kpi", k) for k in kpis), *(("share_teams", t) for t in teams),
            *(("share_users", u) for u in users), *(("columns", c) for c in columns)]
    return web.post("/m/deals/smart-lists", data=form(data), follow_redirects=False)


def list_id(response) -> str:
    assert response.status_code == 303, response.text
    return re.search(r"list=([0-9a-f-]{36})", response.headers["location"]).group(1)


def test_save_open_and_see_the_tab_with_its_kpis(world):
    site, who, _ = world
    with client_of(site, "admin") as web:
        filtered = web.get("/m/deals?f_stage=prospecting&sort=-amount")
        assert names(filtered.text) == ["Southern cross", "Northern lights"]
        assert tabs(filtered.text) == ["All"]
        saved = save_as(web, "  Prospects ", [("f_stage", "prospecting"), ("sort", "-amount"),
                                             ("q", ""), ("size", "20")],
                        kpis=["sum:amount", "count:"])
        smart = list_id(saved)
        page = web.get(saved.headers["location"])
        assert flash_of(page.text) == "Smart list Prospects saved."
        assert tabs(page.text) == ["All", "Prospects"] and current_tab(page.text) == "Prospects"
        assert names(page.text) == ["Southern cross", "Northern lights"]  # its filter and sort
        assert kpis_of(page.text) == {"Sum of Amount": "$5,000.00", "Number of records": "2"}
        # the plain list: every deal, the tab offered, no KPIs
        plain = web.get("/m/deals")
        assert len(names(plain.text)) == 5 and current_tab(plain.text) == "All"
        assert tabs(plain.text) == ["All", "Prospects"] and kpis_of(plain.text) == {}
        # the URL's parameters apply over the list's: a search within the tab
        within = web.get(f"/m/deals?list={smart}&q=north")
        assert names(within.text) == ["Northern lights"]
        assert kpis_of(within.text)["Sum of Amount"] == "$1,000.00"
        assert f'name="list" value="{smart}"' in within.text  # the filter form stays on the tab
        assert "Save these filters to Prospects" in within.text  # its owner may keep them
        stored = lists.get(site, who["admin"], "deals", smart)
        assert stored.params == {"f_stage": "prospecting", "sort": "-amount", "size": "20"}
        assert stored.kpis == [lists.Kpi("sum", "amount"), lists.Kpi("count", None)]
        # the new search saved into it
        kept = web.post(f"/m/deals/smart-lists/{smart}/filters", data={
            "_csrf": web.csrf, "q": "north", "f_stage": "prospecting", "sort": "-amount"})
        assert kept.status_code == 200
        assert lists.get(site, who["admin"], "deals", smart).params["q"] == "north"
        # every POST wants the form's token
        forged = web.post("/m/deals/smart-lists", data={"name": "Sneaky"},
                          follow_redirects=False)
        assert forged.status_code == 403


def test_a_list_shared_with_a_team_is_seen_by_its_members_only(world):
    site, _, teams = world
    with client_of(site, "tess") as tess:
        smart = list_id(save_as(tess, "North prospects", [("f_stage", "prospecting")],
                                share="chosen", teams=[teams["North"]], kpis=["count:"]))
        mine = list_id(save_as(tess, "Just mine"))
    with client_of(site, "nick") as nick:  # a member of North
        page = nick.get("/m/deals")
        assert tabs(page.text) == ["All", "North prospects"]
        opened = nick.get(f"/m/deals?list={smart}")
        assert opened.status_code == 200 and names(opened.text) == ["Northern lights"]
        assert "Edit smart list" not in opened.text  # not his
        assert nick.get(f"/m/deals?list={mine}").status_code == 404
        # only its owner (or an administrator) edits or deletes it
        assert nick.get(f"/m/deals/smart-lists/{smart}").status_code == 403
        assert nick.post(f"/m/deals/smart-lists/{smart}", data={
            "_csrf": nick.csrf, "name": "Mine now", "share": "everyone"}).status_code == 403
        assert nick.post(f"/m/deals/smart-lists/{smart}/delete",
                         data={"_csrf": nick.csrf}).status_code == 403
    with client_of(site, "rita") as rita:  # South: not shared with her
        assert tabs(rita.get("/m/deals").text) == ["All"]
        missing = rita.get(f"/m/deals?list={smart}")
        assert missing.status_code == 404
        assert "There is no such smart list, or you may not see it." in missing.text
        assert rita.get("/m/deals?list=00000000-0000-0000-0000-000000000000").status_code == 404
        assert rita.get("/m/deals?list=../../etc").status_code == 404
        assert rita.get(f"/m/deals/smart-lists/{smart}").status_code == 404
        # a list of another module is no list of this one
        assert rita.get(f"/m/accounts?list={smart}").status_code == 404
    with client_of(site, "tess") as tess:  # the owner renames it and shares it with everyone
        edit = tess.get(f"/m/deals/smart-lists/{smart}")
        assert edit.status_code == 200 and 'value="North prospects"' in edit.text
        done = tess.post(f"/m/deals/smart-lists/{smart}", data={
            "_csrf": tess.csrf, "name": "All prospects", "share": "everyone", "kpi": "count:"},
            follow_redirects=False)
        assert done.status_code == 303
    with client_of(site, "rita") as rita:
        assert tabs(rita.get("/m/deals").text) == ["All", "All prospects"]
        # her KPIs count only what she may see: South's prospect
        assert kpis_of(rita.get(f"/m/deals?list={smart}").text) == {"Number of records": "1"}
    with client_of(site, "admin") as admin:  # an administrator may change anyone's
        assert admin.get(f"/m/deals/smart-lists/{smart}").status_code == 200
        assert "All prospects" in admin.get("/admin/smart-lists").text
    with client_of(site, "tess") as tess:
        gone = tess.post(f"/m/deals/smart-lists/{smart}/delete", data={"_csrf": tess.csrf})
        assert gone.status_code == 200 and flash_of(gone.text) == \
            "Smart list All prospects deleted."
        assert tabs(gone.text) == ["All", "Just mine"]
    shares = site.tables.tables["crbm_smart_list_shares"]
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(shares)
                            .where(shares.c.list_id == smart)).scalar() == 0


def test_kpis_equal_hand_computed_figures_and_leave_out_what_a_user_cannot_see(world):
    site, who, teams = world
    # one deal in euros: its amount is summed apart, never added to dollars
    site.records.create("deals", {"name": "Nordlicht", "stage": "prospecting", "amount": "300",
                                  "amount_currency": "EUR", "probability": "30"},
                        who["admin"], teams=[teams["North"]])
    kpis = ["sum:amount", "avg:probability", "count:"]
    with client_of(site, "admin") as web:
        smart = list_id(save_as(web, "Prospects", [("f_stage", "prospecting")], kpis=kpis,
                                share="everyone"))
        figures = kpis_of(web.get(f"/m/deals?list={smart}").text)
        assert figures == {"Sum of Amount": "€300.00 + $5,000.00",
                           "Average of Probability": "20%", "Number of records": "3"}
        # the current filter, not the saved one: every stage
        every = kpis_of(web.get(f"/m/deals?list={smart}&f_stage=").text)
        assert every["Sum of Amount"] == "€300.00 + $8,399.50"
        assert every["Number of records"] == "6"
        assert every["Average of Probability"] == "29.17%"  # (10+40+20+75+0+30) / 6
        # averages of an amount per currency
        lists.update(site, who["admin"], site.registry.module("deals"),
                     lists.get(site, who["admin"], "deals", smart), kpis=[
                         {"fn": "avg", "field": "amount"}, {"fn": "count", "field": "close_date"}])
        figures = kpis_of(web.get(f"/m/deals?list={smart}").text)
        assert figures == {"Average of Amount": "€300.00 / $2,500.00",
                           "Count of Close date": "2"}  # Nordlicht has no close date
    with client_of(site, "tess") as tess:  # North only: Northern lights and Nordlicht
        figures = kpis_of(tess.get(f"/m/deals?list={smart}").text)
        assert figures == {"Average of Amount": "€300.00 / $1,000.00",
                           "Count of Close date": "1"}
    # and computed directly, the reference being a plain reading of what she may list
    module = site.registry.module("deals")
    query = Query(filters=[("stage", "eq", "prospecting")])
    shown = site.records.list("deals", who["tess"], Query(
        filters=query.filters, fields=["amount", "amount_currency"], limit=None))
    assert sorted((r["amount"], r["amount_currency"]) for r in shown) == \
        [(Decimal(300), "EUR"), (Decimal(1000), "USD")]
    fmt = i18n.formatter(i18n.Preferences())
    got = lists.kpis(site, module, who["tess"], query, [lists.Kpi("sum", "amount"),
                                                       lists.Kpi("count")], fmt)
    assert [(f.label, f.text) for f in got] == [("Sum of Amount", "€300.00 + $1,000.00"),
                                                ("Number of records", "2")]


def count_statements(engine):
    seen = []

    def note(conn, cursor, statement, *args):
        seen.append(statement)
    sa.event.listen(engine, "before_cursor_execute", note)
    return seen, lambda: sa.event.remove(engine, "before_cursor_execute", note)


def test_kpis_add_exactly_one_statement(world):
    site, _, _ = world
    with client_of(site, "tess") as web:
        plain = list_id(save_as(web, "Plain", [("f_stage", "prospecting")]))
        with_kpis = list_id(save_as(web, "With KPIs", [("f_stage", "prospecting")],
                                    kpis=["sum:amount", "avg:probability", "count:"]))
        counts = {}
        for smart in (plain, with_kpis, plain, with_kpis):  # the second round: warm caches
            seen, stop = count_statements(site.engine)
            try:
                assert web.get(f"/m/deals?list={smart}").status_code == 200
            finally:
                stop()
            counts[smart] = seen
        assert len(counts[with_kpis]) == len(counts[plain]) + 1, counts
        extra = [s for s in counts[with_kpis] if "sum(" in s.lower()]
        assert len(extra) == 1 and "count(" in extra[0].lower()


def test_the_column_chooser_saves_orders_and_resets(world):
    site, _, _ = world
    layout = ["Deal name", "Account", "Stage", "Amount", "Amount currency", "Close date",
              "Assigned to"]
    with client_of(site, "tess") as web:
        assert headers(web.get("/m/deals").text) == layout
        chosen = ["stage", "name", "probability"]
        order = [*chosen, *(n for n, _ in lists.choosable_columns(site.registry.module("deals"))
                            if n not in chosen)]
        data = [("_csrf", web.csrf), ("back", "f_stage=prospecting"), ("do", "save"),
                *(("order", n) for n in order), *(("columns", n) for n in chosen)]
        saved = web.post("/m/deals/list-settings", data=form(data), follow_redirects=False)
        assert saved.status_code == 303 and saved.headers["location"] == \
            "/m/deals?f_stage=prospecting"
        page = web.get("/m/deals")
        assert headers(page.text) == ["Stage", "Deal name", "Probability"]
        # an arrow moves one column and keeps the chooser open (no JavaScript)
        moved = web.post("/m/deals/list-settings", data=form([*data, ("move", "up:name")]),
                         follow_redirects=False)
        assert moved.headers["location"] == "/m/deals?f_stage=prospecting&chooser=open" \
            "#list-settings"
        page = web.get(moved.headers["location"])
        assert headers(page.text) == ["Deal name", "Stage", "Probability"]
        assert '<details class="card list-settings" id="list-settings" open>' in page.text
        # per user: nick still has the layout's
        with client_of(site, "nick") as nick:
            assert headers(nick.get("/m/deals").text) == layout
        # into a smart list she owns
        smart = list_id(save_as(web, "Narrow"))
        web.post("/m/deals/list-settings", data=form([
            ("_csrf", web.csrf), ("list", smart), ("back", f"list={smart}"), ("do", "save"),
            ("order", "amount"), ("order", "name"), ("columns", "amount"), ("columns", "name")]))
        assert headers(web.get(f"/m/deals?list={smart}").text) == \
            ["Amount", "Amount currency", "Deal name"]
        assert headers(web.get("/m/deals").text) == ["Deal name", "Stage", "Probability"]
        # reset: the layout's columns again
        reset = web.post("/m/deals/list-settings", data={"_csrf": web.csrf, "do": "reset"})
        assert flash_of(reset.text) == "Columns reset to the layout's."
        assert headers(reset.text) == layout
        # more than twelve, or a column that is no field: refused, said, nothing changed
        every = [n for n, _ in lists.choosable_columns(site.registry.module("deals"))]
        assert len(every) > 12
        refused = web.post("/m/deals/list-settings", data=form([
            ("_csrf", web.csrf), ("do", "save"), *(("columns", n) for n in every),
            ("columns", "nowhere")]))
        assert flash_of(refused.text) == (
            f"Not saved: Columns: Deals has no field 'nowhere'. Columns: at most 12 "
            f"({len(every) + 1} chosen).")
        assert headers(refused.text) == layout


def test_a_field_removed_in_the_studio_leaves_the_smart_list_working(world):
    site, who, _ = world
    site.studio.save_field(who["admin"], "deals", "score", {"type": "integer", "label": "Score"},
                           new=True)
    deal = site.records.list("deals", who["admin"], Query(fields=["id"], limit=1))[0]
    site.records.update("deals", deal["id"], {"score": 7}, who["admin"])
    with client_of(site, "admin") as web:
        smart = list_id(save_as(web, "Scored", [("sort", "-score"), ("f_stage", "prospecting")],
                                kpis=["sum:score", "count:"], columns=["name", "score"]))
        page = web.get(f"/m/deals?list={smart}")
        assert headers(page.text) == ["Deal name", "Score"]
        assert kpis_of(page.text)["Sum of Score"] in ("7", "0")
    site.studio.remove_field(who["admin"], "deals", "score")
    with client_of(site, "admin") as web:
        page = web.get(f"/m/deals?list={smart}")
        assert page.status_code == 200
        assert headers(page.text) == ["Deal name"]
        assert kpis_of(page.text) == {"Number of records": "2"}
        notices = [html.unescape(n) for n in re.findall(
            r"data-smart-notice>(.*?)</p>", page.text)]
        gone = "Deals no longer has (removed in the Studio?); left out: score."
        assert notices == [f"This list filters or sorts on fields {gone}",
                           f"This list shows columns {gone}",
                           f"This list's KPIs use fields {gone}"]
        assert names(page.text) == ["Northern lights", "Southern cross"]  # by name again
        # its edit page opens too, without the field
        assert web.get(f"/m/deals/smart-lists/{smart}").status_code == 200


def test_bad_input_is_refused_with_a_clear_message(world):
    site, _, _ = world
    with client_of(site, "tess") as web:
        cases = {
            ("Fine", ("sum:nowhere",)): "KPI 1: Deals has no field 'nowhere'.",
            ("Fine", ("count:", "sum:amount", "avg:amount", "count:name")):
                "KPIs: at most 3 (4 given).",
            ("Fine", ("count:", "sum:name")):
                "KPI 2: Deal name is not a number or currency field; a sum or an average "
                "needs one.",
            ("Fine", ("median:amount",)): "KPI 1: 'median' is not sum, average or count.",
            ("Fine", ("sum:",)): "KPI 1: choose the field to sum.",
            ("x" * 81, ()): "Name: at most 80 characters (this one has 81).",
            ("   ", ()): "Name: a smart list needs a name.",
        }
        for (name, kpis), said in cases.items():
            refused = save_as(web, name, [("f_stage", "prospecting")], kpis=kpis)
            assert refused.status_code == 303
            assert refused.headers["location"] == "/m/deals?save=open"
            page = web.get(refused.headers["location"])
            assert flash_of(page.text) == f"The smart list was not saved: {said}"
            assert '<details class="card save-list" id="save-list" open>' in page.text
        nobody = save_as(web, "Shared", share="chosen")
        assert flash_of(web.get(nobody.headers["location"]).text).endswith(
            "Share with: choose the users or teams to share it with.")
        ghost = save_as(web, "Shared", share="chosen", users=["no-such-user"])
        assert flash_of(web.get(ghost.headers["location"]).text).endswith(
            "Share with: no such user (no-such-user).")
        assert tabs(web.get("/m/deals").text) == ["All"]  # nothing was saved
        # the chooser's KPIs are checked the same way
        refused = web.post("/m/deals/list-settings", data=form([
            ("_csrf", web.csrf), ("do", "save"), ("columns", "name"), ("kpi", "avg:stage")]))
        assert flash_of(refused.text) == ("Not saved: KPI 1: Stage is not a number or "
                                          "currency field; a sum or an average needs one.")
        # and an edit by its owner
        smart = list_id(save_as(web, "Mine"))
        bad = web.post(f"/m/deals/smart-lists/{smart}", data={
            "_csrf": web.csrf, "name": "", "share": "private", "kpi": "sum:close_date"})
        assert bad.status_code == 422
        assert "Name: a smart list needs a name. KPI 1: Close date is not a number or " \
            "currency field" in html.unescape(bad.text)


def test_paging_links_keep_the_smart_list(world):
    site, who, _ = world
    site.records.create_many("deals", [{"name": f"Bulk {i:02}", "stage": "won",
                                        "amount": str(i)} for i in range(25)], who["admin"])
    with client_of(site, "admin") as web:
        smart = list_id(save_as(web, "Won", [("f_stage", "won"), ("size", "10")],
                                kpis=["sum:amount"]))
        first = web.get(f"/m/deals?list={smart}")
        assert names(first.text)[:2] == ["Bulk 00", "Bulk 01"] and len(names(first.text)) == 10
        links = [html.unescape(h) for h in re.findall(
            r'<nav class="pager".*?</nav>', first.text, re.DOTALL)[0].split('href="')[1:]]
        assert links and all(f"list={smart}" in link for link in links)
        following = html.unescape(re.search(r'href="\?([^"]+)" rel="next"', first.text).group(1))
        second = web.get(f"/m/deals?{following}")
        assert names(second.text)[0] == "Bulk 10"
        assert current_tab(second.text) == "Won"
        assert kpis_of(second.text) == {"Sum of Amount": "$300.00"}  # the whole list's
        page3 = web.get(f"/m/deals?list={smart}&page=3")
        assert names(page3.text) == [f"Bulk {i}" for i in range(20, 25)]
        sorted_link = html.unescape(re.search(r'<th scope="col"><a href="\?([^"]+)">Deal name',
                                              first.text).group(1))
        assert f"list={smart}" in sorted_link
        by_name = web.get(f"/m/deals?{sorted_link}")
        assert current_tab(by_name.text) == "Won" and names(by_name.text)[0] == "Bulk 00"
        descending = html.unescape(re.search(r'<th scope="col"><a href="\?([^"]+)">Deal name',
                                             by_name.text).group(1))
        assert f"list={smart}" in descending and "sort=-name" in descending
        assert names(web.get(f"/m/deals?{descending}").text)[0] == "Bulk 24"
