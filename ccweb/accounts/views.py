"""Signup, JWT sessions, the caller's profile and invite code checks.

The public endpoints skip authentication altogether: a stale access token
left in a client's Authorization header must not stop it from logging in
or refreshing.
"""

from __future__ import annotations

import logging

from drf_spectacular.utils import OpenApiResponse, extend_schema
from prometheus_client import Counter
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from ccweb.accounts import services
from ccweb.accounts.models import User
from ccweb.accounts.serializers import (
    ErrorSerializer,
    InviteValidationSerializer,
    LogoutResponseSerializer,
    ProfileSerializer,
    RefreshTokenSerializer,
    SignupResponseSerializer,
    SignupSerializer,
    TokenLoginSerializer,
    TokenObtainSerializer,
    TokenPairSerializer,
)
from ccweb.accounts.throttles import AuthRateThrottle, InviteRateThrottle

logger = logging.getLogger(__name__)

SIGNUPS = Counter(
    "ccweb_signups_total",
    "Signup attempts by outcome: created, or rejected with 400.",
    ["outcome"],
)

TAG = "auth"
BAD_INPUT = OpenApiResponse(ErrorSerializer, description="Invalid input.")
BAD_TOKEN = OpenApiResponse(
    ErrorSerializer, description="Token invalid, expired or revoked."
)
THROTTLED = OpenApiResponse(
    ErrorSerializer, description="Too many requests; see Retry-After."
)
TOO_LARGE = OpenApiResponse(ErrorSerializer, description="Request body too large.")


class PublicAuthView(APIView):
    authentication_classes = ()
    permission_classes = (AllowAny,)
    throttle_classes = (AuthRateThrottle,)

    def get_authenticate_header(self, request: Request) -> str:
        # Keeps 401 answers 401 (DRF downgrades them to 403 without one).
        return f'{jwt_settings.AUTH_HEADER_TYPES[0]} realm="api"'


class SignupView(PublicAuthView):
    @extend_schema(
        tags=[TAG],
        summary="Create an account with an invite code",
        request=SignupSerializer,
        responses={
            201: SignupResponseSerializer,
            400: BAD_INPUT,
            413: TOO_LARGE,
            429: THROTTLED,
        },
    )
    def post(self, request: Request) -> Response:
        try:
            user = self.sign_up(request.data)
        except serializers.ValidationError:
            SIGNUPS.labels(outcome="rejected").inc()
            raise
        SIGNUPS.labels(outcome="created").inc()

        body = {
            "user_id": user.pk,
            "username": user.username,
            "nickname": user.nickname,
            **services.issue_token_pair(user),
        }
        return Response(body, status=status.HTTP_201_CREATED)

    def sign_up(self, data) -> User:
        serializer = SignupSerializer(data=data)
        serializer.is_valid(raise_exception=True)
        fields = serializer.validated_data

        try:
            return services.sign_up(
                username=fields["username"],
                password=fields["password"],
                invite_code=fields["invite_code"],
                nickname=fields["nickname"],
            )
        except services.InviteCodeUnavailable as exc:
            raise serializers.ValidationError({"invite_code": [str(exc)]}) from None
        except services.UsernameTaken as exc:
            raise serializers.ValidationError({"username": [str(exc)]}) from None


class TokenObtainView(PublicAuthView):
    @extend_schema(
        tags=[TAG],
        summary="Log in: trade a username and password for a token pair",
        description="The username matches whatever its letter case.",
        request=TokenObtainSerializer,
        responses={
            200: TokenLoginSerializer,
            400: BAD_INPUT,
            401: OpenApiResponse(ErrorSerializer, description="Wrong credentials."),
            413: TOO_LARGE,
            429: THROTTLED,
        },
    )
    def post(self, request: Request) -> Response:
        serializer = TokenObtainSerializer(
            data=request.data, context={"request": request}
        )
        serializer.is_valid(raise_exception=True)
        return Response(serializer.validated_data)


def _verified_refresh_token(request: Request) -> RefreshToken:
    serializer = RefreshTokenSerializer(data=request.data)
    try:
        serializer.is_valid(raise_exception=True)
    except TokenError as exc:
        raise InvalidToken(str(exc)) from None
    return serializer.validated_data["refresh"]


class TokenRefreshView(PublicAuthView):
    @extend_schema(
        tags=[TAG],
        summary="Trade a refresh token for a new pair",
        description=(
            "The refresh token given is revoked: each one works once. Answers "
            "401 for a revoked, expired or tampered token, and when the account "
            "is gone or deactivated."
        ),
        request=RefreshTokenSerializer,
        responses={
            200: TokenPairSerializer,
            400: BAD_INPUT,
            401: BAD_TOKEN,
            413: TOO_LARGE,
            429: THROTTLED,
        },
    )
    def post(self, request: Request) -> Response:
        refresh = _verified_refresh_token(request)

        try:
            user_id = int(refresh.get(jwt_settings.USER_ID_CLAIM))
        except (TypeError, ValueError):
            raise InvalidToken("Token carries no user id.") from None
        user = User.objects.filter(pk=user_id, is_active=True).first()
        if user is None:
            raise InvalidToken("No active account found for the given token.")
        if not services.revoke_refresh_token(refresh):
            # Another request rotated this very token a moment ago.
            raise InvalidToken("Token is blacklisted")

        return Response(services.issue_token_pair(user))


class LogoutView(PublicAuthView):
    @extend_schema(
        tags=[TAG],
        summary="Log out: revoke a refresh token",
        description=(
            "Access tokens already issued stay valid until they expire "
            "(minutes); the refresh token given can no longer be used."
        ),
        request=RefreshTokenSerializer,
        responses={
            200: LogoutResponseSerializer,
            400: BAD_INPUT,
            401: BAD_TOKEN,
            413: TOO_LARGE,
            429: THROTTLED,
        },
    )
    def post(self, request: Request) -> Response:
        refresh = _verified_refresh_token(request)

        if not services.revoke_refresh_token(refresh):
            raise InvalidToken("Token is blacklisted")

        return Response({"detail": "Logged out."})


class MeView(APIView):
    permission_classes = (IsAuthenticated,)

    @extend_schema(
        tags=[TAG],
        summary="The caller's own profile",
        responses={
            200: ProfileSerializer,
            401: OpenApiResponse(ErrorSerializer, description="Not authenticated."),
        },
    )
    def get(self, request: Request) -> Response:
        return Response(ProfileSerializer(request.user).data)


class InviteValidateView(PublicAuthView):
    throttle_classes = (InviteRateThrottle,)

    @extend_schema(
        tags=["invite"],
        summary="Say whether an invite code can be used to sign up now",
        responses={200: InviteValidationSerializer, 429: THROTTLED},
    )
    def get(self, request: Request, code: str) -> Response:
        problem = services.invite_code_problem(code)

        if problem is None:
            body = {
                "valid": True,
                "detail": "This invite code is valid.",
                "reason": None,
            }
        else:
            body = {
                "valid": False,
                "detail": services.INVITE_PROBLEMS[problem],
                "reason": problem,
            }
        return Response(body)
