"""The administration screens through real HTTP requests: users, teams, roles and their
module x action matrix, the access control settings, and who may open which of them
(administrators everything, delegates users' teams and roles and team members, plain
users nothing)."""
import html
import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.apps.admin import access_admin
from core.kernel import users
from core.kernel.access import settings_of
from core.kernel.hookspecs import hookimpl
from core.kernel.i18n import N_
from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "correct horse battery"


pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def text_of(response) -> str:
    """What the reader sees: tags removed, entities decoded, spaces collapsed."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", response.text, flags=re.DOTALL)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


def alerts(response) -> str:
    """The messages at the top of a page and next to fields."""
    found = re.findall(r'<(?:p|span) class="(?:flash[^"]*|error-text)"[^>]*>(.*?)</(?:p|span)>',
                       response.text, re.DOTALL)
    return " | ".join(html.unescape(f).strip() for f in found)


def selects(page_html: str) -> dict[str, str]:
    """name -> the selected value of every <select> on the page (what the user sees)."""
    out = {}
    for name, body in re.findall(r'<select name="([^"]+)"[^>]*>(.*?)</select>', page_html,
                                 re.DOTALL):
        chosen = re.search(r'<option value="([^"]*)" selected>', body)
        out[html.unescape(name)] = chosen.group(1) if chosen else None
    return out


def checked(page_html: str, name: str) -> set[str]:
    """The values of the ticked checkboxes called ``name``."""
    return set(re.findall(rf'<input type="checkbox" name="{name}" value="([^"]+)" checked>',
                          page_html))


def open_client(site, username: str, password: str = PASSWORD) -> TestClient:
    client = TestClient(create_app(site))
    client.__enter__()
    login = client.get("/login")
    response = client.post("/login", data={"_csrf": csrf_of(login.text), "username": username,
                                           "password": password})
    assert response.status_code == 200, response.text[:500]
    client.csrf = csrf_of(response.text)
    return client


@pytest.fixture
def clients(site):
    opened = []

    def make(username: str, password: str = PASSWORD) -> TestClient:
        client = open_client(site, username, password)
        opened.append(client)
        return client

    yield make
    for client in opened:
        client.__exit__(None, None, None)


@pytest.fixture
def client(admin, clients):
    return clients("admin")


def post(client, url: str, data: dict | None = None, **kwargs):
    return client.post(url, data={"_csrf": client.csrf, **(data or {})},
                       follow_redirects=False, **kwargs)


@pytest.fixture
def dana(site):
    return create_user(site, "dana", PASSWORD, display_name="Dana Scully")


@pytest.fixture
def bob(site):
    return create_user(site, "bob", PASSWORD, display_name="Bob Marley")


def user_row(site, username: str):
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.username == username)).first()


def matrix_form(page_html: str, **changes: str) -> dict[str, str]:
    """The matrix as the page shows it, with some cells changed (``accounts__edit``)."""
    cells = {k: v for k, v in selects(page_html).items() if "." in k}
    for key, value in changes.items():
        cells[key.replace("__", ".")] = value
    return cells


# -- teams and roles -----------------------------------------------------------------------

def test_admin_creates_a_team_and_a_role_and_sets_a_matrix_cell(client, site):
    response = post(client, "/admin/teams/new", {"name": "Sales", "description": "Field sales",
                                                 "non_inheritable": "1"})
    assert response.status_code == 303
    [team] = access_admin.teams(site)
    assert (team["name"], team["description"], team["non_inheritable"]) == \
        ("Sales", "Field sales", True)
    assert response.headers["location"] == f"/admin/teams/{team['id']}"
    listing = text_of(client.get("/admin/teams"))
    assert "Sales" in listing and "Field sales" in listing

    response = post(client, "/admin/roles/new", {"name": "Sales reps"})
    assert response.status_code == 303
    role_id = response.headers["location"].rsplit("/", 1)[1]
    page = client.get(f"/admin/roles/{role_id}")
    assert "Role Sales reps was created." in alerts(page)
    shown = selects(page.text)
    # a new role shows the defaults: enabled, everything All but Personal
    assert shown["accounts.access"] == "enabled" and shown["accounts.delete"] == "all"
    assert shown["accounts.personal"] == "none"
    assert access_admin.role_rules(site, role_id) == {}

    response = post(client, f"/admin/roles/{role_id}/matrix",
                    matrix_form(page.text, accounts__delete="owner", accounts__export="team"))
    assert response.status_code == 303
    stored = access_admin.role_rules(site, role_id)["accounts"]
    assert stored.level("delete") == "owner" and stored.level("export") == "team"
    assert stored.level("view") == "all" and stored.access == "enabled"
    page = client.get(f"/admin/roles/{role_id}")
    assert alerts(page) == "The matrix was saved."
    assert selects(page.text)["accounts.delete"] == "owner"

    # the team gets the role; its page shows it ticked, the role's page shows the team
    assert post(client, f"/admin/teams/{team['id']}/roles",
                {"roles": role_id}).status_code == 303
    assert access_admin.team_roles(site, team["id"]) == [role_id]
    assert role_id in checked(client.get(f"/admin/teams/{team['id']}").text, "roles")
    assert team["id"] in checked(client.get(f"/admin/roles/{role_id}").text, "teams")


def test_matrix_columns_and_choices(client, site):
    page = client.get("/admin/roles").text
    default_id = re.search(r'href="/admin/roles/([^"]+)">Default Role<', page).group(1)
    # the built-in roles come first, marked
    names = re.findall(r'href="/admin/roles/(?!new")[^"]+">([^<]+)</a>', page)
    assert names[:2] == ["Default Role", "Data Privacy Manager"]
    assert text_of(client.get("/admin/roles")).count("built in") == 2
    role_page = client.get(f"/admin/roles/{default_id}").text
    header = re.search(r"<thead>(.*?)</thead>", role_page, re.DOTALL).group(1)
    assert re.findall(r"<th[^>]*>([^<]+)</th>", header) == [
        "Module", "Access", "View", "List", "Edit", "Delete", "Import", "Export", "Report",
        "Approve", "Personal"]
    rows = re.findall(r'<th scope="row" class="module">([^<]+)', role_page)
    assert [r.strip() for r in rows] == [m.label for m in site.registry.modules.values()]
    import_options = re.search(r'<select name="accounts.import".*?</select>', role_page,
                               re.DOTALL).group(0)
    assert re.findall(r'<option value="(\w+)"', import_options) == ["none", "all"]
    edit_options = re.search(r'<select name="accounts.edit".*?</select>', role_page,
                             re.DOTALL).group(0)
    assert re.findall(r">(\w+)</option>", edit_options) == \
        ["None", "Admin", "Owner", "Role", "Team", "All"]


def test_limited_access_and_prerequisites_force_cells_and_the_page_says_so(client, site):
    role_id = access_admin.create_role(site, "Interns")
    page = client.get(f"/admin/roles/{role_id}").text
    response = post(client, f"/admin/roles/{role_id}/matrix", matrix_form(
        page, accounts__access="limited", accounts__edit="team", accounts__report="all",
        contacts__view="none", contacts__list="all", contacts__edit="owner"))
    assert response.status_code == 303
    stored = access_admin.role_rules(site, role_id)
    assert stored["accounts"].access == "limited"
    assert {a: stored["accounts"].level(a) for a in ("view", "list", "edit", "report", "import")} \
        == {"view": "all", "list": "all", "edit": "admin", "report": "admin", "import": "admin"}
    assert stored["contacts"].level("list") == "none" and stored["contacts"].level("edit") == "none"
    page = client.get(f"/admin/roles/{role_id}")
    message = alerts(page)
    assert "Some cells were adjusted" in message
    assert "Accounts" in message and "Contacts" in message
    shown = selects(page.text)
    assert shown["accounts.edit"] == "admin" and shown["accounts.report"] == "admin"
    assert shown["accounts.list"] == "all" and shown["contacts.list"] == "none"
    assert shown["accounts.import"] == "admin"  # as stored, though the column offers All/None
    # saving the page again as it is changes nothing and adjusts nothing
    assert post(client, f"/admin/roles/{role_id}/matrix", matrix_form(page.text)).status_code \
        == 303
    assert alerts(client.get(f"/admin/roles/{role_id}")) == "The matrix was saved."
    assert access_admin.role_rules(site, role_id) == stored


@pytest.mark.parametrize("cell, value, problem", [
    ("accounts.view", "everything", "'everything' is not a level"),
    ("accounts.access", "sometimes", "'sometimes' is not an access setting"),
    ("accounts.import", "team", "Import can only be All or None"),
])
def test_a_bad_cell_is_refused_and_nothing_is_stored(client, site, cell, value, problem):
    role_id = access_admin.create_role(site, "Careful")
    page = client.get(f"/admin/roles/{role_id}").text
    cells = matrix_form(page, contacts__delete="owner")  # a good change alongside
    cells[cell] = value
    response = post(client, f"/admin/roles/{role_id}/matrix", cells)
    assert response.status_code == 422
    assert "Nothing was saved" in alerts(response) and problem in alerts(response)
    assert access_admin.role_rules(site, role_id) == {}
    # the page shows what was sent, the bad cell marked
    shown = selects(response.text)
    assert shown[cell] == value and shown["contacts.delete"] == "owner"
    bad = re.search(rf'<td class="invalid[^"]*">\s*<select name="{re.escape(cell)}"',
                    response.text)
    assert bad is not None


def test_team_edit_members_and_delete(client, site, dana, bob):
    team_id = access_admin.create_team(site, "Support")
    access_admin.create_team(site, "Sales")
    response = post(client, f"/admin/teams/{team_id}/edit", {"name": "sales"})
    assert response.status_code == 422 and "'sales' is already taken" in alerts(response)
    assert access_admin.get_team(site, team_id)["name"] == "Support"
    assert post(client, f"/admin/teams/{team_id}/edit",
                {"name": "Customer support", "description": "Tier 1"}).status_code == 303
    assert access_admin.get_team(site, team_id)["name"] == "Customer support"

    assert post(client, f"/admin/teams/{team_id}/members",
                {"members": [dana.id, bob.id]}).status_code == 303
    assert set(access_admin.team_members(site, team_id)) == {dana.id, bob.id}
    page = client.get(f"/admin/teams/{team_id}").text
    assert checked(page, "members") == {dana.id, bob.id}
    # unticking Bob (both shown) removes only him
    assert post(client, f"/admin/teams/{team_id}/members", {
        "members": [dana.id], "members_shown": [dana.id, bob.id]}).status_code == 303
    assert access_admin.team_members(site, team_id) == [dana.id]
    assert "1" in text_of(client.get("/admin/teams")).split("Customer support", 1)[1][:40]

    response = post(client, f"/admin/teams/{team_id}/delete")
    assert response.status_code == 303 and response.headers["location"] == "/admin/teams"
    assert "Team Customer support was deleted." in alerts(client.get("/admin/teams"))
    assert [t["name"] for t in access_admin.teams(site)] == ["Sales"]
    assert access_admin.user_teams(site, dana.id) == []


def test_role_users_teams_rename_and_delete(client, site, dana):
    role_id = access_admin.create_role(site, "Managers")
    team_id = access_admin.create_team(site, "Board")
    assert post(client, f"/admin/roles/{role_id}/users", {"users": dana.id}).status_code == 303
    assert post(client, f"/admin/roles/{role_id}/teams", {"teams": team_id}).status_code == 303
    assert access_admin.role_users(site, role_id) == [dana.id]
    assert access_admin.role_teams(site, role_id) == [team_id]
    page = client.get(f"/admin/roles/{role_id}").text
    assert dana.id in checked(page, "users") and team_id in checked(page, "teams")
    assert post(client, f"/admin/roles/{role_id}/teams",
                {"teams_shown": team_id}).status_code == 303
    assert access_admin.role_teams(site, role_id) == []
    assert post(client, f"/admin/roles/{role_id}/edit",
                {"name": "Leads", "description": "Team leads"}).status_code == 303
    assert access_admin.get_role(site, role_id)["name"] == "Leads"
    response = post(client, f"/admin/roles/{role_id}/edit", {"name": "  "})
    assert response.status_code == 422 and "is required" in alerts(response)
    assert post(client, f"/admin/roles/{role_id}/delete").status_code == 303
    assert "Role Leads was deleted." in alerts(client.get("/admin/roles"))
    assert role_id not in [r["id"] for r in access_admin.roles(site)]
    assert access_admin.user_roles(site, dana.id) == []


def test_a_built_in_role_cannot_be_deleted(client, site):
    default = next(r for r in access_admin.roles(site) if r["builtin"] == "default")
    page = client.get(f"/admin/roles/{default['id']}").text
    assert "Delete this role" not in page
    response = post(client, f"/admin/roles/{default['id']}/delete")
    assert response.status_code == 422
    assert "Default Role is built in and cannot be deleted" in alerts(response)
    assert default["id"] in [r["id"] for r in access_admin.roles(site)]


# -- users ---------------------------------------------------------------------------------

def test_create_a_user_with_a_generated_password_shown_once(client, site, clients):
    response = post(client, "/admin/users/new", {
        "username": "mulder", "display_name": "Fox Mulder", "email": "fox@example.com"})
    assert response.status_code == 200
    password = html.unescape(re.search(r"<code[^>]*data-new-password>([^<]+)</code>",
                                       response.text).group(1))
    assert "User mulder was created." in alerts(response)
    row = user_row(site, "mulder")
    assert (row.display_name, row.email, row.is_admin, row.active) == \
        ("Fox Mulder", "fox@example.com", False, True)
    assert row.must_change_password
    # shown once: the user's page does not show it again, nor does the session carry it
    again = client.get(f"/admin/users/{row.id}")
    assert password not in again.text and password not in str(client.cookies.get("crbm_session"))
    # it works, and the user must choose their own
    fresh = TestClient(create_app(site))
    login = fresh.get("/login")
    signed = fresh.post("/login", follow_redirects=False, data={
        "_csrf": csrf_of(login.text), "username": "mulder", "password": password})
    assert signed.status_code == 303 and signed.headers["location"] == "/password/change"
    listing = text_of(client.get("/admin/users"))
    assert "mulder" in listing and "Fox Mulder" in listing and "fox@example.com" in listing


def test_create_user_with_a_chosen_password_and_admin_flag(client, site):
    response = post(client, "/admin/users/new", {"username": "skinner",
                                                 "password": "a long enough secret",
                                                 "is_admin": "1"})
    assert response.status_code == 303
    row = user_row(site, "skinner")
    assert row.is_admin and response.headers["location"] == f"/admin/users/{row.id}"
    assert users.authenticate(site, "skinner", "a long enough secret") is not None


@pytest.mark.parametrize("data, field, problem", [
    ({"username": "ADMIN"}, "username", "'ADMIN' is already taken"),
    ({"username": ""}, "username", "is required"),
    ({"username": "no spaces allowed"}, "username", "Use letters, digits"),
    ({"username": "kim", "password": "short"}, "password", "at least 10 characters"),
    ({"username": "kim", "email": "not-an-email"}, "email", "is not an email address"),
])
def test_create_user_refusals_are_shown_and_nothing_is_saved(client, site, data, field,
                                                             problem):
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        before = conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
    response = post(client, "/admin/users/new", {"display_name": "Kim", **data})
    assert response.status_code == 422
    assert problem in alerts(response)
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', response.text)
    assert 'value="Kim"' in response.text  # what was typed stays
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == before


def test_user_gets_teams_and_roles_through_checkboxes(client, site, dana):
    sales = access_admin.create_team(site, "Sales")
    support = access_admin.create_team(site, "Support")
    reps = access_admin.create_role(site, "Reps")
    access_admin.set_team_roles(site, support, [reps])
    page = client.get(f"/admin/users/{dana.id}").text
    assert checked(page, "teams") == set() and checked(page, "roles") == set()
    assert "Default Role" in text_of(client.get("/admin/users")).split("dana", 1)[1]
    response = post(client, f"/admin/users/{dana.id}/access", {
        "teams": [sales, support], "teams_shown": [sales, support], "roles": reps})
    assert response.status_code == 303
    assert set(access_admin.user_teams(site, dana.id)) == {sales, support}
    assert access_admin.user_roles(site, dana.id) == [reps]
    page = client.get(f"/admin/users/{dana.id}")
    assert "Teams and roles saved." in alerts(page)
    assert checked(page.text, "teams") == {sales, support} and checked(page.text, "roles") == {reps}
    row = text_of(client.get("/admin/users")).split("dana", 1)[1]
    assert "Sales, Support" in row and "Reps" in row
    # unticking a shown team takes it away
    post(client, f"/admin/users/{dana.id}/access", {"teams": sales,
                                                    "teams_shown": [sales, support]})
    assert access_admin.user_teams(site, dana.id) == [sales]
    assert access_admin.user_roles(site, dana.id) == [reps]  # roles were not shown: kept
    # a role held only through a team is listed, marked
    access_admin.set_user_roles(site, dana.id, [])
    access_admin.set_team_roles(site, sales, [reps])
    assert "Reps*" in text_of(client.get("/admin/users")).split("dana", 1)[1]


def test_user_profile_delegation_deactivation_and_password(client, site, dana, clients):
    response = post(client, f"/admin/users/{dana.id}/profile", {
        "display_name": "Dana K. Scully", "email": "dana@fbi.example",
        "can_assign_access": "1"})
    assert response.status_code == 303
    row = user_row(site, "dana")
    assert (row.display_name, row.email, row.is_admin, row.can_assign_access) == \
        ("Dana K. Scully", "dana@fbi.example", False, True)
    response = post(client, f"/admin/users/{dana.id}/profile", {"email": "nope"})
    assert response.status_code == 422 and "is not an email address" in alerts(response)
    assert user_row(site, "dana").email == "dana@fbi.example"

    # a new password, generated and shown once; the old one stops working
    response = post(client, f"/admin/users/{dana.id}/password")
    new = html.unescape(re.search(r"data-new-password>([^<]+)<", response.text).group(1))
    assert users.authenticate(site, "dana", PASSWORD) is None
    assert users.authenticate(site, "dana", new) is not None
    assert user_row(site, "dana").must_change_password
    response = post(client, f"/admin/users/{dana.id}/password", {"password": "dana"})
    assert response.status_code == 422 and "at least 10 characters" in alerts(response)

    # deactivated: cannot sign in; activated again: can
    assert post(client, f"/admin/users/{dana.id}/active", {"active": "0"}).status_code == 303
    assert not user_row(site, "dana").active
    assert "Inactive" in text_of(client.get("/admin/users")).split("dana", 1)[1]
    assert users.authenticate(site, "dana", new) is None
    assert post(client, f"/admin/users/{dana.id}/active", {"active": "1"}).status_code == 303
    assert users.authenticate(site, "dana", new) is not None


def test_an_admin_cannot_deactivate_themselves_or_drop_their_own_admin_rights(client, site,
                                                                              admin):
    response = post(client, f"/admin/users/{admin.id}/active", {"active": "0"})
    assert response.status_code == 422
    assert "You cannot deactivate yourself." in alerts(response)
    response = post(client, f"/admin/users/{admin.id}/profile", {"display_name": "Boss"})
    assert response.status_code == 422
    assert "You cannot remove your own administrator rights." in alerts(response)
    row = user_row(site, "admin")
    assert row.active and row.is_admin and row.display_name == "admin"
    assert client.get("/admin").status_code == 200  # still signed in, still an admin


def test_user_list_search(client, site, dana, bob):
    listing = text_of(client.get("/admin/users?q=scul"))
    assert "dana" in listing and "bob" not in listing
    assert "1 user" in listing
    assert "No users found" in text_of(client.get("/admin/users?q=nobody%25"))


# -- settings ------------------------------------------------------------------------------

def test_access_control_settings_are_saved(client, site):
    page = client.get("/admin/access").text
    assert {n for n in ("additive", "inherit_created_by", "inherit_assigned", "inherit_related")
            if re.search(rf'name="{n}" value="1"[^>]*checked', page)} == \
        {"additive", "inherit_created_by"}
    response = post(client, "/admin/access", {"inherit_created_by": "1",
                                              "inherit_assigned": "1"})
    assert response.status_code == 303
    assert settings_of(site.settings) == {"additive": False, "inherit_created_by": True,
                                          "inherit_assigned": True, "inherit_related": False}
    page = client.get("/admin/access")
    assert "The access control settings were saved." in alerts(page)
    assert not re.search(r'name="additive" value="1"[^>]*checked', page.text)
    assert re.search(r'name="inherit_assigned" value="1"[^>]*checked', page.text)


# -- who may -------------------------------------------------------------------------------

class LinksPlugin:
    @hookimpl
    def crbm_admin_links(self, site):
        return [(N_("Backups"), "/admin/backups")]


def test_admin_index_shows_every_section_and_plugin_links(client, site):
    site.plugin_manager.register(LinksPlugin(), name="test_links")
    try:
        page = client.get("/admin")
        assert page.status_code == 200
        for label, url in (("Users", "/admin/users"), ("Teams", "/admin/teams"),
                           ("Roles", "/admin/roles"), ("Access control settings", "/admin/access"),
                           ("Backups", "/admin/backups")):
            assert f'href="{url}">{label}</a>' in page.text
        assert 'href="/admin" title="Admin"' in client.get("/").text  # the top bar's
    finally:
        site.plugin_manager.unregister(name="test_links")


def test_a_delegate_assigns_teams_but_nothing_else(site, admin, dana, bob, clients):
    access_admin.set_delegation(site, dana.id, True)
    team_id = access_admin.create_team(site, "Field")
    role_id = access_admin.create_role(site, "Field reps")
    delegate = clients("dana")
    assert 'href="/admin" title="Admin"' in delegate.get("/").text
    index = delegate.get("/admin")
    assert index.status_code == 200
    assert 'href="/admin/users"' in index.text and 'href="/admin/teams"' in index.text
    assert "/admin/roles" not in index.text and "/admin/access" not in index.text

    # a user's teams and roles, and a team's members
    page = delegate.get(f"/admin/users/{bob.id}")
    assert page.status_code == 200
    for form in ("profile", "password", "active"):  # not for them
        assert f"/admin/users/{bob.id}/{form}" not in page.text
    assert post(delegate, f"/admin/users/{bob.id}/access",
                {"teams": team_id, "roles": role_id}).status_code == 303
    assert access_admin.user_teams(site, bob.id) == [team_id]
    assert access_admin.user_roles(site, bob.id) == [role_id]
    assert post(delegate, f"/admin/teams/{team_id}/members",
                {"members": admin.id}).status_code == 303
    assert set(access_admin.team_members(site, team_id)) == {bob.id, admin.id}
    team_page = delegate.get(f"/admin/teams/{team_id}").text
    assert f"/admin/teams/{team_id}/delete" not in team_page
    assert f"/admin/teams/{team_id}/edit" not in team_page

    # everything else is refused and changes nothing
    refused_gets = ["/admin/roles", f"/admin/roles/{role_id}", "/admin/access",
                    "/admin/users/new", "/admin/teams/new"]
    for url in refused_gets:
        assert delegate.get(url).status_code == 403, url
    page = post(delegate, f"/admin/roles/{role_id}/matrix", {"accounts.access": "disabled"})
    assert page.status_code == 403
    assert access_admin.role_rules(site, role_id) == {}
    assert post(delegate, "/admin/access", {}).status_code == 403
    assert settings_of(site.settings)["additive"] is True
    assert post(delegate, f"/admin/users/{dana.id}/profile",
                {"is_admin": "1", "can_assign_access": "1"}).status_code == 403
    assert not user_row(site, "dana").is_admin
    assert post(delegate, f"/admin/users/{bob.id}/active", {"active": "0"}).status_code == 403
    assert user_row(site, "bob").active
    assert post(delegate, f"/admin/users/{bob.id}/password").status_code == 403
    assert post(delegate, f"/admin/teams/{team_id}/delete").status_code == 403
    assert post(delegate, f"/admin/teams/{team_id}/edit", {"name": "X"}).status_code == 403
    assert post(delegate, f"/admin/teams/{team_id}/roles", {"roles": role_id}).status_code == 403
    assert access_admin.get_team(site, team_id)["name"] == "Field"
    assert access_admin.team_roles(site, team_id) == []
    assert post(delegate, "/admin/users/new",
                {"username": "eve", "is_admin": "1"}).status_code == 403
    assert user_row(site, "eve") is None


def test_a_plain_user_gets_403_on_every_admin_page(site, admin, dana, clients, client):
    team_id = access_admin.create_team(site, "Secret squad")
    role_id = access_admin.create_role(site, "Shadow role")
    plain = clients("dana")
    assert 'href="/admin"' not in plain.get("/").text
    gets = ["/admin", "/admin/users", "/admin/users/new", f"/admin/users/{admin.id}",
            "/admin/teams", "/admin/teams/new", f"/admin/teams/{team_id}", "/admin/roles",
            "/admin/roles/new", f"/admin/roles/{role_id}", "/admin/access",
            "/admin/users/no-such-id", "/admin/teams/no-such-id"]
    posts = ["/admin/users/new", f"/admin/users/{admin.id}/profile",
             f"/admin/users/{admin.id}/active", f"/admin/users/{admin.id}/password",
             f"/admin/users/{dana.id}/access", "/admin/teams/new", f"/admin/teams/{team_id}/edit",
             f"/admin/teams/{team_id}/members", f"/admin/teams/{team_id}/roles",
             f"/admin/teams/{team_id}/delete", "/admin/roles/new", f"/admin/roles/{role_id}/edit",
             f"/admin/roles/{role_id}/matrix", f"/admin/roles/{role_id}/users",
             f"/admin/roles/{role_id}/teams", f"/admin/roles/{role_id}/delete", "/admin/access"]
    data = {"name": "Hijacked", "members": dana.id, "teams": team_id, "roles": role_id,
            "users": dana.id, "is_admin": "1", "active": "0", "username": "eve",
            "accounts.access": "disabled", "additive": ""}
    for url in gets:
        response = plain.get(url)
        assert response.status_code == 403, url
        seen = text_of(response)
        assert "Secret squad" not in seen and "Shadow role" not in seen, url
        assert "admin" not in seen.replace("Admin", "").split("Log out", 1)[1], url
    for url in posts:
        assert post(plain, url, data).status_code == 403, url
    # nothing changed
    assert access_admin.get_team(site, team_id)["name"] == "Secret squad"
    assert access_admin.team_members(site, team_id) == []
    assert access_admin.user_teams(site, dana.id) == []
    assert access_admin.user_roles(site, dana.id) == []
    assert access_admin.role_rules(site, role_id) == {}
    assert not user_row(site, "dana").is_admin and user_row(site, "admin").active
    assert user_row(site, "eve") is None and settings_of(site.settings)["additive"] is True


def test_signed_out_visitors_are_sent_to_the_login_page(site, admin):
    with TestClient(create_app(site)) as anonymous:
        response = anonymous.get("/admin/users", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=/admin/users"


def test_a_form_without_its_csrf_token_is_refused(client, site):
    response = client.post("/admin/teams/new", data={"name": "Forged"}, follow_redirects=False)
    assert response.status_code == 403
    assert "The form has expired" in text_of(response)
    response = client.post("/admin/access", data={"_csrf": "wrong", "inherit_related": "1"},
                           follow_redirects=False)
    assert response.status_code == 403
    assert access_admin.teams(site) == []
    assert settings_of(site.settings)["inherit_related"] is False
