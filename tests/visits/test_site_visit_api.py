"""POST /api/notify/site_visit."""

import pytest

from tests.helpers import assert_user_scoped
from visits.models import SiteVisit

URL = "/api/notify/site_visit"


def test_it_stores_a_visit_for_the_caller(alice, alice_client):
    response = alice_client.post(
        URL, {"user_id": alice.pk, "source": "home_banner"}, format="json"
    )

    assert response.status_code == 201, response.content
    visit = SiteVisit.objects.get()
    assert (visit.user_id, visit.source) == (alice.pk, "home_banner")


def test_it_answers_with_the_stored_visit(alice, alice_client):
    response = alice_client.post(
        URL, {"user_id": alice.pk, "source": "menu"}, format="json"
    )

    visit = SiteVisit.objects.get()
    assert response.json() == {
        "id": visit.pk,
        "user_id": alice.pk,
        "source": "menu",
        "visit_timestamp": visit.visit_timestamp.isoformat().replace("+00:00", "Z"),
    }


def test_it_trims_the_source(alice, alice_client):
    alice_client.post(
        URL, {"user_id": alice.pk, "source": "  promo banner  "}, format="json"
    )

    assert SiteVisit.objects.get().source == "promo banner"


def test_it_accepts_letters_of_any_language(alice, alice_client):
    response = alice_client.post(
        URL, {"user_id": alice.pk, "source": "página/inicio"}, format="json"
    )

    assert response.status_code == 201, response.content


def test_it_is_user_scoped(alice, bob, alice_client, staff_client):
    assert_user_scoped(
        method="post",
        path_for=lambda user: URL,
        body_for=lambda user: {"user_id": user.pk, "source": "home"},
        owner=alice,
        other=bob,
        owner_client=alice_client,
        staff_client=staff_client,
    )


def test_it_stores_nothing_for_another_users_id(alice_client, bob):
    alice_client.post(URL, {"user_id": bob.pk, "source": "home"}, format="json")

    assert not SiteVisit.objects.exists()


def test_it_gives_no_hint_whether_a_foreign_id_exists(alice_client):
    response = alice_client.post(
        URL, {"user_id": 987654321, "source": "home"}, format="json"
    )

    assert response.status_code == 403


def test_it_rejects_an_unknown_user_for_staff(staff_client):
    response = staff_client.post(
        URL, {"user_id": 987654321, "source": "home"}, format="json"
    )

    assert response.status_code == 400
    assert response.json()["errors"] == {"user_id": ["Unknown user."]}


@pytest.mark.parametrize("user_id", [None, "me", 0, -1, True, 1.5, 2**63], ids=repr)
def test_it_rejects_a_bad_user_id(alice_client, user_id):
    response = alice_client.post(
        URL, {"user_id": user_id, "source": "home"}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "user_id" in response.json()["errors"]
    assert not SiteVisit.objects.exists()


@pytest.mark.parametrize(
    "source",
    [None, 42, "", "   ", "x" * 65, "ho\x00me", "ho\nme", "home\u202e", "ho\u200bme"],
    ids=repr,
)
def test_it_rejects_a_bad_source(alice, alice_client, source):
    response = alice_client.post(
        URL, {"user_id": alice.pk, "source": source}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "source" in response.json()["errors"]
    assert not SiteVisit.objects.exists()


@pytest.mark.parametrize(
    ("body_for", "field"),
    [
        (lambda user: {"user_id": user.pk}, "source"),
        (lambda user: {"source": "home"}, "user_id"),
        (
            lambda user: {"user_id": user.pk, "source": "home", "visit_timestamp": "x"},
            "visit_timestamp",
        ),
    ],
    ids=["no source", "no user_id", "unknown field"],
)
def test_it_rejects_missing_and_unknown_fields(alice, alice_client, body_for, field):
    response = alice_client.post(URL, body_for(alice), format="json")

    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]


def test_it_rejects_a_body_that_is_not_an_object(alice_client):
    response = alice_client.post(URL, ["home"], format="json")

    assert response.status_code == 400


def test_it_accepts_64_characters(alice, alice_client):
    response = alice_client.post(
        URL, {"user_id": alice.pk, "source": "x" * 64}, format="json"
    )

    assert response.status_code == 201, response.content
