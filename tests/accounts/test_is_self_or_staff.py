"""The access rules every user-scoped view shares (ccweb.permissions)."""

import pytest
from django.contrib.auth.models import Permission
from rest_framework.exceptions import PermissionDenied
from rest_framework.response import Response
from rest_framework.test import APIRequestFactory, force_authenticate
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication

from ccweb.permissions import IsSelfOrStaff, ensure_can_act_for


class UserScopedView(APIView):
    authentication_classes = (JWTAuthentication,)
    permission_classes = (IsSelfOrStaff,)

    def get(self, request, user_id):
        return Response({"user_id": user_id})


class BodyScopedView(APIView):
    authentication_classes = (JWTAuthentication,)
    permission_classes = (IsSelfOrStaff,)

    def post(self, request):
        ensure_can_act_for(request.user, request.data["user_id"])
        return Response(status=201)


factory = APIRequestFactory()


def get_as(caller, target_id) -> Response:
    request = factory.get(f"/users/{target_id}")
    if caller is not None:
        force_authenticate(request, user=caller)
    return UserScopedView.as_view()(request, user_id=target_id)


def post_as(caller, target_id) -> Response:
    request = factory.post("/things", {"user_id": target_id}, format="json")
    force_authenticate(request, user=caller)
    return BodyScopedView.as_view()(request)


@pytest.fixture
def service_account(make_user):
    account = make_user("ingest-bot")
    account.user_permissions.add(Permission.objects.get(codename="act_for_any_user"))
    return account


@pytest.mark.parametrize(
    ("caller", "status"),
    [("alice", 200), ("bob", 403), ("staff", 200), ("service_account", 200)],
)
def test_it_lets_only_the_owner_staff_and_services_in(request, alice, caller, status):
    caller = request.getfixturevalue(caller)

    response = get_as(caller, alice.pk)

    assert response.status_code == status


def test_it_asks_anonymous_callers_to_authenticate(alice):
    response = get_as(None, alice.pk)

    assert response.status_code == 401


def test_it_takes_a_user_id_given_as_text(alice):
    response = get_as(alice, str(alice.pk))

    assert response.status_code == 200


def test_it_answers_404_for_a_user_id_that_is_no_id(alice):
    response = get_as(alice, "abc")

    assert response.status_code == 404


def test_it_does_not_reveal_whether_another_id_exists(alice):
    response = get_as(alice, 999_999_999)

    assert response.status_code == 403


@pytest.mark.parametrize(
    ("caller", "status"), [("alice", 201), ("bob", 403), ("staff", 201)]
)
def test_it_checks_a_user_id_in_the_body(request, alice, caller, status):
    caller = request.getfixturevalue(caller)

    response = post_as(caller, alice.pk)

    assert response.status_code == status


@pytest.mark.parametrize("target", [None, "", True, "1.5", [1], -1])
def test_it_refuses_odd_body_ids_to_users(alice, target):
    with pytest.raises(PermissionDenied):
        ensure_can_act_for(alice, target)


def test_it_checks_the_owner_of_a_loaded_object(rf, alice, bob):
    class Row:
        user_id = alice.pk

    request = rf.get("/")
    request.user = bob

    allowed = IsSelfOrStaff().has_object_permission(request, None, Row())

    assert allowed is False
