"""Request and response shapes of the segments API.

The recommendation and odds views build their answers as plain dicts (the
hot path skips serializer overhead); their serializers here describe those
answers for the OpenAPI schema and must stay in step with the views.
"""

from __future__ import annotations

from rest_framework import serializers

from ccweb.serializers import StrictSerializer
from segments.models import RiskProfile, UserSegment


class UserSegmentSerializer(serializers.ModelSerializer):
    user_id = serializers.IntegerField(read_only=True)
    last_updated = serializers.DateTimeField(
        read_only=True,
        allow_null=True,
        help_text="When the RFM batch last wrote the row; null when it never has.",
    )

    class Meta:
        model = UserSegment
        fields = [
            "user_id",
            "rfm_group",
            "risk_profile",
            "recency_days",
            "frequency",
            "monetary",
            "r_score",
            "f_score",
            "m_score",
            "last_updated",
        ]
        read_only_fields = fields


class RiskProfileUpdateSerializer(StrictSerializer):
    """What staff may change on a segment: the risk profile, nothing else."""

    risk_profile = serializers.ChoiceField(choices=RiskProfile.choices)


class RecommendationSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    rfm_group = serializers.CharField()
    risk_profile = serializers.CharField()
    streak_count = serializers.IntegerField()
    recommended_reward_probability = serializers.FloatField(
        min_value=0.05, max_value=0.95
    )
    recommended_time_window = serializers.CharField()
    degraded = serializers.BooleanField(
        help_text="True when the streak could not be read and 0 was used instead."
    )


class OddsQuerySerializer(StrictSerializer):
    """The query string of the odds endpoint; other parameters are refused."""

    base_probability = serializers.FloatField(
        min_value=0.0, max_value=1.0, help_text="The game's own win probability."
    )


class OddsSerializer(serializers.Serializer):
    user_id = serializers.IntegerField()
    segment = serializers.CharField()
    base_probability = serializers.FloatField(min_value=0.0, max_value=1.0)
    adjusted_probability = serializers.FloatField(min_value=0.0, max_value=1.0)
    house_edge = serializers.FloatField(min_value=0.0, max_value=1.0)


class ErrorSerializer(serializers.Serializer):
    """The error body of ccweb.api, for the OpenAPI schema."""

    detail = serializers.CharField()
    code = serializers.CharField(required=False)
    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Messages per field, on validation errors.",
    )
