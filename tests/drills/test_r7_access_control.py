"""R7: access control over HTTP against gunicorn, throttles in Redis.

- another user's id on every user-scoped operation of the schema: 403;
- tampered, expired, `alg=none` and foreign-key tokens: 401;
- a refresh token after logout (and after it was rotated once): 401;
- a burst on each auth endpoint, sent concurrently to several workers:
  exactly the configured number get through, the rest 429.

The server runs with the product's own throttle rates (the other drills
lift them).
"""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import jwt
import pytest
import redis
import requests

from tests.drills.harness import (
    HTTP_TIMEOUT_SECONDS,
    JWT_SECRET,
    Account,
    production_env,
    report,
    sign_up,
)
from tests.drills.operations import (
    Call,
    Operation,
    schema_operations,
    unknown_operations,
    valid_call,
)

pytestmark = pytest.mark.drill

# Operations only staff may use at all: a user is refused even their own id.
STAFF_ONLY = {("PATCH", "/api/user-segments/{user_id}")}
# The product's defaults (ccweb/settings.py REST_FRAMEWORK throttle rates).
AUTH_LIMIT = 20
INVITE_LIMIT = 30
BURST_EXTRA = 10
# A burst must fit in one fixed throttle window (a minute).
SAFE_SECONDS_LEFT_IN_WINDOW = 15


@pytest.fixture(scope="module")
def env() -> dict[str, str]:
    env = production_env()
    # The product's own rates, not the lifted ones of the other drills.
    del env["THROTTLE_AUTH_RATE"]
    del env["THROTTLE_INVITE_RATE"]
    return env


@pytest.fixture(scope="module")
def server(start_web, env):
    return start_web(env)


@pytest.fixture(scope="module")
def alice(server) -> Account:
    return sign_up(server.url, "alice")


@pytest.fixture(scope="module")
def bob(server) -> Account:
    return sign_up(server.url, "bob")


def forget_throttles(env: dict[str, str]) -> None:
    """Forget this server's throttle counters, and start in a fresh window."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    keys = list(client.scan_iter(f"{env['CACHE_KEY_PREFIX']}:*throttle*"))
    if keys:
        client.delete(*keys)
    client.close()
    seconds_left = 60 - time.time() % 60
    if seconds_left < SAFE_SECONDS_LEFT_IN_WINDOW:
        time.sleep(seconds_left + 0.5)


def user_scoped(operation: Operation, account: Account) -> bool:
    call = valid_call(operation, account, account.user_id)
    body = call.body if isinstance(call.body, dict) else {}
    items = body.get("actions", [])
    return (
        "user_id" in call.path_params
        or "user_id" in body
        or any("user_id" in item for item in items)
    )


# --- Another user's id ------------------------------------------------------------


@pytest.fixture(scope="module")
def idor(server, alice, bob) -> dict[str, tuple[int, int]]:
    """For each user-scoped operation: (status on bob's id, on alice's own)."""
    operations = schema_operations(server.url)
    assert unknown_operations(operations, alice) == [], "see operations.py"
    statuses = {}
    for operation in operations:
        if not user_scoped(operation, alice):
            continue
        foreign = valid_call(operation, alice, bob.user_id).send(
            server.url, alice.access
        )
        own = valid_call(operation, alice, alice.user_id).send(server.url, alice.access)
        statuses[" ".join(operation)] = (foreign.status_code, own.status_code)
    report(
        "R7 another user's id",
        bool(statuses) and all(foreign == 403 for foreign, _ in statuses.values()),
        operations={name: foreign for name, (foreign, _) in statuses.items()},
    )
    return statuses


def test_it_refuses_another_users_id_on_every_user_scoped_operation(idor):
    refused = {name: foreign for name, (foreign, _) in idor.items()}

    assert refused == dict.fromkeys(idor, 403)


def test_it_serves_the_users_own_id_on_the_same_operations(idor):
    own = {
        name: own
        for name, (_, own) in idor.items()
        if tuple(name.split(" ", 1)) not in STAFF_ONLY
    }

    assert [name for name, status in own.items() if status >= 400] == []


def test_it_finds_user_scoped_operations_at_all(idor):
    assert len(idor) >= 5


# --- Forged tokens ------------------------------------------------------------------


def _b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def claims_of(token: str) -> dict:
    return jwt.decode(token, options={"verify_signature": False})


def forged(claims: dict, key: str = JWT_SECRET) -> str:
    return jwt.encode(claims, key, algorithm="HS256")


def tampered_payload(alice: Account, bob: Account) -> str:
    """Alice's real signature over a payload that now names bob."""
    header, _, signature = alice.access.split(".")
    claims = {**claims_of(alice.access), "user_id": str(bob.user_id)}
    return f"{header}.{_b64(claims)}.{signature}"


def tampered_signature(alice: Account, bob: Account) -> str:
    header, payload, signature = alice.access.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"{header}.{payload}.{flipped}"


def expired(alice: Account, bob: Account) -> str:
    past = datetime.now(UTC) - timedelta(hours=1)
    claims = {
        **claims_of(alice.access),
        "iat": int((past - timedelta(minutes=15)).timestamp()),
        "exp": int(past.timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return forged(claims)


def alg_none(alice: Account, bob: Account) -> str:
    header = _b64({"alg": "none", "typ": "JWT"})
    return f"{header}.{_b64(claims_of(alice.access))}."


def foreign_key(alice: Account, bob: Account) -> str:
    return forged(claims_of(alice.access), key="not-the-server-key-" + "x" * 40)


def refresh_as_access(alice: Account, bob: Account) -> str:
    return alice.refresh


def fresh_forgery(alice: Account, bob: Account) -> str:
    """The control: forged like `expired`, but still valid; must be accepted."""
    now = datetime.now(UTC)
    claims = {
        **claims_of(alice.access),
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(minutes=5)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return forged(claims)


FORGERIES = {
    tampered_payload: 401,
    tampered_signature: 401,
    expired: 401,
    alg_none: 401,
    foreign_key: 401,
    refresh_as_access: 401,
    fresh_forgery: 200,
}


@pytest.fixture(scope="module")
def forgeries(server, alice, bob) -> dict[str, int]:
    """The status of GET /api/auth/me with each forged token."""
    me = Call("GET", "/api/auth/me")
    statuses = {
        make.__name__: me.send(server.url, make(alice, bob)).status_code
        for make in FORGERIES
    }
    expected = {make.__name__: status for make, status in FORGERIES.items()}
    report("R7 forged tokens", statuses == expected, statuses=statuses)
    return statuses


@pytest.mark.parametrize(
    ("make_token", "expected"),
    list(FORGERIES.items()),
    ids=[make.__name__ for make in FORGERIES],
)
def test_it_answers_forged_tokens_with_401(forgeries, make_token, expected):
    assert forgeries[make_token.__name__] == expected


# --- Refresh tokens after logout and rotation ---------------------------------------


def log_in(server, account: Account) -> dict:
    response = requests.post(
        f"{server.url}/api/auth/token",
        json={"username": account.username, "password": account.password},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 200, response.text
    return response.json()


def refresh(server, token: str) -> requests.Response:
    return requests.post(
        f"{server.url}/api/auth/token/refresh",
        json={"refresh": token},
        timeout=HTTP_TIMEOUT_SECONDS,
    )


def log_out(server, pair: dict) -> None:
    response = requests.post(
        f"{server.url}/api/auth/logout",
        json={"refresh": pair["refresh"]},
        headers={"Authorization": f"Bearer {pair['access']}"},
        timeout=HTTP_TIMEOUT_SECONDS,
    )
    assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def revoked_refreshes(server, alice, env) -> dict[str, int]:
    """Refresh with a token after logout, and with one already rotated."""
    forget_throttles(env)
    logged_out = log_in(server, alice)
    log_out(server, logged_out)
    rotated = log_in(server, alice)
    first_use = refresh(server, rotated["refresh"]).status_code

    statuses = {
        "after_logout": refresh(server, logged_out["refresh"]).status_code,
        "first_use": first_use,
        "second_use": refresh(server, rotated["refresh"]).status_code,
    }
    expected = {"after_logout": 401, "first_use": 200, "second_use": 401}
    report("R7 revoked refresh tokens", statuses == expected, statuses=statuses)
    return statuses


def test_it_refuses_a_refresh_token_after_logout(revoked_refreshes):
    assert revoked_refreshes["after_logout"] == 401


def test_it_refuses_a_refresh_token_used_once_already(revoked_refreshes):
    assert (revoked_refreshes["first_use"], revoked_refreshes["second_use"]) == (
        200,
        401,
    )


# --- Bursts ----------------------------------------------------------------------


BURSTS = {
    "token": ("POST", "/api/auth/token", {"username": "nobody", "password": "wrong"}),
    "signup": (
        "POST",
        "/api/auth/signup",
        {"username": "burst", "password": "x", "invite_code": "no-such-code"},
    ),
    "refresh": ("POST", "/api/auth/token/refresh", {"refresh": "not-a-token"}),
    "logout": ("POST", "/api/auth/logout", {"refresh": "not-a-token"}),
    "invite": ("GET", "/api/invite/validate/no-such-code", None),
}
LIMITS = dict.fromkeys(BURSTS, AUTH_LIMIT) | {"invite": INVITE_LIMIT}


def burst(server, endpoint: str) -> list[int]:
    method, path, body = BURSTS[endpoint]
    total = LIMITS[endpoint] + BURST_EXTRA

    def send(_):
        return requests.request(
            method, f"{server.url}{path}", json=body, timeout=HTTP_TIMEOUT_SECONDS
        ).status_code

    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(send, range(total)))


@pytest.fixture(scope="module")
def bursts(server, env) -> dict[str, list[int]]:
    """The statuses of a concurrent burst on each auth endpoint, one by one."""
    statuses = {}
    for endpoint in BURSTS:
        forget_throttles(env)
        statuses[endpoint] = burst(server, endpoint)
    throttled = {endpoint: codes.count(429) for endpoint, codes in statuses.items()}
    report(
        "R7 bursts",
        set(throttled.values()) == {BURST_EXTRA},
        limits=LIMITS,
        sent_each=f"limit + {BURST_EXTRA}",
        throttled=throttled,
        other_statuses={
            endpoint: sorted(set(codes) - {429}) for endpoint, codes in statuses.items()
        },
    )
    return statuses


@pytest.mark.parametrize("endpoint", list(BURSTS))
def test_it_throttles_a_concurrent_burst_exactly(bursts, endpoint):
    assert bursts[endpoint].count(429) == BURST_EXTRA, bursts[endpoint]
