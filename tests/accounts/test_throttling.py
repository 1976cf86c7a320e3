"""Rate limits on the auth and invite endpoints (R7: bursts get 429)."""

import socket

import pytest
from prometheus_client import REGISTRY
from rest_framework.test import APIClient

AUTH_CALLS = {
    "signup": ("post", "/api/auth/signup"),
    "token": ("post", "/api/auth/token"),
    "refresh": ("post", "/api/auth/token/refresh"),
    "logout": ("post", "/api/auth/logout"),
}


def call(method: str, path: str, **extra):
    return getattr(APIClient(), method)(path, {}, format="json", **extra)


def burst(method: str, path: str, count: int, **extra) -> list:
    return [call(method, path, **extra) for _ in range(count)]


@pytest.mark.parametrize("endpoint", list(AUTH_CALLS))
def test_it_throttles_bursts_on_auth_endpoints(db, throttle_rates, endpoint):
    throttle_rates(auth="3/hour")

    responses = burst(*AUTH_CALLS[endpoint], count=4)

    assert [r.status_code for r in responses][-1] == 429


def test_it_lets_requests_through_below_the_rate(db, throttle_rates):
    throttle_rates(auth="3/hour")

    responses = burst("post", "/api/auth/token", count=3)

    assert {r.status_code for r in responses} == {400}


def test_it_throttles_bursts_of_invite_checks(db, throttle_rates):
    throttle_rates(invite="3/hour")

    responses = burst("get", "/api/invite/validate/5882", count=4)

    assert [r.status_code for r in responses] == [200, 200, 200, 429]


def test_it_says_when_to_retry(db, throttle_rates):
    throttle_rates(invite="1/hour")

    response = burst("get", "/api/invite/validate/5882", count=2)[-1]

    assert 1 <= int(response["Retry-After"]) <= 3600
    assert response.json()["code"] == "throttled"


def test_it_counts_auth_and_invite_requests_apart(db, throttle_rates):
    throttle_rates(auth="1/hour", invite="1/hour")
    call("post", "/api/auth/token")

    response = call("get", "/api/invite/validate/5882")

    assert response.status_code == 200


def test_it_counts_clients_by_address(db, throttle_rates):
    throttle_rates(invite="1/hour")
    call("get", "/api/invite/validate/5882", REMOTE_ADDR="10.0.0.1")

    response = call("get", "/api/invite/validate/5882", REMOTE_ADDR="10.0.0.2")

    assert response.status_code == 200


def test_it_ignores_a_forged_forwarded_for_header(db, throttle_rates):
    throttle_rates(invite="1/hour")
    call("get", "/api/invite/validate/5882", HTTP_X_FORWARDED_FOR="10.9.9.1")

    response = call("get", "/api/invite/validate/5882", HTTP_X_FORWARDED_FOR="10.9.9.2")

    assert response.status_code == 429


@pytest.mark.django_db(transaction=True)
def test_it_lets_exactly_the_rate_through_a_concurrent_burst(
    throttle_rates, run_concurrently
):
    throttle_rates(invite="5/hour")

    responses = run_concurrently(
        [lambda: call("get", "/api/invite/validate/5882") for _ in range(30)]
    )

    assert sorted(r.status_code for r in responses) == [200] * 5 + [429] * 25


@pytest.fixture
def unreachable_redis(settings):
    """Point the cache at a loopback port nothing listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.CACHES = {
        "default": {
            **settings.CACHES["default"],
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
    }


def degraded_count() -> float:
    value = REGISTRY.get_sample_value(
        "ccweb_throttle_degraded_total", {"scope": "invite"}
    )
    return value or 0.0


def test_it_lets_requests_through_when_the_cache_is_down(
    db, throttle_rates, unreachable_redis
):
    throttle_rates(invite="1/hour")

    responses = burst("get", "/api/invite/validate/5882", count=3)

    assert {r.status_code for r in responses} == {200}


def test_it_counts_requests_it_could_not_throttle(db, unreachable_redis):
    before = degraded_count()

    call("get", "/api/invite/validate/5882")

    assert degraded_count() == before + 1
