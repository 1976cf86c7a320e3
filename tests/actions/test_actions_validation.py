"""Bad input to the action endpoints: 400 (or 415) with JSON, and nothing stored."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.utils import timezone

pytestmark = pytest.mark.django_db


def minutes_from_now(minutes: float) -> str:
    return (timezone.now() + timedelta(minutes=minutes)).isoformat()


BAD_ACTIONS = {
    "missing type": {"value": 1},
    "empty type": {"action_type": ""},
    "type too long": {"action_type": "a" * 65},
    "type with a space": {"action_type": "spin wheel"},
    "type with padding": {"action_type": " spin"},
    "type not ASCII": {"action_type": "spïn"},
    "type NUL": {"action_type": "spin\x00"},
    "negative value": {"action_type": "spin", "value": -1},
    "value NaN string": {"action_type": "spin", "value": "NaN"},
    "value Infinity string": {"action_type": "spin", "value": "Infinity"},
    "value not a number": {"action_type": "spin", "value": "ten"},
    "value boolean": {"action_type": "spin", "value": True},
    "value null": {"action_type": "spin", "value": None},
    "value three decimals": {"action_type": "spin", "value": "1.005"},
    "value too large": {"action_type": "spin", "value": "1e20"},
    "value float noise": {"action_type": "spin", "value": 0.1 + 0.2},
    "timestamp 10 min ahead": {"action_type": "spin", "action_timestamp": "FUTURE"},
    "timestamp too old": {"action_type": "spin", "action_timestamp": "PAST"},
    "timestamp naive": {"action_type": "spin", "action_timestamp": "NAIVE"},
    "timestamp garbage": {"action_type": "spin", "action_timestamp": "yesterday"},
    "timestamp number": {"action_type": "spin", "action_timestamp": 1700000000},
    "metadata a list": {"action_type": "spin", "metadata": [1, 2]},
    "metadata a string": {"action_type": "spin", "metadata": "{}"},
    "metadata over 4 KiB": {"action_type": "spin", "metadata": {"x": "y" * 4100}},
    "metadata NUL value": {"action_type": "spin", "metadata": {"a": "b\x00"}},
    "metadata NUL key": {"action_type": "spin", "metadata": {"a\x00": 1}},
    "metadata NUL nested": {
        "action_type": "spin",
        "metadata": {"a": [{"b": ["\x00"]}]},
    },
    "event_id not a UUID": {"action_type": "spin", "event_id": "abc"},
    "user_id zero": {"action_type": "spin", "user_id": 0},
    "user_id text": {"action_type": "spin", "user_id": "me"},
    "unknown field": {"action_type": "spin", "points": 5},
}


def resolve(body: dict) -> dict:
    """Fill in the timestamps that depend on the moment of the test."""
    placeholders = {
        "FUTURE": minutes_from_now(10),
        "PAST": (timezone.now() - timedelta(days=31)).isoformat(),
        "NAIVE": timezone.now().replace(tzinfo=None).isoformat(),
    }
    stamp = body.get("action_timestamp")
    if isinstance(stamp, str) and stamp in placeholders:
        return {**body, "action_timestamp": placeholders[stamp]}
    return body


@pytest.mark.parametrize("body", BAD_ACTIONS.values(), ids=BAD_ACTIONS.keys())
def test_it_rejects_a_bad_action(alice_client, table_counts, body):
    before = table_counts()

    response = alice_client.post("/api/actions", resolve(body), format="json")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
    assert table_counts() == before


@pytest.mark.parametrize("body", BAD_ACTIONS.values(), ids=BAD_ACTIONS.keys())
def test_it_rejects_a_batch_with_one_bad_action(alice_client, table_counts, body):
    before = table_counts()
    actions = [{"action_type": "spin"}, resolve(body), {"action_type": "spin"}]

    response = alice_client.post("/api/actions/batch", {"actions": actions}, "json")

    assert response.status_code == 400, response.content
    assert list(response.json()["errors"]["actions"]) == ["1"]
    assert table_counts() == before


RAW_BODIES = {
    "not JSON": "{action_type: spin}",
    "NaN literal": '{"action_type": "spin", "value": NaN}',
    "Infinity literal": '{"action_type": "spin", "value": Infinity}',
    "infinite metadata number": '{"action_type": "spin", "metadata": {"x": 1e400}}',
    "lone surrogate": '{"action_type": "spin", "metadata": {"x": "\\ud800"}}',
    "escaped NUL": '{"action_type": "spin", "metadata": {"x": "\\u0000"}}',
    "a list": '[{"action_type": "spin"}]',
    "deep nesting": '{"action_type": "spin", "metadata": '
    + "[" * 100_000
    + "]" * 100_000
    + "}",
    "empty": "",
}


@pytest.mark.parametrize("raw", RAW_BODIES.values(), ids=RAW_BODIES.keys())
@pytest.mark.parametrize("path", ["/api/actions", "/api/actions/batch"])
def test_it_rejects_a_body_that_is_not_an_action(alice_client, table_counts, path, raw):
    before = table_counts()

    response = alice_client.post(path, raw, content_type="application/json")

    assert response.status_code == 400, response.content
    assert "detail" in response.json()
    assert table_counts() == before


@pytest.mark.parametrize("path", ["/api/actions", "/api/actions/batch"])
def test_it_answers_415_to_another_content_type(alice_client, table_counts, path):
    before = table_counts()

    response = alice_client.post(
        path, "action_type=spin", content_type="application/x-www-form-urlencoded"
    )

    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"
    assert table_counts() == before


def test_it_rejects_a_batch_of_501(alice_client, table_counts):
    before = table_counts()
    actions = [{"action_type": "spin"}] * 501

    response = alice_client.post("/api/actions/batch", {"actions": actions}, "json")

    assert response.status_code == 400
    assert "500" in json.dumps(response.json()["errors"]["actions"])
    assert table_counts() == before


@pytest.mark.parametrize(
    "body",
    [
        {"actions": []},
        {"actions": {"action_type": "spin"}},
        {},
        {"actions": [], "x": 1},
    ],
    ids=["empty", "not a list", "missing", "unknown field"],
)
def test_it_rejects_a_malformed_batch(alice_client, table_counts, body):
    before = table_counts()

    response = alice_client.post("/api/actions/batch", body, format="json")

    assert response.status_code == 400
    assert table_counts() == before


def test_it_accepts_the_limits_themselves(alice_client):
    body = {
        "action_type": "a" * 64,
        "value": "9999999999999999.99",
        "action_timestamp": minutes_from_now(4),
        "metadata": {"x": "y" * 4000},
    }

    response = alice_client.post("/api/actions", body, format="json")

    assert response.status_code == 201, response.content
