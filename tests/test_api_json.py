"""The fast JSON renderer, parser and negotiation answer as DRF's own do."""

import io
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.utils.translation import gettext_lazy
from rest_framework.exceptions import ErrorDetail, ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer

from ccweb.content import FastJSONParser, FastJSONRenderer

RENDERED_ALIKE = [
    {"moment": datetime(2026, 12, 4, 10, 30, 15, 123456, tzinfo=UTC)},
    {"moment": datetime(2026, 12, 4, 10, 30, 15, tzinfo=UTC)},
    {"value": Decimal("12.50"), "id": uuid.UUID(int=7)},
    {"text": gettext_lazy("Not found."), "error": ErrorDetail("bad", code="x")},
    {"actions": {0: {"user_id": ["Unknown user."]}, 3: {"value": ["Bad."]}}},
    {"line": "a\u2028b\u2029c", "accent": "café ☕"},
    {"huge": 2**70, "nested": [[{"deep": None}]]},
    [1, 2.5, True, "x"],
]


@pytest.mark.parametrize("data", RENDERED_ALIKE)
def test_it_renders_as_drf(data):
    expected = JSONRenderer().render(data, "application/json")

    rendered = FastJSONRenderer().render(data, "application/json")

    assert rendered == expected


def test_it_indents_when_the_client_asks():
    data = {"a": [1, 2]}

    rendered = FastJSONRenderer().render(data, "application/json; indent=2")

    assert rendered == JSONRenderer().render(data, "application/json; indent=2")


PARSED_ALIKE = [
    b'{"a": 1, "b": [true, null, 2.5], "c": "\\u00e9"}',
    b'{"a": 1, "a": 2}',
    b'{"big": 123456789012345678901234567890}',
    b'{"low": -9223372036854775809, "high": 18446744073709551616}',
    b'"\\ud800"',
]


@pytest.mark.parametrize("body", PARSED_ALIKE)
def test_it_parses_as_drf(body):
    expected = JSONParser().parse(io.BytesIO(body))

    parsed = FastJSONParser().parse(io.BytesIO(body))

    assert parsed == expected


REFUSED = [
    b'{"v": NaN}',
    b'{"v": Infinity}',
    b"{,}",
    b'{"a": 1,}',
    b"",
    b"[" * 100_000,
    b'{"m": ' + b"[" * 65 + b"]" * 65 + b"}",
    b"[" * 1_000 + b"]" * 1_000,
]


@pytest.mark.parametrize("body", REFUSED, ids=range(len(REFUSED)))
def test_it_refuses_what_drf_refuses(body):
    with pytest.raises(ParseError):
        FastJSONParser().parse(io.BytesIO(body))


def test_it_reads_other_charsets_as_drf():
    body = '{"name": "café"}'.encode("latin-1")
    context = {"encoding": "latin-1"}

    parsed = FastJSONParser().parse(io.BytesIO(body), parser_context=context)

    assert parsed == {"name": "café"}


@pytest.mark.parametrize("accept", ["", "*/*", "application/json"])
def test_it_answers_json_to_clients_that_accept_it(alice_client, accept):
    headers = {"HTTP_ACCEPT": accept} if accept else {}

    response = alice_client.get("/api/auth/me", **headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("accept", ["text/csv", " "])
def test_it_still_refuses_a_client_that_accepts_no_json(alice_client, accept):
    response = alice_client.get("/api/auth/me", HTTP_ACCEPT=accept)

    assert response.status_code == 406


def test_it_accepts_shallow_nesting():
    body = b'{"m": ' + b"[" * 63 + b"]" * 63 + b"}"

    parsed = FastJSONParser().parse(io.BytesIO(body))

    assert parsed == JSONParser().parse(io.BytesIO(body))
