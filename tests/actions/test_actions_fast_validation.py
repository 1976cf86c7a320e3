"""The fast path of validation agrees with ActionSerializer, the reference."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from rest_framework.exceptions import ValidationError

from actions.serializers import ActionSerializer, _plain_action, validate_action


def by_serializer(data) -> dict | None:
    serializer = ActionSerializer(data=data)
    return dict(serializer.validated_data) if serializer.is_valid() else None


def by_validate_action(data) -> dict | None:
    try:
        return dict(validate_action(data))
    except ValidationError:
        return None


def recent(minutes: int) -> str:
    return (timezone.now() - timedelta(minutes=minutes)).isoformat()


PLAIN = {
    "type only": {"action_type": "spin"},
    "integer value": {"action_type": "spin", "value": 12},
    "float value": {"action_type": "spin", "value": 12.5},
    "decimal string": {"action_type": "spin", "value": "0012.30"},
    "zero": {"action_type": "spin", "value": 0},
    "largest value": {"action_type": "spin", "value": "9999999999999999.99"},
    "metadata": {"action_type": "a.b-c_d", "metadata": {"k": [1, "x", None]}},
    "timestamp Z": {"action_type": "spin", "action_timestamp": "RECENT_Z"},
    "timestamp offset": {"action_type": "spin", "action_timestamp": "RECENT_OFFSET"},
    "event id": {
        "action_type": "spin",
        "event_id": "6F9619FF-8B86-D011-B42D-00C04FC964FF",
    },
    "user id": {"action_type": "spin", "user_id": 42},
}


def resolve(body: dict) -> dict:
    stamp = body.get("action_timestamp")
    if stamp == "RECENT_Z":
        value = (timezone.now() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return {**body, "action_timestamp": value}
    if stamp == "RECENT_OFFSET":
        moment = timezone.now() - timedelta(hours=2)
        value = moment.astimezone(timezone.get_fixed_timezone(-330)).isoformat()
        return {**body, "action_timestamp": value}
    return body


@pytest.mark.parametrize("body", PLAIN.values(), ids=PLAIN.keys())
def test_it_takes_the_fast_path_for_plain_input(body):
    body = resolve(body)

    assert _plain_action(body) == by_serializer(body)


UNUSUAL = {
    "user id as text": {"action_type": "spin", "user_id": "42"},
    "value with exponent": {"action_type": "spin", "value": "1e2"},
    "event id without dashes": {
        "action_type": "spin",
        "event_id": "6f9619ff8b86d011b42d00c04fc964ff",
    },
    "type as a number": {"action_type": 7},
}


@pytest.mark.parametrize("body", UNUSUAL.values(), ids=UNUSUAL.keys())
def test_it_lets_the_serializer_judge_unusual_input(body):
    assert by_validate_action(body) == by_serializer(body)


JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**20), max_value=10**20)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=70)
)
FIELD_VALUES = {
    "action_type": st.sampled_from(["spin", "", "a" * 65, "b c", "x\x00", "ok.1"])
    | JSON_SCALARS,
    "value": st.sampled_from(["1.5", "-1", "1.005", "NaN", "1e2", " 3 "])
    | JSON_SCALARS,
    "metadata": st.dictionaries(st.text(max_size=5), JSON_SCALARS, max_size=3)
    | JSON_SCALARS,
    "action_timestamp": st.sampled_from(
        ["2030-01-01T00:00:00Z", "2020-01-01", "RECENT", "RECENT_NAIVE"]
    )
    | JSON_SCALARS,
    "event_id": st.uuids().map(str) | JSON_SCALARS,
    "user_id": st.integers(min_value=-5, max_value=2**64) | JSON_SCALARS,
    "unknown": JSON_SCALARS,
}


@st.composite
def action_bodies(draw) -> dict:
    names = draw(st.sets(st.sampled_from(sorted(FIELD_VALUES))))
    body = {name: draw(FIELD_VALUES[name]) for name in names}
    if body.get("action_timestamp") == "RECENT":
        body["action_timestamp"] = recent(30)
    elif body.get("action_timestamp") == "RECENT_NAIVE":
        body["action_timestamp"] = recent(30)[:19]
    return body


@settings(max_examples=400, deadline=None, database=None)
@given(action_bodies())
def test_it_judges_any_input_exactly_as_the_serializer(body):
    assert by_validate_action(body) == by_serializer(body)
