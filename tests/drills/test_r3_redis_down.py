"""R3: Redis stopped under a running gunicorn, then started again empty.

A user with a three-day streak (actions yesterday's yesterday, yesterday
and today) keeps posting actions while Redis is down: they must be stored
(201), the recommendation must still answer 200 with streak 0 while
`ccweb_recommendation_degraded_total` rises, /health/ready must report the
cache failing, and login must still work (throttles let requests through).
Redis comes back without its data (the test server keeps none), and
`manage.py rebuild_streaks` must restore the streak from the database.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
import requests

from tests.drills.harness import (
    HTTP_TIMEOUT_SECONDS,
    action_body,
    manage,
    metric_total,
    production_env,
    report,
    sign_up,
)

pytestmark = pytest.mark.drill

DEGRADED = "ccweb_recommendation_degraded_total"
STREAK_DAYS = 3
CALLS_DURING_OUTAGE = 10


@dataclass
class Outcome:
    streak_before: int
    action_statuses: list[int] = field(default_factory=list)
    recommendations: list[tuple[int, int | None]] = field(default_factory=list)
    mean_request_s: float = 0.0
    degraded_before: float = 0.0
    degraded_after: float = 0.0
    readiness: tuple[int, str] = (0, "")
    login_status: int = 0
    streak_after_restart: int | None = None
    streak_after_rebuild: int | None = None


def post_action(session, url: str, moment: datetime | None = None) -> int:
    extra = {"action_timestamp": moment.isoformat()} if moment else {}
    body = action_body(str(uuid.uuid4()), **extra)
    return session.post(f"{url}/api/actions", json=body, timeout=10).status_code


def recommendation(session, url: str, user_id: int) -> tuple[int, int | None]:
    response = session.get(
        f"{url}/api/user-segments/{user_id}/recommendation", timeout=10
    )
    streak = response.json().get("streak_count") if response.ok else None
    return response.status_code, streak


@pytest.fixture(scope="module")
def outcome(start_web, outage) -> Outcome:
    env = production_env()
    web = start_web(env)
    account = sign_up(web.url)
    session = account.session()
    now = datetime.now(UTC)
    for days_ago in reversed(range(STREAK_DAYS)):
        assert post_action(session, web.url, now - timedelta(days=days_ago)) == 201
    result = Outcome(streak_before=recommendation(session, web.url, account.user_id)[1])
    result.degraded_before = metric_total(web.url, DEGRADED)

    outage.stop("redis")
    started = time.monotonic()
    for _ in range(CALLS_DURING_OUTAGE):
        result.action_statuses.append(post_action(session, web.url))
        result.recommendations.append(recommendation(session, web.url, account.user_id))
    result.mean_request_s = (time.monotonic() - started) / (2 * CALLS_DURING_OUTAGE)
    result.degraded_after = metric_total(web.url, DEGRADED)
    ready = requests.get(f"{web.url}/health/ready", timeout=HTTP_TIMEOUT_SECONDS)
    result.readiness = (ready.status_code, ready.json()["checks"]["cache"])
    result.login_status = requests.post(
        f"{web.url}/api/auth/token",
        json={"username": account.username, "password": account.password},
        timeout=HTTP_TIMEOUT_SECONDS,
    ).status_code
    outage.start("redis")
    result.streak_after_restart = recommendation(session, web.url, account.user_id)[1]
    rebuild_output = manage(env, "rebuild_streaks").strip().splitlines()[-1:]
    result.streak_after_rebuild = recommendation(session, web.url, account.user_id)[1]

    report(
        "R3 redis down",
        set(result.action_statuses) == {201}
        and result.recommendations == [(200, 0)] * CALLS_DURING_OUTAGE
        and result.degraded_after - result.degraded_before >= CALLS_DURING_OUTAGE
        and result.readiness[1].startswith("failing")
        and result.streak_after_rebuild == result.streak_before == STREAK_DAYS,
        action_statuses=sorted(set(result.action_statuses)),
        recommendations=sorted(set(result.recommendations)),
        mean_request_s_during_outage=round(result.mean_request_s, 3),
        degraded_counter=f"{result.degraded_before:g} -> {result.degraded_after:g}",
        readiness=f"{result.readiness[0]} cache={result.readiness[1][:60]}",
        login_status=result.login_status,
        streak_before=result.streak_before,
        streak_after_restart=result.streak_after_restart,
        streak_after_rebuild=result.streak_after_rebuild,
        rebuild_output=rebuild_output,
    )
    return result


def test_it_starts_from_a_streak_kept_in_redis(outcome):
    assert outcome.streak_before == STREAK_DAYS


def test_it_stores_actions_while_redis_is_down(outcome):
    assert outcome.action_statuses == [201] * CALLS_DURING_OUTAGE


def test_it_recommends_with_streak_0_while_redis_is_down(outcome):
    assert outcome.recommendations == [(200, 0)] * CALLS_DURING_OUTAGE


def test_it_counts_every_degraded_recommendation(outcome):
    rise = outcome.degraded_after - outcome.degraded_before

    assert rise >= CALLS_DURING_OUTAGE


def test_it_reports_the_cache_failing_on_readiness(outcome):
    status, cache = outcome.readiness

    assert cache.startswith("failing")
    # Only the database is required by default (READINESS_REQUIRED).
    assert status == 200


def test_it_lets_users_log_in_while_redis_is_down(outcome):
    assert outcome.login_status == 200


def test_it_rebuilds_streaks_after_redis_lost_them(outcome):
    assert outcome.streak_after_rebuild == STREAK_DAYS
