"""OAuth2 (STUB — the OAuth helper replaces this with authlib, keeping the signatures)."""
from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer


def _signer(site):
    return URLSafeTimedSerializer(site.config["secret_key"], salt="stub-api-token")


def issue_access_token(site, user_id: str, client_id: str = "test", scope: str = "") -> dict:
    """Issue a token for a user directly (tests, the CLI), as a token endpoint would."""
    return {"access_token": _signer(site).dumps([user_id, client_id]), "token_type": "Bearer",
            "expires_in": 3600}


def verify_access_token(app, token: str):
    """The Principal a bearer token stands for, or None."""
    from core.api.auth import Principal
    from core.web.pages import load_user_by_id
    try:
        user_id, client_id = _signer(app.state.site).loads(token, max_age=3600)
    except BadSignature:
        return None
    user = load_user_by_id(app, user_id)
    return Principal(user, client_id, "bearer") if user else None
