from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient


def validate(code: str):
    return APIClient().get(f"/api/invite/validate/{code}")


def test_it_accepts_a_usable_code(invite):
    response = validate(invite.code)

    assert response.json() == {
        "valid": True,
        "detail": "This invite code is valid.",
        "reason": None,
    }


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"is_active": False}, "inactive"),
        ({"expires_at": timezone.now() - timedelta(seconds=1)}, "expired"),
        ({"max_uses": 1, "use_count": 1}, "used_up"),
    ],
)
def test_it_says_why_a_code_cannot_be_used(make_invite, fields, reason):
    code = make_invite(**fields).code

    response = validate(code)

    assert (response.json()["valid"], response.json()["reason"]) == (False, reason)


@pytest.mark.parametrize("code", ["NOPE", "x" * 300, "%00", "%E2%82%AC"])
def test_it_calls_other_codes_unknown(db, code):
    response = validate(code)

    assert response.status_code == 200
    assert response.json()["reason"] == "unknown"


def test_it_accepts_a_code_that_expires_later(make_invite):
    code = make_invite(expires_at=timezone.now() + timedelta(days=1)).code

    response = validate(code)

    assert response.json()["valid"] is True


def test_it_needs_no_authentication(db):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer stale")

    response = client.get("/api/invite/validate/5882")

    assert response.json()["valid"] is True
