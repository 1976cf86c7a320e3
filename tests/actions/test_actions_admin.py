"""Actions and outbox events in the admin."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from actions.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(make_user):
    client = Client()
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def failed_event(alice_client):
    alice_client.post("/api/actions", {"action_type": "spin"}, format="json")
    OutboxEvent.objects.update(
        attempts=4,
        last_error="KafkaError: broker down",
        available_at=timezone.now() + timedelta(minutes=5),
    )
    return OutboxEvent.objects.get()


def test_it_lists_actions_read_only(admin_client, alice_client):
    alice_client.post("/api/actions", {"action_type": "spin"}, format="json")

    listing = admin_client.get("/admin/actions/useraction/")
    adding = admin_client.get("/admin/actions/useraction/add/")

    assert (listing.status_code, adding.status_code) == (200, 403)


def test_it_filters_failed_outbox_events(admin_client, failed_event):
    response = admin_client.get("/admin/actions/outboxevent/?delivery=failed")

    assert "broker down" in response.content.decode()


def test_it_retries_an_outbox_event_now_keeping_its_attempts(
    admin_client, failed_event
):
    admin_client.post(
        "/admin/actions/outboxevent/",
        {"action": "retry_now", "_selected_action": [failed_event.pk]},
    )

    failed_event.refresh_from_db()
    assert failed_event.available_at <= timezone.now()
    assert failed_event.attempts == 4


def test_it_never_edits_an_outbox_event_by_hand(admin_client, failed_event):
    response = admin_client.post(
        f"/admin/actions/outboxevent/{failed_event.pk}/change/", {"key": "0"}
    )

    failed_event.refresh_from_db()
    assert response.status_code == 403
    assert failed_event.key != "0"
