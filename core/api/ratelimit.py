"""Rate limits for the API: requests per minute per user, and per API client.

A request counts once against its user's limit and once against its client's (when the
request has a client); if either limit is used up, nothing is counted and the answer is
429 with Retry-After (seconds until one more request is allowed). The limits are sliding
windows of one minute, counted in the database by ``core.web.throttle`` so that every worker
process shares them: a request reads the counts (a bearer request along with its token,
in the same query; basic and session requests with one small SELECT) and the hits are
written in batches, so most requests write nothing. The bound that batching costs
(a few requests per extra worker) is in ``core.web.throttle`` and docs/security.md.
"""
from __future__ import annotations

import sqlalchemy as sa

from core.api.problems import ApiProblem
from core.web import throttle

WINDOW = 60  # seconds: limits are per minute
# the counts a bearer request reads along with its token (core.apps.oauth.oauth.check_bearer):
# (column label, whose, 0: the current window / 1: the previous one)
COLUMNS = (("rl_user_now", "user", 0), ("rl_user_before", "user", 1),
           ("rl_client_now", "client", 0), ("rl_client_before", "client", 1))


def _rule(whose: str, limit: int = 0) -> throttle.Rule:
    return throttle.Rule(f"api-{whose}", limit, WINDOW)


def count_columns(counters: sa.Table) -> list:
    """The columns that bring this request's counts along in another query."""
    return [throttle.hits_column(counters, f"{name}_key", f"{name}_start", name)
            for name, _, _ in COLUMNS]


def count_params(user_id: str, client_id: str | None, at: float) -> dict:
    """The bound values of ``count_columns`` for this user and client at ``at``."""
    keys = {"user": _rule("user").key(user_id), "client": _rule("client").key(client_id or "")}
    starts = throttle.windows(_rule("user"), at)
    params = {}
    for name, whose, which in COLUMNS:
        params[f"{name}_key"], params[f"{name}_start"] = keys[whose], starts[which]
    return params


def counts_of(row, params: dict) -> dict[tuple[str, int], int]:
    """The counts ``count_columns`` read, as ``throttle.Counters.take`` wants them."""
    return {(params[f"{name}_key"], params[f"{name}_start"]): row._mapping[name] or 0
            for name, _, _ in COLUMNS}


def check(app, settings: dict, user_id: str, client_id: str | None,
          counted: tuple[float, dict] | None = None) -> dict[str, str]:
    """Count one API request of this user (and client); its headers (of the tighter
    limit), or ApiProblem 429. A limit of 0 or less: no limit. ``counted``: (when, the
    counts) read with the token (``count_columns``); else they are read here."""
    rules = [(_rule("user", settings["api_rate_limit_user"]), user_id)]
    if client_id:
        rules.append((_rule("client", settings["api_rate_limit_client"]), client_id))
    at, stored = counted if counted is not None else (None, None)
    verdicts = throttle.counters(app.state.site).take(rules, at=at, stored=stored)
    if not verdicts:
        return {}
    refused = [verdict for verdict in verdicts if not verdict.allowed]
    if refused:
        wait = max(verdict.retry_after for verdict in refused)
        limit = min(verdict.limit for verdict in refused)
        raise ApiProblem(429, f"Too many requests: at most {limit} a minute. "
                              f"Try again in {wait} seconds.",
                         headers={"Retry-After": str(wait), "X-RateLimit-Limit": str(limit),
                                  "X-RateLimit-Remaining": "0"})
    tightest = min(verdicts, key=lambda verdict: verdict.remaining)
    return {"X-RateLimit-Limit": str(tightest.limit),
            "X-RateLimit-Remaining": str(max(0, tightest.remaining))}
