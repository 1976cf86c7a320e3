"""Input rules of POST /api/actions and /api/actions/batch.

Beyond StrictSerializer's (no unknown fields, no NUL anywhere):

- `action_type`: 1-64 ASCII letters, digits, `_`, `-`, `.`; nothing trimmed.
- `value`: a JSON number or numeric string, finite, >= 0, at most 2 decimal
  places and 16 integer digits (the column); more decimals are rejected,
  never rounded: it is money.
- `action_timestamp`: ISO 8601 with a UTC offset (a naive time is rejected:
  it would be a guess), at most 5 minutes ahead and at most RFM_WINDOW_DAYS
  old; older history comes in through `manage.py import_actions`.
- `metadata`: a JSON object of at most 4 KiB as compact UTF-8 JSON, finite
  numbers, valid Unicode.

`validate_action` applies these rules. For the plain shapes nearly every
client sends (a string type, a number or decimal string, a canonical UUID,
an ISO time with an offset) it checks them directly, about ten times faster
than the serializer; anything else goes through ActionSerializer, which
stays the reference for the rules and the only source of error messages.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.core.validators import RegexValidator
from django.utils import timezone
from rest_framework import serializers

from ccweb.serializers import StrictSerializer

ACTION_TYPE_REGEX = re.compile(r"^[A-Za-z0-9_.\-]{1,64}\Z")
METADATA_MAX_BYTES = 4096
FUTURE_TOLERANCE = timedelta(minutes=5)
BATCH_MAX_ACTIONS = 500
MAX_USER_ID = 2**63 - 1


def encode_metadata(metadata: dict) -> bytes:
    """Compact UTF-8 JSON; ValueError for non-finite numbers or lone surrogates."""
    return json.dumps(
        metadata, ensure_ascii=False, allow_nan=False, separators=(",", ":")
    ).encode()


def metadata_problem(metadata) -> str | None:
    """Why `metadata` cannot be stored, or None when it can."""
    if not isinstance(metadata, dict):
        return "Expected a JSON object."
    try:
        encoded = encode_metadata(metadata)
    except UnicodeEncodeError:
        return "Strings must be valid Unicode (no lone surrogates)."
    except ValueError:
        # Python reads 1e400 as infinity; JSON (and PostgreSQL) cannot hold it.
        return "Numbers must be finite."
    if len(encoded) > METADATA_MAX_BYTES:
        return f"At most {METADATA_MAX_BYTES} bytes of JSON."
    return None


def timestamp_problem(
    moment: datetime, *, now: datetime, oldest: bool = True
) -> str | None:
    """Why `moment` is out of range for the API, or None when it is fine."""
    if moment > now + FUTURE_TOLERANCE:
        return "Must not be more than 5 minutes in the future."
    if oldest and moment < now - timedelta(days=settings.RFM_WINDOW_DAYS):
        return (
            f"Must not be older than {settings.RFM_WINDOW_DAYS} days; "
            "import older history with manage.py import_actions."
        )
    return None


class AwareDateTimeField(serializers.DateTimeField):
    """An ISO 8601 time that carries its offset; returned in UTC."""

    default_error_messages = {
        "naive": "Include a UTC offset, e.g. 2024-05-01T12:00:00Z.",
    }

    def enforce_timezone(self, value: datetime) -> datetime:
        if timezone.is_naive(value):
            self.fail("naive")
        return value.astimezone(UTC)


class MetadataField(serializers.JSONField):
    def to_internal_value(self, data):
        problem = metadata_problem(data)
        if problem:
            raise serializers.ValidationError(problem)
        return data


class ActionSerializer(StrictSerializer):
    action_type = serializers.CharField(
        max_length=64,
        trim_whitespace=False,
        validators=[
            RegexValidator(
                ACTION_TYPE_REGEX,
                "1-64 characters: letters, digits, '_', '-' and '.'.",
            )
        ],
    )
    value = serializers.DecimalField(
        max_digits=18,
        decimal_places=2,
        min_value=Decimal(0),
        required=False,
        help_text="Money amount of the action, 0 when none.",
    )
    metadata = MetadataField(required=False, help_text="A JSON object, at most 4 KiB.")
    action_timestamp = AwareDateTimeField(
        required=False, help_text="When it happened; the time of the request if absent."
    )
    event_id = serializers.UUIDField(
        required=False,
        help_text="Idempotency key: a resend returns the first record, stores nothing.",
    )
    user_id = serializers.IntegerField(
        min_value=1,
        max_value=MAX_USER_ID,
        required=False,
        help_text="Whose action it is; the caller by default.",
    )

    def validate_action_timestamp(self, value: datetime) -> datetime:
        problem = timestamp_problem(value, now=timezone.now())
        if problem:
            raise serializers.ValidationError(problem)
        return value


# --- The fast path of validation ---------------------------------------------

ACTION_FIELDS = frozenset(ActionSerializer._declared_fields)
PLAIN_DECIMAL = re.compile(r"^[0-9]{1,16}(\.[0-9]{1,2})?\Z")
PLAIN_TIMESTAMP = re.compile(
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?"
    r"(Z|[+-][0-9]{2}:[0-9]{2})\Z"
)
PLAIN_UUID = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z"
)
CENTS = Decimal("0.01")


class _NotPlain(Exception):
    """The input is not of a plain shape: let the serializer judge it."""


def _plain_value(raw) -> Decimal:
    if type(raw) is int and 0 <= raw < 10**16:
        return Decimal(raw).quantize(CENTS)
    if type(raw) in (str, float):
        text = raw if type(raw) is str else str(raw)
        if PLAIN_DECIMAL.match(text):
            return Decimal(text).quantize(CENTS)
    raise _NotPlain


def _plain_timestamp(raw, now: datetime) -> datetime:
    if type(raw) is not str or not PLAIN_TIMESTAMP.match(raw):
        raise _NotPlain
    moment = datetime.fromisoformat(raw).astimezone(UTC)
    if timestamp_problem(moment, now=now):
        raise _NotPlain
    return moment


def _plain_action(data) -> dict:
    if type(data) is not dict or not data.keys() <= ACTION_FIELDS:
        raise _NotPlain
    action_type = data.get("action_type")
    if type(action_type) is not str or not ACTION_TYPE_REGEX.match(action_type):
        raise _NotPlain

    validated = {"action_type": action_type}
    if "value" in data:
        validated["value"] = _plain_value(data["value"])
    if "metadata" in data:
        metadata = data["metadata"]
        if type(metadata) is not dict:
            raise _NotPlain
        encoded = encode_metadata(metadata)
        # JSON writes a NUL as the escape \u0000. A text that merely holds a
        # backslash and "u0000" matches too; the serializer then accepts it.
        if len(encoded) > METADATA_MAX_BYTES or b"\\u0000" in encoded:
            raise _NotPlain
        validated["metadata"] = metadata
    if "action_timestamp" in data:
        validated["action_timestamp"] = _plain_timestamp(
            data["action_timestamp"], timezone.now()
        )
    if "event_id" in data:
        event_id = data["event_id"]
        if type(event_id) is not str or not PLAIN_UUID.match(event_id):
            raise _NotPlain
        validated["event_id"] = uuid.UUID(event_id)
    if "user_id" in data:
        user_id = data["user_id"]
        if type(user_id) is not int or not 1 <= user_id <= MAX_USER_ID:
            raise _NotPlain
        validated["user_id"] = user_id
    return validated


def validate_plain_action(data) -> dict | None:
    """The validated fields of an action of the plain shape, else None.

    None does not mean invalid: the serializer judges every other shape.
    """
    try:
        return _plain_action(data)
    except (_NotPlain, ValueError):
        return None


def validate_action(data) -> dict:
    """The validated fields of one action; raises ValidationError as the serializer."""
    validated = validate_plain_action(data)
    if validated is not None:
        return validated

    serializer = ActionSerializer(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data


class ActionListField(serializers.ListField):
    """1 to BATCH_MAX_ACTIONS actions; the length is checked before any item."""

    def to_internal_value(self, data):
        if type(data) is not list:
            return super().to_internal_value(data)
        if not data:
            self.fail("empty")
        if len(data) > BATCH_MAX_ACTIONS:
            raise serializers.ValidationError(
                f"At most {BATCH_MAX_ACTIONS} actions a batch; got {len(data)}."
            )

        validated = []
        errors = {}
        for position, item in enumerate(data):
            try:
                validated.append(validate_action(item))
            except serializers.ValidationError as error:
                errors[position] = error.detail
        if errors:
            raise serializers.ValidationError(errors)
        return validated


class ActionBatchSerializer(StrictSerializer):
    def to_internal_value(self, data):
        # Unknown fields are refused as everywhere; the NUL check is left to
        # the items, each checked on its own, so the error names the item
        # (and 500 actions are not walked twice).
        if isinstance(data, dict) and isinstance(data.get("actions"), list):
            unknown = sorted(set(data) - {"actions"})
            if unknown:
                raise serializers.ValidationError(
                    {name: ["Unknown field."] for name in unknown}
                )
            return serializers.Serializer.to_internal_value(self, data)
        return super().to_internal_value(data)

    actions = ActionListField(
        child=ActionSerializer(),
        allow_empty=False,
        help_text=f"1 to {BATCH_MAX_ACTIONS} actions, stored all or none.",
    )


class StoredActionSerializer(serializers.Serializer):
    """The shape of a stored action in answers (documentation only)."""

    id = serializers.IntegerField()
    event_id = serializers.UUIDField()
    user_id = serializers.IntegerField()
    action_type = serializers.CharField()
    action_timestamp = serializers.DateTimeField()
    value = serializers.DecimalField(max_digits=18, decimal_places=2)
    metadata = serializers.DictField()
    created_at = serializers.DateTimeField()


class StoredBatchSerializer(serializers.Serializer):
    created = serializers.IntegerField(help_text="Actions stored by this request.")
    existing = serializers.IntegerField(
        help_text="Actions whose event_id was stored before (returned as stored)."
    )
    actions = StoredActionSerializer(many=True)


class ActionErrorSerializer(serializers.Serializer):
    """Error body of the action endpoints (shape of ccweb.api).

    `errors` is keyed by field; in a batch, `errors.actions` is keyed by the
    position of each invalid action, holding that action's field errors.
    """

    detail = serializers.CharField()
    code = serializers.CharField()
    errors = serializers.DictField(child=serializers.JSONField(), required=False)
