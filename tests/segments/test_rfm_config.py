"""RFM_RULES_JSON: the group rules of the batch, checked at start-up."""

from __future__ import annotations

import os

import pytest

from ccweb.config import ConfigError, parse_rfm_rules
from tests.helpers import run_manage

RULE = '{"group": "Whale", "max_recency_days": 3, "min_frequency": 10, '


def test_it_reads_rules_in_order():
    raw = (
        f'[{RULE}"min_monetary": 500}}, '
        '{"group": "Medium", "max_recency_days": 20, "min_frequency": 2, '
        '"min_monetary": 12.5}]'
    )

    rules = parse_rfm_rules(raw)

    assert rules == [("Whale", 3, 10, 500.0), ("Medium", 20, 2, 12.5)]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("[{", "is not valid JSON"),
        ('{"group": "Whale"}', "must be a JSON list"),
        (f'[{RULE}"min_monetary": -1}}]', "min_monetary must be a number >= 0"),
        (f'[{RULE}"min_monetary": "lots"}}]', "min_monetary must be a number >= 0"),
        (f"[{RULE}" + '"min_monetary": 1, "extra": 1}]', "must be an object with"),
        ('[{"group": "Whale"}]', "must be an object with"),
        (
            '[{"group": "Shark", "max_recency_days": 1, "min_frequency": 1, '
            '"min_monetary": 1}]',
            "unknown segment 'Shark'",
        ),
        (
            '[{"group": "Whale", "max_recency_days": 1.5, "min_frequency": 1, '
            '"min_monetary": 1}]',
            "max_recency_days must be an integer >= 0",
        ),
    ],
)
def test_it_names_the_problem(raw, problem):
    with pytest.raises(ConfigError, match="RFM_RULES_JSON") as error:
        parse_rfm_rules(raw)

    assert problem in str(error.value)


def test_it_stops_start_up_with_one_line():
    env = {**os.environ, "RFM_RULES_JSON": "[{"}

    result = run_manage("check", env=env)

    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert line.startswith("ccweb: configuration error: RFM_RULES_JSON: ")
