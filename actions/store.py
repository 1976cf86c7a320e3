"""Store actions with their outbox events, idempotently, in one transaction.

`store_actions` is the one way actions enter the database from the API:

- each action and its outbox event are written together, or not at all,
  and only for a user who exists and is active;
- an `event_id` that is already stored is not stored again: the first
  record is returned, marked `created=False`; when the resend differs from
  it (another user, type, value, metadata or an explicit timestamp) the
  whole call fails with EventIdConflict and stores nothing;
- after the commit the new events go to Kafka on the fast path, the
  streaks are updated and the metrics counted; none of that can fail the
  call.

On PostgreSQL one statement does the writes: `INSERT ... ON CONFLICT
(event_id) DO NOTHING` for the actions, chained to the outbox insert. It
is atomic on its own, costs one round trip whatever the batch size, and is
safe under any concurrency: twenty requests racing with one event_id make
one row, and the other nineteen read it back. Single actions stored at the
same moment by threads of one process share that statement
(actions.combining). Other databases (SQLite, the embedded default) use the
ORM inside a transaction.
"""

from __future__ import annotations

import functools
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

import orjson
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import DatabaseError, IntegrityError, connection, transaction
from django.utils import timezone

from actions.combining import InsertCombiner, Inserted, InsertRows
from actions.kafka import fast_publisher, publishing_enabled
from actions.metrics import OutageLog, count_recorded
from actions.models import OutboxEvent, UserAction
from actions.outbox import QueuedEvent, lease_until
from actions.streaks import days_by_user, record_activity_or_warn

CENTS = Decimal("0.01")
_fast_path_errors = OutageLog("outbox fast path (the relay publishes instead)")


def format_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, as every answer and event carries it."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def encode_json(value) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:
        # Integers past 64 bits are valid JSON that orjson does not write.
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


@dataclass(slots=True)
class ActionDraft:
    """A valid action not stored yet."""

    user_id: int
    action_type: str
    action_timestamp: datetime
    value: Decimal = Decimal("0.00")
    metadata: dict = field(default_factory=dict)
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    # A resend that omits the timestamp matches any stored one.
    timestamp_given: bool = True

    def payload(self) -> dict:
        """The Kafka message value (docs/ingestion.md)."""
        return {
            "event_id": str(self.event_id),
            "user_id": self.user_id,
            "action_type": self.action_type,
            "action_timestamp": format_timestamp(self.action_timestamp),
            "value": str(self.value.quantize(CENTS)),
            "metadata": self.metadata,
        }

    def matches(self, stored: StoredAction) -> bool:
        return (
            self.user_id == stored.user_id
            and self.action_type == stored.action_type
            and self.value == stored.value
            and self.metadata == stored.metadata
            and (
                not self.timestamp_given
                or self.action_timestamp == stored.action_timestamp
            )
        )


@dataclass(slots=True)
class StoredAction:
    id: int
    event_id: uuid.UUID
    user_id: int
    action_type: str
    action_timestamp: datetime
    value: Decimal
    metadata: dict
    created_at: datetime
    # False when an earlier request stored this event_id.
    created: bool = True
    # The event payload and created_at, already rendered (new records only):
    # answering a batch of 500 then formats nothing twice.
    rendered: tuple[dict, str] | None = None

    @classmethod
    def from_model(cls, action: UserAction, *, created: bool) -> StoredAction:
        return cls(
            id=action.id,
            event_id=action.event_id,
            user_id=action.user_id,
            action_type=action.action_type,
            action_timestamp=action.action_timestamp,
            value=action.value,
            metadata=action.metadata,
            created_at=action.created_at,
            created=created,
        )

    def as_json(self) -> dict:
        if self.rendered is not None:
            payload, created_at = self.rendered
            return {"id": self.id, **payload, "created_at": created_at}
        return {
            "id": self.id,
            "event_id": str(self.event_id),
            "user_id": self.user_id,
            "action_type": self.action_type,
            "action_timestamp": format_timestamp(self.action_timestamp),
            "value": str(self.value.quantize(CENTS)),
            "metadata": self.metadata,
            "created_at": format_timestamp(self.created_at),
        }


class InactiveUsers(Exception):
    """Some actions name a user who does not exist or is inactive."""

    def __init__(self, positions: list[int]) -> None:
        super().__init__(f"no active user for the actions at {positions}")
        self.positions = positions


class EventIdConflict(Exception):
    """Some event_ids are stored already, with different content."""

    def __init__(self, positions: list[int]) -> None:
        super().__init__(f"event_id already stored with other content: {positions}")
        self.positions = positions


# --- Storing ------------------------------------------------------------------

# The events travel as one JSON array, the very payloads Kafka will carry;
# PostgreSQL takes the columns out of them.
INSERT_SQL = """
WITH input AS (
    SELECT (event->>'user_id')::bigint AS user_id,
           event->>'action_type' AS action_type,
           (event->>'action_timestamp')::timestamptz AS action_timestamp,
           (event->>'value')::numeric(18, 2) AS value,
           event->'metadata' AS metadata,
           (event->>'event_id')::uuid AS event_id,
           event AS payload
    FROM jsonb_array_elements(%(events)s::jsonb) AS event
), stored AS (
    INSERT INTO user_actions
        (user_id, action_type, action_timestamp, value, metadata, event_id, created_at)
    SELECT user_id, action_type, action_timestamp, value, metadata, event_id,
           %(now)s
    FROM input
    -- Only for accounts that exist and are active: the callers of the API are
    -- not loaded before (actions.authentication), this is their check.
    WHERE EXISTS (
        SELECT 1 FROM __users__ AS account
        WHERE account.id = input.user_id AND account.is_active
    )
    -- One order for everyone: overlapping batches wait, never deadlock.
    ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING id, event_id
), queued AS (
    INSERT INTO actions_outbox
        (event_id, topic, key, payload, created_at, attempts, available_at, last_error)
    SELECT input.event_id, %(topic)s, input.user_id::text, input.payload, %(now)s,
           0, %(available_at)s, ''
    FROM stored JOIN input USING (event_id)
    RETURNING id, event_id
)
SELECT stored.id, stored.event_id, queued.id
FROM stored JOIN queued USING (event_id)
"""


@dataclass
class _Written:
    records: list[StoredAction]
    events: list[QueuedEvent]


def store_actions(drafts: Sequence[ActionDraft]) -> list[StoredAction]:
    """Store `drafts` (event_ids distinct); records in the same order.

    Stores nothing and raises EventIdConflict when a stored event_id comes
    back with different content, or InactiveUsers when an action names a
    user who does not exist or is inactive.
    """
    if connection.vendor != "postgresql":
        written = _store_portable(drafts)
    elif len(drafts) == 1:
        # One statement is a transaction of its own. Outside a transaction
        # it may be shared with other requests' single actions
        # (actions.combining): inside one, its rows must commit with it.
        combine = (
            settings.ACTIONS_COMBINE_INSERTS
            and connection.get_autocommit()
            and not connection.in_atomic_block
        )
        written = _store_postgres(drafts, _combiner.insert if combine else _insert)
    else:
        with transaction.atomic():
            written = _store_postgres(drafts, _insert)

    new = [record for record in written.records if record.created]
    if new:
        transaction.on_commit(lambda: after_commit(new, written.events), robust=True)
    return written.records


def _available_at(now: datetime) -> datetime:
    # With a broker the fast path owns the new rows for one lease; without
    # one they are due at once, for the relay that will come.
    return lease_until(now) if publishing_enabled() else now


def _insert(event_ids: Sequence[uuid.UUID], payloads: Sequence[str]) -> Inserted:
    """Run INSERT_SQL for `payloads`, the events of `event_ids`, on this thread."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            _insert_sql(),
            {
                "events": "[" + ",".join(payloads) + "]",
                "now": now,
                "topic": settings.KAFKA_TOPIC_USER_ACTIONS,
                "available_at": _available_at(now),
            },
        )
        inserted = {row[1]: (row[0], row[2]) for row in cursor.fetchall()}
    return inserted, now


_combiner = InsertCombiner(_insert, retry_alone_on=(DatabaseError,))


def _store_postgres(drafts: Sequence[ActionDraft], insert: InsertRows) -> _Written:
    payload_dicts = [draft.payload() for draft in drafts]
    payloads = [encode_json(payload) for payload in payload_dicts]
    inserted, now = insert([draft.event_id for draft in drafts], payloads)
    created_at = format_timestamp(now)
    topic = settings.KAFKA_TOPIC_USER_ACTIONS

    records: list[StoredAction | None] = []
    events = []
    missing = []
    for position, draft in enumerate(drafts):
        ids = inserted.get(draft.event_id)
        if ids is None:
            records.append(None)
            missing.append(position)
            continue
        action_id, outbox_id = ids
        payload = payloads[position]
        records.append(
            _record(draft, action_id, now, (payload_dicts[position], created_at))
        )
        events.append(
            QueuedEvent(outbox_id, topic, str(draft.user_id).encode(), payload.encode())
        )
    if missing:
        existing, not_found = _existing(drafts, missing)
        if not_found:
            raise InactiveUsers(not_found)
        for position, record in existing.items():
            records[position] = record
    return _Written(records, events)


@functools.cache
def _insert_sql() -> str:
    users = get_user_model()._meta.db_table
    return INSERT_SQL.replace("__users__", connection.ops.quote_name(users))


def _store_portable(drafts: Sequence[ActionDraft]) -> _Written:
    now = timezone.now()
    available_at = _available_at(now)
    topic = settings.KAFKA_TOPIC_USER_ACTIONS
    try:
        with transaction.atomic():
            existing, _ = _existing(drafts, range(len(drafts)))
            new = [
                (position, draft)
                for position, draft in enumerate(drafts)
                if position not in existing
            ]
            active = set(
                get_user_model()
                .objects.filter(
                    pk__in={draft.user_id for _, draft in new}, is_active=True
                )
                .values_list("pk", flat=True)
            )
            inactive = [
                position for position, draft in new if draft.user_id not in active
            ]
            if inactive:
                raise InactiveUsers(inactive)
            actions = UserAction.objects.bulk_create(
                [
                    UserAction(
                        user_id=draft.user_id,
                        action_type=draft.action_type,
                        action_timestamp=draft.action_timestamp,
                        value=draft.value,
                        metadata=draft.metadata,
                        event_id=draft.event_id,
                        created_at=now,
                    )
                    for _, draft in new
                ]
            )
            payloads = [draft.payload() for _, draft in new]
            rows = OutboxEvent.objects.bulk_create(
                [
                    OutboxEvent(
                        event_id=draft.event_id,
                        topic=topic,
                        key=str(draft.user_id),
                        payload=payload,
                        created_at=now,
                        available_at=available_at,
                    )
                    for (_, draft), payload in zip(new, payloads, strict=True)
                ]
            )
    except IntegrityError:
        # Another writer stored one of these event_ids meanwhile (PostgreSQL
        # only; SQLite runs one writer at a time): start over, it now counts
        # as existing.
        return _store_portable(drafts)

    records: list[StoredAction | None] = [None] * len(drafts)
    for position, record in existing.items():
        records[position] = record
    created_at = format_timestamp(now)
    for (position, draft), action, payload in zip(new, actions, payloads, strict=True):
        records[position] = _record(draft, action.id, now, (payload, created_at))
    events = [
        QueuedEvent(row.id, topic, row.key.encode(), encode_json(payload).encode())
        for row, payload in zip(rows, payloads, strict=True)
    ]
    return _Written(records, events)


def _record(
    draft: ActionDraft, action_id: int, now: datetime, rendered: tuple[dict, str]
) -> StoredAction:
    return StoredAction(
        id=action_id,
        event_id=draft.event_id,
        user_id=draft.user_id,
        action_type=draft.action_type,
        action_timestamp=draft.action_timestamp,
        value=draft.value,
        metadata=draft.metadata,
        created_at=now,
        rendered=rendered,
    )


def _existing(
    drafts: Sequence[ActionDraft], positions
) -> tuple[dict[int, StoredAction], list[int]]:
    """Stored records of drafts whose event_id is stored already.

    Returns ({position: record}, positions with no stored record). Raises
    EventIdConflict when a stored record differs from its draft.
    """
    wanted = {drafts[position].event_id: position for position in positions}
    if not wanted:
        return {}, []
    found = {
        action.event_id: action
        for action in UserAction.objects.filter(event_id__in=list(wanted))
    }
    existing = {}
    not_found = []
    conflicts = []
    for event_id, position in wanted.items():
        action = found.get(event_id)
        if action is None:
            not_found.append(position)
            continue
        record = StoredAction.from_model(action, created=False)
        if drafts[position].matches(record):
            existing[position] = record
        else:
            conflicts.append(position)
    if conflicts:
        raise EventIdConflict(sorted(conflicts))
    return existing, sorted(not_found)


# --- After the commit ---------------------------------------------------------


def after_commit(records: list[StoredAction], events: list[QueuedEvent]) -> None:
    """Fast-path publish, streaks, metrics. Never raises into the request."""
    if events:
        try:
            publisher = fast_publisher()
            if publisher is not None:
                publisher.publish(events)
        except Exception as error:
            # The rows are in the outbox; the relay takes them after the lease.
            _fast_path_errors.failed(error)
    record_activity_or_warn(
        days_by_user((record.user_id, record.action_timestamp) for record in records)
    )
    count_recorded(record.action_type for record in records)
