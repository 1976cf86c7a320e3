"""Parsing and validation of configuration values that Django cannot check.

Every problem raises `ConfigError`, whose message is one line naming the
variable; `run_or_exit` turns it into that line on stderr and exit code 2.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from typing import TypeVar

# The groups the RFM batch assigns; configuration may only name these.
SEGMENT_NAMES = ("Whale", "High Engaged", "Medium", "Low")
DEFAULT_HOUSE_EDGE = 0.10
DEFAULT_PROB_ADJUST = 0.0

T = TypeVar("T")


class ConfigError(Exception):
    def __init__(self, variable: str, problem: str):
        self.variable = variable
        self.problem = problem
        super().__init__(f"{variable}: {problem}")


def run_or_exit(start: Callable[[], T]) -> T:
    """Run a start-up step; on bad configuration print one line and exit 2."""
    try:
        return start()
    except ConfigError as exc:
        print(f"ccweb: configuration error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


def require_positive_int(variable: str, value: int) -> int:
    if value <= 0:
        raise ConfigError(variable, f"must be a positive integer, got {value}")
    return value


def _parse_segment_map(
    variable: str, raw: str, low: float, high: float, high_inclusive: bool
) -> dict[str, float]:
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc.msg} at char {exc.pos})"
        raise ConfigError(variable, problem) from None
    if not isinstance(data, dict):
        raise ConfigError(variable, "must be a JSON object of segment name to number")

    parsed = {}
    for name, value in data.items():
        if name not in SEGMENT_NAMES:
            known = ", ".join(SEGMENT_NAMES)
            raise ConfigError(variable, f"unknown segment {name!r} (known: {known})")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(variable, f"value for {name!r} must be a number")
        value = float(value)
        above = value > high if high_inclusive else value >= high
        if not math.isfinite(value) or value < low or above:
            closing = "]" if high_inclusive else ")"
            raise ConfigError(
                variable,
                f"value for {name!r} is {value}, outside [{low}, {high}{closing}",
            )
        parsed[name] = value
    return parsed


def parse_prob_adjust(raw: str) -> dict[str, float]:
    """Per-segment additive adjustment of win probabilities, each in [-0.5, 0.5]."""
    return _parse_segment_map("SEGMENT_PROB_ADJUST_JSON", raw, -0.5, 0.5, True)


def parse_house_edge(raw: str) -> dict[str, float]:
    """Per-segment house edge, each in [0, 1)."""
    return _parse_segment_map("HOUSE_EDGE_JSON", raw, 0.0, 1.0, False)


# --- Recommendation table ------------------------------------------------------

# Risk profiles staff can set; segments.models.RiskProfile holds the same values.
RISK_PROFILE_NAMES = ("Low-Risk", "Moderate-Risk", "High-Risk", "Unknown")
# One row: rfm_group and risk_profile (None matches any), base, time window.
RecommendationRule = tuple[str | None, str | None, float, str]
_RULE_KEYS = frozenset({"rfm_group", "risk_profile", "base", "window"})
_MAX_WINDOW_LENGTH = 64


def _parse_rule(variable: str, number: int, row: object) -> RecommendationRule:
    if not isinstance(row, dict):
        raise ConfigError(variable, f"row {number} must be a JSON object")
    unknown = sorted(set(row) - _RULE_KEYS)
    if unknown:
        raise ConfigError(variable, f"row {number} has unknown key {unknown[0]!r}")

    group = row.get("rfm_group")
    if group is not None and group not in SEGMENT_NAMES:
        known = ", ".join(SEGMENT_NAMES)
        raise ConfigError(
            variable, f"row {number}: unknown segment {group!r} (known: {known})"
        )
    risk = row.get("risk_profile")
    if risk is not None and risk not in RISK_PROFILE_NAMES:
        known = ", ".join(RISK_PROFILE_NAMES)
        raise ConfigError(
            variable, f"row {number}: unknown risk profile {risk!r} (known: {known})"
        )

    base = row.get("base")
    if (
        isinstance(base, bool)
        or not isinstance(base, (int, float))
        or not 0.0 <= base <= 1.0
    ):
        raise ConfigError(variable, f"row {number}: base must be a number in [0, 1]")
    window = row.get("window")
    if not isinstance(window, str) or not 0 < len(window) <= _MAX_WINDOW_LENGTH:
        raise ConfigError(
            variable,
            f"row {number}: window must be a string of 1-{_MAX_WINDOW_LENGTH} "
            "characters",
        )
    return (group, risk, float(base), window)


def parse_recommendation_rules(
    raw: str,
) -> tuple[list[RecommendationRule], tuple[float, str]]:
    """RECOMMENDATION_RULES_JSON: the recommendation table, first match wins.

    A JSON list of rows `{"rfm_group"?, "risk_profile"?, "base", "window"}`;
    a missing or null group or profile matches any value. The last row must
    match anything (neither key given): it is the "anything else" answer.
    Returns the other rows and that last row as `(base, window)`.
    """
    variable = "RECOMMENDATION_RULES_JSON"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc.msg} at char {exc.pos})"
        raise ConfigError(variable, problem) from None
    if not isinstance(data, list) or not data:
        raise ConfigError(variable, "must be a non-empty JSON list of rows")

    rules = [_parse_rule(variable, number, row) for number, row in enumerate(data, 1)]
    *matching, last = rules
    if last[0] is not None or last[1] is not None:
        raise ConfigError(
            variable, "the last row must match anything (no rfm_group, no risk_profile)"
        )
    for number, (group, risk, _, _) in enumerate(matching, 1):
        if group is None and risk is None:
            raise ConfigError(
                variable, f"row {number} matches anything, so later rows are never used"
            )
    return matching, (last[2], last[3])


# --- RFM group rules -------------------------------------------------------------

# One rule: group, recency at most (days), frequency at least, monetary at least.
RfmRule = tuple[str, int, int, float]
_RFM_RULE_KEYS = frozenset(
    {"group", "max_recency_days", "min_frequency", "min_monetary"}
)


def _parse_rfm_rule(variable: str, number: int, row: object) -> RfmRule:
    if not isinstance(row, dict) or set(row) != _RFM_RULE_KEYS:
        keys = ", ".join(sorted(_RFM_RULE_KEYS))
        raise ConfigError(variable, f"row {number} must be an object with {keys}")
    if row["group"] not in SEGMENT_NAMES:
        known = ", ".join(SEGMENT_NAMES)
        raise ConfigError(
            variable, f"row {number}: unknown segment {row['group']!r} (known: {known})"
        )
    for key in ("max_recency_days", "min_frequency"):
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(variable, f"row {number}: {key} must be an integer >= 0")
    monetary = row["min_monetary"]
    if (
        isinstance(monetary, bool)
        or not isinstance(monetary, (int, float))
        or not math.isfinite(monetary)
        or monetary < 0
    ):
        raise ConfigError(variable, f"row {number}: min_monetary must be a number >= 0")
    return (
        row["group"],
        row["max_recency_days"],
        row["min_frequency"],
        float(monetary),
    )


def parse_rfm_rules(raw: str) -> list[RfmRule]:
    """RFM_RULES_JSON: the group rules of the RFM batch, first match wins.

    A JSON list of `{"group", "max_recency_days", "min_frequency",
    "min_monetary"}`; a user matching no rule (or with no action in the
    window) is `Low`.
    """
    variable = "RFM_RULES_JSON"
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        problem = f"is not valid JSON ({exc.msg} at char {exc.pos})"
        raise ConfigError(variable, problem) from None
    if not isinstance(data, list):
        raise ConfigError(variable, "must be a JSON list of rules")
    return [
        _parse_rfm_rule(variable, number, row) for number, row in enumerate(data, 1)
    ]
