"""RFM segments, one row per user, and the history of batch runs."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class RfmGroup(models.TextChoices):
    WHALE = "Whale"
    HIGH_ENGAGED = "High Engaged"
    MEDIUM = "Medium"
    LOW = "Low"


class RiskProfile(models.TextChoices):
    LOW = "Low-Risk"
    MODERATE = "Moderate-Risk"
    HIGH = "High-Risk"
    UNKNOWN = "Unknown"


class UserSegment(models.Model):
    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        primary_key=True,
        related_name="segment",
    )
    rfm_group = models.CharField(
        max_length=32, choices=RfmGroup.choices, default=RfmGroup.LOW
    )
    risk_profile = models.CharField(
        max_length=16, choices=RiskProfile.choices, default=RiskProfile.UNKNOWN
    )
    recency_days = models.IntegerField(null=True, blank=True)
    frequency = models.IntegerField(null=True, blank=True)
    monetary = models.DecimalField(
        max_digits=20, decimal_places=2, null=True, blank=True
    )
    r_score = models.SmallIntegerField(null=True, blank=True)
    f_score = models.SmallIntegerField(null=True, blank=True)
    m_score = models.SmallIntegerField(null=True, blank=True)
    last_updated = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "user_segments"
        indexes = [
            models.Index(
                fields=["rfm_group", "risk_profile"], name="user_segments_group_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user_id}: {self.rfm_group} / {self.risk_profile}"


class RfmRun(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        SKIPPED = "skipped"

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    as_of = models.DateTimeField()
    window_days = models.PositiveIntegerField()
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.RUNNING
    )
    users_processed = models.PositiveIntegerField(default=0)
    active_users = models.PositiveIntegerField(
        default=0, help_text="Users with at least one action in the window."
    )
    group_counts = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        db_table = "rfm_runs"
        ordering = ["-started_at"]
        verbose_name = "RFM run"
        permissions = [("run_rfm", "Can start an RFM run")]

    def __str__(self) -> str:
        return f"RFM run {self.pk} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.finished_at is None:
            return None
        return (self.finished_at - self.started_at).total_seconds()
