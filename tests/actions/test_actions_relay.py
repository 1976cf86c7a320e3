"""The relay's entry points: the command, the Celery task, the beat entry."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from actions.models import OutboxEvent
from actions.tasks import relay_outbox

pytestmark = pytest.mark.django_db


@pytest.fixture
def due_events(alice_client):
    alice_client.post(
        "/api/actions/batch", {"actions": [{"action_type": "spin"}] * 3}, "json"
    )
    OutboxEvent.objects.update(available_at=timezone.now())


def test_it_relays_once_with_the_command(due_events):
    out = io.StringIO()

    call_command("relay_outbox", "--once", stdout=out)

    assert "Published 3 events" in out.getvalue()
    assert not OutboxEvent.objects.exists()


def test_it_relays_from_the_celery_task(due_events):
    result = relay_outbox.apply().get()

    assert result == {"claimed": 3, "published": 3, "failed": 0}


def test_it_refuses_to_run_without_a_broker(settings):
    settings.KAFKA_BROKER = None

    with pytest.raises(CommandError, match="KAFKA_BROKER"):
        call_command("relay_outbox", "--once")


def test_it_leaves_events_waiting_without_a_broker(due_events, settings):
    settings.KAFKA_BROKER = None

    relay_outbox.apply()

    assert OutboxEvent.objects.count() == 3


def test_it_schedules_a_sweep_every_few_seconds():
    task = PeriodicTask.objects.get(task="actions.relay_outbox")

    assert (task.enabled, task.interval.every, task.interval.period) == (
        True,
        5,
        "seconds",
    )


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(1, 1), (2, 2), (3, 4), (5, 16), (6, 30), (40, 30)]
)
def test_it_doubles_the_wait_after_each_failure_up_to_a_cap(attempt, seconds):
    from actions.outbox import retry_delay_seconds

    assert retry_delay_seconds(attempt) == seconds
