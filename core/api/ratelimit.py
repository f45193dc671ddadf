"""Rate limits for the API: requests per minute per user, and per API client.

A token bucket per user and per client: it holds up to ``limit`` requests and refills at
``limit`` per minute, so a client may burst up to its limit and then goes at the
sustained rate. A request takes one token from the user's bucket and one from its
client's (when the request has a client); if either is empty, nothing is taken and the
answer is 429 with Retry-After (seconds until a token is back).

The buckets live in this process: each worker process counts on its own, so with N
workers a user may get up to N times the limit. (Counting across workers would cost a
database round trip per request.) ``clock`` is the one source of time; tests replace it.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from core.api.problems import ApiProblem

WINDOW = 60.0  # seconds: limits are per minute


def clock() -> float:
    return time.monotonic()


@dataclass
class _Bucket:
    tokens: float
    stamp: float


class RateLimiter:
    """Thread-safe buckets keyed by ("user", id) and ("client", id)."""

    def __init__(self):
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._lock = threading.Lock()

    def _refilled(self, key: tuple[str, str], limit: int, at: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(float(limit), at)
        else:
            bucket.tokens = min(float(limit), bucket.tokens + (at - bucket.stamp) * limit / WINDOW)
            bucket.stamp = at
        return bucket

    def hit(self, limits: list[tuple[tuple[str, str], int]]) -> dict[str, str]:
        """Take one request from each (key, per-minute limit); the rate-limit headers
        (of the tightest bucket), or ApiProblem 429. A limit of 0 or less: no limit."""
        limits = [(key, limit) for key, limit in limits if limit > 0]
        if not limits:
            return {}
        at = clock()
        with self._lock:
            buckets = [(self._refilled(key, limit, at), limit) for key, limit in limits]
            empty = [(bucket, limit) for bucket, limit in buckets if bucket.tokens < 1]
            if empty:
                wait = max((1 - bucket.tokens) * WINDOW / limit for bucket, limit in empty)
                limit = min(limit for _, limit in empty)
                raise ApiProblem(429, f"Too many requests: at most {limit} a minute. "
                                      f"Try again in {math.ceil(wait)} seconds.",
                                 headers={"Retry-After": str(max(1, math.ceil(wait))),
                                          "X-RateLimit-Limit": str(limit),
                                          "X-RateLimit-Remaining": "0"})
            for bucket, _ in buckets:
                bucket.tokens -= 1
            tightest, limit = min(buckets, key=lambda pair: pair[0].tokens)
            return {"X-RateLimit-Limit": str(limit),
                    "X-RateLimit-Remaining": str(int(tightest.tokens))}


_limiters_lock = threading.Lock()


def limiter_for(app) -> RateLimiter:
    """The application's limiter (one per app, made on first use)."""
    limiter = getattr(app.state, "rate_limiter", None)
    if limiter is None:
        with _limiters_lock:
            limiter = getattr(app.state, "rate_limiter", None)
            if limiter is None:
                limiter = app.state.rate_limiter = RateLimiter()
    return limiter


def check(app, settings: dict, user_id: str, client_id: str | None) -> dict[str, str]:
    """Count one API request of this user (and client); its headers, or 429."""
    limits = [(("user", user_id), settings["api_rate_limit_user"])]
    if client_id:
        limits.append((("client", client_id), settings["api_rate_limit_client"]))
    return limiter_for(app).hit(limits)
