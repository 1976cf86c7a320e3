"""The outbox relay: publish what the fast path did not, until the outbox is empty.

Run by `manage.py relay_outbox` (a long-running loop) and by a Celery task
that beat starts every few seconds. Each batch:

1. claims due rows (on PostgreSQL `SELECT ... FOR UPDATE SKIP LOCKED` in a
   transaction that lasts the batch, so relays running side by side split
   the work and a relay that dies mid-batch releases its rows at once);
2. produces them and waits for every delivery report (the producer's
   message timeout bounds the wait);
3. deletes the acknowledged rows, and gives the failed ones another attempt
   later with exponential backoff, noting the error.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import partial

from confluent_kafka import KafkaError, KafkaException
from django.conf import settings
from django.db import connection, transaction

from actions import outbox
from actions.kafka import RELAY_PATH, publishing_enabled, relay_producer
from actions.metrics import KAFKA_DELIVERY_FAILURES, KAFKA_PUBLISHED
from actions.outbox import QueuedEvent

logger = logging.getLogger(__name__)

# A full local queue waits this long for room before producing again.
QUEUE_FULL_WAIT_SECONDS = 0.5


@dataclass
class SweepResult:
    claimed: int = 0
    published: int = 0
    failed: int = 0

    def add(self, other: SweepResult) -> None:
        self.claimed += other.claimed
        self.published += other.published
        self.failed += other.failed


def relay_batch(batch_size: int | None = None) -> SweepResult:
    """Publish one batch of due rows; see the module docstring."""
    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    if connection.vendor != "postgresql":
        # Leased, not locked: see actions.outbox.
        return _publish(outbox.claim_due(batch_size))
    with transaction.atomic():
        return _publish(outbox.claim_due(batch_size))


def _publish(events: list[QueuedEvent]) -> SweepResult:
    if not events:
        return SweepResult()

    producer = relay_producer()
    acked: list[int] = []
    failed: list[tuple[int, str]] = []

    def on_delivery(outbox_id: int, error: KafkaError | None, message) -> None:
        if error is None:
            acked.append(outbox_id)
        else:
            failed.append((outbox_id, str(error)))

    for event in events:
        while True:
            try:
                producer.produce(
                    event.topic,
                    value=event.value,
                    key=event.key,
                    on_delivery=partial(on_delivery, event.outbox_id),
                )
                break
            except BufferError:
                producer.poll(QUEUE_FULL_WAIT_SECONDS)
            except KafkaException as error:
                failed.append((event.outbox_id, str(error)))
                break
    # message.timeout.ms bounds this: every message ends acked or failed.
    producer.flush()

    outbox.delete_published(acked)
    if failed:
        outbox.reschedule_failed(failed)
        KAFKA_DELIVERY_FAILURES.labels(RELAY_PATH).inc(len(failed))
        logger.warning(
            "relay: Kafka did not acknowledge %d of %d events (%s); they are "
            "retried with backoff",
            len(failed),
            len(events),
            failed[0][1],
        )
    KAFKA_PUBLISHED.labels(RELAY_PATH).inc(len(acked))
    return SweepResult(claimed=len(events), published=len(acked), failed=len(failed))


def sweep(
    *, batch_size: int | None = None, max_seconds: float | None = None
) -> SweepResult:
    """Relay batches until nothing is due, a batch fails, or time runs out."""
    total = SweepResult()
    if not publishing_enabled():
        return total

    batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    while True:
        result = relay_batch(batch_size)
        total.add(result)
        if result.claimed < batch_size or result.failed:
            break
        if deadline is not None and time.monotonic() >= deadline:
            break
    if total.claimed:
        logger.info(
            "relay: %d events claimed, %d published, %d failed",
            total.claimed,
            total.published,
            total.failed,
        )
    return total
