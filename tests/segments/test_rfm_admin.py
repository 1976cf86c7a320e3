"""The segments back-office: segments list, run history, chart, "run now"."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import Permission
from django.test import Client

from segments.models import RfmRun, UserSegment

pytestmark = pytest.mark.django_db

CHART = "/admin/segments/rfmrun/chart/"
RUN_NOW = "/admin/segments/rfmrun/run/"


@pytest.fixture(autouse=True)
def _fast_hasher(settings):
    # The real hasher takes a good part of a second per password by design.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def client_with(user, *codenames: str) -> Client:
    """A logged-in admin client for `user`, holding the given permissions."""
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    client = Client()
    client.force_login(user)
    return client


def finished_run(day: int, **counts: int) -> RfmRun:
    started = datetime(2026, 3, day, 2, 0, tzinfo=UTC)
    groups = {"Whale": 0, "High Engaged": 0, "Medium": 0, "Low": 0, **counts}
    return RfmRun.objects.create(
        started_at=started,
        finished_at=started + timedelta(seconds=42),
        as_of=started,
        window_days=30,
        status="succeeded",
        users_processed=sum(groups.values()),
        group_counts=groups,
    )


def test_it_draws_the_chart_for_staff(staff):
    finished_run(1, Low=7, Medium=2)
    finished_run(2, Low=5, Medium=3, Whale=1)
    client = client_with(staff, "view_rfmrun")

    response = client.get(CHART)

    assert response.status_code == 200
    assert response.content.count(b"<polyline") == 4
    assert response.context["bars"][0].count == 1


def test_it_explains_an_empty_chart(admin_client):
    response = admin_client.get(CHART)

    assert b"No RFM run has succeeded yet" in response.content


def test_it_sends_non_staff_to_the_admin_login(alice):
    client = client_with(alice)

    response = client.get(CHART)

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")


def test_it_refuses_the_chart_to_staff_without_the_permission(staff):
    response = client_with(staff).get(CHART)

    assert response.status_code == 403


def test_it_queues_a_run_from_the_admin(staff, redis_client):
    client = client_with(staff, "view_rfmrun", "run_rfm")

    response = client.post(RUN_NOW)

    assert response.status_code == 302
    [message] = redis_client.lrange("celery", 0, -1)
    assert json.loads(message)["headers"]["task"] == "segments.compute_rfm"


def test_it_refuses_a_run_to_staff_without_the_permission(staff, redis_client):
    client = client_with(staff, "view_rfmrun")

    response = client.post(RUN_NOW)

    assert response.status_code == 403
    assert redis_client.llen("celery") == 0


def test_it_only_starts_runs_on_post(admin_client):
    response = admin_client.get(RUN_NOW)

    assert response.status_code == 405


def test_it_shows_the_run_button_to_those_who_may_run(admin_client):
    response = admin_client.get("/admin/segments/rfmrun/")

    assert b"Run RFM now" in response.content


def test_it_keeps_the_run_history_read_only(admin_client):
    run = finished_run(3, Low=1)

    added = admin_client.get("/admin/segments/rfmrun/add/")
    deleted = admin_client.post(f"/admin/segments/rfmrun/{run.pk}/delete/")

    assert (added.status_code, deleted.status_code) == (403, 403)


@pytest.mark.parametrize(
    "query",
    ["", "?rfm_group__exact=Medium", "?risk_profile__exact=High-Risk", "?q=ali"],
)
def test_it_lists_segments_with_filters_and_search(admin_client, alice, bob, query):
    UserSegment.objects.create(
        user=alice, rfm_group="Medium", risk_profile="High-Risk", frequency=7
    )
    UserSegment.objects.create(user=bob)

    response = admin_client.get(f"/admin/segments/usersegment/{query}")

    assert alice in [row.user for row in response.context["cl"].result_list]


def test_it_edits_the_risk_profile_but_not_the_batch_values(admin_client, alice):
    UserSegment.objects.create(user=alice, rfm_group="Medium", frequency=7)

    admin_client.post(
        f"/admin/segments/usersegment/{alice.pk}/change/",
        {"risk_profile": "Low-Risk", "rfm_group": "Whale", "frequency": 1000},
    )

    segment = UserSegment.objects.get(user=alice)
    assert (segment.risk_profile, segment.rfm_group, segment.frequency) == (
        "Low-Risk",
        "Medium",
        7,
    )


def test_it_shows_raw_values_and_scores_in_the_list(admin_client, alice):
    UserSegment.objects.create(
        user=alice, recency_days=3, frequency=7, r_score=4, f_score=2, m_score=5
    )

    response = admin_client.get("/admin/segments/usersegment/")

    columns = {
        str(header["text"]).lower() for header in response.context["result_headers"]
    }
    assert {"recency days", "frequency", "monetary", "r score", "m score"} <= columns
