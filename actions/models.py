"""User actions and the outbox that carries them to Kafka."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.utils import timezone


class UserAction(models.Model):
    # No index of its own: user_actions_user_ts_idx starts with the user and
    # serves the same lookups (a user's actions, the cascade on delete), so
    # every insert writes one index less.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="actions",
        db_index=False,
    )
    action_type = models.CharField(max_length=64)
    action_timestamp = models.DateTimeField(default=timezone.now)
    value = models.DecimalField(max_digits=18, decimal_places=2, default=0)
    metadata = models.JSONField(default=dict, blank=True)
    event_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        db_table = "user_actions"
        ordering = ["-action_timestamp"]
        indexes = [
            # The RFM window scan: a range on the timestamp, reading only
            # user and value (index-only on PostgreSQL).
            models.Index(
                fields=["action_timestamp"],
                include=["user", "value"],
                name="user_actions_window_idx",
            ),
            # Per-user history and streak rebuilds.
            models.Index(
                fields=["user", "action_timestamp"], name="user_actions_user_ts_idx"
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(value__gte=0), name="user_action_value_gte_0"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.action_type} by user {self.user_id} at {self.action_timestamp}"


class OutboxEvent(models.Model):
    """A message still to be published; the row is deleted once Kafka has it.

    Written in the same transaction as the action it describes, so a committed
    action always has its event, and a rolled-back one never does.
    """

    # Not indexed: user_actions.event_id already guarantees one event per
    # action, and the relay finds rows by id. One index less to write and
    # to delete from for every action.
    event_id = models.UUIDField()
    topic = models.CharField(max_length=255)
    key = models.CharField(max_length=255)
    payload = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)
    attempts = models.PositiveIntegerField(default=0)
    available_at = models.DateTimeField(
        default=timezone.now, help_text="Not retried before this moment (backoff)."
    )
    last_error = models.TextField(blank=True)

    class Meta:
        db_table = "actions_outbox"
        ordering = ["id"]
        indexes = [models.Index(fields=["available_at", "id"], name="outbox_due_idx")]

    def __str__(self) -> str:
        return f"outbox {self.event_id} ({self.attempts} attempts)"
