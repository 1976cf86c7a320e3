"""JSON in and out: DRF's negotiation, parser and renderer, made cheap.

The API reads and answers small JSON documents on every request, and
negotiating, parsing and rendering them the general way cost as much as
the business of the busiest views. These classes give the answers DRF's
own give, taking shortcuts only in the common cases. They must not import
rest_framework.views, which reads these settings as it loads.
"""

from __future__ import annotations

import io
import re

import orjson
from rest_framework import exceptions
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import JSONParser, get_encoding
from rest_framework.renderers import JSONRenderer
from rest_framework.utils.encoders import JSONEncoder

NESTED_TOO_DEEPLY = "JSON parse error - nested too deeply."
# Far more than any document of the API needs (4 KiB of metadata included).
MAX_JSON_DEPTH = 64
_UTF8 = {"utf-8", "utf8"}
# 19 digits reach past what 64 bits hold in either sign (orjson keeps
# integers within -2**63 .. 2**64 - 1 and reads the others as floats).
_LONG_NUMBER = re.compile(rb"[0-9]{19}")
_orjson_default = JSONEncoder().default
# Non-string keys (batch errors are keyed by position) become strings as
# json.dumps makes them; datetimes go through DRF's encoder (milliseconds,
# a Z for UTC), as JSONRenderer writes them.
_ORJSON_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME
# The escapes JSONRenderer writes instead of U+2028 and U+2029.
_LINE_SEPARATORS = (rb"\u2028", rb"\u2029")


class JSONFirstNegotiation(DefaultContentNegotiation):
    """A request that accepts anything gets the first renderer at once.

    The answer is the one DefaultContentNegotiation gives; every other
    Accept header, and a ?format= parameter, goes through it in full.
    """

    def select_renderer(self, request, renderers, format_suffix=None):
        meta = request.META
        if (
            # As in DRF, only a missing header means "anything".
            meta.get("HTTP_ACCEPT", "*/*").strip() == "*/*"
            and not format_suffix
            and (
                not meta.get("QUERY_STRING")
                or self.settings.URL_FORMAT_OVERRIDE not in request.query_params
            )
        ):
            renderer = renderers[0]
            return renderer, renderer.media_type
        return super().select_renderer(request, renderers, format_suffix)


class FastJSONRenderer(JSONRenderer):
    """JSONRenderer's output, written by orjson; indented output by DRF.

    The same JSON values, key order and escapes; a float may be spelled
    differently (0.00001 where json writes 1e-05), and a non-finite float,
    which no view produces, becomes null where JSONRenderer would fail.
    """

    def render(self, data, accepted_media_type=None, renderer_context=None):
        if data is None:
            return b""
        if accepted_media_type and "indent" in accepted_media_type:
            return super().render(data, accepted_media_type, renderer_context)
        if renderer_context and renderer_context.get("indent") is not None:
            return super().render(data, accepted_media_type, renderer_context)

        try:
            rendered = orjson.dumps(
                data, default=_orjson_default, option=_ORJSON_OPTIONS
            )
        except (TypeError, orjson.JSONEncodeError):
            # Whatever orjson cannot write (integers past 64 bits, keys of
            # odd types) DRF's encoder still can.
            return super().render(data, accepted_media_type, renderer_context)
        # As JSONRenderer does: keep the output a strict JavaScript subset.
        if b"\xe2\x80\xa8" in rendered or b"\xe2\x80\xa9" in rendered:
            rendered = rendered.replace(b"\xe2\x80\xa8", _LINE_SEPARATORS[0])
            rendered = rendered.replace(b"\xe2\x80\xa9", _LINE_SEPARATORS[1])
        return rendered


class FastJSONParser(JSONParser):
    """JSONParser's result, read by orjson when the body is UTF-8.

    Anything orjson refuses goes to JSONParser, which decides as it always
    did and keeps its error messages; orjson refuses all JSONParser does.
    A body holding a run of 19 digits goes to JSONParser directly: orjson
    reads integers past 64 bits as floats, and would lose their digits.
    Either way, a document nested deeper than MAX_JSON_DEPTH is refused:
    nothing the API takes needs it, and Python code walking it (checks,
    json.dumps) would run out of stack.
    """

    def parse(self, stream, media_type=None, parser_context=None):
        body = stream.read() if stream is not None else b""
        if is_utf8(get_encoding(parser_context or {})):
            try:
                return loads_plain(body)
            except TooDeep:
                raise exceptions.ParseError(NESTED_TOO_DEEPLY) from None
            except ValueError:
                pass
        try:
            data = super().parse(io.BytesIO(body), media_type, parser_context)
            ensure_shallow(body, data)
        except (RecursionError, TooDeep):
            raise exceptions.ParseError(NESTED_TOO_DEEPLY) from None
        return data


def loads_plain(body: bytes):
    """A UTF-8 JSON body read by orjson; ValueError where JSONParser must judge."""
    if _LONG_NUMBER.search(body):
        raise ValueError("a number of 19 digits or more: JSONParser reads it exactly")
    data = orjson.loads(body)
    ensure_shallow(body, data)
    return data


class TooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH."""


def ensure_shallow(body: bytes, data) -> None:
    """Raise TooDeep when `data` nests deeper than MAX_JSON_DEPTH.

    A body with few brackets cannot be deep, so the walk runs only for the
    rare one with many; it uses a list, not recursion, whatever the depth.
    """
    if body.count(b"[") + body.count(b"{") <= MAX_JSON_DEPTH:
        return
    pending = [(data, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, list):
            children = value
        else:
            continue
        if depth > MAX_JSON_DEPTH:
            raise TooDeep(NESTED_TOO_DEEPLY)
        pending.extend((child, depth + 1) for child in children)


def is_utf8(charset: str) -> bool:
    """True for the names of UTF-8, the one encoding orjson reads."""
    return charset.lower().replace("_", "-") in _UTF8
