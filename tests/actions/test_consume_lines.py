"""The line consume_actions prints for one message (pure logic, no broker)."""

import json
from dataclasses import dataclass

import pytest

from actions.management.commands.consume_actions import message_line


@dataclass
class Message:
    """The four accessors of a confluent-kafka message that the line uses."""

    raw_key: bytes | None
    raw_value: bytes | None

    def key(self):
        return self.raw_key

    def value(self):
        return self.raw_value

    def partition(self):
        return 2

    def offset(self):
        return 41


@pytest.mark.parametrize(
    ("key", "value", "expected_key", "expected_value"),
    [
        (
            b"17",
            b'{"event_id":"e","n":1}',
            "17",
            {"event_id": "e", "n": 1},
        ),
        (b"17", b'{\n  "spread": [1,\r\n 2]\n}', "17", {"spread": [1, 2]}),
        (b"user-a", b"not json", "user-a", "not json"),
        (None, None, None, None),
        (b"\xff", b"\xfe\xff", "\ufffd", "\ufffd\ufffd"),
    ],
    ids=["json", "json-with-newlines", "text", "nothing", "bad-utf8"],
)
def test_it_prints_one_json_line(key, value, expected_key, expected_value):
    line = message_line(Message(key, value))

    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {
        "key": expected_key,
        "partition": 2,
        "offset": 41,
        "value": expected_value,
    }


def test_it_keeps_a_deep_value_with_newlines_on_one_line():
    value = b"[" * 300 + b"\n" + b"]" * 300

    line = message_line(Message(b"1", value))

    assert line.count(b"\n") == 1
    assert json.loads(line)["key"] == "1"


def test_it_embeds_a_json_value_byte_for_byte():
    value = b'{"value":"1.50","metadata":{"b":1,"a":2}}'

    line = message_line(Message(b"3", value))

    assert value in line
