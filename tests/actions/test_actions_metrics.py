"""The ccweb_ metrics of the actions app."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from actions import metrics
from actions.metrics import OTHER_ACTION_TYPE, count_recorded, outbox_pending

pytestmark = pytest.mark.django_db


def recorded(action_type: str) -> float:
    return (
        REGISTRY.get_sample_value(
            "ccweb_actions_recorded_total", {"action_type": action_type}
        )
        or 0
    )


def test_it_counts_recorded_actions_by_type(
    alice_client, django_capture_on_commit_callbacks
):
    before = recorded("jackpot")

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            "/api/actions/batch",
            {"actions": [{"action_type": "jackpot"}] * 3},
            format="json",
        )

    assert recorded("jackpot") == before + 3


def test_it_counts_types_past_the_limit_as_other(settings, monkeypatch):
    monkeypatch.setattr(metrics, "_known_types", set())
    settings.ACTIONS_METRIC_MAX_TYPES = 1
    count_recorded(["first_type"])
    before = recorded(OTHER_ACTION_TYPE)

    count_recorded(["second_type", "third_type"])

    assert recorded(OTHER_ACTION_TYPE) == before + 2


def test_it_reports_the_outbox_backlog(alice_client):
    alice_client.post(
        "/api/actions/batch", {"actions": [{"action_type": "spin"}] * 4}, "json"
    )

    assert outbox_pending() == 4


def test_it_serves_the_backlog_gauge_on_metrics(client, alice_client):
    alice_client.post("/api/actions", {"action_type": "spin"}, format="json")

    page = client.get("/metrics").content.decode()

    assert "ccweb_outbox_pending 1.0" in page
