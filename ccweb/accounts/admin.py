"""Back-office for users and invite codes."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import UserChangeForm
from django.core.validators import RegexValidator
from django.db.models import F, Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ccweb.accounts.models import InviteCode, User
from ccweb.accounts.services import USERNAME_TAKEN, username_taken

# Codes travel in URL paths (/api/invite/validate/{code}): keep them plain.
CODE_CHARACTERS = RegexValidator(
    r"^[A-Za-z0-9_-]+$", "Use letters, digits, '-' and '_' only."
)


class ProfileChangeForm(UserChangeForm):
    def clean_username(self) -> str:
        username = self.cleaned_data["username"]
        # The database refuses a case-insensitive duplicate; say so politely.
        if username_taken(username, exclude_pk=self.instance.pk):
            raise forms.ValidationError(USERNAME_TAKEN)
        return username


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    form = ProfileChangeForm
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Casino club", {"fields": ("nickname", "invite_code")}),
    )
    readonly_fields = ("invite_code", "date_joined", "last_login")
    list_display = (
        "username",
        "nickname",
        "is_active",
        "is_staff",
        "invite_code",
        "date_joined",
    )
    list_filter = ("is_active", "is_staff", "is_superuser", "date_joined")
    list_select_related = ("invite_code",)
    search_fields = ("username", "nickname", "email")
    ordering = ("-date_joined",)


class InviteCodeForm(forms.ModelForm):
    class Meta:
        model = InviteCode
        fields = ("code", "is_active", "max_uses", "expires_at", "note")

    code = forms.CharField(max_length=32, validators=[CODE_CHARACTERS])

    def clean_max_uses(self) -> int | None:
        max_uses = self.cleaned_data["max_uses"]
        if max_uses is not None and max_uses < self.instance.use_count:
            raise forms.ValidationError(
                f"Already used {self.instance.use_count} times; "
                "the limit cannot be lower."
            )
        return max_uses


class AvailabilityFilter(admin.SimpleListFilter):
    title = "availability"
    parameter_name = "availability"

    def lookups(self, request, model_admin):
        return [
            ("available", "Can be redeemed"),
            ("used_up", "Used up"),
            ("expired", "Expired"),
        ]

    def queryset(self, request, queryset: QuerySet) -> QuerySet:
        now = timezone.now()
        used_up = Q(max_uses__isnull=False, use_count__gte=F("max_uses"))
        expired = Q(expires_at__isnull=False, expires_at__lte=now)
        if self.value() == "available":
            return queryset.filter(is_active=True).exclude(used_up | expired)
        if self.value() == "used_up":
            return queryset.filter(used_up)
        if self.value() == "expired":
            return queryset.filter(expired)
        return queryset


@admin.register(InviteCode)
class InviteCodeAdmin(admin.ModelAdmin):
    form = InviteCodeForm
    list_display = (
        "code",
        "is_active",
        "use_count",
        "max_uses",
        "expires_at",
        "note",
        "created_at",
    )
    list_filter = ("is_active", AvailabilityFilter, "expires_at", "created_at")
    search_fields = ("code", "note")
    readonly_fields = ("use_count", "created_at")
    actions = ("deactivate", "activate")

    def save_model(self, request, obj: InviteCode, form, change: bool) -> None:
        if change:
            # use_count belongs to redemptions (an atomic UPDATE); writing
            # back the whole row would undo the uses counted since the form
            # was loaded.
            obj.save(update_fields=form.changed_data)
        else:
            obj.save()

    @admin.action(description="Deactivate selected invite codes")
    def deactivate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(is_active=False)
        self.message_user(request, f"{count} invite code(s) deactivated.")

    @admin.action(description="Activate selected invite codes")
    def activate(self, request: HttpRequest, queryset: QuerySet) -> None:
        count = queryset.update(is_active=True)
        self.message_user(request, f"{count} invite code(s) activated.", messages.INFO)
