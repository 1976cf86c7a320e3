"""The reward recommendation: a table lookup plus the user's streak.

The table lives in settings (RECOMMENDATION_RULES, RECOMMENDATION_DEFAULT);
docs/personalization.md gives the formula with worked examples. The user's
group, risk profile and account state come with the streak from Redis
(segments.profile_cache), PostgreSQL filling in what is not cached.
"""

from __future__ import annotations

import functools
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from redis.exceptions import RedisError

from actions.metrics import OutageLog
from actions.streaks import current_streak
from segments.profile_cache import (
    MAX_USER_ID,
    Profile,
    cache_enabled,
    load_profile,
    read_cached,
    store_profile,
)

PROBABILITY_FLOOR = Decimal("0.05")
PROBABILITY_CEILING = Decimal("0.95")
STREAK_STEP = Decimal("0.01")
PROBABILITY_PLACES = Decimal("0.0001")


def match_rule(rfm_group: str, risk_profile: str) -> tuple[float, str]:
    """(base probability, time window) of the first row that matches."""
    for group, risk, base, window in settings.RECOMMENDATION_RULES:
        if (group is None or group == rfm_group) and (
            risk is None or risk == risk_profile
        ):
            return base, window
    return settings.RECOMMENDATION_DEFAULT


def clamp_probability(value: Decimal) -> Decimal:
    return min(PROBABILITY_CEILING, max(PROBABILITY_FLOOR, value))


# Pure, and asked with a few dozen distinct arguments: remembered.
@functools.lru_cache(maxsize=4_096)
def reward_probability(base: float, streak_count: int) -> float:
    """base + 0.01 x streak, clamped to [0.05, 0.95], rounded to 4 decimals.

    Computed in Decimal so that 0.60 + 7 x 0.01 is exactly 0.67, not
    0.6699999999999999.
    """
    raw = Decimal(repr(base)) + STREAK_STEP * streak_count
    rounded = clamp_probability(raw).quantize(PROBABILITY_PLACES, ROUND_HALF_UP)
    return float(rounded)


_outage_log = OutageLog(
    "streak reads for recommendations, answered with streak 0 (Redis at REDIS_URL)"
)


def read_streak(user_id: int) -> tuple[int, bool]:
    """(streak_count, degraded): an unreachable Redis gives (0, True)."""
    try:
        streak = current_streak(user_id)
    except RedisError as error:
        _outage_log.failed(error)
        return 0, True

    _outage_log.succeeded()
    return streak, False


def recommendation_inputs(user_id: int) -> tuple[Profile | None, int, bool]:
    """(profile, streak_count, degraded); profile None for no such user.

    With the profile cache on, one Redis MGET brings the streak and the
    cached profile, and PostgreSQL is read only when that profile is missing
    or stale. When Redis fails, the profile comes from PostgreSQL and the
    streak is 0 (degraded). Counting degraded answers is left to the caller,
    which alone knows whether an answer is given at all.
    """
    if not 0 < user_id <= MAX_USER_ID:
        return None, 0, False
    if not cache_enabled():
        profile = load_profile(user_id)
        if profile is None:
            return None, 0, False
        return profile, *read_streak(user_id)

    try:
        read = read_cached(user_id)
    except RedisError as error:
        _outage_log.failed(error)
        return load_profile(user_id), 0, True
    _outage_log.succeeded()

    if read.profile is not None:
        return read.profile, read.streak_count, False
    profile = load_profile(user_id)
    if profile is not None:
        store_profile(user_id, read, profile)
    return profile, read.streak_count, False
