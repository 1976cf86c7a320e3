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
