"""The shortcuts of the hot views answer exactly as DRF's full cycle does."""

import json
import uuid

import pytest
from rest_framework.test import APIClient, APIRequestFactory

from actions.views import ActionView
from ccweb.authentication import verified_tokens
from segments.models import UserSegment
from segments.views import RecommendationView
from tests.conftest import client_for

IGNORED_HEADERS = {"X-Request-ID"}
STORED_PER_REQUEST = {"id", "event_id", "created_at", "action_timestamp"}


@pytest.fixture(autouse=True)
def _empty_token_memory():
    verified_tokens.clear()
    yield
    verified_tokens.clear()


def headers(response) -> dict:
    return {
        name: value for name, value in response.items() if name not in IGNORED_HEADERS
    }


def token_of(client) -> str:
    return client._credentials["HTTP_AUTHORIZATION"]


def recommendation_url(user_id: int) -> str:
    return f"/api/user-segments/{user_id}/recommendation"


def direct_recommendation(client, user_id: int):
    request = APIRequestFactory().get(
        recommendation_url(user_id), HTTP_AUTHORIZATION=token_of(client)
    )
    view = RecommendationView()
    view.setup(request, user_id=user_id)
    return view.answer_directly(request, user_id=user_id)


def direct_action(client, body: dict, **extra):
    request = APIRequestFactory().post(
        "/api/actions",
        json.dumps(body),
        content_type=extra.pop("content_type", "application/json"),
        HTTP_AUTHORIZATION=token_of(client),
        **extra,
    )
    view = ActionView()
    view.setup(request)
    return view.answer_directly(request)


# --- The recommendation --------------------------------------------------------


def test_it_answers_a_recommendation_as_the_full_cycle(alice, redis_client):
    UserSegment.objects.create(user=alice, rfm_group="Whale", risk_profile="Low-Risk")
    client = client_for(alice)

    full = client.get(recommendation_url(alice.pk))
    direct = direct_recommendation(client, alice.pk)

    assert direct is not None
    assert (direct.status_code, direct.content) == (full.status_code, full.content)
    assert headers(direct).items() <= headers(full).items()


def test_it_leaves_an_unverified_token_to_the_full_cycle(alice, redis_client):
    answer = direct_recommendation(client_for(alice), alice.pk)

    assert answer is None


def test_it_leaves_someone_elses_recommendation_to_the_full_cycle(
    alice, bob, redis_client
):
    client = client_for(alice)
    client.get(recommendation_url(alice.pk))

    answer = direct_recommendation(client, bob.pk)

    assert answer is None


def test_it_leaves_an_inactive_account_to_the_full_cycle(
    alice, redis_client, django_capture_on_commit_callbacks
):
    client = client_for(alice)
    client.get(recommendation_url(alice.pk))
    alice.is_active = False
    with django_capture_on_commit_callbacks(execute=True):
        alice.save(update_fields=["is_active"])

    answer = direct_recommendation(client, alice.pk)

    assert answer is None
    assert client.get(recommendation_url(alice.pk)).status_code == 401


# --- Recording an action -------------------------------------------------------


def action(**fields) -> dict:
    return {"action_type": "spin", "value": 2.5, "metadata": {"game": "slots"}} | fields


def without_stored_fields(answer) -> dict:
    return {
        name: value
        for name, value in json.loads(answer.content).items()
        if name not in STORED_PER_REQUEST
    }


def test_it_records_an_action_as_the_full_cycle(alice, redis_client):
    client = client_for(alice)

    full = client.post("/api/actions", action(), format="json")
    direct = direct_action(client, action())

    assert direct is not None
    assert direct.status_code == full.status_code == 201
    assert without_stored_fields(direct) == without_stored_fields(full)
    assert headers(direct).keys() <= headers(full).keys()


def test_it_answers_a_resent_event_id_with_the_first_record(alice, redis_client):
    client = client_for(alice)
    body = action(event_id=str(uuid.uuid4()))
    first = client.post("/api/actions", body, format="json")

    resent = direct_action(client, body)

    assert resent.status_code == 200
    assert resent.content == first.content


@pytest.mark.parametrize(
    ("body", "extra"),
    [
        (action(value="12.345"), {}),
        (action(metadata=[1]), {}),
        (action(surprise=True), {}),
        (action(), {"content_type": "text/plain"}),
        (action(), {"HTTP_ACCEPT": "text/html"}),
        (action(), {"QUERY_STRING": "format=json"}),
    ],
    ids=["bad-value", "bad-metadata", "unknown-field", "text", "html", "query"],
)
def test_it_leaves_unusual_requests_to_the_full_cycle(alice, redis_client, body, extra):
    client = client_for(alice)
    client.post("/api/actions", action(), format="json")

    answer = direct_action(client, body, **extra)

    assert answer is None


def test_it_leaves_an_action_for_someone_else_to_the_full_cycle(
    alice, bob, redis_client
):
    client = client_for(alice)
    client.post("/api/actions", action(), format="json")

    answer = direct_action(client, action(user_id=bob.pk))

    assert answer is None


def test_it_stores_nothing_when_it_leaves_a_conflict_to_the_full_cycle(
    alice, redis_client
):
    client = client_for(alice)
    event_id = str(uuid.uuid4())
    client.post("/api/actions", action(event_id=event_id), format="json")

    answer = direct_action(client, action(event_id=event_id, value=99))

    assert answer is None
    assert alice.actions.count() == 1


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/api/actions"), ("get", "/api/user-segments/1/recommendation")],
)
def test_it_leaves_an_odd_authorization_scheme_to_the_full_cycle(method, path):
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION="Bear\u00e9r abc")

    response = getattr(client, method)(path)

    assert response.status_code == 401


@pytest.mark.parametrize("depth", [65, 1_000, 1_020])
def test_it_refuses_deeply_nested_metadata(alice, redis_client, depth):
    client = client_for(alice)
    nested = "[" * depth + "]" * depth
    body = '{"action_type": "spin", "metadata": {"a": ' + nested + "}}"

    response = client.post("/api/actions", body, content_type="application/json")

    assert response.status_code == 400
    assert alice.actions.count() == 0
