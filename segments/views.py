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
from django.db import IntegrityError
from django.http import HttpResponse
from drf_spectacular.contrib.rest_framework_simplejwt import SimpleJWTScheme
from drf_spectacular.drainage import set_override
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.exceptions import AuthenticationFailed, NotFound, ValidationError
from rest_framework.permissions import SAFE_METHODS, BasePermission, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.models import TokenUser
from rest_framework_simplejwt.settings import api_settings as jwt_settings

from ccweb.authentication import CachedJWTAuthentication
from ccweb.fastpath import FastPathMixin, accepts_plain_json, verified_caller_id
from ccweb.permissions import IsSelfOrStaff
from segments.metrics import RECOMMENDATION_DEGRADED
from segments.models import UserSegment
from segments.odds import odds_for
from segments.profile_cache import Profile, load_profile
from segments.recommendation import (
    match_rule,
    recommendation_inputs,
    reward_probability,
)
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
    profile = load_profile(user_id)
    if profile is None:
        raise NotFound(UNKNOWN_USER)
    return profile.rfm_group, profile.risk_profile


class TokenSelf(TokenUser):
    """The caller known from a valid token only, until the view reads its row."""

    @cached_property
    def id(self) -> int:
        return int(self.token[jwt_settings.USER_ID_CLAIM])

    @cached_property
    def pk(self) -> int:
        return self.id


class SelfTokenAuthentication(CachedJWTAuthentication):
    """JWT authentication that lets the view load the caller's own row.

    A user asking about themselves (token user == `user_id` in the URL) is
    not loaded here: the view reads that user's profile anyway (cached in
    Redis, or the row itself) and checks there that the account still
    exists and is active, which saves a query per request. Everyone else
    (staff acting for a user) is loaded as usual.
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


def ensure_token_self_exists(user, profile: Profile | None) -> None:
    """For a TokenSelf caller, the checks JWTAuthentication would have made."""
    if not isinstance(user, TokenSelf):
        return
    if profile is None:
        raise AuthenticationFailed("User not found", code="user_not_found")
    if jwt_settings.CHECK_USER_IS_ACTIVE and not profile.is_active:
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


def recommendation_body(
    user_id: int, profile: Profile, streak_count: int, degraded: bool
) -> dict:
    _, rfm_group, risk_profile = profile
    base, time_window = match_rule(rfm_group, risk_profile)
    return {
        "user_id": user_id,
        "rfm_group": rfm_group,
        "risk_profile": risk_profile,
        "streak_count": streak_count,
        "recommended_reward_probability": reward_probability(base, streak_count),
        "recommended_time_window": time_window,
        "degraded": degraded,
    }


class RecommendationView(FastPathMixin, APIView):
    """The hot path: one Redis read, no query while the cached profile holds.

    No serializer on the way out. segments.profile_cache explains the cache;
    ccweb.fastpath the shortcut a user asking about themselves takes.
    """

    authentication_classes = [SelfTokenAuthentication]
    permission_classes = [IsAuthenticated, IsSelfOrStaff]

    def answer_directly(self, request, user_id: int) -> HttpResponse | None:
        """A user's own recommendation, when the token and the account are known.

        Unknown and inactive accounts, staff asking for someone, and tokens
        this worker has not verified yet take the full cycle.
        """
        if request.method != "GET" or not accepts_plain_json(request):
            return None
        if verified_caller_id(request) != user_id:
            return None

        profile, streak_count, degraded = recommendation_inputs(user_id)
        if profile is None or not profile.is_active:
            return None
        if degraded:
            RECOMMENDATION_DEGRADED.inc()
        body = recommendation_body(user_id, profile, streak_count, degraded)
        return self.json_response(body, status=200)

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
        profile, streak_count, degraded = recommendation_inputs(user_id)
        ensure_token_self_exists(request.user, profile)
        if profile is None:
            raise NotFound(UNKNOWN_USER)
        if degraded:
            RECOMMENDATION_DEGRADED.inc()

        return Response(recommendation_body(user_id, profile, streak_count, degraded))


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
