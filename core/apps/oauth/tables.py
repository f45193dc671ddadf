"""The OAuth application's tables (``crbm_tables``): its own, not a module's, so the kernel's
schema sync creates them beside the modules' tables on every site where the API runs."""
from __future__ import annotations

import sqlalchemy as sa

from core.kernel.database import ID
from core.kernel.fields import UTCDateTime


def tables(metadata: sa.MetaData) -> None:
    """OAuth2 clients, the keys signing access tokens, authorization codes and issued
    tokens (their ids, so a token can be revoked before it expires)."""
    sa.Table(
        "crbm_api_clients", metadata,
        sa.Column("id", sa.String(64), primary_key=True),  # the OAuth client_id
        sa.Column("name", sa.String(120), nullable=False),
        sa.Column("publisher", sa.String(120)),
        # public: cannot keep a secret (a mobile or browser app): PKCE instead of a secret
        sa.Column("is_public", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("grant_types", sa.String(200), nullable=False),  # space separated
        sa.Column("user_id", ID),  # whom client credentials act as
        sa.Column("redirect_uris", sa.Text),  # one per line
        sa.Column("secret_hash", sa.String(255)),  # argon2; the secret is shown once
        sa.Column("secret_set_at", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", ID),
    )
    sa.Table(
        "crbm_api_keys", metadata,  # RSA key pairs signing access tokens; newest is current
        sa.Column("kid", sa.String(64), primary_key=True),
        sa.Column("private_pem", sa.Text, nullable=False),
        sa.Column("public_pem", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    sa.Table(
        "crbm_oauth_codes", metadata,
        sa.Column("code_hash", sa.String(64), primary_key=True),  # sha256 of the code
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("redirect_uri", sa.Text),
        sa.Column("scope", sa.String(200)),
        sa.Column("code_challenge", sa.String(128)),
        sa.Column("code_challenge_method", sa.String(10)),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
    )
    sa.Table(
        "crbm_oauth_tokens", metadata,
        sa.Column("id", sa.String(64), primary_key=True),  # the access token's jti
        sa.Column("client_id", sa.String(64), nullable=False),
        sa.Column("user_id", ID, nullable=False),
        sa.Column("scope", sa.String(200)),
        sa.Column("refresh_token_hash", sa.String(64), unique=True),  # sha256
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),  # the access token's
        sa.Column("refresh_expires_at", UTCDateTime()),
        sa.Column("revoked_at", UTCDateTime()),
    )
