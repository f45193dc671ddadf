"""Passwords are stored with argon2id at argon2-cffi's recommended cost, and a hash made at
another cost is upgraded at the next sign-in. The rest of the suite hashes cheaply
(tests/conftest.py); this module keeps the production parameters."""
from __future__ import annotations

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher, profiles

from core.kernel.users import authenticate, create_user

pytestmark = pytest.mark.real_hashes

PASSWORD = "correct horse battery"
DEFAULT = profiles.RFC_9106_LOW_MEMORY  # argon2-cffi's PasswordHasher() defaults
PRODUCTION_PREFIX = (f"$argon2id$v=19$m={DEFAULT.memory_cost},t={DEFAULT.time_cost},"
                     f"p={DEFAULT.parallelism}$")


def stored_hash(site, username: str) -> str:
    with site.engine.connect() as conn:
        return conn.execute(sa.text("SELECT password_hash FROM crbm_users WHERE username = :u"),
                            {"u": username}).scalar_one()


def test_a_new_password_is_stored_at_the_recommended_cost(site):
    create_user(site, "dana", PASSWORD)
    assert stored_hash(site, "dana").startswith(PRODUCTION_PREFIX)
    assert PASSWORD not in stored_hash(site, "dana")


def test_a_cheaper_hash_is_upgraded_at_the_next_sign_in(site):
    dana = create_user(site, "dana", PASSWORD)
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    with site.engine.begin() as conn:
        conn.execute(sa.text("UPDATE crbm_users SET password_hash = :h WHERE id = :id"),
                     {"h": cheap, "id": dana.id})
    assert authenticate(site, "dana", PASSWORD) is not None
    assert stored_hash(site, "dana").startswith(PRODUCTION_PREFIX)
