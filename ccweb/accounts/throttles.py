"""Per-client rate limits on the auth and invite endpoints.

DRF's own SimpleRateThrottle reads a list of timestamps from the cache and
writes it back; concurrent requests all read the same list, so a client
that sends its guesses in parallel is barely slowed down. These throttles
count hits in a fixed window with the cache's atomic `incr` instead (a
Redis INCR when REDIS_URL is set): however many requests arrive at once,
exactly `num_requests` per window get through. The price is the usual one
of fixed windows: a client can spend two windows' worth around a boundary.

Clients are told apart by address (`NUM_PROXIES` in REST_FRAMEWORK says
how many trusted proxies sit in front; 0 means REMOTE_ADDR only, so a
forged X-Forwarded-For opens no new bucket).

When the cache is unreachable the throttle lets the request through,
counts it in `ccweb_throttle_degraded_total` and logs a warning at most
once a minute: a Redis outage must not lock every user out of login.
"""

from __future__ import annotations

import logging
import math
import time

from django_redis.exceptions import ConnectionInterrupted
from prometheus_client import Counter
from redis.exceptions import RedisError
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

logger = logging.getLogger(__name__)

THROTTLE_DEGRADED = Counter(
    "ccweb_throttle_degraded_total",
    "Requests let through unthrottled because the cache was unreachable.",
    ["scope"],
)
CACHE_ERRORS = (ConnectionInterrupted, RedisError, ConnectionError, TimeoutError)
_WARNING_INTERVAL_SECONDS = 60.0
_last_warning_at = 0.0


def _warn_degraded(scope: str, exc: Exception) -> None:
    global _last_warning_at

    now = time.monotonic()
    if now - _last_warning_at < _WARNING_INTERVAL_SECONDS:
        return
    _last_warning_at = now
    logger.warning(
        "throttle %s not enforced: the cache is unreachable (%s); check REDIS_URL",
        scope,
        exc,
    )


class ClientRateThrottle(SimpleRateThrottle):
    """A fixed-window, per-address counter; subclasses set `scope`."""

    cache_format = "throttle:%(scope)s:%(ident)s"

    def get_rate(self) -> str | None:
        # DRF freezes THROTTLE_RATES at import; reading the settings here
        # lets an operator's (or a test's) override apply at once.
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError:
            return super().get_rate()

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {
            "scope": self.scope,
            "ident": self.get_ident(request),
        }

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True

        self.now = self.timer()
        window = int(self.now // self.duration)
        self.window_ends_at = (window + 1) * self.duration
        key = f"{self.get_cache_key(request, view)}:{window}"
        # The key outlives its window a little, so a slow request never
        # recreates a counter that has just been read.
        timeout = math.ceil(self.window_ends_at - self.now) + 1

        try:
            hits = self._count_hit(key, timeout)
        except CACHE_ERRORS as exc:
            THROTTLE_DEGRADED.labels(scope=self.scope).inc()
            _warn_degraded(self.scope, exc)
            return True
        return hits <= self.num_requests

    def _count_hit(self, key: str, timeout: int) -> int:
        self.cache.add(key, 0, timeout)
        try:
            return self.cache.incr(key)
        except ValueError:
            # The counter expired between add and incr: this hit opens it.
            self.cache.set(key, 1, timeout)
            return 1

    def wait(self) -> float:
        return max(1.0, self.window_ends_at - self.timer())


class AuthRateThrottle(ClientRateThrottle):
    """Signup, token, refresh and logout: slows down password guessing."""

    scope = "auth"


class InviteRateThrottle(ClientRateThrottle):
    """Invite code checks: slows down guessing codes."""

    scope = "invite"
