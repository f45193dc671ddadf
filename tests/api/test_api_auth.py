"""Who may call the API (core.api.auth) and the API administration pages: https only
unless allowed, basic and session authentication off by default and what switching
them on does, rate limits with 429 and Retry-After, and /admin/api (settings, keys)
and /admin/api/clients (create, edit, secrets shown once and stored hashed)."""
import html
import re

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from core.apps.oauth import oauth
from core.kernel import users
from core.kernel.users import create_user
from core.web import throttle
from tests.apps.oauth.test_oauth import PASSWORD, app_for, bearer, make_client

pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


def https_client(site) -> TestClient:
    """API tests go over https://testserver: TestClient's caller is not this machine."""
    return TestClient(app_for(site), base_url="https://testserver")


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def sign_in(client: TestClient, username: str) -> str:
    """Sign in through the login form; the session's CSRF token."""
    login = client.get("/login")
    page = client.post("/login", data={"_csrf": csrf_of(login.text), "username": username,
                                       "password": PASSWORD})
    assert page.status_code == 200, page.text[:300]
    return csrf_of(page.text)


def detail(response) -> str:
    return response.json()["detail"]


def field_error(response, field: str) -> str:
    found = re.search(rf'id="f-{field}-error">(.*?)</p>', response.text, re.DOTALL)
    return html.unescape(found.group(1)) if found else ""


def test_transport_basic_and_session_authentication(site, admin):
    api = https_client(site)
    token = oauth.issue_access_token(site, admin.id)["access_token"]
    assert api.get("/api/v1/_whoami", headers=bearer(token)).json()["user"] == "admin"

    # plain http from another machine: refused unless allowed
    plain = TestClient(app_for(site))  # http://testserver, caller "testclient"
    refused = plain.get("/api/v1/_whoami", headers=bearer(token))
    assert refused.status_code == 403 and "https://" in detail(refused)
    site.set_setting("api_allow_http", True)
    assert plain.get("/api/v1/_whoami", headers=bearer(token)).status_code == 200
    site.set_setting("api_allow_http", False)

    # no credentials, or a token that is not ours
    missing = api.get("/api/v1/_whoami")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="crbm"'
    assert missing.headers["content-type"] == "application/problem+json"
    forged = api.get("/api/v1/_whoami", headers=bearer(token[:-4] + "AAAA"))
    assert forged.status_code == 401 and "invalid_token" in forged.headers["www-authenticate"]

    # basic authentication: off by default, a right password is refused all the same
    off = api.get("/api/v1/_whoami", auth=("admin", PASSWORD))
    assert off.status_code == 401 and "Basic authentication is disabled" in detail(off)
    site.set_setting("api_basic_auth", True)
    on = api.get("/api/v1/_whoami", auth=("admin", PASSWORD))
    assert on.json() == {"user": "admin", "client_id": None, "via": "basic"}
    assert api.get("/api/v1/_whoami", auth=("admin", "wrong")).status_code == 401
    create_user(site, "carol", PASSWORD)
    for _ in range(users.LOCKOUT_AFTER):  # the sign-in lockout applies
        api.get("/api/v1/_whoami", auth=("carol", "wrong password"))
    locked = api.get("/api/v1/_whoami", auth=("carol", PASSWORD))
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 60

    # session authentication: off by default; on, changes need the CSRF token
    web = https_client(site)
    csrf = sign_in(web, "admin")
    cookie_only = web.get("/api/v1/_whoami")
    assert cookie_only.status_code == 401 and "Session authentication is disabled" in detail(
        cookie_only)
    site.set_setting("api_session_auth", True)
    assert web.get("/api/v1/_whoami").json()["via"] == "session"
    forged_post = web.post("/api/v1/_whoami")
    assert forged_post.status_code == 403 and "X-CSRF-Token" in detail(forged_post)
    assert web.post("/api/v1/_whoami", headers={"X-CSRF-Token": csrf}).status_code == 200

    # the API switched off: 403 whatever the credentials
    site.set_setting("api_enabled", False)
    for response in (api.get("/api/v1/_whoami", headers=bearer(token)),
                     api.get("/api/v1/_whoami", auth=("admin", PASSWORD)),
                     web.get("/api/v1/_whoami"), api.get("/api/v1/_whoami")):
        assert response.status_code == 403
        assert detail(response) == "The API is disabled on this site."


def test_rate_limits_per_user_and_client(site, admin, monkeypatch):
    now = [1000.0]  # 40 s into a minute
    monkeypatch.setattr(throttle, "clock", lambda: now[0])
    site.set_setting("api_rate_limit_user", 3)
    site.set_setting("api_rate_limit_client", 4)
    bob = create_user(site, "bob", PASSWORD)
    api = https_client(site)
    mine = oauth.issue_access_token(site, admin.id, "app")["access_token"]
    remaining = [api.get("/api/v1/_whoami", headers=bearer(mine)) for _ in range(3)]
    assert [r.headers["x-ratelimit-remaining"] for r in remaining] == ["2", "1", "0"]
    assert remaining[0].headers["x-ratelimit-limit"] == "3"
    over = api.get("/api/v1/_whoami", headers=bearer(mine))
    assert over.status_code == 429 and over.headers["retry-after"] == "40"
    assert "at most 3 a minute" in detail(over)
    # another user of the same client has their own; then the client's limit (4) bites
    bobs = oauth.issue_access_token(site, bob.id, "app")["access_token"]
    assert api.get("/api/v1/_whoami", headers=bearer(bobs)).status_code == 200
    client_over = api.get("/api/v1/_whoami", headers=bearer(bobs))
    assert client_over.status_code == 429 and "at most 4 a minute" in detail(client_over)
    now[0] += 40  # a third of the last minute's requests has slid out of the window
    assert api.get("/api/v1/_whoami", headers=bearer(mine)).status_code == 200
    assert api.get("/api/v1/_whoami", headers=bearer(mine)).status_code == 429
    site.set_setting("api_rate_limit_user", 0)  # 0: no limit
    site.set_setting("api_rate_limit_client", 0)
    assert all(api.get("/api/v1/_whoami", headers=bearer(mine)).status_code == 200
               for _ in range(5))


def stored_hits(site) -> int:
    """The user's API requests written to the shared counters."""
    counters = site.tables.tables["crbm_rate_counters"]
    with site.engine.connect() as conn:
        return sum(row.hits for row in conn.execute(sa.select(counters))
                   if row.key.startswith("api-user:"))


def test_rate_limits_are_shared_by_every_worker(site, make_site, admin, monkeypatch):
    now = [1_800_000_030.0]  # half a minute into a minute
    monkeypatch.setattr(throttle, "clock", lambda: now[0])
    site.set_setting("api_rate_limit_user", 150)
    token = oauth.issue_access_token(site, admin.id)["access_token"]
    first = https_client(site)
    second = TestClient(app_for(make_site()), base_url="https://testserver")  # another worker

    answer = first.get("/api/v1/_whoami", headers=bearer(token))
    assert answer.status_code == 200 and answer.headers["x-ratelimit-remaining"] == "149"
    assert stored_hits(site) == 0  # a GET reads the counts; its hit is written in a batch
    for _ in range(2):
        first.get("/api/v1/_whoami", headers=bearer(token))
    assert stored_hits(site) == 3  # ...of 3 (a 50th of the limit)
    answer = second.get("/api/v1/_whoami", headers=bearer(token))
    assert answer.headers["x-ratelimit-remaining"] == "146"  # it counts the first one's
    for _ in range(146):
        assert first.get("/api/v1/_whoami", headers=bearer(token)).status_code == 200
    assert stored_hits(site) == 149  # near the limit every hit is written
    # the second worker's one unwritten request is what batching costs: the documented
    # bound is the limit + (batch - 1) per other worker; 151 here
    assert first.get("/api/v1/_whoami", headers=bearer(token)).status_code == 200
    assert first.get("/api/v1/_whoami", headers=bearer(token)).status_code == 429
    refused = second.get("/api/v1/_whoami", headers=bearer(token))  # the budget is used up
    assert refused.status_code == 429 and refused.headers["retry-after"] == "31"
    assert "at most 150 a minute" in detail(refused)
    now[0] += 31  # the minute slid on
    assert second.get("/api/v1/_whoami", headers=bearer(token)).status_code == 200
    assert first.get("/api/v1/_whoami", headers=bearer(token)).status_code == 429


def test_admin_api_settings_keys_and_clients(site, admin):
    create_user(site, "dave", PASSWORD)
    outsider = https_client(site)
    sign_in(outsider, "dave")
    for url in ("/admin/api", "/admin/api/clients", "/admin/api/clients/new",
                "/admin/api/keys"):
        assert outsider.get(url).status_code == 403

    web = https_client(site)
    csrf = sign_in(web, "admin")
    page = web.get("/admin/api")
    assert page.status_code == 200
    assert "BEGIN PUBLIC KEY" in page.text and "PRIVATE" not in page.text
    form = {"_csrf": csrf, "api_enabled": "1", "api_token_minutes": "0",
            "api_rate_limit_user": "100", "api_rate_limit_client": "many"}
    refused = web.post("/admin/api", data=form)
    assert refused.status_code == 422
    assert field_error(refused, "api_token_minutes") == "Enter a whole number from 1 to 1440."
    assert field_error(refused, "api_rate_limit_client").startswith("Enter a whole number")
    assert "api_rate_limit_user" not in site.settings
    saved = web.post("/admin/api", data={**form, "api_token_minutes": "15",
                                         "api_rate_limit_client": "50",
                                         "api_basic_auth": "1"})
    assert saved.status_code == 200 and "The API settings were saved." in saved.text
    assert oauth.stored_settings(site) == {
        "api_enabled": True, "api_allow_http": False, "api_basic_auth": True,
        "api_session_auth": False, "api_token_minutes": 15, "api_rate_limit_user": 100,
        "api_rate_limit_client": 50}
    assert oauth.issue_access_token(site, admin.id)["expires_in"] == 15 * 60

    # regenerate keys: a confirmation, then tokens signed before stop working
    token = oauth.issue_access_token(site, admin.id)["access_token"]
    assert web.get("/api/v1/_whoami", headers=bearer(token)).status_code == 200
    old = oauth.key_list(site)[0]["kid"]
    assert "Every access token issued so far stops working" in web.get("/admin/api/keys").text
    web.post("/admin/api/keys", data={"_csrf": csrf})
    assert [k["kid"] for k in oauth.key_list(site)] != [old]
    assert web.get("/api/v1/_whoami", headers=bearer(token)).status_code == 401

    # clients: bad input comes back at its field, nothing saved
    clients = site.tables.tables["crbm_api_clients"]
    user_id = users.get_user(site, "dave").id
    new = {"_csrf": csrf, "name": "Warehouse", "publisher": "Acme", "enabled": "1",
           "grant_types": ["authorization_code", "client_credentials"], "user_id": user_id,
           "redirect_uris": "https://acme.example/cb\nhttp://acme.example/cb"}
    bad = web.post("/admin/api/clients/new", data=new)
    assert bad.status_code == 422
    assert field_error(bad, "redirect_uris").startswith("http://acme.example/cb is not an "
                                                        "absolute https:// URL")
    public = web.post("/admin/api/clients/new", data={**new, "is_public": "1",
                                                      "redirect_uris": "https://a.example/"})
    assert field_error(public, "grant_types") == ("A public client keeps no secret, so it "
                                                  "cannot use client credentials.")
    with site.engine.connect() as conn:
        assert conn.execute(sa.select(clients.c.id).where(clients.c.name == "Warehouse")
                            ).first() is None

    # created: the client id, and the secret shown this once
    created = web.post("/admin/api/clients/new", data={
        **new, "redirect_uris": "https://acme.example/cb\nhttp://localhost:8080/cb"})
    assert created.status_code == 200 and "API client Warehouse was created." in created.text
    client_id = re.search(r"<code>([^<]+)</code>", created.text).group(1)
    secret = re.search(r'id="secret"[^>]*>([^<]+)</textarea>', created.text).group(1)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(clients).where(clients.c.name == "Warehouse")).one()
    assert row.id == client_id and row.secret_hash.startswith("$argon2")
    assert secret not in str(tuple(row))
    assert row.redirect_uris == "https://acme.example/cb\nhttp://localhost:8080/cb"
    granted = web.post("/oauth/token", data={"grant_type": "client_credentials"},
                       auth=(client_id, secret))
    assert granted.status_code == 200, granted.text
    listing = web.get("/admin/api/clients").text
    assert "Warehouse" in listing and "Acme" in listing and "dave" in listing
    assert "Private" in listing and "Client credentials (acts as the chosen user)" in listing
    detail_page = web.get(f"/admin/api/clients/{client_id}")
    assert client_id in detail_page.text and secret not in detail_page.text
    assert "Rotate secret" in detail_page.text

    # rotate: the new secret once; the old one no longer works
    rotated = web.post(f"/admin/api/clients/{client_id}/secret", data={"_csrf": csrf})
    new_secret = re.search(r'id="secret"[^>]*>([^<]+)</textarea>', rotated.text).group(1)
    assert new_secret != secret
    assert web.post("/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(client_id, secret)).status_code == 401
    assert web.post("/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(client_id, new_secret)).status_code == 200

    # edit: disable it, bad input refused at its field
    edit = {"_csrf": csrf, "name": "Warehouse 2", "publisher": "Acme",
            "grant_types": ["client_credentials"], "user_id": user_id, "redirect_uris": ""}
    assert field_error(web.post(f"/admin/api/clients/{client_id}", data={**edit, "name": ""}),
                       "name") == "is required"
    web.post(f"/admin/api/clients/{client_id}", data=edit)
    with site.engine.connect() as conn:
        row = conn.execute(sa.select(clients).where(clients.c.id == client_id)).one()
    assert (row.name, row.enabled, row.grant_types) == ("Warehouse 2", False,
                                                        "client_credentials")
    assert web.post("/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(client_id, new_secret)).status_code == 401


def test_issue_access_token_makes_its_client(site, admin):
    """What the API's tests rely on: issue_access_token with any client name."""
    token = oauth.issue_access_token(site, admin.id, client_id="api-tests")
    found = oauth.check_bearer(https_client(site).app, token["access_token"])
    assert found.user.username == "admin" and found.client_id == "api-tests"
    client, _ = make_client(site, "Existing", ["client_credentials"], user_id=admin.id)
    again = oauth.issue_access_token(site, admin.id, client_id=client.id)
    assert oauth.check_bearer(https_client(site).app, again["access_token"]).client_id == \
        client.id
    # the issuer is the site's address when it has one; changing it retires old tokens
    site.set_setting("base_url", "https://crm.example.com/")
    assert oauth.check_bearer(https_client(site).app, again["access_token"]).user is None
    token = oauth.issue_access_token(site, admin.id)["access_token"]
    claims = oauth._claims_unverified(token)
    assert (claims["iss"], claims["aud"]) == ("https://crm.example.com",
                                              "https://crm.example.com/api/v1")
    assert oauth.check_bearer(https_client(site).app, token).user.username == "admin"


def test_api_client_commands(site, admin):
    from click.testing import CliRunner

    import cli

    def run(*args):
        result = CliRunner().invoke(cli.main, ["--site", str(site.folder), "api-client",
                                               *args])
        return result.exit_code, result.output

    code, out = run("create", "Reports", "--grant", "client_credentials", "--user", "admin")
    assert code == 0, out
    client_id = re.search(r"client_id:\s+(\S+)", out).group(1)
    secret = re.search(r"client_secret:\s+(\S+)", out).group(1)
    code, out = run("create", "Bad", "--redirect-uri", "http://example.com/cb")
    assert code == 1 and "redirect_uris: http://example.com/cb is not an absolute" in out
    assert run("list")[1].split("\n")[0].split("\t") == [
        client_id, "private", "enabled", "client_credentials", "admin", "Reports"]
    code, rotated = run("secret", client_id)
    assert code == 0 and rotated.strip() != secret
    api = https_client(site)
    assert api.post("/oauth/token", data={"grant_type": "client_credentials"},
                    auth=(client_id, secret)).status_code == 401
    token = api.post("/oauth/token", data={"grant_type": "client_credentials"},
                     auth=(client_id, rotated.strip())).json()["access_token"]
    assert api.get("/api/v1/_whoami", headers=bearer(token)).json()["user"] == "admin"
