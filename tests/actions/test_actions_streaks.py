"""Streaks: consecutive UTC days with an action, in Redis (or the cache)."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time
from prometheus_client import REGISTRY
from redis.exceptions import RedisError

from actions.models import UserAction
from actions.streaks import (
    current_streak,
    latest_runs,
    rebuild_streaks,
    record_activity,
    utc_day,
)
from ccweb.redis import streak_key

USER = 41
# One second apart, across a UTC midnight.
BEFORE_MIDNIGHT = datetime(2030, 3, 10, 23, 59, 59, tzinfo=UTC)
AFTER_MIDNIGHT = datetime(2030, 3, 11, 0, 0, 0, tzinfo=UTC)


def act_at(moment: datetime, user_id: int = USER) -> None:
    """An action at `moment`, recorded while the clock says `moment`."""
    with freeze_time(moment):
        record_activity({user_id: [utc_day(moment)]})


def streak_at(moment: datetime, user_id: int = USER) -> int:
    with freeze_time(moment):
        return current_streak(user_id)


@pytest.fixture(params=["redis", "cache"])
def store(request, redis_client, settings):
    """Every transition holds in Redis and in the embedded cache fallback."""
    if request.param == "cache":
        settings.REDIS_URL = None
    return request.param


def test_it_starts_at_one_with_the_first_action(store):
    act_at(BEFORE_MIDNIGHT)

    assert streak_at(BEFORE_MIDNIGHT) == 1


def test_it_adds_one_for_the_first_action_of_the_next_day(store):
    act_at(BEFORE_MIDNIGHT)

    act_at(AFTER_MIDNIGHT)

    assert streak_at(AFTER_MIDNIGHT) == 2


def test_it_ignores_more_actions_on_the_same_day(store):
    act_at(AFTER_MIDNIGHT)

    act_at(AFTER_MIDNIGHT + timedelta(hours=5))
    act_at(AFTER_MIDNIGHT + timedelta(hours=23))

    assert streak_at(AFTER_MIDNIGHT + timedelta(hours=23)) == 1


def test_it_restarts_at_one_after_a_missed_day(store):
    act_at(BEFORE_MIDNIGHT)
    act_at(AFTER_MIDNIGHT)

    act_at(AFTER_MIDNIGHT + timedelta(days=2))

    assert streak_at(AFTER_MIDNIGHT + timedelta(days=2)) == 1


def test_it_keeps_the_streak_through_the_next_day(store):
    act_at(BEFORE_MIDNIGHT)
    act_at(AFTER_MIDNIGHT)

    assert streak_at(AFTER_MIDNIGHT + timedelta(days=1, hours=23)) == 2


def test_it_reads_zero_once_a_day_was_missed(store):
    act_at(BEFORE_MIDNIGHT)

    assert streak_at(BEFORE_MIDNIGHT + timedelta(days=2)) == 0


def test_it_reads_zero_for_a_user_without_actions(store):
    assert streak_at(AFTER_MIDNIGHT, user_id=999) == 0


def test_it_ignores_a_back_dated_action(store):
    act_at(BEFORE_MIDNIGHT)
    act_at(AFTER_MIDNIGHT)

    with freeze_time(AFTER_MIDNIGHT + timedelta(hours=1)):
        record_activity({USER: [utc_day(BEFORE_MIDNIGHT - timedelta(days=3))]})

    assert streak_at(AFTER_MIDNIGHT + timedelta(hours=1)) == 2


def test_it_folds_several_days_of_one_batch_in_order(store):
    days = [utc_day(BEFORE_MIDNIGHT + timedelta(days=n)) for n in (2, 0, 1)]

    with freeze_time(BEFORE_MIDNIGHT + timedelta(days=2)):
        record_activity({USER: days})

    assert streak_at(BEFORE_MIDNIGHT + timedelta(days=2)) == 3


def test_it_writes_each_user_day_once_per_process(redis_client):
    act_at(AFTER_MIDNIGHT)
    redis_client.flushdb()

    act_at(AFTER_MIDNIGHT + timedelta(seconds=30))
    act_at(AFTER_MIDNIGHT + timedelta(days=1))

    # The second action would change nothing and was not sent; the third
    # was, and found no earlier day.
    assert streak_at(AFTER_MIDNIGHT + timedelta(days=1)) == 1


def test_it_keeps_a_plain_count_readable_with_get(redis_client):
    act_at(BEFORE_MIDNIGHT)
    act_at(AFTER_MIDNIGHT)

    assert redis_client.get(streak_key(USER)) == "2"


def test_it_expires_the_plain_count_when_the_streak_breaks(redis_client):
    act_at(AFTER_MIDNIGHT)

    # Valid to the end of the next UTC day: two days from that midnight.
    assert redis_client.ttl(streak_key(USER)) == 2 * 86_400


def test_it_raises_redis_errors_to_the_reader(redis_client, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }

    with pytest.raises(RedisError):
        current_streak(USER)


# --- Through the API --------------------------------------------------------------


@pytest.mark.django_db
def test_it_counts_yesterday_and_today_from_posted_actions(
    alice, alice_client, redis_client, django_capture_on_commit_callbacks
):
    yesterday = (timezone.now() - timedelta(days=1)).isoformat()

    with django_capture_on_commit_callbacks(execute=True):
        alice_client.post(
            "/api/actions",
            {"action_type": "spin", "action_timestamp": yesterday},
            format="json",
        )
        alice_client.post("/api/actions", {"action_type": "spin"}, format="json")

    assert current_streak(alice.pk) == 2


@pytest.mark.django_db
def test_it_answers_201_while_redis_is_down(
    alice, alice_client, servers, redis_client, django_capture_on_commit_callbacks
):
    failures = "ccweb_streak_update_failures_total"
    before = REGISTRY.get_sample_value(failures) or 0
    servers.stop("redis")
    try:
        started = time.monotonic()
        with django_capture_on_commit_callbacks(execute=True):
            response = alice_client.post(
                "/api/actions", {"action_type": "spin"}, format="json"
            )
        elapsed = time.monotonic() - started
    finally:
        servers.start("redis")

    assert (response.status_code, elapsed < 1.0) == (201, True)
    assert REGISTRY.get_sample_value(failures) == before + 1
    assert UserAction.objects.filter(user=alice).count() == 1


# --- Rebuild from the database -----------------------------------------------------


def make_actions(user, days_ago: list[int], noon: datetime) -> None:
    UserAction.objects.bulk_create(
        UserAction(
            user=user, action_type="spin", action_timestamp=noon - timedelta(days=days)
        )
        for days in days_ago
    )


@pytest.fixture
def history(alice, bob, staff):
    # Noon of each day: the test means the same days whatever the hour.
    now = timezone.now().replace(hour=12, minute=0, second=0, microsecond=0)
    make_actions(alice, [0, 1, 2, 4, 5], now)  # 3 days, ending today
    make_actions(bob, [1, 1, 2, 6], now)  # 2 days, ending yesterday
    make_actions(staff, [3, 4], now)  # broken: last one 3 days ago
    return now


@pytest.mark.django_db
def test_it_rebuilds_every_streak_from_the_database(
    history, alice, bob, staff, redis_client
):
    rebuild_streaks()

    streaks = [current_streak(user.pk) for user in (alice, bob, staff)]
    assert streaks == [3, 2, 0]


@pytest.mark.django_db
def test_it_rebuilds_the_plain_counts(history, alice, staff, redis_client):
    rebuild_streaks()

    assert redis_client.get(streak_key(alice.pk)) == "3"
    assert redis_client.get(streak_key(staff.pk)) is None


@pytest.mark.django_db
def test_it_removes_the_keys_of_users_without_recent_actions(history, redis_client):
    redis_client.set(streak_key(424242), 9)
    redis_client.hset("user:424242:streak", mapping={"day": 1, "count": 9})

    result = rebuild_streaks()

    assert result.removed == 2
    assert not redis_client.exists(streak_key(424242))


@pytest.mark.django_db
def test_it_computes_the_same_runs_without_postgresql(history):
    from actions.streaks import _latest_runs_portable

    horizon = history - timedelta(days=32)

    assert list(_latest_runs_portable(horizon)) == list(latest_runs(horizon))


@pytest.mark.django_db
def test_it_rebuilds_with_the_command(history, alice, redis_client):
    from django.core.management import call_command

    call_command("rebuild_streaks", stdout=None)

    assert current_streak(alice.pk) == 3
