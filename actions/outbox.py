"""Outbox rows: claim the due ones, delete the published ones, back off the rest.

A row is due when `available_at` has passed. Two publishers never work on
one row at the same time:

- the fast path owns the rows it writes for one lease: they are written
  with `available_at` OUTBOX_LEASE_SECONDS ahead;
- on PostgreSQL a relay claims due rows by locking them (`FOR UPDATE SKIP
  LOCKED`) for the length of its transaction, which ends after Kafka's
  delivery reports; relays side by side skip each other's rows, and a relay
  that dies releases its rows at once;
- on other databases (SQLite runs one writer at a time and a long
  transaction would stall the API) a relay leases the rows instead, in a
  short transaction of its own.

The lease is longer than Kafka's delivery timeout: by the time it ends,
the message was either acknowledged (and its row deleted) or reported
failed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Case, F, Value, When
from django.utils import timezone

from actions.models import OutboxEvent

# SQLite allows at most 32,766 parameters a statement; stay far below.
PORTABLE_CHUNK = 900
LAST_ERROR_MAX_CHARS = 2_000
MAX_DOUBLINGS = 32

LOCK_SQL_POSTGRES = """
SELECT id, topic, key, payload::text FROM actions_outbox
WHERE available_at <= %(now)s
ORDER BY id
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED
"""
LEASE_SQL_PORTABLE = """
UPDATE actions_outbox SET available_at = %(lease_until)s
WHERE id IN (
    SELECT id FROM actions_outbox
    WHERE available_at <= %(now)s
    ORDER BY id
    LIMIT %(limit)s
)
RETURNING id, topic, key, payload
"""


@dataclass(frozen=True, slots=True)
class QueuedEvent:
    """One outbox row, ready for the producer."""

    outbox_id: int
    topic: str
    key: bytes
    value: bytes


def lease_until(now: datetime | None = None) -> datetime:
    return (now or timezone.now()) + timedelta(seconds=settings.OUTBOX_LEASE_SECONDS)


def claim_due(limit: int, *, now: datetime | None = None) -> list[QueuedEvent]:
    """Claim up to `limit` due rows, oldest first (see the module docstring).

    On PostgreSQL the rows stay claimed until the caller's transaction ends:
    call it inside `transaction.atomic()`.
    """
    now = now or timezone.now()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(LOCK_SQL_POSTGRES, {"now": now, "limit": limit})
        else:
            cursor.execute(
                LEASE_SQL_PORTABLE,
                {"now": now, "lease_until": lease_until(now), "limit": limit},
            )
        rows = cursor.fetchall()
    # RETURNING keeps no order; the oldest first keeps each user's order.
    rows.sort()
    return [
        QueuedEvent(row_id, topic, key.encode(), payload.encode())
        for row_id, topic, key, payload in rows
    ]


def _id_list(outbox_ids: Sequence[int]) -> str:
    # One text parameter: binding thousands of ints one by one costs more
    # than the DELETE itself.
    return ",".join(map(str, outbox_ids))


def delete_published(outbox_ids: Sequence[int]) -> None:
    if not outbox_ids:
        return
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "DELETE FROM actions_outbox "
                "WHERE id = ANY(string_to_array(%s, ',')::bigint[])",
                [_id_list(outbox_ids)],
            )
        return
    for start in range(0, len(outbox_ids), PORTABLE_CHUNK):
        chunk = outbox_ids[start : start + PORTABLE_CHUNK]
        OutboxEvent.objects.filter(id__in=chunk).delete()


def retry_delay_seconds(attempt: int) -> float:
    """The wait after the `attempt`-th failure: base, 2 x base, 4 x base..., capped."""
    base = settings.OUTBOX_RETRY_BASE_SECONDS
    return min(settings.OUTBOX_RETRY_MAX_SECONDS, base * 2 ** max(attempt - 1, 0))


def _backoff_case(now: datetime) -> Case:
    # The attempt count after this failure decides the delay; rows that
    # failed more often than the doubling takes to reach the cap wait the
    # maximum.
    whens = []
    for attempt in range(1, MAX_DOUBLINGS + 1):
        delay = retry_delay_seconds(attempt)
        whens.append(
            When(attempts=attempt - 1, then=Value(now + timedelta(seconds=delay)))
        )
        if delay >= settings.OUTBOX_RETRY_MAX_SECONDS:
            break
    maximum = now + timedelta(seconds=settings.OUTBOX_RETRY_MAX_SECONDS)
    return Case(*whens, default=Value(maximum))


def reschedule_failed(
    failures: Iterable[tuple[int, str]], *, now: datetime | None = None
) -> None:
    """Count a failed attempt on each row, note why, and back it off."""
    now = now or timezone.now()
    ids_by_error: dict[str, list[int]] = defaultdict(list)
    for outbox_id, error in failures:
        ids_by_error[error[:LAST_ERROR_MAX_CHARS]].append(outbox_id)

    for error, outbox_ids in ids_by_error.items():
        for start in range(0, len(outbox_ids), PORTABLE_CHUNK):
            OutboxEvent.objects.filter(
                id__in=outbox_ids[start : start + PORTABLE_CHUNK]
            ).update(
                attempts=F("attempts") + 1,
                last_error=error,
                available_at=_backoff_case(now),
            )


def retry_now(queryset) -> int:
    """Make rows due at once, keeping their attempt count (admin action)."""
    return queryset.update(available_at=timezone.now())
