"""Serializer rules every endpoint shares.

- Unknown fields are rejected with 400 instead of silently dropped.
- No NUL character anywhere in the input, nested JSON included (PostgreSQL
  cannot store one in text or jsonb, and it is never legitimate here).
"""

from __future__ import annotations

from rest_framework import serializers


def contains_nul(value) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(contains_nul(k) or contains_nul(v) for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return any(contains_nul(item) for item in value)
    return False


class StrictSerializer(serializers.Serializer):
    """A Serializer that rejects unknown fields and NUL characters."""

    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError(
                {"non_field_errors": ["Expected a JSON object."]}
            )
        writable = {name for name, field in self.fields.items() if not field.read_only}
        unknown = sorted(set(data) - writable)
        if unknown:
            raise serializers.ValidationError(
                {name: ["Unknown field."] for name in unknown}
            )
        nul_fields = sorted(name for name, value in data.items() if contains_nul(value))
        if nul_fields:
            raise serializers.ValidationError(
                {name: ["NUL characters are not allowed."] for name in nul_fields}
            )
        return super().to_internal_value(data)


class StrictModelSerializer(StrictSerializer, serializers.ModelSerializer):
    """The same rules for ModelSerializer."""
