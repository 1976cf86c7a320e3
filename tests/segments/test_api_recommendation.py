"""GET /api/user-segments/{user_id}/recommendation."""

import time

import jwt
import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from rest_framework_simplejwt.tokens import AccessToken

from actions.streaks import record_activity, utc_day
from segments.models import UserSegment
from tests.helpers import assert_user_scoped

DEGRADED_TOTAL = "ccweb_recommendation_degraded_total"


def url(user_id: int) -> str:
    return f"/api/user-segments/{user_id}/recommendation"


def degraded_total() -> float:
    return REGISTRY.get_sample_value(DEGRADED_TOTAL) or 0.0


def give_streak(user, days: int, *, ending_days_ago: int = 0) -> None:
    """Record one action a day for `days` consecutive UTC days."""
    last = utc_day(timezone.now()) - ending_days_ago
    record_activity({user.pk: range(last - days + 1, last + 1)})


@pytest.mark.parametrize(
    ("rfm_group", "risk_profile", "probability", "window"),
    [
        ("Whale", "High-Risk", 0.78, "next 2 hours"),
        ("Whale", "Moderate-Risk", 0.63, "next 4 hours"),
        ("High Engaged", "Low-Risk", 0.58, "next 4 hours"),
        ("Medium", "Low-Risk", 0.53, "next 6 hours"),
        ("Medium", "High-Risk", 0.43, "next 6 hours"),
        ("Low", "Unknown", 0.28, "next 24 hours"),
        ("Legacy", "Unknown", 0.13, "any time"),
    ],
)
def test_it_applies_the_table_and_the_streak(
    alice, alice_client, redis_client, rfm_group, risk_profile, probability, window
):
    UserSegment.objects.create(
        user=alice, rfm_group=rfm_group, risk_profile=risk_profile
    )
    give_streak(alice, 3)

    response = alice_client.get(url(alice.pk))

    assert response.json() == {
        "user_id": alice.pk,
        "rfm_group": rfm_group,
        "risk_profile": risk_profile,
        "streak_count": 3,
        "recommended_reward_probability": probability,
        "recommended_time_window": window,
        "degraded": False,
    }


def test_it_treats_a_user_without_segment_as_low_unknown(
    alice, alice_client, redis_client
):
    response = alice_client.get(url(alice.pk))

    body = response.json()
    assert (
        body["rfm_group"],
        body["risk_profile"],
        body["streak_count"],
        body["recommended_reward_probability"],
    ) == ("Low", "Unknown", 0, 0.25)


def test_it_caps_a_long_streak(alice, alice_client, redis_client):
    UserSegment.objects.create(user=alice, rfm_group="Whale", risk_profile="High-Risk")
    give_streak(alice, 40)

    response = alice_client.get(url(alice.pk))

    assert response.json()["recommended_reward_probability"] == 0.95


@pytest.mark.parametrize(("ending_days_ago", "expected"), [(1, 4), (2, 0)])
def test_it_counts_a_streak_only_while_it_lasts(
    alice, alice_client, redis_client, ending_days_ago, expected
):
    give_streak(alice, 4, ending_days_ago=ending_days_ago)

    response = alice_client.get(url(alice.pk))

    assert response.json()["streak_count"] == expected


def test_it_is_user_scoped(alice, bob, alice_client, staff_client, redis_client):
    assert_user_scoped(
        method="get",
        path_for=lambda user: url(user.pk),
        owner=alice,
        other=bob,
        owner_client=alice_client,
        staff_client=staff_client,
    )


def test_it_answers_404_for_an_unknown_user(staff_client, redis_client):
    response = staff_client.get(url(987654321))

    assert response.status_code == 404


def test_it_costs_one_query_for_the_users_own_recommendation(
    alice, alice_client, redis_client, django_assert_num_queries
):
    UserSegment.objects.create(user=alice, rfm_group="Medium")

    # Nothing cached yet: the caller's row and the segment come in one query.
    with django_assert_num_queries(1):
        alice_client.get(url(alice.pk))


def test_it_loads_staff_before_answering_for_another_user(
    alice, staff_client, redis_client, django_assert_num_queries
):
    # The staff account (token check), then alice's row and segment.
    with django_assert_num_queries(2):
        staff_client.get(url(alice.pk))


def test_it_refuses_the_token_of_a_deactivated_user(alice, alice_client):
    alice.is_active = False
    alice.save()

    response = alice_client.get(url(alice.pk))

    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


def test_it_refuses_the_token_of_a_deleted_user(alice, alice_client):
    user_id = alice.pk
    alice.delete()

    response = alice_client.get(url(user_id))

    assert response.status_code == 401
    assert response.json()["code"] == "user_not_found"


def test_it_refuses_a_token_signed_with_another_key(alice, api_client):
    payload = AccessToken.for_user(alice).payload
    forged = jwt.encode(
        payload, "not-the-signing-key-of-this-service-at-all", algorithm="HS256"
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    response = api_client.get(url(alice.pk))

    assert response.status_code == 401


@pytest.fixture
def redis_down(alice, alice_client, redis_client, servers):
    """Alice, a Whale with a 5-day streak, asks while Redis is stopped."""
    UserSegment.objects.create(user=alice, rfm_group="Whale", risk_profile="Unknown")
    give_streak(alice, 5)
    alice_client.get(url(alice.pk))  # a healthy read first: a fresh outage warns

    servers.stop("redis")
    try:
        yield
    finally:
        servers.start("redis")


def timed_get(client, path):
    started = time.monotonic()
    response = client.get(path)
    return response, time.monotonic() - started


def test_it_answers_with_streak_zero_when_redis_is_down(
    alice, alice_client, redis_down
):
    response, _ = timed_get(alice_client, url(alice.pk))

    body = response.json()
    assert response.status_code == 200
    assert (
        body["streak_count"],
        body["recommended_reward_probability"],
        body["degraded"],
    ) == (0, 0.6, True)


def test_it_answers_within_a_second_when_redis_is_down(alice, alice_client, redis_down):
    _, elapsed = timed_get(alice_client, url(alice.pk))

    assert elapsed < 1.0


def test_it_counts_and_logs_each_degraded_answer(
    alice, alice_client, redis_down, caplog
):
    before = degraded_total()

    alice_client.get(url(alice.pk))
    alice_client.get(url(alice.pk))

    assert degraded_total() == before + 2
    assert caplog.text.count("streak reads for recommendations") == 1
