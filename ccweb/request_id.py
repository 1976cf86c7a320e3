"""The id of the request being served, for every log line it causes.

Kept apart from the middleware so that logging can load it before Django's
apps are ready.
"""

from __future__ import annotations

import contextvars
import logging
import re

REQUEST_ID_HEADER = "X-Request-ID"
# A client may pass its own id; anything else is replaced, so logs stay clean.
VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

_request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


def current_request_id() -> str | None:
    return _request_id.get()


def set_request_id(request_id: str | None) -> None:
    _request_id.set(request_id)


class RequestIdLogFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = _request_id.get()
        return True
