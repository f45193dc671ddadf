"""Admin → Outgoing mail (core/apps/documents/admin_mail.py) against a real SMTP server (aiosmtpd)
that wants a user name and password: saving the settings (the password sealed, never shown
again, never logged), the test message arriving, and clear errors for a wrong port, a
wrong password and a wrong security setting; and what "Forgot your password?" says before
mail is set up."""
import html
import logging
import re

import pytest
import sqlalchemy as sa
from aiosmtpd.smtp import AuthResult, LoginPassword
from click.testing import CliRunner
from starlette.testclient import TestClient

import cli
from core.apps.documents import mail
from core.kernel import crypto
from core.kernel.users import create_user
from core.testing import free_port, smtp_server
from core.web.app import create_app

pytestmark = [pytest.mark.usefixtures("quick_hashes"),
              # the test server takes AUTH over plain SMTP (localhost only)
              pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")]

PASSWORD = "correct horse battery"
SMTP_USER, SMTP_PASSWORD = "crm-sender", "Smtp-Pa55word-that-must-stay-hidden"


def only_our_sender(logins: list):
    """An aiosmtpd authenticator taking SMTP_USER with SMTP_PASSWORD only; every login
    tried is appended to ``logins``."""
    def authenticate(server, session, envelope, mechanism, auth_data):
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = (auth_data.login.decode(), auth_data.password.decode())
        logins.append(login)
        # handled=False: aiosmtpd answers (235, or 535 for a refusal) itself
        return AuthResult(success=login == (SMTP_USER, SMTP_PASSWORD), handled=False)
    return authenticate


@pytest.fixture
def inbox():
    """The shared test SMTP server, wanting a login: mail only from SMTP_USER with
    SMTP_PASSWORD; ``inbox.logins`` are the logins tried. The site is not pointed at it:
    the tests set it up through Admin → Outgoing mail."""
    logins = []
    with smtp_server(authenticator=only_our_sender(logins), auth_required=True,
                     auth_require_tls=False) as box:
        box.logins = logins
        yield box


def csrf_of(page_html: str) -> str:
    return re.search(r'name="_csrf" value="([^"]+)"', page_html).group(1)


def text_of(response) -> str:
    return html.unescape(response.text)


@pytest.fixture
def client(site, admin):
    create_user(site, "mailadmin", PASSWORD, is_admin=True, email="admin@example.com")
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        client.post("/login", data={"_csrf": csrf_of(login.text), "username": "mailadmin",
                                    "password": PASSWORD})
        yield client


def submit(client, **fields):
    page = client.get("/admin/mail")
    form = {"host": "127.0.0.1", "port": "", "security": "none", "username": SMTP_USER,
            "password": "", "from_address": "crm@example.com", "from_name": "Example Ltd",
            "base_url": "https://crm.example.com", "test_to": "", "action": "save", **fields}
    return client.post("/admin/mail", data={"_csrf": csrf_of(page.text), **form},
                       follow_redirects=False)


def stored_rows(site) -> str:
    table = site.tables.tables["crbm_settings"]
    with site.engine.connect() as conn:
        return " ".join(row.value for row in conn.execute(sa.select(table)))


def test_settings_are_saved_with_the_password_sealed_and_never_shown(site, client, inbox,
                                                                     caplog):
    assert "/admin/mail" in client.get("/admin").text
    with caplog.at_level(logging.DEBUG):
        response = submit(client, port=str(inbox.port), password=SMTP_PASSWORD)
        assert response.status_code == 303
        page = client.get("/admin/mail")
    assert "The outgoing mail settings were saved." in text_of(page)
    assert SMTP_PASSWORD not in page.text and SMTP_PASSWORD not in caplog.text
    assert "A password is stored (encrypted). Leave this empty to keep it." in text_of(page)
    assert re.search(r'name="password" type="password" value=""', page.text)
    assert f'value="{inbox.port}"' in page.text and 'value="crm-sender"' in page.text

    smtp = site.settings["smtp"]
    assert (smtp["host"], smtp["port"], smtp["starttls"], smtp["ssl"], smtp["username"],
            smtp["from_address"], smtp["from_name"]) == (
        "127.0.0.1", inbox.port, False, False, SMTP_USER, "crm@example.com", "Example Ltd")
    assert crypto.is_sealed(smtp["password"]) and SMTP_PASSWORD not in stored_rows(site)
    assert mail.smtp_settings(site)["password"] == SMTP_PASSWORD
    assert site.settings["base_url"] == "https://crm.example.com"

    assert submit(client, port=str(inbox.port)).status_code == 303  # blank: kept
    assert mail.smtp_settings(site)["password"] == SMTP_PASSWORD
    assert submit(client, port=str(inbox.port), forget_password="1").status_code == 303
    assert mail.smtp_settings(site)["password"] == ""
    assert "No password is stored." in text_of(client.get("/admin/mail"))


def test_the_test_message_arrives_and_nothing_is_saved(site, client, inbox, caplog):
    submit(client, port=str(inbox.port), password=SMTP_PASSWORD, from_name="")
    with caplog.at_level(logging.DEBUG):
        # the form's values (not saved): the from name; the stored password (left blank)
        response = submit(client, port=str(inbox.port), action="test",
                          test_to="it@example.com")
    assert response.status_code == 200
    result = re.search(r'id="mail-test-result">(.*?)</p>', response.text).group(1)
    assert html.unescape(result) == ("A test message was sent to it@example.com. If it does "
                                     "not arrive, look in the spam folder and the mail "
                                     "server's log.")
    [message] = inbox.messages
    assert message["To"] == "it@example.com" and message["Subject"] == "CRBM test message"
    assert message["From"] == "Example Ltd <crm@example.com>"
    assert "check its outgoing mail settings" in message.get_content()
    assert inbox.logins == [(SMTP_USER, SMTP_PASSWORD)]  # unsealed for the server only
    assert SMTP_PASSWORD not in response.text and SMTP_PASSWORD not in caplog.text
    assert site.settings["smtp"]["from_name"] == ""  # a test saves nothing
    assert 'value="it@example.com"' in response.text  # the form keeps what was typed


def result_of(response) -> str:
    found = re.search(r'id="mail-test-result">(.*?)</p>', response.text, re.DOTALL)
    return html.unescape(found.group(1)) if found else ""


def test_a_failed_test_says_why_in_plain_words(site, client, inbox, caplog):
    submit(client, port=str(inbox.port), password=SMTP_PASSWORD)
    closed = free_port()
    with caplog.at_level(logging.DEBUG):
        wrong_port = submit(client, port=str(closed), action="test", test_to="it@example.com")
        wrong_password = submit(client, port=str(inbox.port), password="not the password",
                                action="test", test_to="it@example.com")
    assert wrong_port.status_code == 200
    assert result_of(wrong_port) == (f"Nothing answers at 127.0.0.1:{closed} (connection "
                                  "refused): check the mail server's name and port.")
    assert result_of(wrong_password).startswith(
        f"The mail server 127.0.0.1:{inbox.port} refused the user name or password: 535")
    assert "not the password" not in wrong_password.text
    assert "not the password" not in caplog.text and SMTP_PASSWORD not in caplog.text
    no_starttls = submit(client, port=str(inbox.port), security="starttls", action="test",
                         test_to="it@example.com")
    assert result_of(no_starttls) == (f"The mail server 127.0.0.1:{inbox.port} does not offer "
                                   "STARTTLS: choose another security setting.")
    ssl_on_plain = submit(client, port=str(inbox.port), security="ssl", action="test",
                          test_to="it@example.com")
    assert result_of(ssl_on_plain).startswith(
        f"The secure connection to 127.0.0.1:{inbox.port} failed (")
    assert "check the security setting and the port" in result_of(ssl_on_plain)
    assert inbox.messages == []
    assert site.settings["smtp"]["port"] == inbox.port  # nothing saved by the tests
    assert mail.smtp_settings(site)["password"] == SMTP_PASSWORD


def test_bad_values_are_refused_at_their_fields_and_nothing_is_saved(site, client):
    response = submit(client, host="mail example", port="99999", from_address="",
                      base_url="ftp://crm.example.com", from_name="x" * 101)
    assert response.status_code == 422
    page = text_of(response)
    for field, message in [
            ("host", "A host name or IP address, such as mail.example.com."),
            ("port", "A port number from 1 to 65535, or empty for the usual one."),
            ("from_address", "Required when a mail server is set."),
            ("base_url", ("An address such as https://crm.example.com (http or https, no ? "
                          "or #).")),
            ("from_name", "At most 100 characters, on one line.")]:
        assert re.search(rf'id="mail-{field}-error">{re.escape(message)}</p>', page), field
    assert "smtp" not in site.settings and "base_url" not in site.settings
    test = submit(client, action="test", test_to="not an address")
    assert test.status_code == 422 and "One email address." in text_of(test)


def test_only_administrators_open_the_page(site, admin):
    create_user(site, "clerk", PASSWORD)
    with TestClient(create_app(site)) as client:
        login = client.get("/login")
        client.post("/login", data={"_csrf": csrf_of(login.text), "username": "clerk",
                                    "password": PASSWORD})
        assert client.get("/admin/mail").status_code == 403
        token = csrf_of(client.get("/").text)
        assert client.post("/admin/mail", data={"_csrf": token, "host": "evil.example",
                                                "from_address": "x@evil.example"}
                           ).status_code == 403
    assert "smtp" not in site.settings


UNAVAILABLE = ("Password reset by email is not available on this site. Ask an administrator "
               "to set a new password for you.")


def test_forgot_password_is_honest_until_mail_is_set_up(site, client, inbox):
    create_user(site, "dana", "dana's long password", email="dana@example.com")
    with TestClient(client.app) as visitor:
        page = visitor.get("/password/forgot")
        assert UNAVAILABLE in text_of(page) and 'name="login"' not in page.text
        submit(client, port=str(inbox.port), password=SMTP_PASSWORD)  # the admin sets it up
        page = visitor.get("/password/forgot")
        assert UNAVAILABLE not in text_of(page)
        visitor.post("/password/forgot", data={"_csrf": csrf_of(page.text), "login": "dana"})
    [message] = inbox.messages
    assert "https://crm.example.com/password/reset/" in message.get_content()


def test_the_command_line_seals_the_smtp_password_too(site):
    runner = CliRunner()
    result = runner.invoke(cli.main, ["--site", str(site.folder), "settings", "set",
                                      "smtp.password", SMTP_PASSWORD])
    assert result.exit_code == 0 and SMTP_PASSWORD not in result.output
    assert crypto.is_sealed(site.settings["smtp"]["password"])
    assert SMTP_PASSWORD not in stored_rows(site)
    site.set_setting("smtp", {**site.settings["smtp"], "host": "127.0.0.1",
                              "from_address": "crm@example.com"})
    assert mail.smtp_settings(site)["password"] == SMTP_PASSWORD
