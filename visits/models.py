"""Visits from the app to the operator's corporate site."""

from django.conf import settings
from django.db import models
from django.utils import timezone


class SiteVisit(models.Model):
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="site_visits"
    )
    source = models.CharField(max_length=64)
    visit_timestamp = models.DateTimeField(default=timezone.now)

    class Meta:
        db_table = "site_visits"
        ordering = ["-visit_timestamp"]
        indexes = [
            models.Index(
                fields=["user", "visit_timestamp"], name="site_visits_user_ts_idx"
            )
        ]

    def __str__(self) -> str:
        return f"user {self.user_id} from {self.source} at {self.visit_timestamp}"
