"""POST /api/actions/batch: up to 500 actions, stored all or none."""

from __future__ import annotations

import uuid

import pytest

from actions.models import OutboxEvent, UserAction

pytestmark = pytest.mark.django_db


def spins(count: int, **fields) -> list[dict]:
    return [
        {"action_type": "spin", "value": number, **fields} for number in range(count)
    ]


def test_it_stores_every_action_of_a_valid_batch(alice_client):
    response = alice_client.post(
        "/api/actions/batch", {"actions": spins(500)}, format="json"
    )

    assert response.status_code == 201
    assert (response.json()["created"], response.json()["existing"]) == (500, 0)
    assert (UserAction.objects.count(), OutboxEvent.objects.count()) == (500, 500)


def test_it_answers_in_the_order_of_the_request(alice_client):
    response = alice_client.post(
        "/api/actions/batch", {"actions": spins(5)}, format="json"
    )

    values = [action["value"] for action in response.json()["actions"]]
    assert values == ["0.00", "1.00", "2.00", "3.00", "4.00"]


def test_it_stores_nothing_when_one_action_is_invalid(alice_client, table_counts):
    actions = [*spins(499), {"action_type": "spin", "value": -5}]

    response = alice_client.post("/api/actions/batch", {"actions": actions}, "json")

    assert response.json()["errors"]["actions"] == {
        "499": {"value": ["Ensure this value is greater than or equal to 0."]}
    }
    assert table_counts() == (0, 0)


def test_it_returns_already_stored_event_ids_without_storing_them(alice_client):
    stored = {"action_type": "spin", "value": 1, "event_id": str(uuid.uuid4())}
    first = alice_client.post("/api/actions", stored, format="json").json()

    response = alice_client.post(
        "/api/actions/batch",
        {"actions": [stored, {"action_type": "bet", "value": 2}]},
        format="json",
    )

    assert response.status_code == 201
    assert response.json()["actions"][0] == first
    assert (response.json()["created"], response.json()["existing"]) == (1, 1)
    assert UserAction.objects.count() == 2


def test_it_answers_200_to_a_batch_stored_before(alice_client, table_counts):
    batch = {"actions": spins(3, metadata={"resend": True})}
    for action in batch["actions"]:
        action["event_id"] = str(uuid.uuid4())
    alice_client.post("/api/actions/batch", batch, format="json")
    counts = table_counts()

    again = alice_client.post("/api/actions/batch", batch, format="json")

    assert (again.status_code, again.json()["existing"]) == (200, 3)
    assert table_counts() == counts


def test_it_refuses_an_event_id_given_twice(alice_client, table_counts):
    event_id = str(uuid.uuid4())
    actions = [
        {"action_type": "spin", "event_id": event_id},
        {"action_type": "spin", "event_id": event_id},
    ]

    response = alice_client.post("/api/actions/batch", {"actions": actions}, "json")

    assert response.status_code == 400
    assert list(response.json()["errors"]["actions"]) == ["1"]
    assert table_counts() == (0, 0)


def test_it_stores_nothing_when_a_stored_event_id_conflicts(alice_client, table_counts):
    stored = {"action_type": "spin", "value": 1, "event_id": str(uuid.uuid4())}
    alice_client.post("/api/actions", stored, format="json")
    counts = table_counts()
    actions = [{"action_type": "bet"}, {**stored, "value": 2}]

    response = alice_client.post("/api/actions/batch", {"actions": actions}, "json")

    assert response.status_code == 409
    assert list(response.json()["errors"]["actions"]) == ["1"]
    assert table_counts() == counts


def test_it_refuses_a_batch_naming_another_user(alice_client, bob, table_counts):
    actions = [{"action_type": "spin"}, {"action_type": "spin", "user_id": bob.pk}]

    response = alice_client.post("/api/actions/batch", {"actions": actions}, "json")

    assert response.status_code == 403
    assert table_counts() == (0, 0)


def test_it_lets_staff_batch_for_several_users(staff_client, alice, bob):
    actions = [
        {"action_type": "spin", "user_id": alice.pk},
        {"action_type": "spin", "user_id": bob.pk},
    ]

    staff_client.post("/api/actions/batch", {"actions": actions}, format="json")

    assert sorted(UserAction.objects.values_list("user_id", flat=True)) == sorted(
        [alice.pk, bob.pk]
    )


def test_it_names_the_actions_of_unknown_users(staff_client, alice, table_counts):
    actions = [
        {"action_type": "spin", "user_id": alice.pk},
        {"action_type": "spin", "user_id": 987654},
    ]

    response = staff_client.post("/api/actions/batch", {"actions": actions}, "json")

    assert response.json()["errors"]["actions"] == {"1": {"user_id": ["Unknown user."]}}
    assert table_counts() == (0, 0)


def test_it_stores_the_same_as_the_orm_path(alice):
    """The PostgreSQL statement and the portable (SQLite) path agree."""
    from django.utils import timezone

    from actions.store import ActionDraft, _store_portable, store_actions

    now = timezone.now()
    drafts = [
        ActionDraft(user_id=alice.pk, action_type="spin", action_timestamp=now),
        ActionDraft(user_id=alice.pk, action_type="bet", action_timestamp=now),
    ]

    fast = store_actions(drafts)
    again = _store_portable(drafts).records

    assert [record.as_json() for record in again] == [
        record.as_json() for record in fast
    ]
    assert [record.created for record in again] == [False, False]


def test_it_refuses_inactive_users_without_postgresql_too(alice, bob):
    from django.utils import timezone

    from actions.store import ActionDraft, InactiveUsers, _store_portable

    bob.is_active = False
    bob.save()
    now = timezone.now()
    drafts = [
        ActionDraft(user_id=alice.pk, action_type="spin", action_timestamp=now),
        ActionDraft(user_id=bob.pk, action_type="spin", action_timestamp=now),
    ]

    with pytest.raises(InactiveUsers) as refused:
        _store_portable(drafts)

    assert refused.value.positions == [1]
    assert not UserAction.objects.exists()
