"""OpenAPI: request bodies of strict serializers say what they refuse.

StrictSerializer answers 400 to an unknown field and to a NUL character in
a string, so the schema of every request body built on it says
`additionalProperties: false` and gives its free-text strings a pattern
without NUL; a client generator or fuzzer then knows both are refused. It
applies to the StrictSerializer subclasses of every app, which all behave
that way.
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiSerializerExtension

NO_NUL_PATTERN = "^[^\\u0000]*$"


class StrictSerializerExtension(OpenApiSerializerExtension):
    target_class = "ccweb.serializers.StrictSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema, direction) -> dict:
        schema = auto_schema._map_serializer(
            self.target, direction, bypass_extensions=True
        )
        if direction != "request":
            return schema

        schema["additionalProperties"] = False
        for field_schema in schema.get("properties", {}).values():
            is_free_text = field_schema.get("type") == "string" and not (
                {"pattern", "format", "enum"} & set(field_schema)
            )
            if is_free_text:
                field_schema["pattern"] = NO_NUL_PATTERN
        return schema
