from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from prometheus_client import REGISTRY

User = get_user_model()


def test_it_creates_an_account_with_a_token_pair(signup, invite):
    response = signup("newcomer", invite.code, nickname="Newbie")

    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == User.objects.get(username="newcomer").pk
    assert {"access", "refresh"} <= set(body)


def test_it_records_the_code_and_counts_its_use(signup, invite):
    signup("newcomer", invite.code)

    user = User.objects.get(username="newcomer")
    invite.refresh_from_db()
    assert (user.invite_code, invite.use_count) == (invite, 1)


def test_it_returns_tokens_that_open_the_profile(signup, invite, api_client):
    access = signup("newcomer", invite.code).json()["access"]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {access}")
    response = api_client.get("/api/auth/me")

    assert response.json()["username"] == "newcomer"


@pytest.mark.parametrize("code", ["5882", "6969", "6974"])
def test_it_accepts_the_fixed_codes_from_the_migration(signup, db, code):
    response = signup(f"fixed{code}", code)

    assert response.status_code == 201


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"is_active": False}, "This invite code has been deactivated."),
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "has expired"),
        ({"max_uses": 2, "use_count": 2}, "has no uses left"),
    ],
    ids=["inactive", "expired", "used-up"],
)
def test_it_refuses_a_code_that_cannot_be_used(signup, make_invite, fields, message):
    code = make_invite(**fields).code

    response = signup("newcomer", code)

    assert response.status_code == 400
    assert message in response.json()["errors"]["invite_code"][0]


def test_it_refuses_an_unknown_code(signup, db):
    response = signup("newcomer", "NOPE")

    assert response.status_code == 400
    assert response.json()["errors"]["invite_code"] == [
        "This invite code does not exist."
    ]


def test_it_stores_nothing_when_the_code_is_refused(signup, make_invite):
    code = make_invite(is_active=False).code

    signup("newcomer", code)

    assert not User.objects.filter(username="newcomer").exists()


def test_it_spends_no_use_on_a_refused_signup(signup, make_invite):
    invite = make_invite(max_uses=1)

    signup("newcomer", invite.code, password="123")
    invite.refresh_from_db()

    assert invite.use_count == 0


@pytest.mark.parametrize("taken", ["Alice", "ALICE", "alice"])
def test_it_refuses_a_username_taken_in_any_case(signup, invite, alice, taken):
    response = signup(taken, invite.code)

    assert response.status_code == 400
    assert "username" in response.json()["errors"]


@pytest.mark.parametrize(
    "password",
    ["Sh0rt!", "password123", "83749261530", "newcomer-2025"],
    ids=["too-short", "common", "numeric", "like-the-username"],
)
def test_it_applies_the_password_validators(signup, invite, password):
    response = signup("newcomer-2025", invite.code, password=password)

    assert response.status_code == 400
    assert "password" in response.json()["errors"]


@pytest.mark.parametrize(
    ("username", "fields"),
    [
        ("newcomer", {"is_staff": True}),
        ("bad name!", {}),
        ("x" * 151, {}),
        ("newcomer", {"nickname": "n" * 65}),
        ("newcomer", {"invite_code": "C" * 33}),
        ("newcomer", {"nickname": "nul\x00"}),
        ("newcomer", {"password": None}),
        (None, {}),
    ],
    ids=[
        "unknown-field",
        "bad-chars",
        "long-name",
        "long-nickname",
        "long-code",
        "nul",
        "null-password",
        "null-username",
    ],
)
def test_it_rejects_bad_input_with_400(signup, invite, username, fields):
    response = signup(username, invite.code, **fields)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


def test_it_rejects_a_body_that_is_not_an_object(api_client, db):
    response = api_client.post("/api/auth/signup", [1, 2], format="json")

    assert response.status_code == 400


def test_it_tells_why_every_field_failed_at_once(signup, db, alice):
    response = signup("ALICE", "NOPE")

    assert set(response.json()["errors"]) == {"username", "invite_code"}


def signups(outcome: str) -> float:
    value = REGISTRY.get_sample_value("ccweb_signups_total", {"outcome": outcome})
    return value or 0.0


@pytest.mark.parametrize(
    ("code", "outcome"), [("JOIN-2025", "created"), ("NO", "rejected")]
)
def test_it_counts_signups_by_outcome(signup, invite, code, outcome):
    before = signups(outcome)

    signup("newcomer", code)

    assert signups(outcome) == before + 1
