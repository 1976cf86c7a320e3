"""Helpers of the RFM batch tests: actions placed at exact moments."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model

from actions.models import UserAction
from segments.models import UserSegment

# A Tuesday at noon, far from month ends and daylight-saving changes.
AS_OF = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def act(user, at: datetime, value: str | Decimal = "0") -> UserAction:
    return UserAction.objects.create(
        user=user,
        action_type="spin",
        action_timestamp=at,
        value=Decimal(value),
        event_id=uuid.uuid4(),
    )


def history(
    user, *, recency_days: int, frequency: int, monetary: str, as_of=AS_OF
) -> None:
    """`frequency` actions, the last one `recency_days` UTC days before as_of.

    The whole amount sits on the last action; the others are spread over
    the hours before it, on the same UTC day, so recency is exact.
    """
    last = as_of - timedelta(days=recency_days)
    day_start = last.replace(hour=0, minute=0, second=0, microsecond=0)
    rows = [
        UserAction(
            user=user,
            action_type="spin",
            action_timestamp=day_start + timedelta(minutes=number),
            value=Decimal("0"),
            event_id=uuid.uuid4(),
        )
        for number in range(frequency - 1)
    ]
    rows.append(
        UserAction(
            user=user,
            action_type="purchase",
            action_timestamp=last,
            value=Decimal(monetary),
            event_id=uuid.uuid4(),
        )
    )
    UserAction.objects.bulk_create(rows)


def segment_of(user) -> UserSegment:
    return UserSegment.objects.get(user=user)


def player(username: str):
    """A user who never logs in: no password hashing, so tests stay fast."""
    return get_user_model().objects.create(username=username)
