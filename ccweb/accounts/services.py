"""Signup, invite code redemption and refresh token revocation."""

from __future__ import annotations

import logging
from datetime import datetime

from django.db import IntegrityError, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Lower
from django.utils import timezone
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.token_blacklist.models import (
    BlacklistedToken,
    OutstandingToken,
)
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import datetime_from_epoch

from ccweb.accounts.models import InviteCode, User

logger = logging.getLogger(__name__)

# Why a code cannot be redeemed: the `reason` the API reports, and its text.
INVITE_PROBLEMS = {
    "unknown": "This invite code does not exist.",
    "inactive": "This invite code has been deactivated.",
    "expired": "This invite code has expired.",
    "used_up": "This invite code has no uses left.",
}
USERNAME_TAKEN = "A user with that username already exists."


class InviteCodeUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(INVITE_PROBLEMS[reason])
        self.reason = reason


class UsernameTaken(Exception):
    pass


def _lookup_invite_code(code: str) -> InviteCode | None:
    # Codes are at most 32 characters and never hold a NUL (PostgreSQL
    # rejects one in a query): anything else cannot exist, so skip the query.
    if not code or len(code) > 32 or "\x00" in code:
        return None
    return InviteCode.objects.filter(code=code).first()


def invite_code_problem(code: str, now: datetime | None = None) -> str | None:
    """Why `code` cannot be redeemed now (a key of INVITE_PROBLEMS), or None."""
    invite = _lookup_invite_code(code)
    if invite is None:
        return "unknown"
    return invite.unavailable_reason(now)


def redeem_invite_code(code: str, now: datetime | None = None) -> InviteCode:
    """Count one use of `code`, or raise InviteCodeUnavailable.

    Call it inside the transaction that creates the user. The conditional
    UPDATE locks the row until that transaction ends, so concurrent
    redemptions of one code queue up and each re-checks `use_count` against
    the value the previous one committed: `max_uses` is never passed. A
    signup that fails later rolls back, and its use with it.
    """
    now = now or timezone.now()

    invite = _lookup_invite_code(code)
    if invite is None:
        raise InviteCodeUnavailable("unknown")

    redeemed = (
        InviteCode.objects.filter(pk=invite.pk, is_active=True)
        .filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
        .filter(Q(max_uses__isnull=True) | Q(use_count__lt=F("max_uses")))
        .update(use_count=F("use_count") + 1)
    )
    if not redeemed:
        invite.refresh_from_db()
        # Nothing wrong with the row now means another signup took the
        # last use and then rolled back; the answer is still "used up".
        raise InviteCodeUnavailable(invite.unavailable_reason(now) or "used_up")
    return invite


def username_taken(username: str, exclude_pk: int | None = None) -> bool:
    """Whether an account already uses `username`, whatever its case."""
    matches = User.objects.alias(username_lower=Lower("username")).filter(
        username_lower=Lower(Value(User.normalize_username(username)))
    )
    if exclude_pk is not None:
        matches = matches.exclude(pk=exclude_pk)
    return matches.exists()


def sign_up(*, username: str, password: str, invite_code: str, nickname: str) -> User:
    """Create a user with a redeemed invite code, atomically.

    Raises InviteCodeUnavailable or UsernameTaken, and then stores nothing.
    Password validation is the caller's job (the signup serializer).
    """
    user = User(username=User.normalize_username(username), nickname=nickname)
    # Hashing takes a good fraction of a second by design; done before the
    # transaction, it does not hold the invite code's row lock.
    user.set_password(password)

    try:
        with transaction.atomic():
            user.invite_code = redeem_invite_code(invite_code)
            user.save()
    except IntegrityError:
        # Two signups raced for one username (in any case); the loser's
        # invite use was rolled back with its transaction.
        if username_taken(user.username):
            raise UsernameTaken(USERNAME_TAKEN) from None
        raise

    logger.info(
        "user %s signed up with invite code id %s", user.pk, user.invite_code_id
    )
    return user


def issue_token_pair(user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    return {"refresh": str(refresh), "access": str(refresh.access_token)}


def revoke_refresh_token(refresh: RefreshToken) -> bool:
    """Blacklist a verified refresh token; False if it already was.

    Only one caller can create the blacklist row (its token link is unique),
    so of two requests racing with one refresh token exactly one wins, and
    a token can be rotated or logged out once only.
    """
    # Every refresh token issued here was recorded as outstanding; the row
    # is created only for tokens from before that, without a user link.
    outstanding, _ = OutstandingToken.objects.get_or_create(
        jti=refresh[jwt_settings.JTI_CLAIM],
        defaults={
            "user": None,
            "token": str(refresh),
            "created_at": refresh.current_time,
            "expires_at": datetime_from_epoch(refresh["exp"]),
        },
    )
    _, created = BlacklistedToken.objects.get_or_create(token=outstanding)
    return created
