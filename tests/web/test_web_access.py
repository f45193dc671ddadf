"""Access control through every screen, as three users with different roles.

allie: a role with All everywhere.  tess: Team level, member of North.
owen: Owner level for accounts (no delete, no export), Contacts disabled.

No record outside a user's rights may appear anywhere they look — list, search, detail,
subpanel, related-record label, picker, export, home page, mass-update counts — and
direct URLs to forbidden records answer 404 without the record's name.
"""
import csv
import html
import io
import re

import pytest
from starlette.testclient import TestClient

from core.apps.admin import access_admin as aa
from core.kernel.records import SYSTEM_USER, Query
from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "correct horse battery"
ACCOUNTS = ["Northwind Ltd", "Southgate Inc", "Owenco"]
CONTACTS = ["Nora Northcott", "Sid Southby", "Nils Crossley"]
ALL_LEVELS = {a: "all" for a in ("view", "list", "edit", "delete", "export", "report")}
TEAM_LEVELS = {a: "team" for a in ("view", "list", "edit", "delete", "export", "report")}
OWNER_LEVELS = {"view": "owner", "list": "owner", "edit": "owner", "delete": "none",
                "export": "none", "report": "owner"}


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


@pytest.fixture
def org(site, admin):
    north, south = aa.create_team(site, "North"), aa.create_team(site, "South")
    users = {name: create_user(site, name, PASSWORD) for name in ("allie", "tess", "owen")}
    aa.set_team_members(site, north, add=[users["tess"].id])
    everything = aa.create_role(site, "Everything")
    aa.set_role_rules(site, everything, {m: ("enabled", ALL_LEVELS)
                                         for m in ("accounts", "contacts")})
    aa.set_role_users(site, everything, add=[users["allie"].id])
    team = aa.create_role(site, "Team level")
    aa.set_role_rules(site, team, {m: ("enabled", TEAM_LEVELS) for m in ("accounts", "contacts")})
    aa.set_role_teams(site, team, add=[north])
    own = aa.create_role(site, "Own accounts")
    aa.set_role_rules(site, own, {"accounts": ("enabled", OWNER_LEVELS),
                                  "contacts": ("disabled", {})})
    aa.set_role_users(site, own, add=[users["owen"].id])

    def account(name, owner, teams):
        return site.records.create("accounts", {"name": name, "assigned_user_id": owner.id},
                                   admin, teams=teams)["id"]

    ids = {"Northwind Ltd": account("Northwind Ltd", admin, [north]),
           "Southgate Inc": account("Southgate Inc", admin, [south]),
           "Owenco": account("Owenco", users["owen"], [])}
    for first, last, company, teams in (("Nora", "Northcott", "Northwind Ltd", [north]),
                                        ("Sid", "Southby", "Northwind Ltd", [south]),
                                        ("Nils", "Crossley", "Southgate Inc", [north])):
        ids[f"{first} {last}"] = site.records.create("contacts", {
            "first_name": first, "last_name": last, "account_id": ids[company],
            "assigned_user_id": admin.id}, admin, teams=teams)["id"]
    return {"ids": ids, "users": users}


VISIBLE = {
    "allie": set(ACCOUNTS + CONTACTS),
    "tess": {"Northwind Ltd", "Nora Northcott", "Nils Crossley"},
    "owen": {"Owenco"},
}


@pytest.fixture(params=["allie", "tess", "owen"])
def who(request, site, org):
    name = request.param
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": name,
                                               "password": PASSWORD})
        assert response.status_code == 200
        client.csrf = csrf_of(response.text)
        client.name = name
        client.visible = VISIBLE[name]
        client.hidden = set(ACCOUNTS + CONTACTS) - VISIBLE[name]
        client.ids = org["ids"]
        yield client


def no_leak(client, text: str) -> None:
    text = html.unescape(text)
    for name in client.hidden:
        assert name not in text, f"{client.name} sees {name!r}"
        assert f'/{client.ids[name]}"' not in text, f"{client.name} gets a link to {name!r}"


def test_lists_and_search(who):
    for module, names in (("accounts", ACCOUNTS), ("contacts", CONTACTS)):
        response = who.get(f"/m/{module}")
        if who.name == "owen" and module == "contacts":
            assert response.status_code == 403
            assert "Nora" not in response.text
            continue
        assert response.status_code == 200
        no_leak(who, response.text)
        for name in names:
            assert (name in response.text) == (name in who.visible)
            term = name.split()[-1 if module == "contacts" else 0]
            search = who.get(f"/m/{module}", params={"q": term})
            results = search.text.split("<tbody>")[1].split("</tbody>")[0]  # not the search box
            no_leak(who, results)
            assert (name in results) == (name in who.visible)


def test_detail_edit_delete_by_direct_url(who, site):
    for name, record_id in who.ids.items():
        module = "accounts" if name in ACCOUNTS else "contacts"
        detail = who.get(f"/m/{module}/{record_id}")
        if who.name == "owen" and module == "contacts":
            assert detail.status_code == 403
        elif name in who.visible:
            assert detail.status_code == 200
        else:
            assert detail.status_code == 404
        no_leak(who, detail.text)
        edit = who.get(f"/m/{module}/{record_id}/edit")
        assert edit.status_code == detail.status_code  # everyone here edits what they see
        no_leak(who, edit.text)
        if name in who.visible:
            continue
        field = "name" if module == "accounts" else "last_name"
        posted = who.post(f"/m/{module}/{record_id}/edit", data={"_csrf": who.csrf,
                                                                 field: "Taken over"})
        assert posted.status_code == detail.status_code  # 404, or 403 for a disabled module
        removed = who.post(f"/m/{module}/{record_id}/delete", data={"_csrf": who.csrf})
        assert removed.status_code == detail.status_code
        assert site.records.get(module, record_id, SYSTEM_USER)[field] != "Taken over"


def test_subpanels_and_related_labels(who):
    northwind = who.get(f"/m/accounts/{who.ids['Northwind Ltd']}")
    if who.name == "owen":
        assert northwind.status_code == 404
        owenco = who.get(f"/m/accounts/{who.ids['Owenco']}")
        assert 'id="sub-contacts"' not in owenco.text  # contacts are disabled for owen
        # nor can its rows be fetched, for his own account or one he may not see
        for account in ("Owenco", "Northwind Ltd"):
            url = f"/m/accounts/{who.ids[account]}/subpanel/contacts?fragment=1"
            assert who.get(url).status_code == 404
        assert ">Contacts<" not in owenco.text.split("<main>")[0]  # nor in the menu
        return
    no_leak(who, northwind.text)
    # the page counts the contacts the reader may see; opening the subpanel lists them
    seen = 2 if who.name == "allie" else 1  # tess is not in Sid's team
    assert re.search(r'id="sub-contacts".*?data-count="(\d+)"', northwind.text,
                     re.DOTALL).group(1) == str(seen)
    url = f"/m/accounts/{who.ids['Northwind Ltd']}/subpanel/contacts"
    for rows in (who.get(url + "?fragment=1"), who.get(url)):  # with and without JavaScript
        assert rows.status_code == 200
        no_leak(who, rows.text)
        assert "Nora Northcott" in rows.text
        assert ("Sid Southby" in rows.text) == (who.name == "allie")
        assert rows.text.count('<a href="/m/contacts/') == seen
    nils = who.get(f"/m/contacts/{who.ids['Nils Crossley']}")
    assert nils.status_code == 200
    no_leak(who, nils.text)
    if who.name == "tess":  # the contact is hers to see, its account is not
        assert "(no access)" in nils.text
    contacts = who.get("/m/contacts")
    no_leak(who, contacts.text)


def test_pickers(who):
    response = who.get("/m/accounts/pick", params={"q": ""})
    assert {r["label"] for r in response.json()} == who.visible & set(ACCOUNTS)
    for name in ACCOUNTS:
        found = who.get("/m/accounts/pick", params={"q": name[:4]}).json()
        assert bool(found) == (name in who.visible)


def test_export(who):
    response = who.post("/m/accounts/action", data={"_csrf": who.csrf, "action": "export",
                                                    "all": "1", "ids": list(who.ids.values())})
    if who.name == "owen":  # Export: None: back on the list with the reason, no file
        assert response.status_code == 200 and response.headers["content-type"].startswith(
            "text/html")
        assert "Your role does not allow exporting Accounts." in response.text
        page = who.get("/m/accounts")
        assert 'value="export"' not in page.text
        return
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.text)))[1:]
    assert {r[0] for r in rows} == who.visible & set(ACCOUNTS)
    # even naming forbidden ids explicitly gets only what the user may export
    picked = who.post("/m/accounts/action", data={"_csrf": who.csrf, "action": "export",
                                                  "ids": [who.ids[n] for n in ACCOUNTS]})
    assert {r[0] for r in list(csv.reader(io.StringIO(picked.text)))[1:]} == \
        who.visible & set(ACCOUNTS)


def test_mass_update_counts_and_skips(who, site):
    ids = [who.ids[n] for n in ACCOUNTS]
    response = who.post("/m/accounts/action", data={
        "_csrf": who.csrf, "action": "update", "ids": ids, "mass_industry": "banking",
        "back": ""})
    assert response.status_code == 200
    mine = len(who.visible & set(ACCOUNTS))
    if mine == 3:
        assert "Updated 3 of 3 selected records." in response.text
    else:
        assert f"Updated {mine} of 3 selected records; {3 - mine} were skipped: you may not " \
               "edit them." in response.text
    changed = {r["name"] for r in site.records.list("accounts", SYSTEM_USER, Query(
        filters={"industry": "banking"}, limit=None))}
    assert changed == who.visible & set(ACCOUNTS)
    no_leak(who, response.text)


def test_buttons_follow_rights(who):
    listing = who.get("/m/accounts").text
    first_visible = min(who.visible & set(ACCOUNTS))
    detail = who.get(f"/m/accounts/{who.ids[first_visible]}").text
    if who.name == "owen":
        assert 'value="delete"' not in listing and 'value="export"' not in listing
        assert "/delete" not in detail and "/edit" in detail
        assert "Teams: mass assign" in listing  # owners may still team their own records
    else:
        assert 'value="delete"' in listing and 'value="export"' in listing
        assert "/delete" in detail and "/edit" in detail


def test_home_page_and_recent_items(who):
    for name in ACCOUNTS:  # try them all; only the visible ones can become recent
        who.get(f"/m/accounts/{who.ids[name]}")
    home = who.get("/")
    assert home.status_code == 200
    no_leak(who, home.text)
    for name in who.visible & set(ACCOUNTS):
        assert name in home.text


def test_mass_assign_teams(who, site):
    extra = aa.create_team(site, "Extra")
    ids = [who.ids[n] for n in ACCOUNTS]
    response = who.post("/m/accounts/action", data={
        "_csrf": who.csrf, "action": "teams", "ids": ids, "mass_teams": [extra],
        "teams_mode": "add", "back": ""})
    mine = len(who.visible & set(ACCOUNTS))
    assert f"Teams changed on {mine} of 3 selected records" in response.text
    teams = site.records.teams_of("accounts", ids)
    assert {n for n in ACCOUNTS if extra in teams.get(who.ids[n], [])} == \
        who.visible & set(ACCOUNTS)


def test_tabs_and_team_picker_follow_changes(site, org):
    """A list page shows the same tab bar and team picker visit after visit (kept, not read
    again each time), yet a role or team changed meanwhile shows on the next page."""
    with TestClient(create_app(site)) as owen:
        owen.post("/login", data={"_csrf": csrf_of(owen.get("/login").text),
                                  "username": "owen", "password": PASSWORD})

        def tabs_and_teams():
            page = owen.get("/m/accounts").text
            nav = re.search(r'<nav class="tabs".*?</nav>', page, re.DOTALL).group(0)
            picker = re.search(r'<select id="mass-teams".*?</select>', page, re.DOTALL).group(0)
            return set(re.findall(r'href="/m/(\w+)"', nav)), \
                set(re.findall(r'<option value="[^"]+">([^<]+)</option>', picker))

        tabs, teams = tabs_and_teams()
        assert "accounts" in tabs and "contacts" not in tabs  # his role disables contacts
        assert teams == {"North", "South"}
        assert tabs_and_teams() == (tabs, teams)
        own = next(r["id"] for r in aa.roles(site) if r["name"] == "Own accounts")
        aa.set_role_rules(site, own, {"contacts": ("enabled", OWNER_LEVELS)})
        east = aa.create_team(site, "East")
        aa.update_team(site, east, name="Far East", description=None, non_inheritable=False)
        tabs, teams = tabs_and_teams()
        assert "contacts" in tabs and teams == {"North", "South", "Far East"}
        aa.delete_team(site, east)
        assert tabs_and_teams()[1] == {"North", "South"}
