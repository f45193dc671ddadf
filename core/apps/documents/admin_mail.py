"""Administration: outgoing mail (the SMTP server CRBM sends from) and the site's address.

``/admin/mail``, administrators only (403 before anything is read). *Save* stores the
site settings ``smtp`` and ``base_url`` (every worker reads them from the database).
*Send a test message* sends one with the values in the form, without saving them (a blank
password field means the stored password), and says what happened: that it left, or the
server's error in plain words (``core.apps.documents.mail``).

The password is stored sealed (``core.kernel.crypto``); the page never shows it (a blank field
keeps it, "Forget the stored password" removes it) and nothing here logs it. A refused
form comes back with the errors at their fields (422), having saved nothing.
"""
from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _render
from core.apps.documents import mail
from core.kernel import crypto
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

log = logging.getLogger(__name__)

SECURITY = {"none": N_("None"), "starttls": N_("STARTTLS"), "ssl": N_("SSL/TLS")}
DEFAULT_PORTS = {"none": 25, "starttls": 587, "ssl": 465}
TEXT_FIELDS = ("host", "port", "security", "username", "from_address", "from_name",
               "base_url", "test_to")
HOST = re.compile(r"^[A-Za-z0-9._:\[\]-]{1,253}$")

REQUIRED = N_("Required when a mail server is set.")
BAD_HOST = N_("A host name or IP address, such as mail.example.com.")
BAD_PORT = N_("A port number from 1 to 65535, or empty for the usual one.")
BAD_URL = N_("An address such as https://crm.example.com (http or https, no ? or #).")
BAD_NAME = N_("At most 100 characters, on one line.")
ONE_ADDRESS = N_("One email address.")


def _stored(site) -> tuple[dict, dict]:
    """(the form's values from the stored settings, the stored smtp settings)."""
    settings = site.settings
    smtp = settings.get("smtp") if isinstance(settings.get("smtp"), dict) else {}
    security = "ssl" if smtp.get("ssl") else "starttls" if smtp.get("starttls") else "none"
    values = {"host": smtp.get("host") or "", "port": str(smtp.get("port") or ""),
              "security": security, "username": smtp.get("username") or "",
              "from_address": smtp.get("from_address") or "",
              "from_name": smtp.get("from_name") or "",
              "base_url": settings.get("base_url") or "", "test_to": ""}
    return values, smtp


def _from_form(form, stored_smtp: dict) -> tuple[dict, dict, dict]:
    """(the form's values, the smtp settings they make, errors). The password: the one
    typed, else the stored one, else none when "Forget" is ticked."""
    values = {key: str(form.get(key, "")).strip() for key in TEXT_FIELDS}
    errors = {}
    if values["security"] not in SECURITY:
        values["security"] = "none"
    host = values["host"]
    if host and not HOST.match(host):
        errors["host"] = BAD_HOST
    port = None
    if values["port"]:
        port = int(values["port"]) if values["port"].isdigit() else 0
        if not 1 <= port <= 65535:
            errors["port"] = BAD_PORT
    if host and not values["from_address"]:
        errors["from_address"] = REQUIRED
    elif values["from_address"] and not _one_address(values["from_address"]):
        errors["from_address"] = ONE_ADDRESS
    if len(values["from_name"]) > 100 or any(ord(c) < 32 for c in values["from_name"]):
        errors["from_name"] = BAD_NAME
    if values["base_url"] and not _site_address(values["base_url"]):
        errors["base_url"] = BAD_URL
    password = str(form.get("password", ""))
    if form.get("forget_password"):
        password = ""
    elif not password:
        password = stored_smtp.get("password") or ""
    smtp = {"host": host, "port": port or DEFAULT_PORTS[values["security"]],
            "starttls": values["security"] == "starttls", "ssl": values["security"] == "ssl",
            "username": values["username"], "password": password,
            "from_address": values["from_address"], "from_name": values["from_name"]}
    return values, smtp, errors


def _one_address(text: str) -> bool:
    try:
        return len(mail.parse_addresses(text, "from")) == 1
    except mail.MailError:
        return False


def _site_address(text: str) -> bool:
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return False
    return (url.scheme in ("http", "https") and bool(url.hostname) and not url.query
            and not url.fragment and url.username is None and " " not in text)


def _page(request: Request, values: dict, stored_smtp: dict, status: int = 200,
          errors: dict | None = None, tested: tuple[bool, str] | None = None):
    site = request.app.state.site
    settings = site.settings
    return _render(request, "admin_mail.html", status=status, values=values,
                   errors=errors or {}, tested=tested, security=SECURITY,
                   default_ports=DEFAULT_PORTS,
                   password_stored=bool(stored_smtp.get("password")),
                   reset_ready=mail.is_configured(settings) and bool(settings.get("base_url")))


@page()
def mail_settings(request: Request, form):
    user = _admin_only(request)
    site = request.app.state.site
    stored_values, stored_smtp = _stored(site)
    if form is None:
        return _page(request, {**stored_values, "test_to": user.email or ""}, stored_smtp)
    values, smtp, errors = _from_form(form, stored_smtp)
    testing = form.get("action") == "test"
    if testing and not values["host"]:
        errors["host"] = N_("Required to send a test message.")
    if testing and not _one_address(values["test_to"]):
        errors["test_to"] = ONE_ADDRESS
    if errors:
        return _page(request, values, stored_smtp, status=422, errors=errors)
    if testing:
        return _page(request, values, stored_smtp, tested=_send_test(request, smtp,
                                                                       values["test_to"]))
    if smtp["password"] and not crypto.is_sealed(smtp["password"]):
        smtp["password"] = crypto.seal(site, smtp["password"])
    site.set_setting("smtp", smtp)
    site.set_setting("base_url", values["base_url"].rstrip("/") or None)
    log.info("outgoing mail settings changed by %r (server %s)", user.username,
             f"{smtp['host']}:{smtp['port']}" if smtp["host"] else "none")
    flash(request, N_("The outgoing mail settings were saved."), "info")
    return RedirectResponse("/admin/mail", 303)


def _send_test(request: Request, smtp: dict, to: str) -> tuple[bool, Message]:
    """Send the test message with these settings (not saved); (sent, what to say)."""
    site, fmt = request.app.state.site, request.state.fmt
    subject = fmt.gettext("CRBM test message")
    text = fmt.gettext("This message was sent by CRBM to check its outgoing mail settings. "
                       "It arrived, so they work.")
    try:
        sent = mail.send_mail(site, to, subject, text, smtp=smtp)
    except mail.MailError as exc:
        log.info("test message to %s not sent: %s", to, exc)
        return False, exc.args[0]
    return True, Message(N_("A test message was sent to %(to)s. If it does not arrive, "
                            "look in the spam folder and the mail server's log."),
                         to=", ".join(sent.to))


routes = [Route("/admin/mail", mail_settings, methods=["GET", "POST"])]
