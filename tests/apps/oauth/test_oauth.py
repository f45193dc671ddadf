"""OAuth2 end to end with a real HTTP client (httpx) against the site served by uvicorn:
sign in, consent, the authorization code with PKCE, tokens used on the API, refresh
token rotation, key regeneration, revocation, client credentials acting as their user,
expired tokens, disabled clients and users, and the API switched off."""
import base64
import hashlib
import json
import re
import secrets
import socket
import threading
import time
from contextlib import contextmanager
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import sqlalchemy as sa
import uvicorn
from joserfc import jwt
from joserfc.jwk import KeySet
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.api.auth import authenticate
from core.api.problems import ApiProblem
from core.apps.oauth import oauth, oauth_clients
from core.kernel import users
from core.kernel.users import create_user
from core.web.app import create_app

PASSWORD = "correct horse battery"
REDIRECT = "https://app.example/callback"


pytestmark = pytest.mark.usefixtures("quick_hashes")  # conftest: cheap argon2, many sign-ins


async def whoami(request):
    """A route that calls authenticate() as every API endpoint does."""
    try:
        principal = await run_in_threadpool(authenticate, request)
    except ApiProblem as problem:
        return problem.response()
    return JSONResponse({"user": principal.user.username, "client_id": principal.client_id,
                         "via": principal.via}, headers=principal.headers)


def app_for(site):
    app = create_app(site)
    app.router.routes.insert(0, Route("/api/v1/_whoami", whoami, methods=["GET", "POST"]))
    return app


@contextmanager
def live(app):
    """``app`` served by uvicorn on 127.0.0.1 and a free port; yields the base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
            time.sleep(0.02)  # polling a starting server
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


def make_client(site, name, grants, *, public=False, user_id=None, redirect=REDIRECT,
                enabled=True):
    values, errors = oauth_clients.check_values(site, {
        "name": name, "publisher": "Example Corp", "is_public": public, "enabled": enabled,
        "grant_types": grants, "user_id": user_id, "redirect_uris": redirect})
    assert not errors, errors
    client = oauth_clients.create_client(site, values)
    return client, (None if public else oauth_clients.set_secret(site, client.id))


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def text_of(response) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", response.text).split())


def sign_in(http: httpx.Client, username: str, next_url: str) -> httpx.Response:
    login = http.get("/login", params={"next": next_url})
    csrf = re.search(r'name="_csrf" value="([^"]+)"', login.text).group(1)
    return http.post("/login", data={"_csrf": csrf, "username": username,
                                      "password": PASSWORD, "next": next_url})


def consent(http: httpx.Client, client_id: str, challenge: str | None, *,
            decision: str = "allow", state: str = "s-1") -> httpx.Response:
    """Open the consent page and press Allow or Deny; the redirect."""
    params = {"response_type": "code", "client_id": client_id, "redirect_uri": REDIRECT,
              "state": state}
    if challenge:
        params.update(code_challenge=challenge, code_challenge_method="S256")
    page = http.get("/oauth/authorize", params=params)
    assert page.status_code == 200, page.text[:300]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">',
                             page.text))
    return http.post("/oauth/authorize", data={**fields, "decision": decision})


def code_of(response: httpx.Response, state: str = "s-1") -> str:
    assert response.status_code == 303, response.text[:300]
    location = response.headers["location"]
    assert location.startswith(REDIRECT + "?")
    query = parse_qs(urlsplit(location).query)
    assert query["state"] == [state]
    return query["code"][0]


def claims_of(token: str) -> tuple[dict, dict]:
    head, body = (json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
                  for part in token.split(".")[:2])
    return head, body


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_authorization_code_with_pkce_refresh_regenerate_and_revoke(site, admin):
    public, _ = make_client(site, "Pocket CRM", ["authorization_code", "refresh_token"],
                            public=True)
    private, secret = make_client(site, "Back office", ["authorization_code"])
    with live(app_for(site)) as base, httpx.Client(base_url=base) as http:
        verifier, challenge = pkce_pair()
        target = "/oauth/authorize?" + urlencode({
            "response_type": "code", "client_id": public.id, "redirect_uri": REDIRECT,
            "state": "s-1", "code_challenge": challenge, "code_challenge_method": "S256"})
        signed_out = http.get(target)
        assert signed_out.status_code == 303 and signed_out.headers["location"].startswith(
            "/login?next=")
        assert sign_in(http, "admin", target).headers["location"] == target

        page = http.get(target)
        assert page.status_code == 200
        assert "Pocket CRM by Example Corp wants to use CRBM as you (admin)." in text_of(page)
        assert "form-action 'self' https://app.example;" in page.headers[
            "content-security-policy"]

        # never a redirect to an address the client did not register
        for bad in ({"client_id": "no-such-client"}, {"redirect_uri": "https://evil.example/"}):
            refused = http.get("/oauth/authorize", params={
                "response_type": "code", "client_id": public.id, "redirect_uri": REDIRECT,
                "code_challenge": challenge, "code_challenge_method": "S256", **bad})
            assert refused.status_code == 400 and "location" not in refused.headers
            assert "Sign-in request refused" in refused.text
        # a public client without PKCE: the error goes back to the client
        no_pkce = http.get("/oauth/authorize", params={
            "response_type": "code", "client_id": public.id, "redirect_uri": REDIRECT,
            "state": "s-2"})
        assert no_pkce.status_code == 303
        assert parse_qs(urlsplit(no_pkce.headers["location"]).query)["error"] == [
            "invalid_request"]

        denied = consent(http, public.id, challenge, decision="deny")
        assert denied.status_code == 303
        answer = parse_qs(urlsplit(denied.headers["location"]).query)
        assert answer["error"] == ["access_denied"] and answer["state"] == ["s-1"]
        assert "code" not in answer

        # a wrong verifier is refused, and uses the code up
        code = code_of(consent(http, public.id, challenge))
        exchange = {"grant_type": "authorization_code", "client_id": public.id,
                    "redirect_uri": REDIRECT, "code": code}
        wrong = http.post("/oauth/token", data={**exchange,
                                                 "code_verifier": pkce_pair()[0]})
        assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
        assert http.post("/oauth/token", data={**exchange, "code_verifier": verifier}
                         ).json()["error"] == "invalid_grant"

        code = code_of(consent(http, public.id, challenge))
        started = time.time()
        granted = http.post("/oauth/token", data={**exchange, "code": code,
                                                   "code_verifier": verifier})
        assert granted.status_code == 200, granted.text
        assert granted.headers["cache-control"] == "no-store"
        tokens = granted.json()
        assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
        assert tokens["scope"] == "api" and tokens["refresh_token"]
        head, claims = claims_of(tokens["access_token"])
        assert head["alg"] == "RS256" and head["typ"] == "at+jwt" and head["kid"]
        assert claims["sub"] == admin.id and claims["client_id"] == public.id
        assert claims["iss"] == "urn:crbm" and claims["aud"] == "urn:crbm:api"
        assert claims["scope"] == "api" and claims["exp"] - claims["iat"] == 3600
        assert abs(claims["iat"] - started) < 60 and len(claims["jti"]) == 32
        # the code works once
        again = http.post("/oauth/token", data={**exchange, "code": code,
                                                 "code_verifier": verifier})
        assert again.json()["error"] == "invalid_grant"
        # anyone may check the signature with the published keys
        keys = KeySet.import_key_set(http.get("/oauth/jwks.json").json())
        assert jwt.decode(tokens["access_token"], keys).claims["jti"] == claims["jti"]
        assert "PRIVATE" not in http.get("/oauth/jwks.json").text

        api = httpx.Client(base_url=base)  # no cookies: the token alone
        me = api.get("/api/v1/_whoami", headers=bearer(tokens["access_token"]))
        assert me.json() == {"user": "admin", "client_id": public.id, "via": "bearer"}
        assert me.headers["x-ratelimit-limit"] == "600"
        listed = api.get("/api/v1/accounts", params={"limit": 1},
                         headers=bearer(tokens["access_token"]))
        assert listed.status_code == 200, listed.text[:300]
        assert api.get("/api/v1/accounts").status_code == 401

        # refresh: a new pair; the old refresh token (and its access token) are spent
        refreshed = http.post("/oauth/token", data={
            "grant_type": "refresh_token", "client_id": public.id,
            "refresh_token": tokens["refresh_token"]})
        assert refreshed.status_code == 200, refreshed.text
        fresh = refreshed.json()
        assert fresh["refresh_token"] != tokens["refresh_token"]
        assert api.get("/api/v1/_whoami", headers=bearer(fresh["access_token"])
                       ).json()["user"] == "admin"
        assert api.get("/api/v1/_whoami", headers=bearer(tokens["access_token"])
                       ).status_code == 401
        reused = http.post("/oauth/token", data={
            "grant_type": "refresh_token", "client_id": public.id,
            "refresh_token": tokens["refresh_token"]})
        assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"

        # new keys: the access token signed with the old one stops; refreshing still works
        old_kid = claims_of(fresh["access_token"])[0]["kid"]
        oauth.regenerate_keys(site)
        stale = api.get("/api/v1/_whoami", headers=bearer(fresh["access_token"]))
        assert stale.status_code == 401
        assert 'error="invalid_token"' in stale.headers["www-authenticate"]
        renewed = http.post("/oauth/token", data={
            "grant_type": "refresh_token", "client_id": public.id,
            "refresh_token": fresh["refresh_token"]}).json()
        assert claims_of(renewed["access_token"])[0]["kid"] != old_kid
        assert api.get("/api/v1/_whoami", headers=bearer(renewed["access_token"])
                       ).status_code == 200

        # revocation (RFC 7009): the access token, and with it its refresh token
        assert http.post("/oauth/revoke", data={"client_id": public.id,
                                                "token": renewed["access_token"]}
                         ).status_code == 200
        assert api.get("/api/v1/_whoami", headers=bearer(renewed["access_token"])
                       ).status_code == 401
        assert http.post("/oauth/token", data={
            "grant_type": "refresh_token", "client_id": public.id,
            "refresh_token": renewed["refresh_token"]}).json()["error"] == "invalid_grant"
        # unknown tokens: 200 all the same (RFC 7009)
        assert http.post("/oauth/revoke", data={"client_id": public.id,
                                                "token": "nonsense"}).status_code == 200

        # a private client must authenticate; PKCE is optional for it
        code = code_of(consent(http, private.id, None))
        exchange = {"grant_type": "authorization_code", "redirect_uri": REDIRECT,
                    "code": code}
        anonymous = http.post("/oauth/token", data={**exchange, "client_id": private.id})
        assert anonymous.status_code == 401 and anonymous.json()["error"] == "invalid_client"
        code = code_of(consent(http, private.id, None))
        granted = http.post("/oauth/token", data={**exchange, "code": code},
                            auth=(private.id, secret))
        assert granted.status_code == 200 and "refresh_token" not in granted.json()


def test_client_credentials_expiry_disabling_and_switches(site, admin):
    bob = create_user(site, "bob", PASSWORD)
    client, secret = make_client(site, "Nightly sync", ["client_credentials"], user_id=bob.id)
    with live(app_for(site)) as base, httpx.Client(base_url=base) as http:
        granted = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                            auth=(client.id, secret))
        assert granted.status_code == 200, granted.text
        token = granted.json()["access_token"]
        assert "refresh_token" not in granted.json()
        assert claims_of(token)[1]["sub"] == bob.id
        me = http.get("/api/v1/_whoami", headers=bearer(token))
        assert me.json() == {"user": "bob", "client_id": client.id, "via": "bearer"}
        # the secret in the form body works too; a wrong one does not
        assert http.post("/oauth/token", data={
            "grant_type": "client_credentials", "client_id": client.id,
            "client_secret": secret}).status_code == 200
        wrong = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                          auth=(client.id, secret + "x"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid_client"
        # only the hash is stored
        table = site.tables.tables["crbm_api_clients"]
        with site.engine.connect() as conn:
            row = conn.execute(sa.select(table).where(table.c.id == client.id)).one()
        assert row.secret_hash.startswith("$argon2") and secret not in str(tuple(row))
        # JSON bodies are understood; a grant the client does not have is refused
        as_json = http.post("/oauth/token", json={"grant_type": "authorization_code",
                                                  "code": "x", "client_id": client.id,
                                                  "client_secret": secret})
        assert as_json.json()["error"] == "unauthorized_client"
        assert http.post("/oauth/token", content=b"\xff", headers={
            "content-type": "text/plain"}).json()["error"] == "invalid_request"

        # expired tokens are refused
        expired = oauth.issue_access_token(site, bob.id, client.id, lifetime=-5)
        assert http.get("/api/v1/_whoami", headers=bearer(expired["access_token"])
                        ).status_code == 401

        # an inactive user: tokens refused, none issued
        users.set_active(site, "bob", False)
        assert http.get("/api/v1/_whoami", headers=bearer(token)).status_code == 401
        inactive = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(client.id, secret))
        assert inactive.json()["error"] == "unauthorized_client"
        users.set_active(site, "bob", True)
        assert http.get("/api/v1/_whoami", headers=bearer(token)).status_code == 200

        # a disabled client: its tokens are refused, and it gets none
        values = {**oauth_clients.check_values(site, {
            "name": "Nightly sync", "grant_types": ["client_credentials"],
            "user_id": bob.id})[0], "enabled": False}
        oauth_clients.update_client(site, client.id, values)
        assert http.get("/api/v1/_whoami", headers=bearer(token)).status_code == 401
        disabled = http.post("/oauth/token", data={"grant_type": "client_credentials"},
                             auth=(client.id, secret))
        assert disabled.status_code == 401 and disabled.json()["error"] == "invalid_client"
        oauth_clients.update_client(site, client.id, {**values, "enabled": True})
        assert http.get("/api/v1/_whoami", headers=bearer(token)).status_code == 200

        # the API switched off: the API and the token endpoint say so
        site.set_setting("api_enabled", False)
        off = http.get("/api/v1/_whoami", headers=bearer(token))
        assert off.status_code == 403
        assert off.headers["content-type"] == "application/problem+json"
        assert off.json()["detail"] == "The API is disabled on this site."
        assert http.post("/oauth/token", data={"grant_type": "client_credentials"},
                         auth=(client.id, secret)).status_code == 403
