"""Access tokens are verified once per process, and only while they are valid."""

from datetime import timedelta

import pytest
from django.utils import timezone
from freezegun import freeze_time
from rest_framework.test import APIClient
from rest_framework_simplejwt.tokens import AccessToken

from ccweb.authentication import VerifiedTokens, verified_tokens


@pytest.fixture(autouse=True)
def _empty_memory():
    verified_tokens.clear()
    yield
    verified_tokens.clear()


def me(token: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return client.get("/api/auth/me")


def tampered(token: str) -> str:
    header, payload, signature = token.split(".")
    flipped = "A" if signature[0] != "A" else "B"
    return f"{header}.{payload}.{flipped}{signature[1:]}"


def test_it_remembers_an_accepted_token(alice):
    token = str(AccessToken.for_user(alice))

    response = me(token)

    assert response.status_code == 200
    assert verified_tokens.get(token.encode(), timezone.now().timestamp())


def test_it_refuses_a_remembered_token_once_it_expires(alice):
    token = str(AccessToken.for_user(alice))
    assert me(token).status_code == 200

    with freeze_time(timezone.now() + timedelta(hours=1)):
        response = me(token)

    assert response.status_code == 401


def test_it_verifies_a_tampered_copy_of_a_remembered_token(alice):
    token = str(AccessToken.for_user(alice))
    assert me(token).status_code == 200

    response = me(tampered(token))

    assert response.status_code == 401


def test_it_does_not_remember_a_refused_token(alice):
    token = tampered(str(AccessToken.for_user(alice)))

    me(token)

    assert len(verified_tokens) == 0


def test_it_still_refuses_a_remembered_token_of_a_deactivated_user(alice):
    token = str(AccessToken.for_user(alice))
    assert me(token).status_code == 200
    alice.is_active = False
    alice.save(update_fields=["is_active"])

    response = me(token)

    assert response.status_code == 401


def test_it_evicts_the_oldest_token_when_full(alice, bob, staff):
    memory = VerifiedTokens(capacity=2)
    tokens = [AccessToken.for_user(user) for user in (alice, bob, staff)]

    for token in tokens:
        memory.remember(str(token).encode(), token)

    now = timezone.now().timestamp()
    assert memory.get(str(tokens[0]).encode(), now) is None
    assert memory.get(str(tokens[2]).encode(), now) is tokens[2]
