"""Who may touch which user's data.

Every user-scoped endpoint names its target user (`user_id` in the path or
the body). A user may act only for themselves; staff, and service accounts
holding `accounts.act_for_any_user`, may act for anyone.

Anonymous callers get 401 and everyone else 403, never 404: a user probing
ids learns nothing about which accounts exist.
"""

from __future__ import annotations

from typing import Any

from rest_framework.exceptions import NotFound, PermissionDenied
from rest_framework.permissions import BasePermission

ACT_FOR_ANY_USER = "accounts.act_for_any_user"
DENIED_MESSAGE = "You may only access your own data."


def _as_user_id(value: Any) -> int | None:
    """`value` as a user id, or None when it cannot be one."""
    if isinstance(value, bool):
        return None
    try:
        user_id = int(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return user_id if user_id > 0 else None


def can_act_for_anyone(user) -> bool:
    """Staff and service accounts with `accounts.act_for_any_user`."""
    if not user or not user.is_authenticated:
        return False
    return bool(user.is_staff or user.has_perm(ACT_FOR_ANY_USER))


def can_act_for(user, target_user_id: Any) -> bool:
    if not user or not user.is_authenticated:
        return False

    # Ids arrive as ints from serializers and as strings from some URLs;
    # comparing them raw would deny a user their own "5".
    target = _as_user_id(target_user_id)
    if target is not None and target == user.pk:
        return True
    return can_act_for_anyone(user)


def ensure_can_act_for(user, target_user_id: Any) -> None:
    """Raise 403 unless `user` may act for `target_user_id`.

    Call it after authentication (views keep IsAuthenticated or
    IsSelfOrStaff, which give anonymous callers 401 first).
    """
    if not can_act_for(user, target_user_id):
        raise PermissionDenied(DENIED_MESSAGE)


class IsSelfOrStaff(BasePermission):
    """The caller must be the target user, staff, or a service account.

    Used alone it is enough: anonymous callers get 401 (DRF turns a denial
    of an unauthenticated request into NotAuthenticated), another user's id
    gets 403. The target is the URL keyword `user_id_kwarg` (default
    `user_id`); views without it pass, and rely on `ensure_can_act_for` for a
    body `user_id` or on `has_object_permission` for the object they load
    (any object with a `user_id` attribute, or a User itself).
    """

    message = DENIED_MESSAGE
    user_id_kwarg = "user_id"

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False

        raw_target = view.kwargs.get(self.user_id_kwarg)
        if raw_target is None:
            return True
        target = _as_user_id(raw_target)
        if target is None:
            # Not an id at all (only possible with a str URL converter).
            raise NotFound("Unknown user.")
        return can_act_for(request.user, target)

    def has_object_permission(self, request, view, obj) -> bool:
        from django.contrib.auth import get_user_model

        if isinstance(obj, get_user_model()):
            return can_act_for(request.user, obj.pk)
        return can_act_for(request.user, getattr(obj, "user_id", None))
