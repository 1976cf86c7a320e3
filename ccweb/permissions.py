"""Who may touch which user's data.

Every user-scoped endpoint names its target user (`user_id` in the path or
the body). A user may act only for themselves; staff, and service accounts
holding `accounts.act_for_any_user`, may act for anyone.
"""

from __future__ import annotations

from rest_framework.exceptions import PermissionDenied
from rest_framework.permissions import BasePermission

ACT_FOR_ANY_USER = "accounts.act_for_any_user"


def can_act_for(user, target_user_id: int) -> bool:
    if not user or not user.is_authenticated:
        return False
    if user.pk == target_user_id:
        return True
    return bool(user.is_staff or user.has_perm(ACT_FOR_ANY_USER))


def ensure_can_act_for(user, target_user_id: int) -> None:
    """Raise 403 unless `user` may act for `target_user_id`."""
    if not can_act_for(user, target_user_id):
        raise PermissionDenied("You may only access your own data.")


class IsSelfOrStaff(BasePermission):
    """For views whose URL carries `user_id`: the caller must be that user or staff.

    Authentication is checked first by IsAuthenticated (401); this class then
    gives 403 for someone else's id.
    """

    message = "You may only access your own data."

    def has_permission(self, request, view) -> bool:
        if not request.user or not request.user.is_authenticated:
            return False
        target = view.kwargs.get("user_id")
        if target is None:
            return True
        return can_act_for(request.user, int(target))
