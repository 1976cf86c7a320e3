"""Request-wide concerns: request ids, body size limit, database outages."""

from __future__ import annotations

import logging
import uuid

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import JsonResponse

from ccweb.request_id import REQUEST_ID_HEADER, VALID_REQUEST_ID, set_request_id

logger = logging.getLogger(__name__)

REQUEST_ID_META_KEY = "HTTP_" + REQUEST_ID_HEADER.upper().replace("-", "_")


class RequestIdMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        # META rather than request.headers: building the headers mapping
        # costs more than the rest of this middleware.
        incoming = request.META.get(REQUEST_ID_META_KEY, "")
        request_id = incoming if VALID_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        request.request_id = request_id
        # Not reset on the way out: Django logs the response (django.request)
        # after the middleware returns, and that line needs the id too. The
        # next request on this thread or task overwrites it.
        set_request_id(request_id)
        response = self.get_response(request)
        response[REQUEST_ID_HEADER] = request_id
        return response


class BodySizeLimitMiddleware:
    """Answer 413 before reading a body larger than MAX_REQUEST_BODY_BYTES."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return JsonResponse(
                {"detail": "Invalid Content-Length header."}, status=400
            )
        limit = settings.MAX_REQUEST_BODY_BYTES
        if length > limit:
            return JsonResponse(
                {"detail": f"Request body too large; the limit is {limit} bytes."},
                status=413,
            )
        return self.get_response(request)


def database_unavailable_response() -> JsonResponse:
    response = JsonResponse(
        {"detail": "The database is unavailable; try again shortly."}, status=503
    )
    response["Retry-After"] = "5"
    return response


class DatabaseUnavailableMiddleware:
    """Turn a lost database connection anywhere into a quick 503 JSON answer."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, (OperationalError, InterfaceError)):
            logger.error("database unavailable: %s", exception)
            return database_unavailable_response()
        return None


_ERROR_CODES = {
    400: "bad_request",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    500: "server_error",
}


def _is_api_path(path: str) -> bool:
    return path.startswith(("/api/", "/health", "/metrics"))


class JsonErrorsMiddleware:
    """Keep error answers under /api/ JSON even where Django renders HTML.

    Django's 404 and 500 handlers are bypassed when DEBUG is on, and some
    errors (a missing trailing slash, a CSRF failure) render HTML templates.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code >= 400
            and _is_api_path(request.path)
            and response.get("Content-Type", "").startswith("text/html")
        ):
            code = _ERROR_CODES.get(
                response.status_code, f"http_{response.status_code}"
            )
            return JsonResponse(
                {"detail": f"{response.reason_phrase}.", "code": code},
                status=response.status_code,
            )
        return response

    def process_exception(self, request, exception):
        if not _is_api_path(request.path) or isinstance(
            exception, (OperationalError, InterfaceError)
        ):
            return None
        logger.exception("unhandled error on %s %s", request.method, request.path)
        return JsonResponse(
            {"detail": "Internal server error.", "code": "server_error"}, status=500
        )


def browser_only(middleware_class):
    """Run `middleware_class` only outside the JSON API.

    Sessions, CSRF cookies, messages and session authentication serve the
    admin and other browser pages. The API authenticates every request with
    a JWT and keeps no session, so skipping them there saves work on every
    API call (a cookie signer, a session lookup) without changing behaviour.
    """

    class BrowserOnly(middleware_class):
        def __call__(self, request):
            if _is_api_path(request.path_info):
                return self.get_response(request)
            return super().__call__(request)

    BrowserOnly.__name__ = BrowserOnly.__qualname__ = (
        f"BrowserOnly{middleware_class.__name__}"
    )
    return BrowserOnly


def _browser_only(dotted_path: str):
    from django.utils.module_loading import import_string

    return browser_only(import_string(dotted_path))


SessionMiddleware = _browser_only(
    "django.contrib.sessions.middleware.SessionMiddleware"
)
AuthenticationMiddleware = _browser_only(
    "django.contrib.auth.middleware.AuthenticationMiddleware"
)
MessageMiddleware = _browser_only(
    "django.contrib.messages.middleware.MessageMiddleware"
)
