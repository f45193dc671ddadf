"""Helpers for API tests: a bearer token for a user, and a TestClient on https (the API
refuses plain http from anywhere but this machine, and the TestClient is not "here").
They are the published test helpers of ``core.testing``, under the names the tests use."""
from __future__ import annotations

from core.testing import API_BASE_URL as BASE_URL
from core.testing import api_client as client
from core.testing import bearer

__all__ = ["BASE_URL", "bearer", "client"]
