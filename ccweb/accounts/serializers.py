"""Request and response bodies of the auth and invite endpoints."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate
from django.contrib.auth.models import update_last_login
from django.contrib.auth.password_validation import validate_password
from django.contrib.auth.validators import UnicodeUsernameValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from drf_spectacular.utils import extend_schema_serializer
from rest_framework import exceptions, serializers
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from ccweb.accounts.models import User
from ccweb.accounts.services import (
    INVITE_PROBLEMS,
    USERNAME_TAKEN,
    invite_code_problem,
    issue_token_pair,
    username_taken,
)
from ccweb.serializers import StrictSerializer

# Long enough for any passphrase a password manager makes, short enough to
# keep hashing cheap to reject.
PASSWORD_MAX_LENGTH = 256
# A signed refresh token is a few hundred characters.
TOKEN_MAX_LENGTH = 2048


class PasswordField(serializers.CharField):
    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", PASSWORD_MAX_LENGTH)
        super().__init__(
            write_only=True,
            trim_whitespace=False,
            style={"input_type": "password"},
            **kwargs,
        )


# --- Requests ------------------------------------------------------------------


class SignupSerializer(StrictSerializer):
    """A new account: its credentials and the invite code that admits it."""

    username = serializers.CharField(
        max_length=150,
        validators=[UnicodeUsernameValidator()],
        help_text="Letters, digits and @ . + - _; unique whatever the case.",
    )
    password = PasswordField(help_text="Checked by the password validators.")
    invite_code = serializers.CharField(max_length=32)
    nickname = serializers.CharField(
        max_length=64, required=False, allow_blank=True, default=""
    )

    def validate_username(self, value: str) -> str:
        username = User.normalize_username(value)
        if username_taken(username):
            raise serializers.ValidationError(USERNAME_TAKEN)
        return username

    def validate_invite_code(self, value: str) -> str:
        # An early answer that lists every field's problem at once; the
        # redemption in the signup transaction is what really decides.
        problem = invite_code_problem(value)
        if problem is not None:
            raise serializers.ValidationError(INVITE_PROBLEMS[problem])
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        candidate = User(username=attrs["username"], nickname=attrs["nickname"])
        try:
            validate_password(attrs["password"], user=candidate)
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"password": exc.messages}) from None
        return attrs


class TokenObtainSerializer(StrictSerializer):
    """Credentials to trade for a token pair."""

    username = serializers.CharField(max_length=150, help_text="Any letter case.")
    password = PasswordField()

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = authenticate(
            request=self.context.get("request"),
            username=attrs["username"],
            password=attrs["password"],
        )
        # ModelBackend already refuses inactive users; the same answer for
        # every failure tells a guesser nothing about which part was wrong.
        if user is None or not user.is_active:
            raise exceptions.AuthenticationFailed(
                "No active account found with the given credentials.",
                code="no_active_account",
            )
        if jwt_settings.UPDATE_LAST_LOGIN:
            update_last_login(None, user)
        return {"user_id": user.pk, **issue_token_pair(user)}


class RefreshTokenSerializer(StrictSerializer):
    """A refresh token from an earlier signup, login or refresh."""

    refresh = serializers.CharField(max_length=TOKEN_MAX_LENGTH, write_only=True)

    def validate_refresh(self, value: str) -> RefreshToken:
        # Checks signature, expiry, type and blacklist. A bad token raises
        # simplejwt's TokenError, which the views turn into 401.
        return RefreshToken(value)


# --- Responses -----------------------------------------------------------------


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField(help_text="Bearer token for API calls.")
    refresh = serializers.CharField(help_text="Trades for a new pair, once.")


class TokenLoginSerializer(TokenPairSerializer):
    user_id = serializers.IntegerField()


class SignupResponseSerializer(TokenLoginSerializer):
    username = serializers.CharField()
    nickname = serializers.CharField(allow_blank=True)


class ProfileSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(source="pk", read_only=True)
    invite_code = serializers.SlugRelatedField(
        slug_field="code", read_only=True, allow_null=True
    )

    class Meta:
        model = User
        fields = [
            "user_id",
            "username",
            "nickname",
            "date_joined",
            "is_staff",
            "invite_code",
        ]
        read_only_fields = fields


class InviteValidationSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    detail = serializers.CharField()
    reason = serializers.ChoiceField(
        choices=list(INVITE_PROBLEMS),
        allow_null=True,
        help_text="Why the code cannot be used; null when it can.",
    )


class LogoutResponseSerializer(serializers.Serializer):
    detail = serializers.CharField()


@extend_schema_serializer(component_name="AuthError")
class ErrorSerializer(serializers.Serializer):
    """An error: a message, a short code and, for bad input, field messages."""

    detail = serializers.CharField()
    # Missing from the few answers made before DRF runs (413, 503); the
    # shape itself comes from ccweb.api.
    code = serializers.CharField(required=False)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field, on validation errors only.",
    )
