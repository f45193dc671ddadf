"""Administration of the API (1CRM guide 7.11): its settings and signing keys, and the
API clients.

- ``/admin/api``: switch the API off, allow plain http://, basic and session
  authentication, the access token lifetime, the rate limits; the public key (the
  private key is never shown) and "Regenerate keys" (a confirmation page first).
- ``/admin/api/clients``: the clients; create and edit one; set or rotate a private
  client's secret, shown once on the answer page and stored as a hash only.

Administrators only (403 for everyone else, before anything is looked up). A refused
form comes back with the errors at their fields (422), having saved nothing.
"""
from __future__ import annotations

from starlette.requests import Request
from starlette.routing import Route

from core.apps.admin.web import _admin_only, _checked, _redirect, _render
from core.apps.oauth import oauth, oauth_clients
from core.kernel.errors import N_, Message
from core.web.pages import page
from core.web.templating import flash

# the switches, in the order of the guide's screen: label, hint
SWITCHES = {
    "api_enabled": (N_("Enable the REST API"),
                    N_("Off: every API request is refused, and no token is issued.")),
    "api_allow_http": (N_("Allow API calls over insecure connections (http://)"),
                       N_("Off: only https:// (and this machine itself) may use the API.")),
    "api_basic_auth": (N_("Enable basic authentication"),
                       N_("Programs may send a user name and password with every request "
                          "instead of an OAuth token. Keep it off unless a program of your "
                          "own needs it.")),
    "api_session_auth": (N_("Enable session authentication"),
                         N_("Pages embedded in CRBM may call the API with the signed-in "
                            "user's session (changes need the page's CSRF token).")),
}
# the numbers: label, hint, lowest, highest
NUMBERS = {
    "api_token_minutes": (N_("Access token lifetime (minutes)"),
                          N_("Clients renew their token with their refresh token "
                             "(good for %(days)d days)."), 1, 1440),
    "api_rate_limit_user": (N_("Requests per minute per user"),
                            N_("0: no limit. Counted over all server processes together."),
                            0, 1_000_000),
    "api_rate_limit_client": (N_("Requests per minute per API client"),
                              N_("0: no limit. Counted over all server processes together."),
                              0, 1_000_000),
}
assert set(SWITCHES) | set(NUMBERS) == set(oauth.SETTINGS)
NOT_A_NUMBER = N_("Enter a whole number from %(low)d to %(high)d.")
GRANT_LABELS = {"authorization_code": N_("Authorization code (a user signs in)"),
                "client_credentials": N_("Client credentials (acts as the chosen user)"),
                "refresh_token": N_("Refresh token")}
assert set(GRANT_LABELS) == set(oauth_clients.GRANT_TYPES)


def _site(request: Request):
    return request.app.state.site


# -- settings and keys ----------------------------------------------------------------------

def _settings_page(request: Request, values: dict, errors: dict, status: int = 200):
    return _render(request, "admin_api.html", status=status, values=values, errors=errors,
                   switches=SWITCHES, numbers=NUMBERS, defaults=oauth.SETTINGS,
                   refresh_days=oauth.REFRESH_DAYS, keys=_keys(_site(request)))


def _keys(site) -> list[dict]:
    oauth.ensure_keys(site)  # made at install; a site synced before this gets one now
    return oauth.key_list(site)


@page()
def settings(request: Request, form):
    _admin_only(request)
    site = _site(request)
    if form is None:
        return _settings_page(request, oauth.stored_settings(site), {})
    values: dict = {key: _checked(form, key) for key in SWITCHES}
    errors: dict = {}
    for key, (_label, _hint, low, high) in NUMBERS.items():
        raw = str(form.get(key, "")).strip()
        values[key] = raw
        if not (raw.isdigit() and low <= int(raw) <= high):
            errors[key] = Message(NOT_A_NUMBER, low=low, high=high)
        else:
            values[key] = int(raw)
    if errors:
        return _settings_page(request, values, errors, status=422)
    for key, value in values.items():
        site.set_setting(key, value)
    flash(request, N_("The API settings were saved."))
    return _redirect("/admin/api")


@page()
def regenerate_keys(request: Request, form):
    _admin_only(request)
    if form is None:  # the confirmation
        return _render(request, "admin_api_keys.html")
    oauth.regenerate_keys(_site(request))
    flash(request, N_("New keys were made. Tokens signed with the old key no longer work; "
                      "clients get new ones with their refresh token."))
    return _redirect("/admin/api")


# -- clients --------------------------------------------------------------------------------

@page()
def client_list(request: Request, form):
    _admin_only(request)
    return _render(request, "admin_api_clients.html",
                   clients=oauth_clients.list_clients(_site(request)),
                   grant_labels=GRANT_LABELS)


def _form_values(form) -> dict:
    return {"name": form.get("name"), "publisher": form.get("publisher"),
            "is_public": _checked(form, "is_public"), "enabled": _checked(form, "enabled"),
            "grant_types": form.getlist("grant_types"), "user_id": form.get("user_id"),
            "redirect_uris": form.get("redirect_uris")}


def _client_page(request: Request, values: dict, errors: dict, client=None, status=200):
    return _render(request, "admin_api_client.html", status=status, values=values,
                   errors=errors, client=client, grant_labels=GRANT_LABELS,
                   people=oauth_clients.active_users(_site(request)))


def _values_of(client) -> dict:
    return {"name": client.name, "publisher": client.publisher, "is_public": client.is_public,
            "enabled": client.enabled, "grant_types": list(client.grant_types),
            "user_id": client.user_id, "redirect_uris": "\n".join(client.redirect_uris)}


def _raw(values: dict, form) -> dict:
    """What the form showed, as sent (a refused form keeps the typing)."""
    return {**values, "redirect_uris": str(form.get("redirect_uris") or "")}


@page()
def client_new(request: Request, form):
    user = _admin_only(request)
    if form is None:
        return _client_page(request, {"enabled": True,
                                      "grant_types": ["authorization_code", "refresh_token"]},
                            {})
    site = _site(request)
    values, errors = oauth_clients.check_values(site, _form_values(form))
    if errors:
        return _client_page(request, _raw(values, form), errors, status=422)
    client = oauth_clients.create_client(site, values, created_by=user.id)
    secret = None if client.is_public else oauth_clients.set_secret(site, client.id)
    return _render(request, "admin_api_secret.html", client=client, secret=secret, new=True)


@page()
def client_detail(request: Request, form):
    _admin_only(request)
    site = _site(request)
    client = oauth_clients.get_client(site, request.path_params["id"])
    if client is None:
        return _render(request, "error.html", status=404, status_code=404,
                       message=Message(N_("No such API client.")))
    if form is None:
        return _client_page(request, _values_of(client), {}, client)
    values, errors = oauth_clients.check_values(site, _form_values(form))
    if errors:
        return _client_page(request, _raw(values, form), errors, client, status=422)
    oauth_clients.update_client(site, client.id, values)
    flash(request, Message(N_("API client %(name)s was saved."), name=values["name"]))
    return _redirect(f"/admin/api/clients/{client.id}")


@page()
def client_secret(request: Request, form):
    _admin_only(request)
    site = _site(request)
    client = oauth_clients.get_client(site, request.path_params["id"])
    if client is None or client.is_public:
        return _render(request, "error.html", status=404, status_code=404,
                       message=Message(N_("No such private API client.")))
    secret = oauth_clients.set_secret(site, client.id)
    return _render(request, "admin_api_secret.html", client=client, secret=secret, new=False)


routes = [
    Route("/admin/api", settings, methods=["GET", "POST"]),
    Route("/admin/api/keys", regenerate_keys, methods=["GET", "POST"]),
    Route("/admin/api/clients", client_list),
    Route("/admin/api/clients/new", client_new, methods=["GET", "POST"]),
    Route("/admin/api/clients/{id}", client_detail, methods=["GET", "POST"]),
    Route("/admin/api/clients/{id}/secret", client_secret, methods=["POST"]),
]
