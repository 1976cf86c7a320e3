"""RECOMMENDATION_RULES_JSON: parsing and its one-line errors."""

import json

import pytest

from ccweb.config import ConfigError, parse_recommendation_rules

LAST_ROW = {"base": 0.1, "window": "any time"}


def rules_json(*rows) -> str:
    return json.dumps(list(rows))


def test_it_parses_rows_and_the_catch_all():
    raw = rules_json(
        {
            "rfm_group": "Whale",
            "risk_profile": "High-Risk",
            "base": 0.8,
            "window": "now",
        },
        {"rfm_group": "Low", "base": 0.2, "window": "today"},
        LAST_ROW,
    )

    rules, default = parse_recommendation_rules(raw)

    assert rules == [("Whale", "High-Risk", 0.8, "now"), ("Low", None, 0.2, "today")]
    assert default == (0.1, "any time")


def test_it_takes_a_lone_catch_all():
    assert parse_recommendation_rules(rules_json(LAST_ROW)) == ([], (0.1, "any time"))


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("[{", "is not valid JSON"),
        ('{"rules": []}', "must be a non-empty JSON list of rows"),
        ("[]", "must be a non-empty JSON list of rows"),
        (rules_json(7), "row 1 must be a JSON object"),
        (rules_json({**LAST_ROW, "odds": 1}), "row 1 has unknown key 'odds'"),
        (
            rules_json({"rfm_group": "Shark", **LAST_ROW}, LAST_ROW),
            "row 1: unknown segment 'Shark'",
        ),
        (
            rules_json({"risk_profile": "Reckless", **LAST_ROW}, LAST_ROW),
            "row 1: unknown risk profile 'Reckless'",
        ),
        (rules_json({"base": 1.5, "window": "x"}), "row 1: base must be a number in"),
        (rules_json({"base": True, "window": "x"}), "row 1: base must be a number in"),
        (rules_json({"base": "0.5", "window": "x"}), "row 1: base must be a number in"),
        (rules_json({"window": "x"}), "row 1: base must be a number in"),
        (rules_json({"base": 0.5, "window": ""}), "row 1: window must be a string"),
        (rules_json({"base": 0.5, "window": 3}), "row 1: window must be a string"),
        (
            rules_json({"rfm_group": "Low", "base": 0.5, "window": "x"}),
            "the last row must match anything",
        ),
        (
            rules_json(LAST_ROW, LAST_ROW),
            "row 1 matches anything, so later rows are never used",
        ),
    ],
)
def test_it_names_the_problem(raw, problem):
    with pytest.raises(ConfigError) as caught:
        parse_recommendation_rules(raw)

    assert caught.value.variable == "RECOMMENDATION_RULES_JSON"
    assert problem in caught.value.problem


def test_it_rejects_nan():
    with pytest.raises(ConfigError, match="base must be a number"):
        parse_recommendation_rules('[{"base": NaN, "window": "x"}]')
