"""GET /api/user-segments/{user_id}/odds?base_probability=p."""

import pytest
from django.test import override_settings

from segments.models import UserSegment
from tests.helpers import assert_user_scoped


def url(user_id: int) -> str:
    return f"/api/user-segments/{user_id}/odds"


def test_it_adjusts_for_the_users_segment(alice, alice_client):
    UserSegment.objects.create(user=alice, rfm_group="Whale")

    response = alice_client.get(url(alice.pk), {"base_probability": "0.5"})

    assert response.json() == {
        "user_id": alice.pk,
        "segment": "Whale",
        "base_probability": 0.5,
        "adjusted_probability": 0.52,
        "house_edge": 0.05,
    }


def test_it_treats_a_user_without_segment_as_low(alice, alice_client):
    response = alice_client.get(url(alice.pk), {"base_probability": "0.3"})

    body = response.json()
    assert (body["segment"], body["adjusted_probability"], body["house_edge"]) == (
        "Low",
        0.28,
        0.15,
    )


@override_settings(SEGMENT_PROB_ADJUST={"Medium": 0.3}, HOUSE_EDGE={})
def test_it_follows_the_settings_and_clamps(alice, alice_client):
    UserSegment.objects.create(user=alice, rfm_group="Medium")

    response = alice_client.get(url(alice.pk), {"base_probability": "0.9"})

    body = response.json()
    assert (body["adjusted_probability"], body["house_edge"]) == (1.0, 0.10)


def test_it_is_user_scoped(alice, bob, alice_client, staff_client):
    assert_user_scoped(
        method="get",
        path_for=lambda user: f"{url(user.pk)}?base_probability=0.5",
        owner=alice,
        other=bob,
        owner_client=alice_client,
        staff_client=staff_client,
    )


def test_it_answers_404_for_an_unknown_user(staff_client):
    response = staff_client.get(url(987654321), {"base_probability": "0.5"})

    assert response.status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "",
        "?base_probability=",
        "?base_probability=abc",
        "?base_probability=nan",
        "?base_probability=NaN",
        "?base_probability=inf",
        "?base_probability=-inf",
        "?base_probability=-0.01",
        "?base_probability=1.01",
        "?base_probability=1e400",
        "?base_probability=0.5%00",
        "?base_probability=0.5&base_probability=0.6",
        "?base_probability=0.5&edge=0.2",
    ],
)
def test_it_rejects_a_bad_query(alice, alice_client, query):
    response = alice_client.get(f"{url(alice.pk)}{query}")

    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid"
