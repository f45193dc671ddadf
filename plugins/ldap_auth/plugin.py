"""LDAP sign-in: users whose password a directory server (OpenLDAP, Active Directory, ...)
checks, next to the local users whose password CRBM checks itself.

The kernel asks this plugin (hook ``crbm_authenticate``) only about names that are not
local users: unknown names, and users whose ``auth_source`` is "ldap". One sign-in:

1. connect to ``server`` (``ldap://`` or ``ldaps://``; at most ``CONNECT_TIMEOUT`` seconds
   to connect and ``RECEIVE_TIMEOUT`` seconds per answer);
2. bind as the service user (``service_user`` / ``service_password``; anonymous when
   empty) and search ``base_dn`` and below for ``(<login_attribute>=<typed name>)``, the
   name escaped so it cannot change the filter;
3. exactly one entry must match (none or several: refused);
4. bind as that entry with the typed password: with the entry's DN when
   ``bind_attribute`` is "dn", else with the value of that attribute (Active Directory
   accepts ``userPrincipalName``). An empty password is refused before anything is sent:
   LDAP takes a name with an empty password as an "unauthenticated bind" and says yes;
5. the answer is an ``ExternalIdentity``: the entry's spelling of the name, its
   ``displayName`` (else ``cn``) and ``mail``, and whether CRBM may create the user at
   their first sign-in (``auto_create``).

A server that is down, slow or refuses the service user raises ``AuthUnavailable`` with a
message for the login page; local users sign in all the same. Passwords are never logged.

Settings are the site setting "ldap" (a JSON object, keys as in ``DEFAULTS``), edited by
administrators at ``/admin/ldap`` (linked from the administration page through
``crbm_admin_links``), where "Test connection" tries the service user and base DN before
saving. The stored service password is never shown again.
"""
from __future__ import annotations

import logging
import re
import ssl
from urllib.parse import urlsplit

from ldap3 import BASE, NONE, SUBTREE, Connection, Server, Tls
from ldap3.core.exceptions import LDAPException, LDAPInvalidDnError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import parse_dn
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse
from starlette.routing import Route

from core.kernel.errors import N_, Message
from core.kernel.hookspecs import hookimpl
from core.kernel.users import AuthUnavailable, ExternalIdentity
from core.web.auth import translator
from core.web.pages import page
from core.web.templating import flash

__version__ = "0.1.0"

log = logging.getLogger(__name__)

SETTING = "ldap"
DEFAULTS = {
    "enabled": False,
    "server": "",  # ldap://host[:port] or ldaps://host[:port]
    "base_dn": "",  # where users are searched, e.g. ou=people,dc=example,dc=org
    "bind_attribute": "dn",  # "dn": bind with the entry's DN; else with this attribute's value
    "login_attribute": "uid",  # the attribute holding the name people type (AD: sAMAccountName)
    "service_user": "",  # who searches (a DN, or for AD also user@domain); empty: anonymous
    "service_password": "",
    "auto_create": False,  # create the CRBM user at their first sign-in
}
CONNECT_TIMEOUT = 3  # seconds
RECEIVE_TIMEOUT = 3  # whole seconds (ldap3 needs an int), per answer
TEXT_LIMIT = 500  # characters per text setting

UNREACHABLE = N_("The directory server (LDAP) cannot be reached right now. Try again later, "
                 "or ask an administrator.")
NOT_WORKING = N_("Sign-in through the directory (LDAP) is not working right now. "
                 "Ask an administrator.")
ATTRIBUTE_RE = re.compile(r"^(?:[A-Za-z][A-Za-z0-9-]{0,63}|[0-9]+(?:\.[0-9]+)+)$")


def settings_of(site) -> dict:
    """The site's LDAP settings, every key of ``DEFAULTS`` present."""
    stored = site.settings.get(SETTING)
    config = dict(DEFAULTS)
    if isinstance(stored, dict):
        config.update({key: stored[key] for key in DEFAULTS if key in stored})
    return config


# -- signing in ----------------------------------------------------------------------------

@hookimpl
def crbm_authenticate(site, username, password):
    config = settings_of(site)
    if not config["enabled"]:
        return None
    if settings_problems(config):
        log.error("LDAP sign-in is on but its settings are incomplete or invalid (/admin/ldap)")
        raise AuthUnavailable(NOT_WORKING)
    if not username or not password:  # an empty password would be an unauthenticated bind
        return None
    return directory_login(config, username, password)


def directory_login(config: dict, username: str, password: str) -> ExternalIdentity | None:
    """Search the user as the service user, then bind as them (module docstring)."""
    server = _server(config)
    connections = []
    try:
        service = _connection(server, config["service_user"], config["service_password"])
        connections.append(service)
        if not service.bind():
            log.error("LDAP server %s refused the service user %r: %s", config["server"],
                      config["service_user"] or "(anonymous)", _reason(service))
            raise AuthUnavailable(NOT_WORKING)
        entry = _find_user(service, config, username)
        if entry is None:
            return None
        bind_name = _bind_name(entry, config["bind_attribute"])
        if not bind_name:
            log.warning("LDAP entry %s has no %s to bind with", entry["dn"],
                        config["bind_attribute"])
            return None
        user = _connection(server, bind_name, password)
        connections.append(user)
        if not user.bind():  # wrong password, or an account the directory disabled
            log.info("LDAP refused the password of %s: %s", entry["dn"], _reason(user))
            return None
    except (LDAPException, OSError) as exc:  # cannot connect, timed out, connection dropped
        log.warning("LDAP server %s cannot be reached: %s: %s", config["server"],
                    type(exc).__name__, exc)
        raise AuthUnavailable(UNREACHABLE) from None
    except AuthUnavailable:
        raise
    except Exception:  # a bug in the client library must not become a crash of the login
        log.exception("LDAP sign-in failed unexpectedly (server %s)", config["server"])
        raise AuthUnavailable(NOT_WORKING) from None
    finally:
        for connection in connections:
            _close(connection)
    attributes = entry["attributes"]
    return ExternalIdentity(
        username=_spelling(_values(attributes, config["login_attribute"]), username),
        display_name=_first(attributes, "displayName") or _first(attributes, "cn"),
        email=_first(attributes, "mail"),
        auto_create=bool(config["auto_create"]))


def _server(config: dict) -> Server:
    url = urlsplit(config["server"])
    secure = url.scheme == "ldaps"
    # ldap3 does not check certificates unless told to
    tls = Tls(validate=ssl.CERT_REQUIRED) if secure else None
    return Server(url.hostname, port=url.port or (636 if secure else 389), use_ssl=secure,
                  tls=tls, get_info=NONE, connect_timeout=CONNECT_TIMEOUT)


def _connection(server: Server, user: str, password: str) -> Connection:
    if not user:  # anonymous
        return Connection(server, receive_timeout=RECEIVE_TIMEOUT, auto_referrals=False,
                          read_only=True, raise_exceptions=False)
    return Connection(server, user=user, password=password, receive_timeout=RECEIVE_TIMEOUT,
                      auto_referrals=False, read_only=True, raise_exceptions=False)


def _close(connection: Connection) -> None:
    try:
        connection.unbind()
    except LDAPException:
        pass


def _reason(connection: Connection) -> str:
    result = connection.result or {}
    return " ".join(str(part) for part in (result.get("description"), result.get("message"))
                    if part)


def _find_user(service: Connection, config: dict, username: str) -> dict | None:
    """The one entry whose login attribute is ``username``; None for none or several."""
    attribute, bind_attribute = config["login_attribute"], config["bind_attribute"]
    wanted = {"cn", "displayName", "mail", attribute}
    if bind_attribute != "dn":
        wanted.add(bind_attribute)
    service.search(config["base_dn"], f"({attribute}={escape_filter_chars(username)})",
                   search_scope=SUBTREE, attributes=sorted(wanted), size_limit=2)
    code = (service.result or {}).get("result")
    if code not in (0, 4):  # 4: size limit exceeded, i.e. more than one entry
        log.error("LDAP search in %r failed: %s", config["base_dn"], _reason(service))
        raise AuthUnavailable(NOT_WORKING)
    entries = [r for r in service.response or () if r.get("type") == "searchResEntry"]
    if len(entries) > 1:
        log.warning("LDAP sign-in refused: several entries have %s=%r", attribute, username)
    return entries[0] if len(entries) == 1 else None


def _bind_name(entry: dict, bind_attribute: str) -> str | None:
    if bind_attribute == "dn":
        return entry["dn"]
    return _first(entry["attributes"], bind_attribute)


def _values(attributes, name: str) -> list[str]:
    value = attributes.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values if v not in ("", b"")]


def _first(attributes, name: str) -> str | None:
    values = _values(attributes, name)
    return (values[0].strip() or None) if values else None


def _spelling(values: list[str], typed: str) -> str:
    """The directory's spelling of the typed name (matching ignores letter case)."""
    for value in values:
        if value.lower() == typed.lower():
            return value
    return typed


# -- checking the settings -----------------------------------------------------------------

def settings_problems(values: dict) -> dict[str, str]:
    """Setting -> what is wrong with it (English, marked for translation)."""
    problems = {}
    enabled = bool(values.get("enabled"))
    for key in ("server", "base_dn", "login_attribute"):
        if enabled and not values.get(key):
            problems[key] = N_("Required when LDAP sign-in is on.")
    if values.get("server") and not _valid_server(values["server"]):
        problems["server"] = N_("Give the server as ldap://host or ldaps://host, with an "
                                "optional :port.")
    if values.get("base_dn"):
        try:
            parse_dn(values["base_dn"])
        except LDAPInvalidDnError:
            problems["base_dn"] = N_("This is not a DN (for example ou=people,dc=example,dc=org).")
    if values.get("login_attribute") and not ATTRIBUTE_RE.match(values["login_attribute"]):
        problems["login_attribute"] = N_("This is not an attribute name (for example uid).")
    if values.get("bind_attribute", "dn") != "dn" and not ATTRIBUTE_RE.match(
            values.get("bind_attribute") or ""):
        problems["bind_attribute"] = N_('Give "dn" or an attribute name (for example '
                                        'userPrincipalName).')
    for key in ("server", "base_dn", "login_attribute", "bind_attribute", "service_user",
                "service_password"):
        if len(values.get(key) or "") > TEXT_LIMIT:
            problems[key] = N_("This is too long.")
    return problems


def _valid_server(text: str) -> bool:
    try:
        url = urlsplit(text)
        url.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return False
    return (url.scheme in ("ldap", "ldaps") and bool(url.hostname) and url.path in ("", "/")
            and not url.query and not url.fragment and url.username is None)


def try_connection(config: dict) -> tuple[bool, Message]:
    """Bind as the service user and read the base DN: what an administrator wants to
    know before saving ("Test connection")."""
    server = _server(config)
    connection = _connection(server, config["service_user"], config["service_password"])
    try:
        if not connection.bind():
            return False, Message(N_("The directory refused the service user: %(reason)s"),
                                  reason=_reason(connection))
        connection.search(config["base_dn"], "(objectClass=*)", search_scope=BASE,
                          attributes=["1.1"])
        if (connection.result or {}).get("result") != 0:
            return False, Message(N_("The base DN cannot be read: %(reason)s"),
                                  reason=_reason(connection))
    except (LDAPException, OSError) as exc:
        return False, Message(N_("The directory server cannot be reached: %(reason)s"),
                              reason=str(exc) or type(exc).__name__)
    except Exception as exc:
        log.exception("LDAP connection test failed unexpectedly (server %s)", config["server"])
        return False, Message(N_("The connection test failed: %(reason)s"),
                              reason=type(exc).__name__)
    finally:
        _close(connection)
    return True, Message(N_("The connection works: the service user signed in and the base "
                            "DN was found."))


# -- the administration page ---------------------------------------------------------------

@page()
def admin_ldap(request: Request, form):
    user = request.state.user
    if not user.is_admin:
        raise HTTPException(403, Message(N_("Only administrators can change the LDAP "
                                            "settings.")))
    site = request.app.state.site
    stored = settings_of(site)
    if form is None:  # GET (and HEAD)
        return _render(request, stored, stored)
    values = _from_form(form, stored)
    problems = settings_problems(values)
    if problems:
        tr = translator(request)
        return _render(request, values, stored, status=400,
                       errors={key: tr.gettext(message) for key, message in problems.items()})
    if form.get("action") == "test":
        return _render(request, values, stored, tested=try_connection(values))
    site.set_setting(SETTING, values)
    log.info("LDAP settings changed by %r (sign-in %s)", user.username,
             "on" if values["enabled"] else "off")
    flash(request, N_("The LDAP settings were saved."), "info")
    return RedirectResponse("/admin/ldap", 303)


def _from_form(form, stored: dict) -> dict:
    """Settings from the form. A blank service password keeps the stored one."""
    text = {key: str(form.get(key, "")).strip() for key in
            ("server", "base_dn", "bind_attribute", "login_attribute", "service_user")}
    password = str(form.get("service_password", ""))
    if form.get("forget_password"):
        password = ""
    elif not password:
        password = stored["service_password"]
    return {**text, "bind_attribute": text["bind_attribute"] or "dn",
            "enabled": bool(form.get("enabled")), "auto_create": bool(form.get("auto_create")),
            "service_password": password}


def _render(request: Request, values: dict, stored: dict, status: int = 200, errors=None,
            tested=None):
    shown = {key: value for key, value in values.items() if key != "service_password"}
    response = request.app.state.templates.render(
        request, "admin_ldap.html", status=status, values=shown, errors=errors or {},
        password_stored=bool(stored["service_password"]), tested=tested)
    response.headers["Cache-Control"] = "no-store"
    return response


@hookimpl
def crbm_web_routes(site):
    return [Route("/admin/ldap", admin_ldap, methods=["GET", "POST"])]


@hookimpl
def crbm_admin_links(site):
    return [(N_("LDAP authentication"), "/admin/ldap")]
