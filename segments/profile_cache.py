"""The user's profile for the recommendation, cached in Redis beside the streak.

The recommendation needs three facts from PostgreSQL (is the account
active, its RFM group, its risk profile) and one from Redis (the streak).
To answer in one Redis round trip, the profile is kept in Redis too, under
`user:{id}:profile`, and read with the streak in one MGET:

    [user:{id}:streak_count, segments:profile_generation,
     user:{id}:profile_version, user:{id}:profile]

A cached profile carries the generation and the user's version that were
current when it was read from PostgreSQL. It is used only while both still
are; otherwise PostgreSQL is read again and the profile stored anew. Writers
mark profiles stale after they commit:

- the RFM batch sets a new generation: every profile at once;
- a saved or deleted UserSegment or User sets a new version of that user
  (signals wired in segments/apps.py).

The reader stores the generation and version it read BEFORE its query, so a
write that commits while it reads leaves a profile marked stale, never a
wrong profile marked fresh. Markers are random tokens, not counters: a
version key that expired or was lost never comes back with a value an old
profile carries. A profile is never stored under a missing marker: the
reader creates the marker (SET NX) and caches on the next request. Version
keys outlive any profile stored against them by a day.

Limits, also in docs/personalization.md: a write whose marker cannot be set
(Redis failing at that moment) leaves the old profile in use until
SEGMENT_PROFILE_CACHE_SECONDS expire it; and QuerySet.update(), raw SQL and
bulk_create() send no signals, so code that changes is_active, rfm_group or
risk_profile that way must call `mark_user_stale` or `mark_all_stale`
itself after it commits (the RFM batch does).
"""

from __future__ import annotations

import logging
import secrets
from typing import NamedTuple

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from redis.exceptions import RedisError

from actions.metrics import OutageLog
from ccweb.redis import redis_client, redis_enabled, streak_key
from segments.metrics import (
    PROFILE_CACHE_HIT,
    PROFILE_CACHE_MISS,
    PROFILE_CACHE_STALE,
    PROFILE_INVALIDATION_FAILURES,
)
from segments.models import RfmGroup, RiskProfile, UserSegment

logger = logging.getLogger(__name__)

User = get_user_model()

GENERATION_KEY = "segments:profile_generation"
# A version key lives this much longer than any profile stored against it.
VERSION_MARGIN_SECONDS = 86_400
SEPARATOR = "|"
# Ids past PostgreSQL's bigint cannot name a user; refused before any query.
MAX_USER_ID = 2**63 - 1


class Profile(NamedTuple):
    is_active: bool
    rfm_group: str
    risk_profile: str


class CachedRead(NamedTuple):
    """What the one MGET told: the streak, the markers, a fresh profile or None."""

    streak_count: int
    generation: str
    version: str
    profile: Profile | None


def profile_key(user_id: int) -> str:
    return f"user:{user_id}:profile"


def version_key(user_id: int) -> str:
    return f"user:{user_id}:profile_version"


def cache_enabled() -> bool:
    return redis_enabled() and settings.SEGMENT_PROFILE_CACHE_SECONDS > 0


# --- PostgreSQL -----------------------------------------------------------------

# One indexed query: the LEFT JOIN tells "no user" (no row) apart from "no
# segment yet" (NULLs), and is_active lets a caller known only from the
# token be checked in the same round trip. Written as SQL, built once, to
# skip the ORM's per-request compilation.
USER_AND_SEGMENT_SQL = (
    # Only table names from model metadata are formatted in.
    f"SELECT u.is_active, s.rfm_group, s.risk_profile "  # noqa: S608  # nosec B608
    f"FROM {User._meta.db_table} AS u "
    f"LEFT JOIN {UserSegment._meta.db_table} AS s ON s.user_id = u.id "
    f"WHERE u.id = %s"
)


def load_profile(user_id: int) -> Profile | None:
    """The profile from PostgreSQL, or None for no such user.

    A user without a segment row yet gets Low / Unknown.
    """
    if not 0 < user_id <= MAX_USER_ID:
        return None
    with connection.cursor() as cursor:
        cursor.execute(USER_AND_SEGMENT_SQL, [user_id])
        row = cursor.fetchone()
    if row is None:
        return None

    is_active, rfm_group, risk_profile = row
    if rfm_group is None:
        return Profile(is_active, RfmGroup.LOW.value, RiskProfile.UNKNOWN.value)
    return Profile(is_active, rfm_group, risk_profile)


# --- Reads ------------------------------------------------------------------------


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def read_cached(user_id: int) -> CachedRead:
    """The streak and the cached profile in one MGET; counts hit, miss or stale.

    Raises RedisError when Redis fails.
    """
    raw_streak, generation, version, cached = redis_client().mget(
        [
            streak_key(user_id),
            GENERATION_KEY,
            version_key(user_id),
            profile_key(user_id),
        ]
    )
    # The plain count key expires when the streak breaks (actions.streaks),
    # so it reads the same as the state hash current_streak reasons from.
    streak_count = int(raw_streak) if raw_streak is not None else 0
    generation, version = _text(generation), _text(version)
    if cached is None:
        PROFILE_CACHE_MISS.inc()
        return CachedRead(streak_count, generation, version, None)

    parts = _text(cached).split(SEPARATOR)
    if len(parts) != 5 or parts[0] != generation or parts[1] != version:
        PROFILE_CACHE_STALE.inc()
        return CachedRead(streak_count, generation, version, None)
    PROFILE_CACHE_HIT.inc()
    return CachedRead(streak_count, generation, version, _parse(parts[2:]))


def _parse(fields: list[str]) -> Profile:
    is_active, rfm_group, risk_profile = fields
    return Profile(is_active == "1", rfm_group, risk_profile)


_store_log = OutageLog("storing user profiles for recommendations (Redis at REDIS_URL)")


def store_profile(user_id: int, read: CachedRead, profile: Profile) -> None:
    """Cache `profile`, marked with the generation and version of `read`.

    A failure only costs the next request a query, so it is logged, not
    raised.
    """
    fields = (profile.rfm_group, profile.risk_profile)
    if any(SEPARATOR in field for field in fields):
        # Not representable in the compact form; such a user is always read
        # from PostgreSQL. The batch, the API and the admin never write it.
        return

    try:
        if not read.generation or not read.version:
            # A profile stored under a missing marker would look fresh again
            # whenever that marker went missing later (expired, evicted, lost
            # in a failover). Create the markers instead, never replacing
            # one a writer set meanwhile; the next request stores the
            # profile under them.
            _create_missing_markers(user_id, read)
            return
        value = SEPARATOR.join(
            (read.generation, read.version, "1" if profile.is_active else "0", *fields)
        )
        redis_client().set(
            profile_key(user_id), value, ex=settings.SEGMENT_PROFILE_CACHE_SECONDS
        )
    except RedisError as error:
        _store_log.failed(error)
        return
    _store_log.succeeded()


def _create_missing_markers(user_id: int, read: CachedRead) -> None:
    with redis_client().pipeline(transaction=False) as pipe:
        if not read.generation:
            pipe.set(GENERATION_KEY, _new_marker(), nx=True)
        if not read.version:
            pipe.set(
                version_key(user_id), _new_marker(), nx=True, ex=_version_ttl_seconds()
            )
        pipe.execute()


# --- Invalidation -------------------------------------------------------------------


def _new_marker() -> str:
    return secrets.token_hex(8)


def _version_ttl_seconds() -> int:
    return settings.SEGMENT_PROFILE_CACHE_SECONDS + VERSION_MARGIN_SECONDS


def mark_user_stale(user_id: int) -> None:
    """Give the user a new version now: their cached profile is read again.

    Call it after the change has committed (`mark_user_stale_on_commit`).
    Never raises for Redis: a failed write must not fail the change that
    was already committed.
    """
    if not redis_enabled():
        return
    try:
        redis_client().set(
            version_key(user_id), _new_marker(), ex=_version_ttl_seconds()
        )
    except RedisError as error:
        _invalidation_failed(f"user {user_id}", error)


def mark_all_stale() -> None:
    """Set a new generation: every cached profile is read again.

    After the RFM batch commits, and after migrations. Never raises for Redis.
    """
    if not redis_enabled():
        return
    try:
        redis_client().set(GENERATION_KEY, _new_marker())
    except RedisError as error:
        _invalidation_failed("every user", error)


def _invalidation_failed(whose: str, error: RedisError) -> None:
    PROFILE_INVALIDATION_FAILURES.inc()
    logger.warning(
        "could not mark the cached recommendation profile of %s stale (Redis at "
        "REDIS_URL failing: %s); recommendations may show the previous segment "
        "or account state for up to %s s (SEGMENT_PROFILE_CACHE_SECONDS), unless "
        "Redis lost the profiles too",
        whose,
        error,
        settings.SEGMENT_PROFILE_CACHE_SECONDS,
    )


def mark_user_stale_on_commit(user_id: int) -> None:
    # robust: whatever goes wrong here, the committed change stands.
    transaction.on_commit(lambda: mark_user_stale(user_id), robust=True)


def mark_all_stale_on_commit() -> None:
    transaction.on_commit(mark_all_stale, robust=True)
