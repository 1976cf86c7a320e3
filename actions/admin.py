"""Actions (read-only) and the outbox (see, and retry what failed) in the admin."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from actions import outbox
from actions.models import OutboxEvent, UserAction
from ccweb.readonly_admin import ReadOnlyAdmin


@admin.register(UserAction)
class UserActionAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "user",
        "action_type",
        "value",
        "action_timestamp",
        "event_id",
        "created_at",
    ]
    # No filter on action_type: listing its values would scan the whole table.
    list_filter = ["action_timestamp", "created_at"]
    search_fields = ["=user__id", "user__username", "=action_type", "=event_id"]
    date_hierarchy = "action_timestamp"
    list_select_related = ["user"]


class DeliveryFilter(admin.SimpleListFilter):
    title = "delivery"
    parameter_name = "delivery"

    def lookups(self, request, model_admin):
        return [
            ("failed", "Failed at least once"),
            ("waiting", "Waiting for a retry"),
            ("due", "Due now"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "failed":
            return queryset.filter(attempts__gt=0)
        if self.value() == "waiting":
            return queryset.filter(attempts__gt=0, available_at__gt=now)
        if self.value() == "due":
            return queryset.filter(available_at__lte=now)
        return queryset


@admin.register(OutboxEvent)
class OutboxEventAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "event_id",
        "topic",
        "key",
        "attempts",
        "available_at",
        "created_at",
        "short_error",
    ]
    list_filter = [DeliveryFilter, "topic"]
    search_fields = ["=event_id", "=key"]
    actions = ["retry_now"]

    @admin.display(description="last error")
    def short_error(self, event: OutboxEvent) -> str:
        return event.last_error[:120]

    # Rows are never edited by hand; "change" only unlocks the retry action.
    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return obj is None and request.user.has_perm("actions.change_outboxevent")

    @admin.action(
        description="Retry now (keeps the attempt count)", permissions=["change"]
    )
    def retry_now(self, request: HttpRequest, queryset: QuerySet[OutboxEvent]) -> None:
        count = outbox.retry_now(queryset)
        self.message_user(
            request,
            f"{count} events are due now; the next relay sweep publishes them.",
            messages.SUCCESS,
        )
