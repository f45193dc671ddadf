"""Who is calling the API (STUB — the OAuth helper replaces the internals, keeping the
signatures): gate (API enabled, HTTPS), authenticate (bearer / basic / session), rate limit."""
from __future__ import annotations

from dataclasses import dataclass, field

from starlette.requests import Request

from core.api.problems import ApiProblem
from core.records import User


@dataclass(frozen=True)
class Principal:
    user: User  # whom the request acts as (access control applies to them)
    client_id: str | None  # the API client, when a token says so
    via: str  # "bearer", "basic" or "session"
    headers: dict = field(default_factory=dict)  # rate-limit headers for the response


def authenticate(request: Request) -> Principal:
    """Sync (runs in the thread pool). Raises ApiProblem 401/403/429."""
    from core import oauth
    site = request.app.state.site
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = oauth.verify_access_token(request.app, header[7:].strip())
        if principal is not None:
            return principal
    raise ApiProblem(401, "Sign in with an OAuth2 access token",
                     headers={"WWW-Authenticate": 'Bearer realm="crbm"'})
