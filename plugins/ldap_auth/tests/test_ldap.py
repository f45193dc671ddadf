"""LDAP sign-in (plugins/ldap_auth) against a real OpenLDAP server (tests/slapd.py),
through the web app: search-then-bind, refusals, creating users at their first sign-in,
outages, local users next to directory users, and the settings page.

Without /usr/sbin/slapd the tests that need a directory are skipped, saying what to
install; in CI (which installs it) they fail instead (tests/needs.py)."""
import html
import logging
import re
import socket
import time

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.kernel.users import create_directory_user, create_user, set_active
from core.web.app import create_app
from plugins.ldap_auth import plugin as ldap_plugin
from tests.needs import missing
from tests.slapd import MISSING, SUFFIX, Slapd, free_port, slapd_installed

PASSWORD = "correct horse battery"  # the admin fixture's
WRONG = "Wrong user name or password."
UNREACHABLE = ("The directory server (LDAP) cannot be reached right now. Try again later, "
               "or ask an administrator.")
NOT_WORKING = "Sign-in through the directory (LDAP) is not working right now. Ask an administrator."
NOT_SET_UP = "Your directory account is not set up in CRBM; ask an administrator."

READER_DN, READER_PW = f"cn=crbm-reader,ou=services,{SUFFIX}", "reader's secret"
ALICE_PW, BOB_PW, CAROL_PW, TWIN_PW = "alice's ldap pw", "bob's ldap pw", "carol's pw", "twin pw"
DANA_LOCAL_PW, DANA_DIRECTORY_PW = "dana's local password", "dana's directory pw"
ALL_PASSWORDS = (ALICE_PW, BOB_PW, CAROL_PW, TWIN_PW, DANA_LOCAL_PW, DANA_DIRECTORY_PW,
                 READER_PW, PASSWORD)


def person(uid, ou, cn, password=None, **extra):
    attributes = {"uid": uid, "cn": cn, "sn": cn.split()[-1], **extra}
    if password:
        attributes["userPassword"] = password
    return (f"uid={uid},ou={ou},{SUFFIX}", ["inetOrgPerson"], attributes)


def ou(name):
    return (f"ou={name},{SUFFIX}", ["organizationalUnit"], {"ou": name})


def secret_holder(dn_cn, ou_name, password):
    return (f"cn={dn_cn},ou={ou_name},{SUFFIX}", ["organizationalRole", "simpleSecurityObject"],
            {"cn": dn_cn, "userPassword": password})


ENTRIES = [
    (SUFFIX, ["dcObject", "organization"], {"dc": "example", "o": "Example"}),
    ou("people"), ou("contractors"), ou("services"), ou("accounts"),
    secret_holder("crbm-reader", "services", READER_PW),
    person("alice", "people", "Alice Archer", ALICE_PW, displayName="Alice Archer (Sales)",
           mail="alice@example.org"),
    person("bob", "people", "Bob Baker", BOB_PW, mail="bob@example.org"),  # no displayName
    person("dana", "people", "Dana Directory", DANA_DIRECTORY_PW, mail="dana@example.org"),
    # the same uid twice: a sign-in must not pick one of them
    person("twin", "people", "Twin One", TWIN_PW), person("twin", "contractors", "Twin Two", TWIN_PW),
    # carol's password is on another entry, named by her seeAlso: only bind_attribute
    # "seeAlso" (bind with an attribute's value, not the entry's DN) lets her in
    person("carol", "people", "Carol Cole", seeAlso=f"cn=carol,ou=accounts,{SUFFIX}",
           mail="carol@example.org"),
    secret_holder("carol", "accounts", CAROL_PW),
]


@pytest.fixture(scope="module")
def directory(tmp_path_factory):
    """One slapd for the module, with ENTRIES."""
    if not slapd_installed():  # skipped here, a failure in CI (which installs it)
        missing(MISSING)
    with Slapd(tmp_path_factory.mktemp("slapd")) as server:
        server.add_entries(ENTRIES)
        yield server


def settings(url, **changes):
    return {"enabled": True, "server": url, "base_dn": SUFFIX, "bind_attribute": "dn",
            "login_attribute": "uid", "service_user": READER_DN, "service_password": READER_PW,
            "auto_create": False, **changes}


@pytest.fixture
def ldap_on(site, directory):
    """LDAP sign-in on, against the module's slapd; call it to change settings."""
    def configure(**changes):
        site.set_setting("ldap", settings(directory.url, **changes))

    configure()
    return configure


pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


@pytest.fixture
def client(site, admin):
    with TestClient(create_app(site)) as client:
        yield client


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def alert(response) -> str:
    found = re.search(r'<p class="flash error"[^>]*>(.*?)</p>', response.text, re.DOTALL)
    return html.unescape(found.group(1)) if found else ""


def log_in(client, username, password):
    client.cookies.clear()
    page = client.get("/login")
    return client.post("/login", follow_redirects=False, data={
        "_csrf": csrf_of(page.text), "username": username, "password": password, "next": ""})


def post(client, path, data):
    token = csrf_of(client.get(path).text)
    return client.post(path, data={"_csrf": token, **data}, follow_redirects=False)


def signed_in_as(client) -> str | None:
    """The display name in the top bar, or None when signed out."""
    response = client.get("/", follow_redirects=False)
    if response.status_code != 200:
        return None
    return html.unescape(re.search(r'class="who-name">(.*?)</span>', response.text).group(1))


def user_row(site, username):
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.username == username)).first()


def user_count(site) -> int:
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


# -- signing in ----------------------------------------------------------------------------

def test_a_directory_user_signs_in_by_search_then_bind(site, client, ldap_on):
    create_directory_user(site, "alice", display_name="Alice (set up by hand)")
    response = log_in(client, "alice", ALICE_PW)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert signed_in_as(client) == "Alice (set up by hand)"
    row = user_row(site, "alice")
    assert row.auth_source == "ldap" and row.password_hash is None
    assert row.last_login_at is not None and row.failed_logins == 0
    # the directory matches names regardless of letter case, and so does CRBM
    assert log_in(client, "ALICE", ALICE_PW).status_code == 303
    assert signed_in_as(client) == "Alice (set up by hand)" and user_count(site) == 2


def test_a_directory_user_changes_their_password_in_the_directory(site, client, ldap_on):
    create_directory_user(site, "alice")
    assert log_in(client, "alice", ALICE_PW).status_code == 303
    assert 'href="/password/change"' not in client.get("/preferences").text
    response = client.get("/password/change")
    assert response.status_code == 200 and "managed by your organisation&#39;s directory" in \
        response.text
    assert 'name="current"' not in response.text


def test_a_wrong_password_is_refused_counted_and_locks_like_a_local_one(site, client, ldap_on):
    create_directory_user(site, "alice")
    response = log_in(client, "alice", "not alice's password")
    assert response.status_code == 401 and alert(response) == WRONG
    assert user_row(site, "alice").failed_logins == 1 and signed_in_as(client) is None
    for _ in range(4):
        response = log_in(client, "alice", "not alice's password")
    assert response.status_code == 429 and "locked" in alert(response)
    # a locked directory account stays refused, even with the right password
    response = log_in(client, "alice", ALICE_PW)
    assert response.status_code == 429 and "locked" in alert(response)
    assert signed_in_as(client) is None


def test_unknown_ambiguous_and_malicious_names_and_empty_passwords_are_refused(
        site, client, ldap_on):
    ldap_on(auto_create=True)  # a wrongful yes would show as a new user
    before = user_count(site)
    for name, password in [("nobody", ALICE_PW),
                           ("twin", TWIN_PW),  # two entries: neither is picked
                           ("*", ALICE_PW), ("alice)(uid=*", ALICE_PW), ("al*", ALICE_PW),
                           ("alice", ""),  # an "unauthenticated bind" would say yes
                           ("carol", CAROL_PW)]:  # no password on her entry (bind with dn)
        response = log_in(client, name, password)
        assert response.status_code == 401 and alert(response) == WRONG, name
        assert signed_in_as(client) is None
    assert user_count(site) == before


def test_auto_create_makes_a_directory_user_at_the_first_sign_in(site, client, ldap_on):
    ldap_on(auto_create=True)
    assert log_in(client, "alice", ALICE_PW).status_code == 303
    assert signed_in_as(client) == "Alice Archer (Sales)"  # displayName first
    alice = user_row(site, "alice")
    assert (alice.auth_source, alice.password_hash, alice.email) == ("ldap", None,
                                                                    "alice@example.org")
    assert alice.display_name == "Alice Archer (Sales)" and alice.active
    assert not alice.is_admin and not alice.must_change_password
    assert log_in(client, "Bob", BOB_PW).status_code == 303
    bob = user_row(site, "bob")  # the directory's spelling of the name
    assert (bob.auth_source, bob.display_name, bob.email) == ("ldap", "Bob Baker",  # cn
                                                              "bob@example.org")
    # the second sign-in finds the user: no second row
    assert log_in(client, "alice", ALICE_PW).status_code == 303
    assert user_count(site) == 3


def test_without_auto_create_a_directory_user_unknown_to_crbm_is_told_why(site, client, ldap_on):
    response = log_in(client, "alice", ALICE_PW)
    assert response.status_code == 403 and alert(response) == NOT_SET_UP
    assert user_row(site, "alice") is None and signed_in_as(client) is None
    # a wrong password gets the usual answer, not that one
    response = log_in(client, "alice", "not alice's password")
    assert response.status_code == 401 and alert(response) == WRONG


def test_an_inactive_directory_user_is_refused(site, client, ldap_on):
    create_directory_user(site, "alice")
    set_active(site, "alice", False)
    response = log_in(client, "alice", ALICE_PW)
    assert response.status_code == 401 and alert(response) == WRONG
    assert signed_in_as(client) is None


def test_local_users_are_unaffected_by_ldap(site, client, ldap_on):
    ldap_on(auto_create=True)
    create_user(site, "dana", DANA_LOCAL_PW)  # uid=dana exists in the directory too
    response = log_in(client, "dana", DANA_DIRECTORY_PW)
    assert response.status_code == 401 and alert(response) == WRONG
    assert log_in(client, "dana", DANA_LOCAL_PW).status_code == 303
    assert log_in(client, "admin", PASSWORD).status_code == 303
    dana = user_row(site, "dana")
    assert dana.auth_source == "local" and dana.password_hash and user_count(site) == 2


def test_bind_with_an_attribute_value_instead_of_the_dn(site, client, ldap_on):
    # OpenLDAP binds only DNs, so the attribute here holds a DN (seeAlso); Active
    # Directory takes userPrincipalName values the same way
    ldap_on(bind_attribute="seeAlso", auto_create=True)
    assert log_in(client, "carol", CAROL_PW).status_code == 303
    assert signed_in_as(client) == "Carol Cole"
    assert user_row(site, "carol").email == "carol@example.org"
    response = log_in(client, "alice", ALICE_PW)  # no seeAlso: nothing to bind with
    assert response.status_code == 401 and alert(response) == WRONG


def test_the_service_user_does_the_search(site, client, ldap_on):
    create_directory_user(site, "alice")
    ldap_on(service_user="", service_password="")  # anonymous may not search this directory:
    response = log_in(client, "alice", ALICE_PW)  # slapd answers "no such object"
    assert response.status_code == 503 and alert(response) == NOT_WORKING
    ldap_on(service_password="not the reader's password")  # a refused service user
    response = log_in(client, "alice", ALICE_PW)
    assert response.status_code == 503 and alert(response) == NOT_WORKING
    assert log_in(client, "admin", PASSWORD).status_code == 303  # local users still can


# -- outages -------------------------------------------------------------------------------

def test_a_stopped_directory_server_is_explained_and_local_users_still_sign_in(
        site, client, tmp_path):
    with Slapd(tmp_path / "short-lived") as server:
        server.add_entries(ENTRIES[:7])  # base, OUs, reader, alice
        site.set_setting("ldap", settings(server.url))
        create_directory_user(site, "alice")
        assert log_in(client, "alice", ALICE_PW).status_code == 303
        server.stop()
        started = time.monotonic()
        response = log_in(client, "alice", ALICE_PW)
        assert time.monotonic() - started < 5
    assert response.status_code == 503 and alert(response) == UNREACHABLE
    assert "Traceback" not in response.text and 'name="password"' in response.text
    assert user_row(site, "alice").failed_logins == 0  # an outage is not a wrong password
    assert log_in(client, "admin", PASSWORD).status_code == 303
    assert signed_in_as(client) == "admin"


def test_a_closed_port_and_a_silent_server_are_outages_too(site, client, monkeypatch):
    site.set_setting("ldap", settings(f"ldap://127.0.0.1:{free_port()}"))  # nobody listens
    response = log_in(client, "alice", ALICE_PW)
    assert response.status_code == 503 and alert(response) == UNREACHABLE
    monkeypatch.setattr(ldap_plugin, "RECEIVE_TIMEOUT", 1)
    with socket.socket() as silent:  # accepts connections (backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        site.set_setting("ldap", settings(f"ldap://127.0.0.1:{silent.getsockname()[1]}"))
        started = time.monotonic()
        response = log_in(client, "alice", ALICE_PW)
        assert time.monotonic() - started < 5
    assert response.status_code == 503 and alert(response) == UNREACHABLE
    assert log_in(client, "admin", PASSWORD).status_code == 303


def test_ldaps_refuses_a_certificate_nobody_vouches_for(site, client, tmp_path):
    with Slapd(tmp_path / "tls", tls=True) as server:
        server.add_entries(ENTRIES[:7])
        create_directory_user(site, "alice")
        site.set_setting("ldap", settings(server.url))
        assert log_in(client, "alice", ALICE_PW).status_code == 303  # the server works
        site.set_setting("ldap", settings(server.ldaps_url))  # self-signed: not trusted
        response = log_in(client, "alice", ALICE_PW)
    assert response.status_code == 503 and alert(response) == UNREACHABLE


def test_passwords_are_never_logged(site, client, ldap_on, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    ldap_on(auto_create=True)
    log_in(client, "alice", ALICE_PW)
    log_in(client, "bob", "x" + BOB_PW)
    log_in(client, "twin", TWIN_PW)
    ldap_on(service_password="not the reader's password")
    log_in(client, "carol", CAROL_PW)
    site.set_setting("ldap", settings(f"ldap://127.0.0.1:{free_port()}"))
    log_in(client, "dana", DANA_DIRECTORY_PW)
    assert caplog.records  # the outage and the refused service user were logged
    for secret in (*ALL_PASSWORDS, "not the reader's password"):
        assert secret not in caplog.text


# -- the settings page ---------------------------------------------------------------------

FORM = {"enabled": "1", "server": "ldaps://ldap.example.com:636", "base_dn": f"ou=people,{SUFFIX}",
        "login_attribute": "sAMAccountName", "bind_attribute": "userPrincipalName",
        "service_user": "crbm@example.org", "service_password": "the stored secret",
        "auto_create": "1", "action": "save"}


def test_the_settings_page_saves_and_never_shows_the_service_password(site, client):
    assert log_in(client, "admin", PASSWORD).status_code == 303
    page = client.get("/admin/ldap")
    assert page.status_code == 200 and "No password is stored." in page.text
    response = post(client, "/admin/ldap", FORM)
    assert response.status_code == 303 and response.headers["location"] == "/admin/ldap"
    saved = site.settings["ldap"]
    assert saved == {"enabled": True, "server": "ldaps://ldap.example.com:636",
                     "base_dn": f"ou=people,{SUFFIX}", "login_attribute": "sAMAccountName",
                     "bind_attribute": "userPrincipalName", "service_user": "crbm@example.org",
                     "service_password": "the stored secret", "auto_create": True}
    page = client.get("/admin/ldap")
    assert "The LDAP settings were saved." in page.text
    assert "the stored secret" not in page.text and "A password is stored." in page.text
    assert 'value="sAMAccountName"' in page.text
    # blank keeps the stored password; unticked boxes switch off
    blank = {**FORM, "service_password": ""}
    del blank["enabled"], blank["auto_create"]
    assert post(client, "/admin/ldap", blank).status_code == 303
    saved = site.settings["ldap"]
    assert saved["service_password"] == "the stored secret"
    assert not saved["enabled"] and not saved["auto_create"]
    assert post(client, "/admin/ldap", {**FORM, "service_password": "a new one"}).status_code == 303
    assert site.settings["ldap"]["service_password"] == "a new one"
    assert post(client, "/admin/ldap", {**blank, "forget_password": "1"}).status_code == 303
    assert site.settings["ldap"]["service_password"] == ""


@pytest.mark.parametrize("field, value, message", [
    ("server", "http://ldap.example.com", "Give the server as ldap://host or ldaps://host"),
    ("server", "ldap://", "Give the server as ldap://host or ldaps://host"),
    ("server", "ldap://ldap.example.com:99999", "Give the server as ldap://host or ldaps://host"),
    ("server", "", "Required when LDAP sign-in is on."),
    ("base_dn", "", "Required when LDAP sign-in is on."),
    ("base_dn", "example.org", "This is not a DN"),
    ("login_attribute", "", "Required when LDAP sign-in is on."),
    ("login_attribute", "uid)(cn=*", "This is not an attribute name"),
    ("bind_attribute", "user principal", 'Give "dn" or an attribute name'),
])
def test_the_settings_page_refuses_bad_input_and_saves_nothing(site, client, field, value,
                                                               message):
    site.set_setting("ldap", settings("ldap://old.example.com"))
    before = site.settings["ldap"]
    log_in(client, "admin", PASSWORD)
    response = post(client, "/admin/ldap", {**FORM, field: value})
    assert response.status_code == 400
    text = html.unescape(response.text)
    assert "Nothing was saved." in text and message in text
    assert 'aria-invalid="true"' in text and "the stored secret" not in text
    assert site.settings["ldap"] == before


def test_the_settings_page_is_for_administrators_only(site, client):
    create_user(site, "erin", "erin's long password")
    assert client.get("/admin/ldap", follow_redirects=False).headers["location"] == \
        "/login?next=/admin/ldap"
    log_in(client, "erin", "erin's long password")
    page = client.get("/admin/ldap")
    assert page.status_code == 403 and "Only administrators" in html.unescape(page.text)
    token = csrf_of(client.get("/").text)
    response = client.post("/admin/ldap", data={"_csrf": token, **FORM})
    assert response.status_code == 403 and "ldap" not in site.settings


def test_test_connection_tries_the_settings_without_saving(site, client, directory):
    log_in(client, "admin", PASSWORD)
    form = {**settings(directory.url), "enabled": "1", "auto_create": "", "action": "test"}
    response = post(client, "/admin/ldap", form)
    assert response.status_code == 200 and "The connection works" in response.text
    assert READER_PW not in response.text and "ldap" not in site.settings
    response = post(client, "/admin/ldap", {**form, "service_password": "wrong"})
    assert "The directory refused the service user" in alert(response)
    response = post(client, "/admin/ldap", {**form, "base_dn": "ou=nowhere,dc=example,dc=org"})
    assert "The base DN cannot be read" in alert(response)
    response = post(client, "/admin/ldap", {**form, "server": f"ldap://127.0.0.1:{free_port()}"})
    assert "The directory server cannot be reached" in alert(response)
    assert "ldap" not in site.settings


def test_the_plugin_offers_its_page_to_the_administration_index(site):
    links = [link for links in site.hook.crbm_admin_links(site=site) for link in links]
    assert ("LDAP authentication", "/admin/ldap") in links
