"""A shortcut around DRF's request cycle for the common case of a hot view.

The two busiest endpoints (recording an action, reading a recommendation)
spend as much CPU in DRF's request cycle (request wrapping, authentication
classes, permission classes, negotiation, response rendering) as in their
own work. A view with `FastPathMixin` first tries `answer_directly`: it
answers only a request it can answer exactly as the full cycle would (the
caller's own id, a token this worker has already verified, a body of the
plain shape) and returns None for anything else, which then goes through
DRF as usual. Errors are never answered here, so every refusal keeps DRF's
status, body and headers.

tests/test_fastpath.py holds each shortcut to the full cycle's answers,
byte for byte.
"""

from __future__ import annotations

import time

from django.http import HttpResponse
from django.utils.cache import patch_vary_headers
from django.utils.http import parse_header_parameters
from rest_framework import HTTP_HEADER_ENCODING
from rest_framework_simplejwt.authentication import AUTH_HEADER_TYPE_BYTES
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from ccweb.authentication import verified_tokens
from ccweb.content import FastJSONRenderer, is_utf8

_ANY_JSON = {"*/*", "application/json"}
_renderer = FastJSONRenderer()
_DEFAULT_HEADERS: dict[type, dict[str, str]] = {}


def accepts_plain_json(request) -> bool:
    """True when DRF's negotiation would pick JSON without a parameter."""
    # As in DRF, only a missing header means "anything"; an empty one is 406.
    accept = request.META.get("HTTP_ACCEPT", "*/*").strip()
    return accept in _ANY_JSON and not request.META.get("QUERY_STRING")


def sends_json(request) -> bool:
    """True for a JSON body in UTF-8, the only kind answered directly."""
    content_type = request.META.get("CONTENT_TYPE", "")
    media_type, params = parse_header_parameters(content_type)
    return media_type == "application/json" and is_utf8(params.get("charset", "utf-8"))


def verified_caller_id(request) -> int | None:
    """The user id of a bearer token this worker has verified and still holds.

    None when there is no such token, or when the user row must be read to
    authenticate (revocation on password change, another id field): the
    full cycle then verifies the token and remembers it for next time.
    """
    if jwt_settings.USER_ID_FIELD != "id" or jwt_settings.CHECK_REVOKE_TOKEN:
        return None
    header = request.META.get(jwt_settings.AUTH_HEADER_NAME)
    if not header:
        return None
    parts = header.encode(HTTP_HEADER_ENCODING).split()
    if len(parts) != 2 or parts[0] not in AUTH_HEADER_TYPE_BYTES:
        return None

    token = verified_tokens.get(parts[1], time.time())
    if token is None:
        return None
    claimed = str(token.payload.get(jwt_settings.USER_ID_CLAIM, ""))
    return int(claimed) if claimed.isdigit() else None


class FastPathMixin:
    """Try `answer_directly` before DRF's dispatch (see the module docstring)."""

    def answer_directly(self, request, *args, **kwargs) -> HttpResponse | None:
        raise NotImplementedError

    def dispatch(self, request, *args, **kwargs):
        response = self.answer_directly(request, *args, **kwargs)
        if response is None:
            return super().dispatch(request, *args, **kwargs)
        return response

    def json_response(self, data, status: int) -> HttpResponse:
        """`data` as the full cycle renders it, with the headers it adds."""
        response = HttpResponse(
            _renderer.render(data), content_type="application/json", status=status
        )
        # What APIView.finalize_response adds to every answer of the view.
        headers = self._default_headers()
        vary = headers.pop("Vary", None)
        if vary is not None:
            patch_vary_headers(response, [vary])
        for name, value in headers.items():
            response[name] = value
        return response

    def _default_headers(self) -> dict[str, str]:
        # The same for every request once the view is set up: computed once.
        cls = type(self)
        headers = _DEFAULT_HEADERS.get(cls)
        if headers is None:
            headers = _DEFAULT_HEADERS[cls] = dict(self.default_response_headers)
        return dict(headers)
