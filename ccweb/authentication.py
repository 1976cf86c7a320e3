"""JWT authentication that verifies each access token once per process.

A client sends the same access token with every request for the token's
whole life, and checking its HMAC signature and claims costs more CPU than
anything else on the read paths. The outcome of that check depends only
on the token's bytes and the clock, so a worker keeps the tokens it has
accepted, keyed by their exact bytes, and on later requests checks only
that the token has not expired since. A tampered token has other bytes and
is verified in full; a refused token is never remembered.

What this does not change: access tokens are not revocable here either
(simplejwt blacklists refresh tokens only), and a new JWT_SECRET means new
processes, which start with an empty memory.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.drainage import set_override
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.tokens import Token

# Enough for every client a worker sees within a token's lifetime on a
# busy node; an entry is about 1 KiB.
VERIFIED_TOKENS_MAX = 4_096


class VerifiedTokens:
    """A bounded, thread-safe memory of accepted tokens, oldest evicted first."""

    def __init__(self, capacity: int = VERIFIED_TOKENS_MAX) -> None:
        self.capacity = capacity
        self._tokens: OrderedDict[bytes, tuple[float, Token]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, raw_token: bytes, now: float) -> Token | None:
        entry = self._tokens.get(raw_token)
        if entry is None:
            return None
        expires_at, token = entry
        if expires_at <= now:
            with self._lock:
                self._tokens.pop(raw_token, None)
            return None
        return token

    def remember(self, raw_token: bytes, token: Token) -> None:
        expires_at = token.payload.get("exp")
        if not isinstance(expires_at, int | float):
            return
        leeway = token.get_token_backend().get_leeway().total_seconds()
        with self._lock:
            self._tokens[raw_token] = (expires_at + leeway, token)
            while len(self._tokens) > self.capacity:
                self._tokens.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()

    def __len__(self) -> int:
        return len(self._tokens)


verified_tokens = VerifiedTokens()


class CachedJWTAuthentication(JWTAuthentication):
    """simplejwt's JWTAuthentication, with the token check remembered."""

    def get_validated_token(self, raw_token: bytes) -> Token:
        token = verified_tokens.get(raw_token, time.time())
        if token is not None:
            return token

        token = super().get_validated_token(raw_token)
        verified_tokens.remember(raw_token, token)
        return token


class CachedJWTScheme(SimpleJWTScheme):
    """The same bearer scheme in the OpenAPI document."""

    target_class = "ccweb.authentication.CachedJWTAuthentication"


# Every JWT class publishes the one "jwtAuth" scheme on purpose: same token.
set_override(CachedJWTAuthentication, "suppress_collision_warning", True)
