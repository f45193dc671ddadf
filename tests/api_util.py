"""Helpers for API tests: a bearer token for a user, and a TestClient on https (the API
refuses plain http from anywhere but this machine, and the TestClient is not "here")."""
from __future__ import annotations

from starlette.testclient import TestClient

from core.apps.oauth import oauth
from core.web.app import create_app

BASE_URL = "https://testserver"


def bearer(site, user) -> dict:
    """``{"Authorization": "Bearer ..."}`` for ``user``, as the token endpoint would issue."""
    token = oauth.issue_access_token(site, user.id)["access_token"]
    return {"Authorization": f"Bearer {token}"}


def client(site) -> TestClient:
    return TestClient(create_app(site), base_url=BASE_URL, raise_server_exceptions=False)
