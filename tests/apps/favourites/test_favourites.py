"""Favourites (core/apps/favourites): the star on a record's detail page, the favourites
page (favourites by module, then recently viewed) and the top bar's link — on the board's
test module ``deals`` (team-owned records) and the shipped ``accounts``."""
from __future__ import annotations

import html
import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.apps.favourites import favourites
from core.apps.favourites.tables import TABLE
from core.kernel.users import create_user
from core.testing import ADMIN_PASSWORD, csrf_of
from core.web.app import create_app
from tests.apps.board.deals import plugin as deals_plugin

pytestmark = pytest.mark.usefixtures("quick_hashes")
TEAM = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}


@pytest.fixture
def world(make_site):
    """Admin; tess, a Team-level member of North; the deals "Northern lights" and "North
    star" (team North) and "Southern cross" (team South); the account "Acme" (North)."""
    site = make_site(extra_plugins=[deals_plugin])
    admin = create_user(site, "admin", ADMIN_PASSWORD, is_admin=True)
    teams = {"North": aa.create_team(site, "North"), "South": aa.create_team(site, "South")}
    tess = create_user(site, "tess", ADMIN_PASSWORD, display_name="Tess")
    aa.set_team_members(site, teams["North"], add=[tess.id])
    role = aa.create_role(site, "Team level")
    aa.set_role_rules(site, role, {m: ("enabled", TEAM) for m in ("deals", "accounts")})
    aa.set_role_teams(site, role, add=list(teams.values()))
    ids = {}
    for name, team in (("Northern lights", "North"), ("North star", "North"),
                       ("Southern cross", "South")):
        ids[name] = site.records.create("deals", {"name": name, "stage": "prospecting"},
                                        admin, teams=[teams[team]])["id"]
    ids["Acme"] = site.records.create("accounts", {"name": "Acme"}, admin,
                                      teams=[teams["North"]])["id"]
    return site, {"admin": admin, "tess": tess}, teams, ids


def client_of(site, username: str) -> TestClient:
    client = TestClient(create_app(site))
    login = client.get("/login")
    assert client.post("/login", data={"_csrf": csrf_of(login.text), "username": username,
                                       "password": ADMIN_PASSWORD}).status_code == 200
    client.csrf = csrf_of(client.get("/").text)
    return client


def star_button(text: str) -> tuple[str, str]:
    """The detail page's favourites button: (its label, the address its form posts to)."""
    found = re.search(r'<form method="post" action="(/favourites/[^"]+)" class="inline">'
                      r'.*?<button type="submit"[^>]*>([^<]+)</button>', text, re.DOTALL)
    return html.unescape(found.group(2)), html.unescape(found.group(1))


def press(client, url: str, **form):
    return client.post(url, data={"_csrf": client.csrf, **form}, follow_redirects=False)


def shown(text: str) -> dict[str, list[str]]:
    """The favourites page: module label -> the record names listed under it, and
    "Recently viewed" -> the names there."""
    out = {}
    for label, block in re.findall(r"<h3>([^<]+)</h3>\s*<ul[^>]*>(.*?)</ul>", text, re.DOTALL):
        out[html.unescape(label)] = [html.unescape(n) for n in
                                     re.findall(r'<a href="/m/[^"]+">([^<]+)</a>', block)]
    recent = re.search(r'id="recent-title">.*?</section>', text, re.DOTALL).group(0)
    out["Recently viewed"] = [html.unescape(n) for n in
                              re.findall(r'<a href="/m/[^"]+">([^<]+)</a>', recent)]
    return out


def rows(site) -> list[tuple]:
    table = site.tables.tables[TABLE]
    with site.engine.connect() as conn:
        return sorted(tuple(r) for r in conn.execute(
            sa.select(table.c.user_id, table.c.module, table.c.record_id)))


def test_the_star_adds_and_removes_a_record_without_javascript(world):
    site, _, _, ids = world
    tess = client_of(site, "tess")
    page = f"/m/deals/{ids['North star']}"
    label, url = star_button(tess.get(page).text)
    assert label == "Add to favourites"
    answer = press(tess, url)
    assert answer.status_code == 303 and answer.headers["location"] == page
    after = tess.get(page).text
    assert "North star is in your favourites." in after
    label, url = star_button(after)
    assert label == "Remove from favourites"
    assert shown(tess.get("/favourites").text)["Deals"] == ["North star"]
    assert press(tess, url).headers["location"] == page
    after = tess.get(page).text
    assert "Removed from your favourites." in after
    assert star_button(after)[0] == "Add to favourites"
    listing = tess.get("/favourites").text
    assert "Deals" not in shown(listing) and "No favourites yet." in listing


def test_the_same_press_twice_leaves_what_was_asked(world):
    """The form says which state it wants: sent twice (a double click, a reload) the
    record stays starred, then stays unstarred — one row, never an error."""
    site, people, _, ids = world
    tess = client_of(site, "tess")
    label, url = star_button(tess.get(f"/m/deals/{ids['North star']}").text)
    assert label == "Add to favourites"
    assert [press(tess, url).status_code for _ in range(2)] == [303, 303]
    assert rows(site) == [(people["tess"].id, "deals", ids["North star"])]
    assert shown(tess.get("/favourites").text)["Deals"] == ["North star"]
    off = url.replace("on=1", "on=0")
    assert [press(tess, off).status_code for _ in range(2)] == [303, 303]
    assert rows(site) == []
    favourites.star(site, people["tess"], "deals", ids["North star"])
    favourites.star(site, people["tess"], "deals", ids["North star"])
    assert len(rows(site)) == 1


def test_a_press_without_the_csrf_token_is_refused(world):
    site, _, _, ids = world
    tess = client_of(site, "tess")
    url = star_button(tess.get(f"/m/deals/{ids['North star']}").text)[1]
    refused = tess.post(url, data={}, follow_redirects=False)
    assert refused.status_code == 403
    forged = tess.post(url, data={"_csrf": "forged"}, follow_redirects=False)
    assert forged.status_code == 403
    assert rows(site) == []


def test_a_record_one_may_not_view_is_not_starred(world):
    site, _, _, ids = world
    tess = client_of(site, "tess")
    assert press(tess, f"/favourites/deals/{ids['Southern cross']}?on=1").status_code == 404
    assert press(tess, "/favourites/nothing/1?on=1").status_code == 404
    assert rows(site) == []


def test_the_page_lists_favourites_by_module_then_recently_viewed(world):
    site, _, _, ids = world
    tess = client_of(site, "tess")
    for name, module in (("Northern lights", "deals"), ("North star", "deals"),
                         ("Acme", "accounts")):
        tess.get(f"/m/{module}/{ids[name]}")  # a view: recently viewed
        press(tess, f"/favourites/{module}/{ids[name]}?on=1")
    page = tess.get("/favourites")
    assert page.headers["cache-control"] == "no-store"
    assert shown(page.text) == {"Accounts": ["Acme"],
                                "Deals": ["North star", "Northern lights"],
                                "Recently viewed": ["Acme", "North star", "Northern lights"]}
    # the page's own Remove buttons come back to it
    answer = press(tess, f"/favourites/accounts/{ids['Acme']}?on=0", back="favourites")
    assert answer.headers["location"] == "/favourites"
    assert "Accounts" not in shown(tess.get("/favourites").text)


def test_records_no_longer_readable_or_deleted_are_left_out(world):
    site, people, teams, ids = world
    tess, admin = client_of(site, "tess"), client_of(site, "admin")
    for client in (tess, admin):
        for name, module in (("Northern lights", "deals"), ("North star", "deals"),
                             ("Acme", "accounts")):
            client.get(f"/m/{module}/{ids[name]}")
            press(client, f"/favourites/{module}/{ids[name]}?on=1")
    # an administrator denies tess one deal
    aa.add_deny(site, "deals", ids["North star"], user_id=people["tess"].id)
    seen = shown(tess.get("/favourites").text)
    assert seen["Deals"] == ["Northern lights"]
    assert seen["Recently viewed"] == ["Acme", "Northern lights"]
    # tess moves from team North to South: North's records are no longer hers to read
    aa.set_team_members(site, teams["South"], add=[people["tess"].id])
    aa.set_team_members(site, teams["North"], remove=[people["tess"].id])
    seen = shown(tess.get("/favourites").text)
    assert seen == {"Recently viewed": []}
    # a deleted record is gone from its favourites, the others stay
    site.records.delete("deals", ids["North star"], people["admin"])
    seen = shown(admin.get("/favourites").text)
    assert seen["Deals"] == ["Northern lights"]
    assert seen["Recently viewed"] == ["Acme", "Northern lights"]
    assert len(rows(site)) == 6  # kept: shown again once restored or readable again


def test_names_are_read_one_statement_per_module(world):
    """Set-based: the page's names cost one statement per module, however many records."""
    site, people, _, ids = world
    for name in ("Northern lights", "North star", "Southern cross"):
        favourites.star(site, people["admin"], "deals", ids[name])
    favourites.star(site, people["admin"], "accounts", ids["Acme"])
    statements = []

    def seen(conn, cursor, statement, *args):
        statements.append(statement)

    sa.event.listen(site.engine, "before_cursor_execute", seen)
    try:
        groups = favourites.starred(site, people["admin"])
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", seen)
    assert [(str(m.label), [i["name"] for i in items]) for m, items in groups] == [
        ("Accounts", ["Acme"]), ("Deals", ["North star", "Northern lights", "Southern cross"])]
    reads = [s for s in statements if re.search(r"\bFROM\b.*\b(deals|accounts)\b", s, re.DOTALL)]
    assert len(reads) == 2, reads


def test_the_top_bar_links_to_the_favourites(world):
    site, _, _, _ = world
    text = client_of(site, "tess").get("/").text
    link = re.search(r'<a [^>]*href="/favourites"[^>]*>.*?</a>', text, re.DOTALL).group(0)
    assert re.sub(r"<[^>]+>", "", link).strip() == "Favourites"
    assert "#star\"" in link  # its Lucide icon
