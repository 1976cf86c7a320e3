"""Kafka producers of the outbox: the fast path and the relay's.

Both are idempotent (`enable.idempotence`, `acks=all`) and are built lazily,
once per process: a producer must never cross a fork, and gunicorn and
Celery prefork both fork. Each is flushed when its process exits (atexit,
and Celery's `worker_process_shutdown`).

The fast path publishes the events of a request right after its commit
without waiting: `produce()` only queues the message. A background thread
serves delivery reports, deletes the rows of acknowledged events in
batches, and backs off the rows of failed ones, so the broker's latency or
absence never reaches the request. The relay (`actions.relay`) uses its own
producer and waits for its reports itself.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from functools import partial

from confluent_kafka import KafkaError, KafkaException, Producer
from django.conf import settings
from django.db import DatabaseError, connection

from actions import outbox
from actions.metrics import KAFKA_DELIVERY_FAILURES, KAFKA_PUBLISHED, OutageLog
from actions.outbox import QueuedEvent

logger = logging.getLogger(__name__)
librdkafka_logger = logging.getLogger("actions.kafka.librdkafka")

FAST_PATH = "fast"
RELAY_PATH = "relay"
SHUTDOWN_FLUSH_SECONDS = 10.0
# Acknowledged ids kept for another delete attempt while the database fails;
# past this the rows are left to the relay (a duplicate, never a loss).
MAX_UNSETTLED = 100_000
IDLE_CLOSE_SECONDS = 2.0

_client_errors = OutageLog("Kafka client (KAFKA_BROKER)")


def _on_client_error(fatal: threading.Event, error: KafkaError) -> None:
    if error.fatal():
        # The idempotent producer cannot go on; the next publish builds a new
        # one, and the relay sends whatever this one left behind.
        logger.error("Kafka producer hit a fatal error and is replaced: %s", error)
        fatal.set()
        return
    _client_errors.failed(KafkaException(error))


def producer_config(purpose: str, fatal: threading.Event) -> dict:
    return {
        "bootstrap.servers": settings.KAFKA_BROKER,
        "client.id": f"ccweb-{purpose}-{os.getpid()}",
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.KAFKA_LINGER_MS,
        # Bounds how long a message may wait for the broker. It must stay
        # below OUTBOX_LEASE_SECONDS (see actions.outbox).
        "message.timeout.ms": settings.KAFKA_MESSAGE_TIMEOUT_MS,
        "socket.connection.setup.timeout.ms": 5_000,
        "reconnect.backoff.max.ms": 2_000,
        "error_cb": partial(_on_client_error, fatal),
        "logger": librdkafka_logger,
        "log.connection.close": False,
    }


def publishing_enabled() -> bool:
    return bool(settings.KAFKA_BROKER)


# --- Fast path ----------------------------------------------------------------


class FastPublisher:
    """Queues events after commit; a thread settles their delivery reports."""

    poll_seconds = 0.1

    def __init__(self) -> None:
        self.fatal = threading.Event()
        self.producer = Producer(producer_config(FAST_PATH, self.fatal))
        self._acked: deque[int] = deque()
        self._failed: deque[tuple[int, str]] = deque()
        self._unsettled: list[int] = []
        self._stopping = threading.Event()
        self._retiring = False
        self._idle_since = time.monotonic()
        self._thread = threading.Thread(
            target=self._pump, name="outbox-fast-path", daemon=True
        )
        self._thread.start()

    def publish(self, events: Sequence[QueuedEvent]) -> int:
        """Queue `events`; returns how many were queued (the relay sends the rest)."""
        for queued, event in enumerate(events):
            try:
                self.producer.produce(
                    event.topic,
                    value=event.value,
                    key=event.key,
                    on_delivery=partial(self._on_delivery, event.outbox_id),
                )
            except (BufferError, KafkaException) as error:
                # A full local queue (a long outage) or a dead producer: the
                # rows are in the outbox, the relay takes them after the lease.
                KAFKA_DELIVERY_FAILURES.labels(FAST_PATH).inc(len(events) - queued)
                _client_errors.failed(error)
                return queued
        return len(events)

    def _on_delivery(self, outbox_id: int, error: KafkaError | None, message) -> None:
        if error is None:
            self._acked.append(outbox_id)
        else:
            self._failed.append((outbox_id, str(error)))

    def _pump(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self.producer.poll(self.poll_seconds)
                    self.settle()
                    if self._retiring and len(self.producer) == 0:
                        return
                except Exception:
                    # The thread must outlive any one failure, or rows would
                    # wait for the relay until their lease ends.
                    logger.exception("outbox fast path: settling reports failed")
                    self._stopping.wait(1.0)
        finally:
            connection.close()

    def settle(self) -> None:
        """Delete acknowledged rows and back off failed ones, in batches."""
        newly_acked = _drain(self._acked)
        acked = self._unsettled + newly_acked
        failed = _drain(self._failed)
        self._unsettled = []
        if not acked and not failed:
            self._close_when_idle()
            return
        self._idle_since = time.monotonic()

        KAFKA_PUBLISHED.labels(FAST_PATH).inc(len(newly_acked))
        try:
            outbox.delete_published(acked)
        except DatabaseError as error:
            logger.warning(
                "outbox fast path: could not delete published rows: %s", error
            )
            connection.close()
            self._unsettled = acked[-MAX_UNSETTLED:]
        if failed:
            KAFKA_DELIVERY_FAILURES.labels(FAST_PATH).inc(len(failed))
            _client_errors.failed(KafkaException(failed[0][1]))
            try:
                outbox.reschedule_failed(failed)
            except DatabaseError as error:
                # The rows keep their lease and are retried when it ends.
                logger.warning("outbox fast path: could not back off rows: %s", error)
                connection.close()
        else:
            _client_errors.succeeded()

    def _close_when_idle(self) -> None:
        # Give the connection back after a quiet spell, so an idle process
        # holds none, without reconnecting between two busy moments.
        if (
            connection.connection is not None
            and time.monotonic() - self._idle_since > IDLE_CLOSE_SECONDS
        ):
            connection.close()

    def retire(self) -> None:
        """Stop the thread once the messages already queued are settled."""
        self._retiring = True

    def close(self, timeout: float = SHUTDOWN_FLUSH_SECONDS) -> None:
        """Wait for queued messages, stop the thread, settle the last reports."""
        left = self.producer.flush(timeout)
        self._stopping.set()
        self._thread.join(timeout=2 * self.poll_seconds + 1)
        try:
            self.settle()
        except DatabaseError as error:
            logger.warning("outbox fast path: final settle failed: %s", error)
        if left:
            logger.warning(
                "outbox fast path: %d messages unconfirmed at shutdown; the relay "
                "publishes them again after their lease",
                left,
            )


def _drain(queue: deque) -> list:
    items = []
    while queue:
        items.append(queue.popleft())
    return items


# --- One producer per process --------------------------------------------------

_lock = threading.Lock()
_fast: dict = {"pid": None, "publisher": None}
# Relay producers, one per relay thread: each waits for its own reports.
_relay: dict = {"pid": None, "producers": {}}
# Clients inherited through a fork are kept referenced and never touched:
# freeing one would make librdkafka wait for threads that only the parent has.
_inherited: list[object] = []
_shutdown_registered_for: set[int] = set()


def fast_publisher() -> FastPublisher | None:
    """This process's fast-path publisher, or None when publishing is off."""
    if not publishing_enabled():
        return None
    pid = os.getpid()
    publisher = _fast["publisher"]
    if _fast["pid"] == pid and publisher is not None and not publisher.fatal.is_set():
        return publisher

    with _lock:
        publisher = _fast["publisher"]
        if _fast["pid"] == pid and publisher is not None:
            if not publisher.fatal.is_set():
                return publisher
            publisher.retire()
        elif publisher is not None:
            _inherited.append(publisher)
        publisher = FastPublisher()
        _fast.update(pid=pid, publisher=publisher)
        _register_shutdown(pid)
        return publisher


def relay_producer() -> Producer:
    """This thread's relay producer (publishing must be on)."""
    pid = os.getpid()
    thread = threading.get_ident()
    with _lock:
        if _relay["pid"] != pid:
            _inherited.extend(_relay["producers"].values())
            _relay.update(pid=pid, producers={})
        current = _relay["producers"].get(thread)
        if current is not None and not current[1].is_set():
            return current[0]
        fatal = threading.Event()
        producer = Producer(producer_config(RELAY_PATH, fatal))
        _relay["producers"][thread] = (producer, fatal)
        _register_shutdown(pid)
        return producer


def _register_shutdown(pid: int) -> None:
    if pid not in _shutdown_registered_for:
        _shutdown_registered_for.add(pid)
        atexit.register(shutdown)


def shutdown(**_signal_kwargs) -> None:
    """Flush this process's producers (atexit, Celery worker_process_shutdown)."""
    pid = os.getpid()
    with _lock:
        publisher = _fast["publisher"] if _fast["pid"] == pid else None
        producers = list(_relay["producers"].values()) if _relay["pid"] == pid else []
        if publisher is not None:
            _fast.update(pid=None, publisher=None)
        if producers:
            _relay.update(pid=None, producers={})
    if publisher is not None:
        publisher.close()
    for producer, _ in producers:
        left = producer.flush(SHUTDOWN_FLUSH_SECONDS)
        if left:
            logger.warning("relay: %d messages unconfirmed at shutdown", left)
