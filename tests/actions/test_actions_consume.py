"""manage.py consume_actions: one JSON line per message."""

from __future__ import annotations

import io
import json
import uuid

import pytest
from confluent_kafka import Producer
from django.conf import settings
from django.core.management import CommandError, call_command


@pytest.fixture
def topic_with_messages():
    """A fresh topic holding three messages: two JSON events and one text."""
    topic = f"test_consume_{uuid.uuid4().hex}"
    producer = Producer({"bootstrap.servers": settings.KAFKA_BROKER})
    producer.produce(topic, key=b"7", value=b'{"event_id":"a","user_id":7}')
    producer.produce(topic, key=b"8", value='{"note":"café"}'.encode())
    producer.produce(topic, key=None, value=b"not json")
    producer.flush(10)
    return topic


# Three messages, or ten idle seconds if one went missing.
EVERYTHING = ["--from-beginning", "--max-messages", "3", "--timeout", "10", "--topic"]


def consume(*args: str) -> list[dict]:
    out = io.StringIO()
    call_command("consume_actions", *args, stdout=out)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_it_prints_one_json_line_per_message(topic_with_messages):
    lines = consume(*EVERYTHING, topic_with_messages)

    by_key = {line["key"]: line for line in lines}
    assert by_key["7"]["value"] == {"event_id": "a", "user_id": 7}
    assert by_key["8"]["value"] == {"note": "café"}
    assert by_key[None]["value"] == "not json"


def test_it_says_where_each_message_is(topic_with_messages):
    lines = consume(*EVERYTHING, topic_with_messages)

    assert all({"partition", "offset"} <= set(line) for line in lines)


def test_it_stops_after_max_messages(topic_with_messages):
    lines = consume(
        "--topic",
        topic_with_messages,
        "--from-beginning",
        "--max-messages",
        "2",
        "--timeout",
        "10",
    )

    assert len(lines) == 2


def test_it_resumes_where_a_named_group_stopped(topic_with_messages):
    group = f"test-group-{uuid.uuid4().hex}"
    common = ["--topic", topic_with_messages, "--group-id", group, "--timeout", "3"]
    first = consume(*common, "--from-beginning", "--max-messages", "2")

    rest = consume(*common, "--from-beginning")

    assert len(first) + len(rest) == 3


def test_it_refuses_a_non_positive_maximum():
    with pytest.raises(CommandError):
        call_command("consume_actions", "--max-messages", "0")
