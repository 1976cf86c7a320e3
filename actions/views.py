"""POST /api/actions and POST /api/actions/batch."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import NoReturn

from django.contrib.auth import get_user_model
from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.exceptions import AuthenticationFailed, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from actions.authentication import DeferredUserJWTAuthentication
from actions.serializers import (
    ActionBatchSerializer,
    ActionErrorSerializer,
    ActionSerializer,
    StoredActionSerializer,
    StoredBatchSerializer,
    validate_action,
    validate_plain_action,
)
from actions.store import ActionDraft, EventIdConflict, InactiveUsers, store_actions
from ccweb.content import loads_plain
from ccweb.fastpath import (
    FastPathMixin,
    accepts_plain_json,
    sends_json,
    verified_caller_id,
)
from ccweb.permissions import ensure_can_act_for

User = get_user_model()

UNKNOWN_USER = "Unknown user."
ZERO = Decimal("0.00")
CONFLICT_MESSAGE = (
    "This event_id is already stored with other content (user, type, value, "
    "metadata or timestamp)."
)


def _draft(data: dict, caller_id: int, now: datetime) -> ActionDraft:
    given = data.get("action_timestamp")
    event_id = {"event_id": data["event_id"]} if "event_id" in data else {}
    return ActionDraft(
        user_id=data.get("user_id", caller_id),
        action_type=data["action_type"],
        action_timestamp=given or now,
        value=data.get("value", ZERO),
        metadata=data.get("metadata", {}),
        timestamp_given=given is not None,
        **event_id,
    )


def _check_targets(request: Request, user_ids: set[int]) -> list[int]:
    """403 unless the caller may act for every target; returns the unknown ones.

    The permission comes first, so that a user probing ids learns nothing
    about which accounts exist.
    """
    others = user_ids - {request.user.pk}
    for user_id in others:
        ensure_can_act_for(request.user, user_id)
    if not others:
        return []
    known = User.objects.filter(pk__in=others, is_active=True)
    return sorted(others - set(known.values_list("pk", flat=True)))


def _refuse_inactive(request: Request, drafts: list[ActionDraft], errors) -> NoReturn:
    """401 when the caller's own account is gone or inactive, else 400."""
    if any(draft.user_id == request.user.pk for draft in drafts):
        raise AuthenticationFailed("User not found or inactive.", code="user_inactive")
    raise ValidationError(errors)


def _conflict(errors) -> Response:
    return Response(
        {"detail": CONFLICT_MESSAGE, "code": "conflict", "errors": errors},
        status=status.HTTP_409_CONFLICT,
    )


ERRORS = {
    400: OpenApiResponse(
        ActionErrorSerializer, description="Invalid input; nothing stored."
    ),
    401: OpenApiResponse(ActionErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(ActionErrorSerializer, description="Another user's id."),
    409: OpenApiResponse(
        ActionErrorSerializer, description="event_id stored already with other content."
    ),
    415: OpenApiResponse(ActionErrorSerializer, description="Not application/json."),
}


class ActionView(FastPathMixin, APIView):
    authentication_classes = [DeferredUserJWTAuthentication]

    def answer_directly(self, request) -> HttpResponse | None:
        """A user's own action of the plain shape, with a token already verified.

        Everything else (another user's id, an unusual body, any refusal,
        a resent event_id stored with other content) takes the full cycle,
        which stores nothing twice: a refused draft was not stored here.
        """
        if request.method != "POST" or not accepts_plain_json(request):
            return None
        if not sends_json(request):
            return None
        caller_id = verified_caller_id(request)
        if caller_id is None:
            return None
        try:
            validated = validate_plain_action(loads_plain(request.body))
        except ValueError:
            return None
        if validated is None or validated.get("user_id", caller_id) != caller_id:
            return None

        draft = _draft(validated, caller_id, timezone.now())
        try:
            (record,) = store_actions([draft])
        except (EventIdConflict, InactiveUsers):
            return None
        status_code = status.HTTP_201_CREATED if record.created else status.HTTP_200_OK
        return self.json_response(record.as_json(), status=status_code)

    @extend_schema(
        summary="Record a user action",
        description=(
            "Stores the action and queues it for Kafka. user_id defaults to the "
            "caller; another user's id needs staff or a service account. "
            "Resending an event_id returns the first record with 200 and stores "
            "nothing; resending it with other content is a 409."
        ),
        request=ActionSerializer,
        responses={
            201: StoredActionSerializer,
            200: OpenApiResponse(
                StoredActionSerializer, description="event_id stored already."
            ),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        draft = _draft(validate_action(request.data), request.user.pk, timezone.now())
        if _check_targets(request, {draft.user_id}):
            raise ValidationError({"user_id": [UNKNOWN_USER]})

        try:
            (record,) = store_actions([draft])
        except EventIdConflict:
            return _conflict({"event_id": [CONFLICT_MESSAGE]})
        except InactiveUsers:
            _refuse_inactive(request, [draft], {"user_id": [UNKNOWN_USER]})

        return Response(
            record.as_json(),
            status=status.HTTP_201_CREATED if record.created else status.HTTP_200_OK,
        )


class ActionBatchView(APIView):
    authentication_classes = [DeferredUserJWTAuthentication]

    @extend_schema(
        summary="Record up to 500 user actions at once",
        description=(
            "All or nothing: one invalid action makes a 400 with errors keyed by "
            "position, and nothing is stored. An event_id given twice in one "
            "batch is invalid. Actions whose event_id is stored already are "
            "returned as they are, not stored again (201 when at least one "
            "action is new, 200 when none is); one stored with other content "
            "makes the whole batch a 409."
        ),
        request=ActionBatchSerializer,
        responses={
            201: StoredBatchSerializer,
            200: OpenApiResponse(
                StoredBatchSerializer, description="Every event_id stored already."
            ),
            **ERRORS,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = ActionBatchSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        items = serializer.validated_data["actions"]
        _reject_repeated_event_ids(items)
        now = timezone.now()
        drafts = [_draft(item, request.user.pk, now) for item in items]
        unknown = set(_check_targets(request, {draft.user_id for draft in drafts}))
        if unknown:
            raise ValidationError(
                {
                    "actions": {
                        position: {"user_id": [UNKNOWN_USER]}
                        for position, draft in enumerate(drafts)
                        if draft.user_id in unknown
                    }
                }
            )

        try:
            records = store_actions(drafts)
        except EventIdConflict as conflict:
            return _conflict(
                {
                    "actions": {
                        position: {"event_id": [CONFLICT_MESSAGE]}
                        for position in conflict.positions
                    }
                }
            )
        except InactiveUsers as inactive:
            _refuse_inactive(
                request,
                [drafts[position] for position in inactive.positions],
                {
                    "actions": {
                        position: {"user_id": [UNKNOWN_USER]}
                        for position in inactive.positions
                    }
                },
            )

        created = sum(record.created for record in records)
        return Response(
            {
                "created": created,
                "existing": len(records) - created,
                "actions": [record.as_json() for record in records],
            },
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


def _reject_repeated_event_ids(items: list[dict]) -> None:
    seen = set()
    errors = {}
    for position, item in enumerate(items):
        event_id = item.get("event_id")
        if event_id is None:
            continue
        if event_id in seen:
            errors[position] = {"event_id": ["Given twice in this batch."]}
        seen.add(event_id)
    if errors:
        raise ValidationError({"actions": errors})
