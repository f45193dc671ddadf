"""Logging in and staying safe, through real HTTP requests and a real SMTP server:
lockout, inactive users, forced and voluntary password changes, reset links, the IP
check, preferences, logout, and the `crbm settings` / `crbm user (de)activate` commands."""
import base64
import datetime as dt
import hashlib
import html
import json
import logging
import re
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from starlette.testclient import TestClient

import cli
from core.kernel import crypto, users
from core.kernel.records import now
from core.kernel.users import authenticate, create_user, set_active
from core.testing import free_port
from core.web import throttle
from core.web.app import create_app

PASSWORD = "correct horse battery"
NEW_PASSWORD = "a much better passphrase"
WRONG = "Wrong user name or password."


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def text_of(response) -> str:
    return html.unescape(response.text)


def alert(response) -> str:
    """The error message at the top of a page."""
    found = re.search(r'<p class="flash error"[^>]*>(.*?)</p>', response.text, re.DOTALL)
    return html.unescape(found.group(1)) if found else ""


def log_in(client, username="admin", password=PASSWORD, next_=""):
    page = client.get("/login")
    return client.post("/login", follow_redirects=False, data={
        "_csrf": csrf_of(page.text), "username": username, "password": password, "next": next_})


def post(client, path, data, page=None):
    """Submit a form the way a browser does: CSRF token from the page the form is on."""
    token = csrf_of(client.get(page or path).text)
    return client.post(path, data={"_csrf": token, **data}, follow_redirects=False)


def signed_in(client) -> bool:
    return client.get("/", follow_redirects=False).status_code == 200


def user_row(site, username):
    table = site.tables.tables["crbm_users"]
    with site.engine.connect() as conn:
        return conn.execute(sa.select(table).where(table.c.username == username)).first()


pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


class Clock:
    """users.clock, moved by hand."""

    def __init__(self):
        self.now = now()

    def __call__(self):
        return self.now

    def advance(self, minutes):
        self.now += dt.timedelta(minutes=minutes)


@pytest.fixture
def clock(monkeypatch):
    fake = Clock()
    monkeypatch.setattr(users, "clock", fake)
    return fake


@pytest.fixture
def app(site, admin):
    return create_app(site)


@pytest.fixture
def client(app):
    with TestClient(app) as client:
        yield client


@pytest.fixture
def dana(site):
    return create_user(site, "dana", "dana's long password", email="Dana@Example.com")


@pytest.fixture
def inbox(site, smtp_inbox):
    """The shared test SMTP server, reset links pointing at the site's configured address."""
    site.set_setting("base_url", SITE_URL)  # where reset links point (never the Host header)
    return smtp_inbox


SITE_URL = "https://crm.example.com"


def reset_link(message) -> str:
    return re.search(r"https?://\S+/password/reset/\S+", message.get_content()).group(0)


def path_of(link: str) -> str:
    assert link.startswith(SITE_URL + "/password/reset/")
    return link.removeprefix(SITE_URL)


# -- logging in ----------------------------------------------------------------------------

def test_login_goes_to_next_but_never_to_another_site(client):
    page = client.get("/login")
    assert 'href="/password/forgot"' in page.text and "Forgot your password?" in page.text
    response = log_in(client, next_="/m/widgets?page=2")
    assert response.status_code == 303 and response.headers["location"] == "/m/widgets?page=2"
    for evil in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        client.cookies.clear()
        response = log_in(client, next_=evil)
        assert response.status_code == 303 and response.headers["location"] == "/"


def test_a_protected_page_sends_to_login_and_back(client):
    response = client.get("/m/widgets", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/m/widgets"
    assert log_in(client, next_="/m/widgets").headers["location"] == "/m/widgets"


def test_wrong_password_and_unknown_user_get_the_same_answer(client, monkeypatch):
    calls = []
    real = users.HASHER

    class CountingHasher:
        def verify(self, hash_, password):
            calls.append(password)
            return real.verify(hash_, password)

        def __getattr__(self, name):
            return getattr(real, name)

    monkeypatch.setattr(users, "HASHER", CountingHasher())
    wrong = log_in(client, "admin", "not my password")
    unknown = log_in(client, "nobody", "not my password")
    assert wrong.status_code == unknown.status_code == 401
    assert alert(wrong) == alert(unknown) == WRONG
    assert 'value="nobody"' in unknown.text  # the user name stays in the form
    assert len(calls) == 2  # one argon2 verification each: no probing by timing
    assert not signed_in(client)


def test_five_failures_lock_the_account_even_for_the_right_password(site, client, dana):
    create_user(site, "erin", "erin's long password")
    for attempt in range(4):
        response = log_in(client, "dana", "wrong password")
        assert response.status_code == 401 and alert(response) == WRONG
        log_in(client, "erin", "wrong password")
    fifth = log_in(client, "dana", "wrong password")
    log_in(client, "erin", "wrong password")
    assert fifth.status_code == 429
    assert alert(fifth) == ("This account is locked after too many failed attempts. "
                            "Try again in 1 minute.")
    # Right or wrong password, a locked account gets the very same answer.
    right = log_in(client, "dana", "dana's long password")
    wrong = log_in(client, "erin", "wrong password")
    assert right.status_code == wrong.status_code == 429
    assert alert(right) == alert(wrong)
    assert "locked" in alert(right) and "Try again in 2 minutes." in alert(right)
    assert not signed_in(client)


def test_the_schedule_is_a_constant():
    assert users.LOCKOUT_AFTER == 5
    assert users.LOCKOUT_MINUTES == (1, 2, 4, 8, 15, 30, 60)
    assert [users.lock_minutes(n) for n in range(13)] == [0, 0, 0, 0, 0, 1, 2, 4, 8, 15, 30, 60, 60]


def test_each_further_failure_doubles_the_lock_up_to_an_hour(client, dana, clock):
    for _ in range(4):
        log_in(client, "dana", "wrong password")
    seen = []
    for _ in range(8):
        response = log_in(client, "dana", "wrong password")
        seen.append(int(re.search(r"Try again in (\d+) minute", alert(response)).group(1)))
        clock.advance(seen[-1] + 1)  # the lock has run out before the next try
    assert seen == [1, 2, 4, 8, 15, 30, 60, 60]
    # Once the lock has run out, the right password works and starts the count afresh.
    assert log_in(client, "dana", "dana's long password").status_code == 303
    assert user_row(client.app.state.site, "dana").failed_logins == 0
    client.cookies.clear()
    for _ in range(4):
        assert log_in(client, "dana", "wrong password").status_code == 401
    assert "Try again in 1 minute." in alert(log_in(client, "dana", "wrong password"))


def test_a_success_resets_the_count(client, dana):
    for _ in range(4):
        log_in(client, "dana", "wrong password")
    assert log_in(client, "dana", "dana's long password").status_code == 303
    client.cookies.clear()
    for _ in range(4):
        response = log_in(client, "dana", "wrong password")
    assert response.status_code == 401 and alert(response) == WRONG


def test_a_locked_account_waits_it_out(client, dana, clock):
    for _ in range(5):
        log_in(client, "dana", "wrong password")
    clock.advance(0.5)
    assert log_in(client, "dana", "dana's long password").status_code == 429
    clock.advance(3)  # past the 2 minutes that try earned
    assert log_in(client, "dana", "dana's long password").status_code == 303


def test_an_inactive_user_cannot_log_in_and_their_session_ends(site, client, dana):
    assert log_in(client, "dana", "dana's long password").status_code == 303
    assert signed_in(client)
    set_active(site, "dana", False)
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    refused = log_in(client, "dana", "dana's long password")
    assert refused.status_code == 401 and alert(refused) == WRONG
    set_active(site, "dana", True)
    assert log_in(client, "dana", "dana's long password").status_code == 303


# -- changing passwords --------------------------------------------------------------------

def test_first_login_forces_a_password_change(site, app):
    create_user(site, "newcomer01", "first password!", must_change_password=True)
    with TestClient(app) as other, TestClient(app) as client:
        assert log_in(other, "newcomer01", "first password!").status_code == 303
        response = log_in(client, "newcomer01", "first password!", next_="/m/widgets")
        assert response.headers["location"] == "/password/change"
        for path in ("/", "/m/widgets", "/preferences"):
            response = client.get(path, follow_redirects=False)
            assert response.status_code == 303 and response.headers["location"] == "/password/change"
        page = client.get("/password/change")
        assert page.status_code == 200
        assert 'data-strength="pw-meter"' in page.text and 'id="pw-meter"' in page.text
        assert "Please choose a new password before you continue." in text_of(page)

        def change(current, new, confirm=None):
            return post(client, "/password/change",
                        {"current": current, "new": new, "confirm": new if confirm is None else confirm})

        cases = [
            (("not it at all", NEW_PASSWORD), "That is not your current password."),
            (("first password!", "short"), "The password must be at least 10 characters long."),
            (("first password!", "NewComer01"), "The password must not be the same as the user name."),
            (("first password!", NEW_PASSWORD, NEW_PASSWORD + "x"), "The two new passwords are not the same."),
            (("first password!", "first password!"), "The new password must be different from the current one."),
        ]
        for args, message in cases:
            response = change(*args)
            assert response.status_code == 400
            assert '<p class="error-text"' in response.text and message in text_of(response)
        assert authenticate(site, "newcomer01", "first password!") is not None  # unchanged so far

        response = change("first password!", NEW_PASSWORD)
        assert response.status_code == 303 and response.headers["location"] == "/"
        home = client.get("/")
        assert home.status_code == 200 and "Your password was changed." in text_of(home)
        assert not user_row(site, "newcomer01").must_change_password
        # Every other session has ended; this one goes on.
        response = other.get("/", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
        assert signed_in(client)
        assert authenticate(site, "newcomer01", "first password!") is None
        assert authenticate(site, "newcomer01", NEW_PASSWORD) is not None


def test_the_password_can_be_changed_any_time(site, app):
    with TestClient(app) as other, TestClient(app) as client:
        log_in(other), log_in(client)
        # the user's own page links it (the bar keeps to the modules and the apps)
        assert 'href="/password/change"' in client.get("/preferences").text
        page = client.get("/password/change")
        assert page.status_code == 200 and "before you continue" not in page.text
        response = post(client, "/password/change",
                        {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert response.headers["location"] == "/"
        assert signed_in(client) and not signed_in(other)


def test_changing_the_password_needs_csrf(client):
    log_in(client)
    response = client.post("/password/change", data={"current": PASSWORD, "new": NEW_PASSWORD,
                                                     "confirm": NEW_PASSWORD})
    assert response.status_code == 403


# -- per-address throttles (shared by every worker through the database) ---------------

class ThrottleClock:
    """throttle.clock, moved by hand: the middle of a 15-minute window."""

    def __init__(self):
        self.now = 1_800_000_000.0 + 450  # 1_800_000_000 is a multiple of 900

    def __call__(self):
        return self.now

    def advance(self, minutes):
        self.now += minutes * 60


@pytest.fixture
def throttle_clock(monkeypatch):
    fake = ThrottleClock()
    monkeypatch.setattr(throttle, "clock", fake)
    return fake


@pytest.fixture
def workers(site, make_site):
    """Two web applications on one database, as two worker processes (two Sites)."""
    with TestClient(create_app(site)) as first, TestClient(create_app(make_site())) as second:
        yield first, second


TOO_MANY_SIGN_INS = "Too many failed sign-ins from your network address."


def test_failed_sign_ins_from_one_address_are_throttled_by_every_worker(
        site, admin, dana, workers, throttle_clock, caplog):
    site.set_setting("login_rate_limit_ip", 3)
    a, b = workers
    with caplog.at_level(logging.WARNING):
        for client in (a, b, a):
            assert log_in(client, "dana", "wrong password").status_code == 401
    assert "testclient" in caplog.text  # the address is logged once it is throttled
    refused = log_in(b, "dana", "dana's long password")  # the right password: not even tried
    assert refused.status_code == 429 and refused.headers["retry-after"] == "750"
    assert alert(refused) == TOO_MANY_SIGN_INS + " Try again in 13 minutes."
    assert log_in(a).status_code == 429  # any account, from this address
    assert user_row(site, "dana").failed_logins == 3  # throttled attempts reach no account
    with TestClient(b.app, client=("10.0.0.9", 50000)) as elsewhere:
        assert log_in(elsewhere, "dana", "dana's long password").status_code == 303
    with TestClient(b.app, client=("2001:db8:1:2::7", 50000)) as v6, \
            TestClient(a.app, client=("2001:db8:1:2::8", 50000)) as same_line:
        for client in (v6, v6, same_line):  # an IPv6 /64 counts as one address
            log_in(client, "nobody", "wrong password")
        assert log_in(same_line).status_code == 429
    throttle_clock.advance(13)
    assert log_in(b, "dana", "dana's long password").status_code == 303


def test_a_throttle_set_to_zero_is_off(site, admin, client, throttle_clock, caplog):
    site.set_setting("login_rate_limit_ip", 0)
    with caplog.at_level(logging.WARNING):
        for _ in range(25):
            assert log_in(client, "nobody", "wrong password").status_code == 401
    assert caplog.text == ""
    assert log_in(client).status_code == 303


def test_basic_authentication_failures_count_for_the_address_too(site, admin, workers,
                                                                 throttle_clock):
    site.set_setting("login_rate_limit_ip", 2)
    site.set_setting("api_basic_auth", True)
    site.set_setting("api_allow_http", True)
    a, b = workers
    wrong = {"Authorization": "Basic " + base64.b64encode(b"admin:wrong").decode()}
    right = {"Authorization": "Basic " + base64.b64encode(f"admin:{PASSWORD}".encode()).decode()}
    assert a.get("/api/v1/widgets", headers=wrong).status_code == 401
    assert log_in(b, "admin", "wrong password").status_code == 401
    refused = a.get("/api/v1/widgets", headers=right)
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) > 0
    assert TOO_MANY_SIGN_INS in refused.json()["detail"]
    throttle_clock.advance(15)
    assert a.get("/api/v1/widgets", headers=right).status_code == 200


# -- forgotten passwords -------------------------------------------------------------------

NEUTRAL = "If the account exists and has an email address, we sent a link to it."


def forgot(client, login):
    return post(client, "/password/forgot", {"login": login})


def test_forgot_password_mails_a_link_that_works_once(site, app, dana, inbox):
    with TestClient(app) as other, TestClient(app) as client:
        assert log_in(other, "dana", "dana's long password").status_code == 303
        for _ in range(5):
            log_in(client, "dana", "wrong password")  # locked out, too
        response = forgot(client, "dana@example.COM")
        assert response.status_code == 200 and NEUTRAL in text_of(response)
        assert len(inbox.messages) == 1
        message = inbox.messages[0]
        assert message["To"] == "Dana@Example.com" and message["From"] == "crm@example.com"
        assert message["Subject"] == "Reset your CRBM password"
        link = reset_link(message)
        token = link.rsplit("/", 1)[1]
        resets = site.tables.tables["crbm_password_resets"]
        with site.engine.connect() as conn:
            stored = conn.execute(sa.select(resets.c.token_hash)).scalars().all()
        assert stored == [hashlib.sha256(token.encode()).hexdigest()]  # never the token itself

        path = path_of(link)
        page = client.get(path)
        assert page.status_code == 200 and 'data-strength="pw-meter"' in page.text
        assert "Choose a new password for the user dana." in text_of(page)
        for new, confirm, message_text in [
                ("short", "short", "at least 10 characters"),
                ("DANA", "DANA", "at least 10 characters"),
                (NEW_PASSWORD, "something else", "The two new passwords are not the same.")]:
            response = post(client, path, {"new": new, "confirm": confirm})
            assert response.status_code == 400 and message_text in text_of(response)
        response = post(client, path, {"new": NEW_PASSWORD, "confirm": NEW_PASSWORD})
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert "Your password was changed." in text_of(client.get("/login"))

        assert not signed_in(other)  # the session from before the reset has ended
        assert log_in(client, "dana", NEW_PASSWORD).status_code == 303  # and the lock is gone
        assert authenticate(site, "dana", "dana's long password") is None

        client.cookies.clear()
        again = client.get(path)
        assert again.status_code == 410
        assert "This link is not valid any more" in text_of(again)
        assert 'href="/password/forgot"' in again.text
        assert post(client, path, {"new": "yet another passphrase", "confirm": "yet another passphrase"},
                    page="/login").status_code == 410
        assert authenticate(site, "dana", NEW_PASSWORD) is not None


def test_a_reset_link_expires_after_an_hour(site, client, dana, inbox, clock):
    site.set_setting("base_url", "https://crm.example.com/")
    forgot(client, "dana")
    path = path_of(reset_link(inbox.messages[0]))
    clock.advance(59)
    assert client.get(path).status_code == 200
    clock.advance(2)
    response = client.get(path)
    assert response.status_code == 410 and "This link is not valid any more" in text_of(response)
    assert client.get("/password/reset/made-up-token").status_code == 410


UNAVAILABLE = ("Password reset by email is not available on this site. Ask an administrator "
               "to set a new password for you.")


def test_a_reset_link_is_never_built_from_the_host_header(site, app, dana, inbox, caplog):
    with TestClient(app, base_url="http://attacker.example") as client:
        response = forgot(client, "dana")  # Host: attacker.example
        assert response.status_code == 200
        assert path_of(reset_link(inbox.messages[0]))  # the configured address, not theirs

        site.set_setting("base_url", None)  # no configured address: no link at all
        with caplog.at_level(logging.WARNING):
            response = post(client, "/password/forgot", {"login": "dana"}, page="/login")
        assert response.status_code == 503 and UNAVAILABLE in text_of(response)
        assert 'name="login"' not in response.text
        assert len(inbox.messages) == 1
        assert "base_url" in caplog.text  # the log tells the administrator what to set
        page = client.get("/password/forgot")
        assert UNAVAILABLE in text_of(page) and 'name="login"' not in page.text
    resets = site.tables.tables["crbm_password_resets"]
    with site.engine.connect() as conn:
        assert len(conn.execute(sa.select(resets)).all()) == 1  # no token issued for it


def test_reset_requests_from_one_address_are_throttled_by_every_worker(
        site, dana, inbox, workers, throttle_clock):
    site.set_setting("reset_rate_limit_ip", 2)
    a, b = workers
    assert NEUTRAL in text_of(forgot(a, "dana")) and NEUTRAL in text_of(forgot(b, "nobody"))
    refused = post(a, "/password/forgot", {"login": "dana"})
    assert refused.status_code == 429
    assert alert(refused) == ("Too many password reset requests from your network address. "
                              "Try again in 15 minutes.")
    assert len(inbox.messages) == 1
    with TestClient(b.app, client=("10.0.0.9", 50000)) as elsewhere:
        assert NEUTRAL in text_of(forgot(elsewhere, "dana"))
    assert len(inbox.messages) == 2
    throttle_clock.advance(14)
    assert forgot(b, "dana").status_code == 429
    throttle_clock.advance(1)
    assert NEUTRAL in text_of(forgot(b, "dana"))


def test_unknown_users_get_the_same_answer_and_no_mail(site, client, dana, inbox):
    create_user(site, "nomail", "a password without mail")
    known = forgot(client, "dana")
    assert len(inbox.messages) == 1
    for login in ("nobody", "nobody@example.com", "nomail"):
        response = forgot(client, login)
        assert response.status_code == known.status_code == 200
        assert response.text == known.text
    assert len(inbox.messages) == 1


def test_an_inactive_user_gets_no_link(site, client, dana, inbox):
    set_active(site, "dana", False)
    assert NEUTRAL in text_of(forgot(client, "dana"))
    assert inbox.messages == []


def test_when_the_mail_server_fails_the_answer_is_the_same_and_the_log_has_no_token(
        site, client, dana, monkeypatch, caplog):
    token = "the-secret-token-that-must-not-be-logged"
    monkeypatch.setattr(users, "secrets", SimpleNamespace(token_urlsafe=lambda n: token))
    site.set_setting("base_url", SITE_URL)
    port = free_port()  # nothing listens there
    site.set_setting("smtp", {"host": "127.0.0.1", "port": port,
                              "from_address": "crm@example.com"})
    with caplog.at_level(logging.WARNING):
        response = forgot(client, "dana")
    assert response.status_code == 200 and NEUTRAL in text_of(response)
    assert "password reset mail for user 'dana' not sent" in caplog.text
    assert f"Nothing answers at 127.0.0.1:{port}" in caplog.text
    assert token not in caplog.text
    assert client.get(f"/password/reset/{token}").status_code == 410  # the unsent link is void


def test_without_a_mail_server_the_page_says_reset_by_email_is_not_available(
        site, client, dana, caplog):
    site.set_setting("base_url", SITE_URL)
    page = client.get("/password/forgot")
    assert page.status_code == 200 and UNAVAILABLE in text_of(page)
    assert 'name="login"' not in page.text and "we sent a link" not in text_of(page)
    with caplog.at_level(logging.WARNING):
        response = post(client, "/password/forgot", {"login": "dana"}, page="/login")
    assert response.status_code == 503 and UNAVAILABLE in text_of(response)
    assert NEUTRAL not in text_of(response)
    assert "mail is not configured" in caplog.text
    for login in ("nobody", "dana"):  # the same for everyone: it tells nothing about accounts
        answer = post(client, "/password/forgot", {"login": login}, page="/login")
        assert answer.text == response.text


# -- IP check ------------------------------------------------------------------------------

def test_a_session_used_from_another_ip_address_ends_when_checked(site, admin):
    with TestClient(create_app(site)) as client:  # off by default
        log_in(client)
        with TestClient(client.app, client=("10.0.0.2", 123), cookies=client.cookies) as moved:
            assert signed_in(moved)
    site.set_setting("validate_ip", True)
    app = create_app(site)
    with TestClient(app) as client:
        log_in(client)
        assert signed_in(client)
        with TestClient(app, client=("10.0.0.2", 123), cookies=client.cookies) as moved:
            response = moved.get("/m/widgets")
            assert response.url.path == "/login"
            assert ("Your session was ended because your IP address changed. "
                    "Please log in again.") in text_of(response)
            assert not signed_in(moved)
        assert signed_in(client)  # from where it started, the session still works


# -- preferences ---------------------------------------------------------------------------

def test_preferences_are_saved_and_checked(site, client, admin):
    log_in(client)
    page = client.get("/preferences")
    assert page.status_code == 200
    assert '<option selected>UTC</option>' in page.text and "Europe/Oslo" in page.text
    values = {"language": "en", "timezone": "Europe/Oslo", "date_format": "yyyy-MM-dd",
              "time_format": "HH:mm", "number_locale": "de_CH"}
    response = post(client, "/preferences", values)
    assert response.status_code == 303 and response.headers["location"] == "/preferences"
    page = client.get("/preferences")
    assert "Preferences saved." in text_of(page)
    assert '<option selected>Europe/Oslo</option>' in page.text
    saved = json.loads(user_row(site, "admin").preferences)
    assert {k: saved[k] for k in values} == values and saved["theme"] is None

    response = post(client, "/preferences", {**values, "timezone": "Mars/Olympus_Mons",
                                             "date_format": "dd/qq/zz"})
    assert response.status_code == 400
    fields = text_of(response)
    assert re.search(r'name="timezone".*?Unknown time zone', fields, re.DOTALL)
    assert re.search(r'name="date_format".*?Not a valid date format', fields, re.DOTALL)
    assert json.loads(user_row(site, "admin").preferences)["timezone"] == "Europe/Oslo"


def test_preferences_need_a_login(client):
    response = client.get("/preferences", follow_redirects=False)
    assert response.headers["location"] == "/login?next=/preferences"


# -- logging out ---------------------------------------------------------------------------

def test_logout_is_a_post_with_csrf(client):
    log_in(client)
    assert client.post("/logout").status_code == 403
    assert client.get("/logout").status_code == 405
    assert signed_in(client)
    response = post(client, "/logout", {}, page="/")
    assert response.status_code == 303 and response.headers["location"] == "/login"
    assert not signed_in(client)


def copy_of(client) -> TestClient:
    """Another browser holding a copy of ``client``'s session cookie (as a thief would)."""
    return TestClient(client.app, cookies=dict(client.cookies))


def test_logout_ends_the_session_for_a_copied_cookie_too(site, app, admin, dana):
    with TestClient(app) as client, TestClient(app) as other:
        log_in(client)
        log_in(other, "dana", "dana's long password")
        with copy_of(client) as thief:
            assert signed_in(thief)
            assert post(client, "/logout", {}, page="/").headers["location"] == "/login"
            response = thief.get("/m/widgets")
            assert response.url.path == "/login" and 'name="password"' in response.text
            assert not signed_in(thief)
        assert signed_in(other)  # someone else's session is not touched
        assert log_in(client).status_code == 303 and signed_in(client)  # a new one works


def test_log_out_everywhere_ends_every_session_of_the_user(site, app, admin, dana):
    with TestClient(app) as browser_a, TestClient(app) as browser_b, \
            TestClient(app) as other:
        log_in(browser_a)
        log_in(browser_b)
        log_in(other, "dana", "dana's long password")
        with copy_of(browser_b) as thief:
            page = browser_a.get("/preferences")
            assert "Log out everywhere" in text_of(page)
            response = post(browser_a, "/logout/everywhere", {}, page="/preferences")
            assert response.status_code == 303 and response.headers["location"] == "/login"
            assert "You were logged out everywhere." in text_of(browser_a.get("/login"))
            assert not signed_in(browser_a)  # this browser too
            assert not signed_in(browser_b)
            assert not signed_in(thief)
        assert signed_in(other)
        assert browser_a.post("/logout/everywhere").status_code == 403  # CSRF, as any form
        assert log_in(browser_b).status_code == 303 and signed_in(browser_b)


def test_a_session_unused_for_two_weeks_ends_and_use_keeps_it(site, client, admin, clock):
    log_in(client)
    sessions = site.tables.tables["crbm_sessions"]
    with site.engine.connect() as conn:
        [row] = conn.execute(sa.select(sessions)).all()
    cookie = json.loads(base64.b64decode(client.cookies["crbm_session"].split(".")[0] + "=="))
    assert row.id_hash == hashlib.sha256(cookie["sid"].encode()).hexdigest()  # not the id
    clock.advance(13 * 24 * 60)
    assert signed_in(client)  # used after 13 days: good for 14 more
    clock.advance(13 * 24 * 60)
    assert signed_in(client)
    clock.advance(14 * 24 * 60 + 1)
    assert not signed_in(client)
    log_in(client)  # a new session; the ones idle too long are cleared out
    with site.engine.connect() as conn:
        assert len(conn.execute(sa.select(sessions)).all()) == 1


# -- command line --------------------------------------------------------------------------

@pytest.fixture
def crbm(site):
    runner = CliRunner()

    def run(*args):
        return runner.invoke(cli.main, ["--site", str(site.folder), *args])

    return run


def test_settings_set_get_unset(site, crbm):
    assert crbm("settings", "set", "smtp.host", "mail.example.com").exit_code == 0
    assert crbm("settings", "set", "smtp.port", "587").exit_code == 0
    assert crbm("settings", "set", "smtp.starttls", "true").exit_code == 0
    result = crbm("settings", "set", "smtp.password", "hunter2 secret")
    assert result.exit_code == 0 and "hunter2" not in result.output
    assert crbm("settings", "set", "validate_ip", "true").exit_code == 0
    stored = site.settings["smtp"]
    assert {k: stored[k] for k in ("host", "port", "starttls")} == {
        "host": "mail.example.com", "port": 587, "starttls": True}
    assert "hunter2" not in stored["password"]  # sealed (core.kernel.crypto)
    assert crypto.unseal(site, stored["password"]) == "hunter2 secret"
    assert site.settings["validate_ip"] is True

    assert crbm("settings", "get", "smtp.port").output == "587\n"
    assert crbm("settings", "get", "smtp.host").output == "mail.example.com\n"
    assert crbm("settings", "get", "smtp.password").output == "***\n"
    everything = crbm("settings", "get").output
    assert "smtp.host = mail.example.com" in everything and "smtp.password = ***" in everything
    assert "validate_ip = true" in everything and "hunter2" not in everything
    assert "hunter2" not in crbm("settings", "get", "smtp").output

    assert crbm("settings", "unset", "smtp.password").exit_code == 0
    assert "password" not in site.settings["smtp"]
    assert crbm("settings", "unset", "validate_ip").exit_code == 0
    assert "validate_ip" not in site.settings
    missing = crbm("settings", "unset", "smtp.nothing")
    assert missing.exit_code == 1 and "no setting 'smtp.nothing'" in missing.output
    assert crbm("settings", "get", "nothing").exit_code == 1
    bad = crbm("settings", "set", "smtp.host.name", "x")
    assert bad.exit_code == 1 and "smtp.host is not a group of settings" in bad.output
    assert "Traceback" not in bad.output


def test_user_deactivate_and_activate(site, app, crbm, dana):
    with TestClient(app) as client:
        log_in(client, "dana", "dana's long password")
        result = crbm("user", "deactivate", "dana")
        assert result.exit_code == 0 and "Deactivated dana" in result.output
        assert not signed_in(client)
        assert log_in(client, "dana", "dana's long password").status_code == 401
        assert crbm("user", "activate", "dana").exit_code == 0
        assert log_in(client, "dana", "dana's long password").status_code == 303
    missing = crbm("user", "deactivate", "nobody")
    assert missing.exit_code == 1 and "no user 'nobody'" in missing.output


def test_settings_are_read_once_and_again_only_when_their_version_moves(site, make_site):
    """Site.settings keeps what it read (no query per access, none inside a write); a
    write moves the settings' version, so this worker and every other re-read them."""
    import sqlalchemy as sa

    statements = []

    def count(conn, cursor, statement, *args):
        if "crbm_settings" in statement:
            statements.append(statement)

    site.set_setting("greeting", "hello")
    sa.event.listen(site.engine, "before_cursor_execute", count)
    try:
        assert site.settings["greeting"] == "hello"
        assert site.settings["greeting"] == "hello"
        assert len(statements) == 1  # read once, kept (outside a request: its version
        # is read at each access, one row)
        other = make_site()  # another worker on the same database
        other.set_setting("greeting", "bonjour")
        assert site.settings["greeting"] == "bonjour"  # the version moved: read again
        site.set_setting("greeting", "hi")  # its own write: forgotten at once
        assert site.settings["greeting"] == "hi"
        # in a signed-in request the version came with the user: no query at all
        import contextvars
        context = contextvars.copy_context()
        epoch = site._settings_epoch
        before = len(statements)
        context.run(site.settings_seen, epoch)
        assert context.run(lambda: [site.settings["greeting"] for _ in range(5)]) == ["hi"] * 5
        assert len(statements) == before
    finally:
        sa.event.remove(site.engine, "before_cursor_execute", count)


def test_loading_the_user_rebuilds_the_registry_only_when_the_metadata_epoch_moved(
        site, client):
    """Each request's user query reads the epochs along; the registry is rebuilt by the
    explicit catch-up step only when another worker changed the metadata."""
    from core.kernel import customizations

    assert log_in(client).status_code == 303
    registry = site.registry
    assert client.get("/m/accounts").status_code == 200
    assert site.registry is registry  # nothing changed: nothing rebuilt
    with site.engine.begin() as conn:
        customizations.bump_epoch(conn)  # the Studio, in another worker
    assert client.get("/m/accounts").status_code == 200
    assert site.registry is not registry
    rebuilt = site.registry
    assert client.get("/m/accounts").status_code == 200
    assert site.registry is rebuilt
    # a settings change in another worker reaches this one through the same query
    other_epoch = site._settings_epoch
    with site.engine.begin() as conn:
        site.settings_changed(conn)
    site._settings = {"stale": True}  # as if this worker had kept an old copy
    site._settings_epoch = other_epoch
    assert client.get("/m/accounts").status_code == 200
    assert "stale" not in site.settings



def test_head_answers_as_get_on_pages_that_take_a_form(web):
    """A monitor's or a proxy's HEAD request is a GET without the body (HTTP), never the
    form's POST: it found a 500 on /login."""
    web.cookies.clear()
    for url in ("/login", "/password/forgot"):
        assert web.head(url).status_code == web.get(url).status_code == 200, url
