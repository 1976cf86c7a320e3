"""The recommendation's user profile cached in Redis (segments.profile_cache).

Writes inside a test's transaction never commit, so the markers they set
after commit run at the end of `django_capture_on_commit_callbacks`, which
is where a real commit would run them.
"""

from __future__ import annotations

import logging
import os

import pytest
from django.contrib.auth.models import update_last_login
from django.core.management.sql import emit_post_migrate_signal
from prometheus_client import REGISTRY

from segments.models import UserSegment
from segments.profile_cache import (
    GENERATION_KEY,
    VERSION_MARGIN_SECONDS,
    load_profile,
    mark_all_stale,
    mark_user_stale,
    profile_key,
    read_cached,
    store_profile,
    version_key,
)
from segments.rfm import compute_rfm_and_update_segments
from tests.helpers import run_manage
from tests.segments.rfm_helpers import AS_OF, history

CACHE_TOTAL = "ccweb_segment_profile_cache_total"
INVALIDATION_FAILURES = "ccweb_segment_profile_invalidation_failures_total"


def url(user_id: int) -> str:
    return f"/api/user-segments/{user_id}/recommendation"


def cache_total(result: str) -> float:
    return REGISTRY.get_sample_value(CACHE_TOTAL, {"result": result}) or 0.0


@pytest.fixture
def cached_alice(alice, alice_client, redis_client):
    """Alice, Medium / Low-Risk, whose profile her recommendations have cached.

    The first request finds no markers and creates them; the second caches
    the profile under them.
    """
    UserSegment.objects.create(user=alice, rfm_group="Medium", risk_profile="Low-Risk")
    alice_client.get(url(alice.pk))
    alice_client.get(url(alice.pk))
    return alice


def test_it_answers_a_cached_profile_without_a_query(
    cached_alice, alice_client, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = alice_client.get(url(cached_alice.pk))

    assert response.json()["rfm_group"] == "Medium"


def test_it_reads_the_database_once_on_a_miss(
    alice, alice_client, redis_client, django_assert_num_queries
):
    with django_assert_num_queries(1):
        response = alice_client.get(url(alice.pk))

    assert response.status_code == 200


def test_it_reflects_a_new_group_after_an_rfm_run(
    cached_alice, alice_client, django_capture_on_commit_callbacks
):
    history(cached_alice, recency_days=0, frequency=30, monetary="10000")

    with django_capture_on_commit_callbacks(execute=True):
        compute_rfm_and_update_segments(AS_OF)
    response = alice_client.get(url(cached_alice.pk))

    assert response.json()["rfm_group"] == "Whale"


def test_it_reflects_a_new_risk_profile_at_once(
    cached_alice, alice_client, staff_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        staff_client.patch(
            f"/api/user-segments/{cached_alice.pk}",
            {"risk_profile": "High-Risk"},
            format="json",
        )
    response = alice_client.get(url(cached_alice.pk))

    assert response.json()["risk_profile"] == "High-Risk"


@pytest.mark.django_db(transaction=True)
def test_it_marks_the_profile_stale_when_the_change_really_commits(
    alice, alice_client, staff_client, redis_client
):
    alice_client.get(url(alice.pk))

    staff_client.patch(
        f"/api/user-segments/{alice.pk}", {"risk_profile": "High-Risk"}, format="json"
    )
    response = alice_client.get(url(alice.pk))

    assert response.json()["risk_profile"] == "High-Risk"


def test_it_refuses_a_deactivated_user_at_once(
    cached_alice, alice_client, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        cached_alice.is_active = False
        cached_alice.save(update_fields=["is_active"])
    response = alice_client.get(url(cached_alice.pk))

    assert (response.status_code, response.json()["code"]) == (401, "user_inactive")


def test_it_refuses_the_token_of_a_deleted_user_at_once(
    cached_alice, alice_client, django_capture_on_commit_callbacks
):
    user_id = cached_alice.pk

    with django_capture_on_commit_callbacks(execute=True):
        cached_alice.delete()
    response = alice_client.get(url(user_id))

    assert (response.status_code, response.json()["code"]) == (401, "user_not_found")


def test_it_answers_404_to_staff_for_a_deleted_user(
    cached_alice, staff_client, django_capture_on_commit_callbacks
):
    user_id = cached_alice.pk

    with django_capture_on_commit_callbacks(execute=True):
        cached_alice.delete()
    response = staff_client.get(url(user_id))

    assert response.status_code == 404


def test_it_keeps_the_profile_cached_across_a_login(
    cached_alice, alice_client, django_assert_num_queries
):
    # Saving last_login (admin logins) leaves the cached profile right.
    update_last_login(None, cached_alice)

    with django_assert_num_queries(0):
        alice_client.get(url(cached_alice.pk))


@pytest.mark.parametrize(
    "mark_stale",
    [lambda user_id: mark_all_stale(), mark_user_stale],
    ids=["new-generation", "new-user-version"],
)
def test_it_reloads_a_profile_a_slow_reader_cached_after_a_change(
    alice, alice_client, redis_client, mark_stale
):
    UserSegment.objects.create(user=alice, rfm_group="Medium")
    # A reader reads the markers and the database, then stalls ...
    slow_read = read_cached(alice.pk)
    old_profile = load_profile(alice.pk)
    # ... while a writer commits a new group and marks the profile stale,
    UserSegment.objects.filter(user=alice).update(rfm_group="Whale")
    mark_stale(alice.pk)
    # ... and only then caches what it read.
    store_profile(alice.pk, slow_read, old_profile)

    response = alice_client.get(url(alice.pk))

    assert response.json()["rfm_group"] == "Whale"


def test_it_reloads_every_profile_after_migrations(
    cached_alice, alice_client, django_capture_on_commit_callbacks
):
    UserSegment.objects.filter(user=cached_alice).update(rfm_group="Whale")

    with django_capture_on_commit_callbacks(execute=True):
        emit_post_migrate_signal(verbosity=0, interactive=False, db="default")
    response = alice_client.get(url(cached_alice.pk))

    assert response.json()["rfm_group"] == "Whale"


def no_change(user_id: int) -> None:
    return None


@pytest.mark.parametrize(
    ("cached_before", "change", "result"),
    [
        (False, no_change, "miss"),
        (True, no_change, "hit"),
        (True, lambda user_id: mark_all_stale(), "stale"),
        (True, mark_user_stale, "stale"),
    ],
    ids=["never-cached", "unchanged", "new-generation", "new-user-version"],
)
def test_it_counts_each_read_by_result(
    alice, alice_client, redis_client, cached_before, change, result
):
    if cached_before:
        alice_client.get(url(alice.pk))
        alice_client.get(url(alice.pk))
    change(alice.pk)
    before = cache_total(result)

    alice_client.get(url(alice.pk))

    assert cache_total(result) == before + 1


def test_it_never_caches_a_user_that_does_not_exist(staff_client, redis_client):
    staff_client.get(url(987654321))

    assert not redis_client.exists(profile_key(987654321))


def test_it_never_caches_a_name_it_cannot_store_compactly(
    alice, alice_client, redis_client
):
    UserSegment.objects.create(user=alice, rfm_group="Legacy|Imported")

    response = alice_client.get(url(alice.pk))

    assert response.json()["rfm_group"] == "Legacy|Imported"
    assert not redis_client.exists(profile_key(alice.pk))


def test_it_lets_the_cached_profile_expire(cached_alice, redis_client, settings):
    ttl = redis_client.ttl(profile_key(cached_alice.pk))

    assert 0 < ttl <= settings.SEGMENT_PROFILE_CACHE_SECONDS


def test_it_keeps_a_version_longer_than_any_profile(alice, redis_client, settings):
    mark_user_stale(alice.pk)

    ttl = redis_client.ttl(version_key(alice.pk))
    assert ttl > settings.SEGMENT_PROFILE_CACHE_SECONDS + VERSION_MARGIN_SECONDS - 60


def test_it_never_reuses_a_generation(redis_client):
    generations = set()

    for _ in range(3):
        mark_all_stale()
        generations.add(redis_client.get(GENERATION_KEY))

    assert len(generations) == 3


def test_it_reads_the_database_every_time_when_turned_off(
    alice, alice_client, redis_client, settings, django_assert_num_queries
):
    settings.SEGMENT_PROFILE_CACHE_SECONDS = 0
    alice_client.get(url(alice.pk))

    with django_assert_num_queries(1):
        response = alice_client.get(url(alice.pk))

    assert response.json()["degraded"] is False


def test_it_refuses_a_negative_lifetime_at_start_up():
    env = {**os.environ, "SEGMENT_PROFILE_CACHE_SECONDS": "-1"}

    result = run_manage("check", env=env)

    assert result.returncode == 2
    assert "SEGMENT_PROFILE_CACHE_SECONDS: must be 0 or a positive" in result.stderr


@pytest.fixture
def redis_stopped(servers, redis_client):
    servers.stop("redis")
    try:
        yield
    finally:
        servers.start("redis")


def test_it_keeps_a_change_when_redis_cannot_mark_it(
    alice, staff_client, redis_stopped, django_capture_on_commit_callbacks, caplog
):
    before = REGISTRY.get_sample_value(INVALIDATION_FAILURES) or 0.0

    with (
        caplog.at_level(logging.WARNING, logger="segments.profile_cache"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = staff_client.patch(
            f"/api/user-segments/{alice.pk}",
            {"risk_profile": "High-Risk"},
            format="json",
        )

    assert response.status_code == 200
    assert REGISTRY.get_sample_value(INVALIDATION_FAILURES) == before + 1
    assert "SEGMENT_PROFILE_CACHE_SECONDS" in caplog.text


def test_it_answers_from_the_database_when_redis_is_down(
    cached_alice, alice_client, redis_stopped
):
    UserSegment.objects.filter(user=cached_alice).update(rfm_group="Whale")

    response = alice_client.get(url(cached_alice.pk))

    body = response.json()
    assert (body["rfm_group"], body["degraded"]) == ("Whale", True)


def test_it_never_caches_under_a_missing_marker(alice, alice_client, redis_client):
    alice_client.get(url(alice.pk))

    assert not redis_client.exists(profile_key(alice.pk))
    assert redis_client.exists(version_key(alice.pk), GENERATION_KEY) == 2


def test_it_does_not_trust_a_profile_once_its_marker_is_lost(
    cached_alice, alice_client, redis_client, django_assert_num_queries
):
    redis_client.delete(version_key(cached_alice.pk))

    with django_assert_num_queries(1):
        alice_client.get(url(cached_alice.pk))
