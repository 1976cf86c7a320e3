"""Actions reach Kafka: fast path after commit, relay for what the fast path missed."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from actions import relay
from actions.models import OutboxEvent
from tests.conftest import client_for


def wait_until(check, timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.django_db(transaction=True)
def test_it_publishes_a_posted_action_with_its_user_as_key(alice, read_events):
    response = client_for(alice).post(
        "/api/actions",
        {"action_type": "spin", "value": "2.50", "metadata": {"game": "slots"}},
        format="json",
    )
    posted = response.json()

    ((key, value),) = read_events([posted["event_id"]])[posted["event_id"]]

    assert key == str(alice.pk)
    assert value == {
        "event_id": posted["event_id"],
        "user_id": alice.pk,
        "action_type": "spin",
        "action_timestamp": posted["action_timestamp"],
        "value": "2.50",
        "metadata": {"game": "slots"},
    }


@pytest.mark.django_db(transaction=True)
def test_it_deletes_the_outbox_row_once_kafka_has_the_event(alice):
    client_for(alice).post("/api/actions", {"action_type": "spin"}, format="json")

    assert wait_until(lambda: not OutboxEvent.objects.exists())


@pytest.mark.django_db
def test_it_relays_due_rows_and_deletes_them(alice_client, read_events):
    posted = [
        alice_client.post("/api/actions", {"action_type": "bet"}, "json").json()
        for _ in range(3)
    ]
    # Inside the test's transaction there is no commit, so no fast path: the
    # rows wait for their lease to end, as after a crash.
    OutboxEvent.objects.update(available_at=timezone.now())

    result = relay.sweep()

    assert (result.published, result.failed) == (3, 0)
    assert not OutboxEvent.objects.exists()
    read_events([action["event_id"] for action in posted])


@pytest.mark.django_db
def test_it_leaves_leased_rows_to_the_fast_path(alice_client):
    alice_client.post("/api/actions", {"action_type": "bet"}, "json")

    result = relay.sweep()

    assert result.claimed == 0


@pytest.mark.django_db
def test_it_backs_off_and_notes_the_error_when_kafka_refuses(
    alice_client, settings, fresh_producers
):
    # Nothing listens on port 1: every delivery fails after the timeout.
    settings.KAFKA_BROKER = "127.0.0.1:1"
    settings.KAFKA_MESSAGE_TIMEOUT_MS = 1_000
    alice_client.post("/api/actions", {"action_type": "bet"}, "json")
    OutboxEvent.objects.update(available_at=timezone.now())
    before = timezone.now()

    result = relay.sweep()

    event = OutboxEvent.objects.get()
    assert (result.published, result.failed) == (0, 1)
    assert event.attempts == 1
    assert event.last_error
    assert event.available_at >= before + timezone.timedelta(seconds=1)


@pytest.mark.django_db(transaction=True)
def test_it_answers_201_while_kafka_is_down_and_delivers_later(
    alice, servers, settings, fresh_producers, read_events
):
    settings.KAFKA_MESSAGE_TIMEOUT_MS = 2_000
    client = client_for(alice)
    servers.stop("kafka")
    try:
        started = time.monotonic()
        response = client.post("/api/actions", {"action_type": "spin"}, "json")
        elapsed = time.monotonic() - started
        event_id = response.json()["event_id"]
        # The fast path gives up after the message timeout and backs off.
        assert wait_until(
            lambda: OutboxEvent.objects.filter(
                event_id=event_id, attempts__gte=1
            ).exists()
        )
    finally:
        servers.start("kafka")

    OutboxEvent.objects.update(available_at=timezone.now())
    assert wait_until(lambda: relay.sweep().published >= 1, timeout=60)

    assert (response.status_code, elapsed < 1.0) == (201, True)
    assert read_events([event_id], timeout=60)
    assert not OutboxEvent.objects.exists()
