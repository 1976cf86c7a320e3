"""The recommendation table and formula, as pure functions."""

from decimal import Decimal

import pytest
from django.test import override_settings

from ccweb.config import RISK_PROFILE_NAMES, SEGMENT_NAMES
from segments.models import RfmGroup, RiskProfile
from segments.recommendation import clamp_probability, match_rule, reward_probability


@pytest.mark.parametrize(
    ("rfm_group", "risk_profile", "expected"),
    [
        ("Whale", "High-Risk", (0.75, "next 2 hours")),
        ("Whale", "Moderate-Risk", (0.60, "next 4 hours")),
        ("Whale", "Low-Risk", (0.60, "next 4 hours")),
        ("Whale", "Unknown", (0.60, "next 4 hours")),
        ("High Engaged", "High-Risk", (0.55, "next 4 hours")),
        ("High Engaged", "Unknown", (0.55, "next 4 hours")),
        ("Medium", "Low-Risk", (0.50, "next 6 hours")),
        ("Medium", "Moderate-Risk", (0.40, "next 6 hours")),
        ("Medium", "High-Risk", (0.40, "next 6 hours")),
        ("Medium", "Unknown", (0.40, "next 6 hours")),
        ("Low", "High-Risk", (0.25, "next 24 hours")),
        ("Low", "Unknown", (0.25, "next 24 hours")),
        ("Dormant", "Low-Risk", (0.10, "any time")),
    ],
)
def test_it_picks_the_first_matching_row(rfm_group, risk_profile, expected):
    assert match_rule(rfm_group, risk_profile) == expected


@override_settings(
    RECOMMENDATION_RULES=[(None, "High-Risk", 0.3, "tonight")],
    RECOMMENDATION_DEFAULT=(0.2, "later"),
)
@pytest.mark.parametrize(
    ("risk_profile", "expected"),
    [("High-Risk", (0.3, "tonight")), ("Low-Risk", (0.2, "later"))],
)
def test_it_reads_the_table_from_settings(risk_profile, expected):
    assert match_rule("Whale", risk_profile) == expected


@pytest.mark.parametrize(
    ("base", "streak_count", "expected"),
    [
        (0.60, 7, 0.67),
        (0.55, 3, 0.58),
        (0.75, 0, 0.75),
        (0.10, 0, 0.10),
        (0.25, 69, 0.94),
        (0.25, 70, 0.95),
        (0.75, 25, 0.95),
        (0.25, 10_000, 0.95),
        (0.01, 0, 0.05),
        (0.0, 4, 0.05),
        (0.0, 6, 0.06),
    ],
)
def test_it_adds_a_hundredth_per_streak_day_within_bounds(base, streak_count, expected):
    assert reward_probability(base, streak_count) == expected


@pytest.mark.parametrize(
    ("base", "expected"),
    [(0.123456, 0.1235), (0.12345, 0.1235), (0.12344, 0.1234)],
)
def test_it_rounds_half_up_to_four_decimals(base, expected):
    assert reward_probability(base, 0) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("-1"), Decimal("0.05")),
        (Decimal("0.0499"), Decimal("0.05")),
        (Decimal("0.05"), Decimal("0.05")),
        (Decimal("0.5"), Decimal("0.5")),
        (Decimal("0.95"), Decimal("0.95")),
        (Decimal("0.9501"), Decimal("0.95")),
        (Decimal("7"), Decimal("0.95")),
    ],
)
def test_it_clamps_to_the_bounds(value, expected):
    assert clamp_probability(value) == expected


def test_its_configuration_names_match_the_models():
    assert (set(SEGMENT_NAMES), set(RISK_PROFILE_NAMES)) == (
        set(RfmGroup.values),
        set(RiskProfile.values),
    )
