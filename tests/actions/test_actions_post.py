"""POST /api/actions: store one action, idempotently, for oneself or as staff."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from actions.models import OutboxEvent, UserAction
from tests.conftest import client_for
from tests.helpers import assert_user_scoped

pytestmark = pytest.mark.django_db


def test_it_stores_the_action_and_answers_with_it(alice, alice_client):
    response = alice_client.post(
        "/api/actions",
        {"action_type": "spin", "value": "12.5", "metadata": {"game": "slots"}},
        format="json",
    )

    assert response.status_code == 201
    body = response.json()
    assert body == {
        "id": UserAction.objects.get().id,
        "event_id": body["event_id"],
        "user_id": alice.pk,
        "action_type": "spin",
        "action_timestamp": body["action_timestamp"],
        "value": "12.50",
        "metadata": {"game": "slots"},
        "created_at": body["created_at"],
    }


def test_it_defaults_value_metadata_and_timestamp(alice_client):
    before = timezone.now()

    response = alice_client.post(
        "/api/actions", {"action_type": "login"}, format="json"
    )

    action = UserAction.objects.get()
    assert (action.value, action.metadata) == (0, {})
    assert before <= action.action_timestamp <= timezone.now()
    assert response.json()["action_timestamp"].endswith("Z")


def test_it_keeps_the_given_timestamp_in_utc(alice_client):
    given = (timezone.now() - timedelta(hours=3)).replace(microsecond=0)
    with_offset = given.astimezone(timezone.get_fixed_timezone(120)).isoformat()

    response = alice_client.post(
        "/api/actions",
        {"action_type": "spin", "action_timestamp": with_offset},
        format="json",
    )

    stored = datetime.fromisoformat(response.json()["action_timestamp"])
    assert stored == given
    assert stored.tzinfo == UTC


def test_it_writes_the_outbox_event_with_the_action(alice, alice_client):
    response = alice_client.post(
        "/api/actions", {"action_type": "spin", "value": 3}, format="json"
    )

    event = OutboxEvent.objects.get()
    assert event.key == str(alice.pk)
    assert event.payload == {
        "event_id": response.json()["event_id"],
        "user_id": alice.pk,
        "action_type": "spin",
        "action_timestamp": response.json()["action_timestamp"],
        "value": "3.00",
        "metadata": {},
    }


def test_it_lets_only_the_owner_or_staff_post_for_a_user(
    alice, bob, alice_client, staff_client
):
    assert_user_scoped(
        method="post",
        path_for=lambda user: "/api/actions",
        owner=alice,
        other=bob,
        owner_client=alice_client,
        staff_client=staff_client,
        body_for=lambda user: {"action_type": "spin", "user_id": user.pk},
    )


def test_it_stores_staff_actions_for_the_named_user(bob, staff_client):
    staff_client.post(
        "/api/actions", {"action_type": "spin", "user_id": bob.pk}, format="json"
    )

    assert UserAction.objects.get().user_id == bob.pk


def test_it_rejects_an_unknown_user_with_400(staff_client, table_counts):
    before = table_counts()

    response = staff_client.post(
        "/api/actions", {"action_type": "spin", "user_id": 987654}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"user_id": ["Unknown user."]}
    assert table_counts() == before


def test_it_hides_whether_a_foreign_id_exists(alice_client):
    response = alice_client.post(
        "/api/actions", {"action_type": "spin", "user_id": 987654}, format="json"
    )

    assert response.status_code == 403


def test_it_returns_the_first_record_for_a_resent_event_id(alice_client, table_counts):
    body = {"action_type": "spin", "value": "1.00", "event_id": str(uuid.uuid4())}
    first = alice_client.post("/api/actions", body, format="json")
    counts = table_counts()

    again = alice_client.post("/api/actions", body, format="json")

    assert (again.status_code, again.json()) == (200, first.json())
    assert table_counts() == counts


def test_it_matches_a_resend_without_timestamp_to_any_stored_time(alice_client):
    event_id = str(uuid.uuid4())
    earlier = (timezone.now() - timedelta(hours=1)).isoformat()
    alice_client.post(
        "/api/actions",
        {"action_type": "spin", "event_id": event_id, "action_timestamp": earlier},
        format="json",
    )

    again = alice_client.post(
        "/api/actions", {"action_type": "spin", "event_id": event_id}, format="json"
    )

    assert again.status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"action_type": "reward_claimed"},
        {"value": "2.00"},
        {"metadata": {"game": "poker"}},
        {"action_timestamp": (timezone.now() - timedelta(hours=2)).isoformat()},
    ],
    ids=["type", "value", "metadata", "timestamp"],
)
def test_it_refuses_a_resent_event_id_with_other_content(
    alice_client, table_counts, change
):
    body = {
        "action_type": "spin",
        "value": "1.00",
        "metadata": {"game": "slots"},
        "event_id": str(uuid.uuid4()),
        "action_timestamp": timezone.now().isoformat(),
    }
    alice_client.post("/api/actions", body, format="json")
    counts = table_counts()

    response = alice_client.post("/api/actions", {**body, **change}, format="json")

    assert response.status_code == 409
    assert table_counts() == counts


def test_it_refuses_another_users_event_id_without_revealing_it(
    alice_client, bob_client
):
    body = {"action_type": "spin", "event_id": str(uuid.uuid4())}
    alice_client.post("/api/actions", body, format="json")

    response = bob_client.post("/api/actions", body, format="json")

    assert response.status_code == 409
    assert "user_id" not in response.json()


def test_it_refuses_a_token_of_an_inactive_account_with_401(alice, table_counts):
    client = client_for(alice)
    alice.is_active = False
    alice.save()

    response = client.post("/api/actions", {"action_type": "spin"}, format="json")

    assert response.status_code == 401
    assert table_counts() == (0, 0)


def test_it_refuses_a_token_of_a_deleted_account_with_401(make_user, table_counts):
    ghost = make_user("ghost")
    client = client_for(ghost)
    ghost.delete()

    response = client.post(
        "/api/actions/batch", {"actions": [{"action_type": "spin"}]}, format="json"
    )

    assert response.status_code == 401
    assert table_counts() == (0, 0)


def test_it_refuses_staff_actions_for_an_inactive_user(staff_client, bob):
    bob.is_active = False
    bob.save()

    response = staff_client.post(
        "/api/actions", {"action_type": "spin", "user_id": bob.pk}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"user_id": ["Unknown user."]}


def test_it_refuses_an_inactive_staff_account(staff, bob):
    client = client_for(staff)
    staff.is_active = False
    staff.save()

    response = client.post(
        "/api/actions", {"action_type": "spin", "user_id": bob.pk}, format="json"
    )

    assert response.status_code == 401


def test_it_stores_an_own_action_in_one_statement(
    alice_client, django_assert_num_queries
):
    # The hot path: no query to load the caller, one for action and outbox.
    with django_assert_num_queries(1):
        response = alice_client.post("/api/actions", {"action_type": "spin"}, "json")

    assert response.status_code == 201
