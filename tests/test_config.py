"""Bad configuration stops start-up with one line naming the variable."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ccweb.config import ConfigError, parse_house_edge, parse_prob_adjust
from tests.helpers import run_manage

REPO = Path(__file__).resolve().parent.parent


def start_with(**overrides) -> subprocess.CompletedProcess:
    env = {**os.environ, **overrides}
    return run_manage("check", env=env)


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SEGMENT_PROB_ADJUST_JSON", "{not json", "is not valid JSON"),
        ("SEGMENT_PROB_ADJUST_JSON", '{"Whale": 0.7}', "outside [-0.5, 0.5]"),
        ("SEGMENT_PROB_ADJUST_JSON", '{"Shark": 0.1}', "unknown segment 'Shark'"),
        ("HOUSE_EDGE_JSON", '{"Low": 1.0}', "outside [0.0, 1.0)"),
        ("HOUSE_EDGE_JSON", '{"Low": -0.1}', "outside [0.0, 1.0)"),
        ("HOUSE_EDGE_JSON", "[0.1]", "must be a JSON object"),
        ("RFM_WINDOW_DAYS", "0", "must be a positive integer"),
        ("SEGMENT_PROB_ADJUST_JSON", '{"Low": -0.6}', "outside [-0.5, 0.5]"),
        ("HOUSE_EDGE_JSON", '{"Shark": 0.1}', "unknown segment 'Shark'"),
        ("RECOMMENDATION_RULES_JSON", "[{", "is not valid JSON"),
        (
            "RECOMMENDATION_RULES_JSON",
            '[{"risk_profile": "Reckless", "base": 0.5, "window": "now"}]',
            "row 1: unknown risk profile 'Reckless'",
        ),
    ],
)
def test_it_fails_fast_with_one_line(variable, value, expected):
    result = start_with(**{variable: value})

    (line,) = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert line.startswith(f"ccweb: configuration error: {variable}: ")
    assert expected in line


def test_it_requires_secrets_when_debug_is_off():
    env = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "JWT_SECRET")}
    env.update(CCWEB_TESTING="", DEBUG="false")

    result = run_manage("check", env=env)

    assert result.returncode == 2
    assert "SECRET_KEY: is required when DEBUG is off" in result.stderr


def test_it_accepts_the_documented_examples():
    assert parse_prob_adjust('{"Whale": 0.02, "Medium": 0.0, "Low": -0.02}') == {
        "Whale": 0.02,
        "Medium": 0.0,
        "Low": -0.02,
    }
    assert (
        parse_house_edge('{"Whale": 0.05, "Medium": 0.10, "Low": 0.15}')["Low"] == 0.15
    )


def test_it_rejects_booleans_posing_as_numbers():
    with pytest.raises(ConfigError, match="must be a number"):
        parse_house_edge('{"Low": true}')


def test_it_stops_a_celery_worker_with_the_same_line():
    celery = Path(sys.executable).parent / "celery"
    env = {**os.environ, "HOUSE_EDGE_JSON": '{"Low": 2}'}

    result = subprocess.run(
        [str(celery), "-A", "ccweb", "worker", "--pool=solo"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "ccweb: configuration error: HOUSE_EDGE_JSON: "
        "value for 'Low' is 2.0, outside [0.0, 1.0)"
    )
