"""Token login, rotation, logout and hostile tokens (R7)."""

import base64
import json
import time

import jwt
import pytest
from django.conf import settings
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken, RefreshToken

PASSWORD = "correct-horse-battery-9"


def login(username: str, password: str = PASSWORD):
    return APIClient().post(
        "/api/auth/token", {"username": username, "password": password}, format="json"
    )


def refresh(token: str):
    return APIClient().post(
        "/api/auth/token/refresh", {"refresh": token}, format="json"
    )


def logout(token: str):
    return APIClient().post("/api/auth/logout", {"refresh": token}, format="json")


def me(access: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    return client.get("/api/auth/me")


def b64(data: dict) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


@pytest.fixture
def pair(alice):
    return login("alice").json()


# --- Login -------------------------------------------------------------------


def test_it_logs_in_with_a_token_pair(alice):
    response = login("alice")

    assert response.status_code == 200
    assert response.json()["user_id"] == alice.pk


@pytest.mark.parametrize("spelling", ["Alice", "ALICE"])
def test_it_logs_in_whatever_the_username_case(alice, spelling):
    response = login(spelling)

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong-password-1"), ("nobody", PASSWORD)],
    ids=["wrong-password", "unknown-user"],
)
def test_it_refuses_wrong_credentials_with_401(alice, username, password):
    response = login(username, password)

    assert response.status_code == 401
    assert response.json()["code"] == "no_active_account"


def test_it_refuses_a_deactivated_account(make_user):
    make_user("gone", is_active=False)

    response = login("gone")

    assert response.status_code == 401


def test_it_ignores_a_stale_bearer_token_on_login(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer not-a-token")

    response = client.post(
        "/api/auth/token", {"username": "alice", "password": PASSWORD}, format="json"
    )

    assert response.status_code == 200


def test_it_rejects_unknown_login_fields(alice):
    response = APIClient().post(
        "/api/auth/token",
        {"username": "alice", "password": PASSWORD, "otp": "1"},
        format="json",
    )

    assert response.status_code == 400


# --- Profile -----------------------------------------------------------------


def test_it_shows_the_callers_own_profile(pair, alice):
    response = me(pair["access"])

    assert response.json() == {
        "user_id": alice.pk,
        "username": "alice",
        "nickname": "Alice",
        "date_joined": alice.date_joined.isoformat().replace("+00:00", "Z"),
        "is_staff": False,
        "invite_code": None,
    }


def test_it_asks_anonymous_callers_to_authenticate(db):
    response = APIClient().get("/api/auth/me")

    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


# --- Rotation and logout ------------------------------------------------------


def test_it_rotates_the_refresh_token(pair):
    response = refresh(pair["refresh"])

    assert response.status_code == 200
    assert response.json()["refresh"] != pair["refresh"]


def test_it_refuses_a_refresh_token_used_twice(pair):
    refresh(pair["refresh"])

    response = refresh(pair["refresh"])

    assert response.status_code == 401


def test_it_refuses_refresh_after_logout(pair):
    logout(pair["refresh"])

    response = refresh(pair["refresh"])

    assert response.status_code == 401


def test_it_logs_out(pair):
    response = logout(pair["refresh"])

    assert response.status_code == 200


def test_it_refuses_a_second_logout_with_one_token(pair):
    logout(pair["refresh"])

    response = logout(pair["refresh"])

    assert response.status_code == 401


def test_it_refuses_refresh_for_a_deactivated_account(pair, alice):
    alice.is_active = False
    alice.save()

    response = refresh(pair["refresh"])

    assert response.status_code == 401


def test_it_refuses_refresh_for_a_deleted_account(pair, alice):
    alice.delete()

    response = refresh(pair["refresh"])

    assert response.status_code == 401


def test_it_refuses_an_access_token_as_a_refresh_token(pair):
    response = refresh(pair["access"])

    assert response.status_code == 401


def test_it_rejects_a_missing_refresh_token_with_400(db):
    response = APIClient().post("/api/auth/token/refresh", {}, format="json")

    assert response.status_code == 400


@pytest.mark.django_db(transaction=True)
def test_it_rotates_one_refresh_token_once_under_concurrency(alice, run_concurrently):
    token = str(RefreshToken.for_user(alice))

    responses = run_concurrently([lambda: refresh(token) for _ in range(8)])

    assert sorted(r.status_code for r in responses) == [200] + [401] * 7


# --- Hostile access tokens ----------------------------------------------------


def tampered_signature(token: str) -> str:
    header, payload, signature = token.split(".")
    middle = len(signature) // 2
    flipped = "A" if signature[middle] != "A" else "B"
    return f"{header}.{payload}.{signature[:middle]}{flipped}{signature[middle + 1 :]}"


def other_users_payload(token: str, user_id: int) -> str:
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return f"{header}.{b64({**claims, 'user_id': str(user_id)})}.{signature}"


def expired(user) -> str:
    token = AccessToken.for_user(user)
    token["exp"] = int(time.time()) - 60
    return str(token)


def unsigned(user, token_class=AccessToken) -> str:
    claims = dict(token_class.for_user(user).payload)
    return f"{b64({'alg': 'none', 'typ': 'JWT'})}.{b64(claims)}."


def signed_with_another_key(user) -> str:
    claims = dict(AccessToken.for_user(user).payload)
    return jwt.encode(claims, "not-the-server-key-" * 3, algorithm="HS256")


def signed_as_hs512(user) -> str:
    claims = dict(AccessToken.for_user(user).payload)
    return jwt.encode(claims, settings.SIMPLE_JWT["SIGNING_KEY"], algorithm="HS512")


@pytest.mark.parametrize(
    "forge",
    [
        lambda alice, bob: tampered_signature(str(AccessToken.for_user(alice))),
        lambda alice, bob: other_users_payload(
            str(AccessToken.for_user(alice)), bob.pk
        ),
        lambda alice, bob: expired(alice),
        lambda alice, bob: unsigned(alice),
        lambda alice, bob: signed_with_another_key(alice),
        lambda alice, bob: signed_as_hs512(alice),
        lambda alice, bob: str(RefreshToken.for_user(alice)),
        lambda alice, bob: "not.a.token",
        lambda alice, bob: "é" * 40,
    ],
    ids=[
        "tampered-signature",
        "tampered-payload",
        "expired",
        "alg-none",
        "other-key",
        "other-algorithm",
        "refresh-as-access",
        "garbage",
        "non-ascii",
    ],
)
def test_it_rejects_a_hostile_access_token_with_401_json(alice, bob, forge):
    response = me(forge(alice, bob))

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"


@pytest.mark.parametrize(
    "header", ["Bearer", "Bearer a b", "Bearer  ", "Basic YWxpY2U6eA=="]
)
def test_it_answers_odd_authorization_headers_with_401(db, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)

    response = client.get("/api/auth/me")

    assert response.status_code == 401


def test_it_rejects_the_access_token_of_a_deactivated_account(pair, alice):
    alice.is_active = False
    alice.save()

    response = me(pair["access"])

    assert response.status_code == 401


@pytest.mark.parametrize(
    "forge",
    [
        lambda alice: tampered_signature(str(RefreshToken.for_user(alice))),
        lambda alice: unsigned(alice, RefreshToken),
    ],
    ids=["tampered", "alg-none"],
)
def test_it_rejects_a_hostile_refresh_token_with_401(alice, forge):
    response = refresh(forge(alice))

    assert response.status_code == 401
