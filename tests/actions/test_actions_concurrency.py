"""R6: twenty simultaneous posts of one event_id make exactly one row."""

from __future__ import annotations

import uuid

import pytest

from actions.models import OutboxEvent, UserAction
from tests.conftest import client_for


@pytest.mark.django_db(transaction=True)
def test_it_stores_one_row_for_twenty_simultaneous_posts(alice, run_concurrently):
    body = {"action_type": "spin", "value": "5.00", "event_id": str(uuid.uuid4())}

    def post() -> int:
        return client_for(alice).post("/api/actions", body, format="json").status_code

    statuses = run_concurrently([post] * 20)

    assert sorted(statuses) == [200] * 19 + [201]
    assert UserAction.objects.count() == 1
    assert OutboxEvent.objects.filter(event_id=body["event_id"]).count() <= 1


@pytest.mark.django_db(transaction=True)
def test_it_stores_one_row_per_event_id_for_overlapping_batches(
    alice, run_concurrently
):
    event_ids = [str(uuid.uuid4()) for _ in range(50)]
    actions = [{"action_type": "spin", "event_id": e} for e in event_ids]

    def post(order: list[dict]):
        def call() -> int:
            client = client_for(alice)
            return client.post(
                "/api/actions/batch", {"actions": order}, "json"
            ).status_code

        return call

    # Opposite orders would deadlock if rows were locked in request order.
    statuses = run_concurrently([post(actions), post(actions[::-1])] * 4)

    assert sorted(statuses) == [200] * 7 + [201]
    assert UserAction.objects.count() == 50
