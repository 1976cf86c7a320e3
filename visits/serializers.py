"""Request and response shapes of the site-visit endpoint."""

from __future__ import annotations

import unicodedata

from rest_framework import serializers

from ccweb.serializers import StrictSerializer
from visits.models import SiteVisit

# Postgres bigint: a larger id cannot name a user, so it is refused up front.
MAX_USER_ID = 2**63 - 1


def has_invisible_characters(text: str) -> bool:
    """Control, format (zero-width, bidi overrides), private-use or unassigned.

    Sources end up in admin lists, CSV exports and log lines, where such
    characters hide or reorder text.
    """
    return any(unicodedata.category(char).startswith("C") for char in text)


class TextField(serializers.CharField):
    """A CharField that takes only JSON strings (DRF would turn 42 into "42")."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class SiteVisitCreateSerializer(StrictSerializer):
    """A visit to log; the server stamps the time."""

    user_id = serializers.IntegerField(min_value=1, max_value=MAX_USER_ID)
    source = TextField(
        max_length=64,
        help_text=(
            "Where in the app the visit started, e.g. `home_banner`: 1-64 "
            "characters after trimming, no control or invisible characters."
        ),
    )

    def validate_source(self, value: str) -> str:
        if has_invisible_characters(value):
            raise serializers.ValidationError(
                "Control and invisible characters are not allowed."
            )
        return value


class SiteVisitSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = SiteVisit
        fields = ["id", "user_id", "source", "visit_timestamp"]
        read_only_fields = fields
