"""Fixtures of the actions tests: table counts, Kafka reads, concurrency."""

from __future__ import annotations

import json
import time

import pytest


@pytest.fixture(scope="session", autouse=True)
def _flush_producers_at_the_end(django_db_setup, django_db_blocker):
    """Stop the fast path's thread before the test database goes away."""
    yield
    from actions import kafka

    with django_db_blocker.unblock():
        kafka.shutdown()


@pytest.fixture(autouse=True)
def _no_remembered_streaks():
    """Tests empty Redis and reuse user ids: nothing may be skipped as known."""
    from actions.streaks import forget_recorded

    forget_recorded()


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # The personas' passwords would otherwise cost most of each test's time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fresh_producers():
    """Producers built from the settings of this test, and dropped after it."""
    from actions import kafka

    kafka.shutdown()
    yield
    kafka.shutdown()


@pytest.fixture
def table_counts(db):
    """(actions, outbox events) now: bad input must leave both unchanged."""
    from actions.models import OutboxEvent, UserAction

    def count() -> tuple[int, int]:
        return UserAction.objects.count(), OutboxEvent.objects.count()

    return count


@pytest.fixture
def read_events(kafka_consumer):
    """Read the topic until every wanted event_id came, or fail after `timeout`.

    Returns {event_id: [(key, value), ...]}: more than one entry is a
    duplicate delivery.
    """

    def read(event_ids, timeout: float = 30.0) -> dict[str, list[tuple[str, dict]]]:
        wanted = {str(event_id) for event_id in event_ids}
        found: dict[str, list[tuple[str, dict]]] = {}
        deadline = time.monotonic() + timeout
        while not wanted <= set(found) and time.monotonic() < deadline:
            for message in kafka_consumer.consume(num_messages=500, timeout=0.5):
                if message.error():
                    continue
                value = json.loads(message.value())
                if value.get("event_id") in wanted:
                    found.setdefault(value["event_id"], []).append(
                        (message.key().decode(), value)
                    )
        missing = wanted - set(found)
        assert not missing, f"events never reached the topic: {sorted(missing)}"
        return found

    return read
