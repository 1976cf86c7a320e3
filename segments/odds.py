"""Per-segment game odds from SEGMENT_PROB_ADJUST_JSON and HOUSE_EDGE_JSON.

The adjustment is added to the game's base win probability and the sum is
clamped to [0, 1]. The house edge is reported beside it, not applied to it:
the game takes its edge from the payout, so scaling the probability as well
would charge it twice. docs/personalization.md has worked examples.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.conf import settings

from ccweb.config import DEFAULT_HOUSE_EDGE, DEFAULT_PROB_ADJUST


@dataclass(frozen=True)
class Odds:
    segment: str
    adjusted_probability: float
    house_edge: float


def odds_for(segment: str, base_probability: float) -> Odds:
    adjustment = settings.SEGMENT_PROB_ADJUST.get(segment, DEFAULT_PROB_ADJUST)
    house_edge = settings.HOUSE_EDGE.get(segment, DEFAULT_HOUSE_EDGE)

    # Decimal keeps 0.3 + (-0.02) at 0.28 instead of 0.27999999999999997.
    adjusted = Decimal(repr(base_probability)) + Decimal(repr(adjustment))
    clamped = min(Decimal(1), max(Decimal(0), adjusted))
    return Odds(segment, float(clamped), house_edge)
