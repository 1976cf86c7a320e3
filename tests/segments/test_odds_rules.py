"""Per-segment odds, as a pure function of the two JSON settings."""

import pytest
from django.test import override_settings

from segments.odds import Odds, odds_for


@pytest.mark.parametrize(
    ("segment", "base_probability", "expected"),
    [
        ("Whale", 0.5, Odds("Whale", 0.52, 0.05)),
        ("Medium", 0.5, Odds("Medium", 0.5, 0.10)),
        ("Low", 0.3, Odds("Low", 0.28, 0.15)),
        ("High Engaged", 0.5, Odds("High Engaged", 0.5, 0.10)),
        ("Whale", 0.99, Odds("Whale", 1.0, 0.05)),
        ("Low", 0.01, Odds("Low", 0.0, 0.15)),
        ("Whale", 1.0, Odds("Whale", 1.0, 0.05)),
        ("Low", 0.0, Odds("Low", 0.0, 0.15)),
    ],
)
def test_it_adds_the_segment_adjustment_within_zero_and_one(
    segment, base_probability, expected
):
    assert odds_for(segment, base_probability) == expected


@override_settings(SEGMENT_PROB_ADJUST={"Low": 0.1}, HOUSE_EDGE={"Low": 0.2})
def test_it_reads_both_settings():
    assert odds_for("Low", 0.3) == Odds("Low", 0.4, 0.2)


@override_settings(SEGMENT_PROB_ADJUST={}, HOUSE_EDGE={})
def test_it_gives_unlisted_segments_no_adjustment_and_a_tenth_edge():
    assert odds_for("Whale", 0.3) == Odds("Whale", 0.3, 0.10)
