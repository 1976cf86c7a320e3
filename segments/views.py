"""The segments API: a user's segment, recommendation and odds.

Every path carries `user_id`: the caller must be that user or staff
(IsSelfOrStaff: anonymous 401, someone else's id 403), and an id with no
user behind it gets 404. A user without a segment row yet is answered as
`Low` / `Unknown`, the segment the RFM batch gives users with no actions.
"""

from __future__ import annotations

import logging
from functools import cached_property

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import AuthenticationFailed, NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from ccweb.permissions import IsSelfOrStaff
from segments.models import RfmGroup, RiskProfile, UserSegment
from segments.odds import odds_for
from segments.recommendation import match_rule, read_streak, reward_probability
from segments.serializers import (
    ErrorSerializer,
    OddsQuerySerializer,
    OddsSerializer,
    RecommendationSerializer,
    RiskProfileUpdateSerializer,
    UserSegmentSerializer,
)

logger = logging.getLogger(__name__)

User = get_user_model()

UNKNOWN_USER = "Unknown user."
# Ids past PostgreSQL's bigint cannot name a user; refused before any query.
MAX_USER_ID = 2**63 - 1
ACCESS_ERRORS = {
    401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
    403: OpenApiResponse(ErrorSerializer, description="Another user's id."),
    404: OpenApiResponse(ErrorSerializer, description="No user with this id."),
}
INVALID_INPUT = {400: OpenApiResponse(ErrorSerializer, description="Invalid input.")}


class IsStaffForWrites(BasePermission):
    """Reads follow the other permissions; writes are for staff only."""

    message = "Only staff may change a risk profile."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method in SAFE_METHODS:
            return True
        return bool(request.user and request.user.is_staff)


def group_and_risk(user_id: int) -> tuple[str, str]:
    """The user's (rfm_group, risk_profile); 404 for no such user."""
    row = user_and_segment(user_id)
    if row is None:
        raise NotFound(UNKNOWN_USER)
    return row[1], row[2]


# One indexed query for the recommendation's hot path: the LEFT JOIN tells
# "no user" (no row) apart from "no segment yet" (NULLs), and is_active lets
# a caller known only from the token be checked in the same round trip.
# Written as SQL, built once, to skip the ORM's per-request compilation.
USER_AND_SEGMENT_SQL = (
    f"SELECT u.is_active, s.rfm_group, s.risk_profile "  # noqa: S608 (table names)
    f"FROM {User._meta.db_table} AS u "
    f"LEFT JOIN {UserSegment._meta.db_table} AS s ON s.user_id = u.id "
    f"WHERE u.id = %s"
)


def user_and_segment(user_id: int) -> tuple[bool, str, str] | None:
    """(is_active, rfm_group, risk_profile), or None for no such user.

    A user without a segment row yet gets Low / Unknown.
    """
    if not 0 < user_id <= MAX_USER_ID:
        return None
    with connection.cursor() as cursor:
        cursor.execute(USER_AND_SEGMENT_SQL, [user_id])
        row = cursor.fetchone()
    if row is None:
        return None

    is_active, rfm_group, risk_profile = row
    if rfm_group is None:
        return is_active, RfmGroup.LOW.value, RiskProfile.UNKNOWN.value
    return is_active, rfm_group, risk_profile


class TokenSelf(TokenUser):
    """The caller known from a valid token only, until the view reads its row."""

    @cached_property
    def id(self) -> int:
        return int(self.token[jwt_settings.USER_ID_CLAIM])

    @cached_property
    def pk(self) -> int:
        return self.id


class SelfTokenAuthentication(JWTAuthentication):
    """JWT authentication that lets the view load the caller's own row.

    A user asking about themselves (token user == `user_id` in the URL) is
    not loaded here: the view reads that user's row anyway and checks there
    that the account still exists and is active, which saves a query per
    request. Everyone else (staff acting for a user) is loaded as usual.
    Token checks (signature, expiry, type) are the same as JWTAuthentication.
    """

    def authenticate(self, request: Request):
        header = self.get_header(request)
        raw_token = self.get_raw_token(header) if header is not None else None
        if raw_token is None:
            return None
        token = self.get_validated_token(raw_token)

        target = request.parser_context["kwargs"].get("user_id")
        claimed = str(token.get(jwt_settings.USER_ID_CLAIM, ""))
        # Password-change revocation needs the stored hash: load the user then.
        deferrable = jwt_settings.USER_ID_FIELD == "id" and not (
            jwt_settings.CHECK_REVOKE_TOKEN
        )
        if deferrable and claimed.isdigit() and int(claimed) == target:
            return TokenSelf(token), token
        return self.get_user(token), token


class SelfTokenAuthenticationScheme(SimpleJWTScheme):
    """The same bearer token as everywhere else, for the OpenAPI schema."""

    target_class = SelfTokenAuthentication


# Both classes publish the one "jwtAuth" scheme on purpose: same token.
set_override(SelfTokenAuthentication, "suppress_collision_warning", True)


def ensure_token_self_exists(user, row: tuple[bool, str, str] | None) -> None:
    """For a TokenSelf caller, the checks JWTAuthentication would have made."""
    if not isinstance(user, TokenSelf):
        return
    if row is None:
        raise AuthenticationFailed("User not found", code="user_not_found")
    if jwt_settings.CHECK_USER_IS_ACTIVE and not row[0]:
        raise AuthenticationFailed("User is inactive", code="user_inactive")


def segment_or_default(user_id: int, caller) -> UserSegment:
    """The user's segment row, or an unsaved default one; 404 for no such user."""
    segment = UserSegment.objects.filter(user_id=user_id).first()
    if segment is not None:
        return segment

    if user_id != caller.pk and not User.objects.filter(pk=user_id).exists():
        raise NotFound(UNKNOWN_USER)
    return UserSegment(user_id=user_id, last_updated=None)


class UserSegmentView(APIView):
    permission_classes = [IsAuthenticated, IsSelfOrStaff, IsStaffForWrites]

    @extend_schema(
        summary="A user's RFM segment",
        description=(
            "The segment row. A user the RFM batch has not reached yet gets "
            "Low / Unknown with null raw values, scores and last_updated."
        ),
        responses={200: UserSegmentSerializer, **ACCESS_ERRORS},
    )
    def get(self, request: Request, user_id: int) -> Response:
        segment = segment_or_default(user_id, request.user)
        return Response(UserSegmentSerializer(segment).data)

    @extend_schema(
        summary="Set a user's risk profile (staff only)",
        request=RiskProfileUpdateSerializer,
        responses={200: UserSegmentSerializer, **INVALID_INPUT, **ACCESS_ERRORS},
    )
    def patch(self, request: Request, user_id: int) -> Response:
        if not User.objects.filter(pk=user_id).exists():
            raise NotFound(UNKNOWN_USER)
        serializer = RiskProfileUpdateSerializer(data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        risk_profile = serializer.validated_data.get("risk_profile")
        if risk_profile is None:
            # An empty PATCH changes nothing, as PATCH semantics have it.
            segment = segment_or_default(user_id, request.user)
            return Response(UserSegmentSerializer(segment).data)

        # The RFM batch never writes risk_profile, so this cannot undo its
        # work, and it may create the row before the batch first reaches it.
        try:
            segment, _ = UserSegment.objects.update_or_create(
                user_id=user_id, defaults={"risk_profile": risk_profile}
            )
        except IntegrityError:
            # The user was deleted between the check above and the write.
            raise NotFound(UNKNOWN_USER) from None

        logger.info(
            "risk profile of user %s set to %s by user %s",
            user_id,
            risk_profile,
            request.user.pk,
        )
        return Response(UserSegmentSerializer(segment).data)


class RecommendationView(APIView):
    """The hot path: one query, one Redis read, no serializer on the way out."""

    authentication_classes = [SelfTokenAuthentication]
    permission_classes = [IsAuthenticated, IsSelfOrStaff]

    @extend_schema(
        summary="Recommended reward probability and time window",
        description=(
            "From the segment table row, plus 0.01 per streak day, clamped to "
            "[0.05, 0.95]. When Redis is unreachable the streak is 0 and "
            "degraded is true."
        ),
        responses={200: RecommendationSerializer, **ACCESS_ERRORS},
    )
    def get(self, request: Request, user_id: int) -> Response:
        row = user_and_segment(user_id)
        ensure_token_self_exists(request.user, row)
        if row is None:
            raise NotFound(UNKNOWN_USER)
        _, rfm_group, risk_profile = row
        streak_count, degraded = read_streak(user_id)

        base, time_window = match_rule(rfm_group, risk_profile)
        return Response(
            {
                "user_id": user_id,
                "rfm_group": rfm_group,
                "risk_profile": risk_profile,
                "streak_count": streak_count,
                "recommended_reward_probability": reward_probability(
                    base, streak_count
                ),
                "recommended_time_window": time_window,
                "degraded": degraded,
            }
        )


def odds_query(request: Request) -> float:
    """base_probability from the query string; 400 for anything else."""
    repeated = sorted(
        name for name, values in request.query_params.lists() if len(values) > 1
    )
    if repeated:
        raise ValidationError(
            {name: ["Give this parameter once."] for name in repeated}
        )

    serializer = OddsQuerySerializer(data=request.query_params.dict())
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data["base_probability"]


class OddsView(APIView):
    permission_classes = [IsAuthenticated, IsSelfOrStaff]

    @extend_schema(
        summary="Game win probability adjusted for the user's segment",
        description=(
            "adjusted_probability = base_probability + the segment's adjustment "
            "(SEGMENT_PROB_ADJUST_JSON), clamped to [0, 1]. house_edge is the "
            "segment's edge (HOUSE_EDGE_JSON), reported for the payout, not "
            "applied to the probability. A segment missing from either setting "
            "gets adjustment 0 and edge 0.10."
        ),
        parameters=[OddsQuerySerializer],
        responses={200: OddsSerializer, **INVALID_INPUT, **ACCESS_ERRORS},
    )
    def get(self, request: Request, user_id: int) -> Response:
        base_probability = odds_query(request)
        segment, _ = group_and_risk(user_id)

        odds = odds_for(segment, base_probability)
        return Response(
            {
                "user_id": user_id,
                "segment": odds.segment,
                "base_probability": base_probability,
                "adjusted_probability": odds.adjusted_probability,
                "house_edge": odds.house_edge,
            }
        )
