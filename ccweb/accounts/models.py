"""Users and the invite codes they sign up with."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser, UserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone


class InviteCode(models.Model):
    code = models.CharField(max_length=32, unique=True)
    is_active = models.BooleanField(default=True)
    max_uses = models.PositiveIntegerField(
        null=True, blank=True, help_text="Empty means unlimited."
    )
    use_count = models.PositiveIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    note = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "invite_codes"
        ordering = ["-created_at"]
        constraints = [
            # The last line of defence for atomic redemption: the database
            # itself refuses a use count past the limit.
            models.CheckConstraint(
                condition=models.Q(max_uses__isnull=True)
                | models.Q(use_count__lte=models.F("max_uses")),
                name="invite_code_use_count_within_max_uses",
            ),
        ]

    def __str__(self) -> str:
        return self.code

    def unavailable_reason(self, now=None) -> str | None:
        """Why this code cannot be redeemed now, or None when it can."""
        now = now or timezone.now()
        if not self.is_active:
            return "inactive"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        if self.max_uses is not None and self.use_count >= self.max_uses:
            return "used_up"
        return None


class CaseInsensitiveUserManager(UserManager):
    """Finds users by username whatever its case.

    Usernames are unique case-insensitively (the `user_username_ci_unique`
    constraint), so "Alice" and "alice" name one account: token login, admin
    login and `createsuperuser` all go through this lookup. The filter is on
    LOWER(username), which the constraint's index serves.
    """

    def get_by_natural_key(self, username: str) -> User:
        return self.alias(username_lower=Lower("username")).get(
            username_lower=Lower(models.Value(self.model.normalize_username(username)))
        )


class User(AbstractUser):
    nickname = models.CharField(max_length=64, blank=True)
    invite_code = models.ForeignKey(
        InviteCode,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="users",
        help_text="The invite code used at signup.",
    )

    objects = CaseInsensitiveUserManager()

    class Meta:
        permissions = [
            ("act_for_any_user", "Can read and write the data of any user"),
        ]
        constraints = [
            models.UniqueConstraint(Lower("username"), name="user_username_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.username
