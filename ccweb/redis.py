"""The raw Redis connection behind the cache, for keys that are not cache keys.

Streak counters live under the exact key names analysts and other services
read (`user:{id}:streak_count`), so they bypass the cache's key prefix. The
connection carries the cache's short socket timeouts: a dead Redis fails a
call within REDIS_SOCKET_TIMEOUT instead of hanging a request.
"""

from __future__ import annotations

from django.conf import settings


def redis_enabled() -> bool:
    return bool(settings.REDIS_URL)


def redis_client():
    """The shared redis-py client; only valid when `redis_enabled()`."""
    from django_redis import get_redis_connection

    return get_redis_connection("default")


def streak_key(user_id: int) -> str:
    return f"user:{user_id}:streak_count"
