"""GET and PATCH /api/user-segments/{user_id}."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from segments.models import UserSegment
from tests.helpers import assert_user_scoped

COMPUTED_AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)


def url(user_id: int) -> str:
    return f"/api/user-segments/{user_id}"


@pytest.fixture
def alice_segment(alice):
    return UserSegment.objects.create(
        user=alice,
        rfm_group="Medium",
        risk_profile="Low-Risk",
        recency_days=3,
        frequency=12,
        monetary=Decimal("250.50"),
        r_score=4,
        f_score=3,
        m_score=2,
        last_updated=COMPUTED_AT,
    )


def test_it_returns_the_segment_row(alice, alice_segment, alice_client):
    response = alice_client.get(url(alice.pk))

    assert response.json() == {
        "user_id": alice.pk,
        "rfm_group": "Medium",
        "risk_profile": "Low-Risk",
        "recency_days": 3,
        "frequency": 12,
        "monetary": "250.50",
        "r_score": 4,
        "f_score": 3,
        "m_score": 2,
        "last_updated": "2026-11-30T02:00:00Z",
    }


def test_it_answers_low_unknown_before_the_first_batch(alice, alice_client):
    response = alice_client.get(url(alice.pk))

    assert response.json() == {
        "user_id": alice.pk,
        "rfm_group": "Low",
        "risk_profile": "Unknown",
        "recency_days": None,
        "frequency": None,
        "monetary": None,
        "r_score": None,
        "f_score": None,
        "m_score": None,
        "last_updated": None,
    }


def test_it_is_user_scoped(alice, bob, alice_client, staff_client):
    assert_user_scoped(
        method="get",
        path_for=lambda user: url(user.pk),
        owner=alice,
        other=bob,
        owner_client=alice_client,
        staff_client=staff_client,
    )


@pytest.mark.parametrize("user_id", [987654321, 2**63 - 1, 2**64])
def test_it_answers_404_for_an_unknown_user(staff_client, user_id):
    response = staff_client.get(url(user_id))

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_it_lets_staff_set_the_risk_profile(alice, alice_segment, staff_client):
    response = staff_client.patch(
        url(alice.pk), {"risk_profile": "High-Risk"}, format="json"
    )

    assert response.status_code == 200, response.content
    assert response.json()["risk_profile"] == "High-Risk"


def test_it_changes_only_the_risk_profile(alice, alice_segment, staff_client):
    staff_client.patch(url(alice.pk), {"risk_profile": "High-Risk"}, format="json")

    alice_segment.refresh_from_db()
    assert (
        alice_segment.risk_profile,
        alice_segment.rfm_group,
        alice_segment.frequency,
        alice_segment.last_updated,
    ) == ("High-Risk", "Medium", 12, COMPUTED_AT)


def test_it_creates_the_row_when_setting_a_profile_first(alice, staff_client):
    staff_client.patch(url(alice.pk), {"risk_profile": "Moderate-Risk"}, format="json")

    segment = UserSegment.objects.get(user=alice)
    assert (segment.rfm_group, segment.risk_profile) == ("Low", "Moderate-Risk")


def test_it_forbids_users_to_set_their_own_profile(alice, alice_segment, alice_client):
    response = alice_client.patch(
        url(alice.pk), {"risk_profile": "Low-Risk"}, format="json"
    )

    assert response.status_code == 403
    alice_segment.refresh_from_db()
    assert alice_segment.risk_profile == "Low-Risk"


@pytest.mark.parametrize(
    ("client_name", "status"), [("api_client", 401), ("bob_client", 403)]
)
def test_it_refuses_writes_to_others(request, alice, client_name, status):
    client = request.getfixturevalue(client_name)

    response = client.patch(url(alice.pk), {"risk_profile": "High-Risk"}, format="json")

    assert response.status_code == status
    assert not UserSegment.objects.exists()


@pytest.mark.parametrize(
    "body",
    [
        {"risk_profile": "Reckless"},
        {"risk_profile": "high-risk"},
        {"risk_profile": None},
        {"risk_profile": "High-Risk", "rfm_group": "Whale"},
        ["High-Risk"],
    ],
    ids=repr,
)
def test_it_rejects_bad_input(alice, alice_segment, staff_client, body):
    response = staff_client.patch(url(alice.pk), body, format="json")

    assert response.status_code == 400, response.content
    alice_segment.refresh_from_db()
    assert (alice_segment.risk_profile, alice_segment.rfm_group) == (
        "Low-Risk",
        "Medium",
    )


def test_it_changes_nothing_on_an_empty_patch(alice, alice_segment, staff_client):
    response = staff_client.patch(url(alice.pk), {}, format="json")

    assert response.json()["risk_profile"] == "Low-Risk"


def test_it_answers_404_when_patching_an_unknown_user(staff_client):
    response = staff_client.patch(url(987654321), {"risk_profile": "High-Risk"})

    assert response.status_code == 404
