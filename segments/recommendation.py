"""The reward recommendation: a table lookup plus the user's streak.

The table lives in settings (RECOMMENDATION_RULES, RECOMMENDATION_DEFAULT);
docs/personalization.md gives the formula with worked examples.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from redis.exceptions import RedisError

from actions.metrics import OutageLog
from actions.streaks import current_streak
from segments.metrics import RECOMMENDATION_DEGRADED

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
        RECOMMENDATION_DEGRADED.inc()
        _outage_log.failed(error)
        return 0, True

    _outage_log.succeeded()
    return streak, False
