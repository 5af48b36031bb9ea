"""OpenAPI declarations shared by every API (drf-spectacular)."""

from __future__ import annotations

from drf_spectacular.utils import inline_serializer
from rest_framework import serializers

# The one error shape of every 4xx/5xx under /api/ (zerobot.lib.api).
ERROR = inline_serializer(
    "Error",
    {
        "detail": serializers.CharField(),
        "code": serializers.CharField(),
        "field": serializers.CharField(required=False, help_text="The parameter or body field."),
        "errors": inline_serializer(
            "ErrorItem",
            {
                "detail": serializers.CharField(),
                "code": serializers.CharField(),
                "field": serializers.CharField(required=False),
            },
            many=True,
            required=False,
            help_text="Every problem of a validation error; the first is repeated above.",
        ),
    },
)

# Answers any operation can give (zerobot.lib.api, zerobot.lib.middleware), declared once here
# instead of on each view: 400 (a malformed parameter or body), 401/403 (authentication),
# 503 (database unavailable); with a body also 413 (too large) and 415 (media type, charset).
COMMON_ERRORS = {
    "400": "Invalid parameter or body.",
    "401": "Not authenticated, or the token is invalid or expired.",
    "403": "Not allowed.",
    "503": "Database unavailable (pool exhausted, statement timeout, restart); see Retry-After.",
}
BODY_ERRORS = {"413": "Request body too large.", "415": "Unsupported media type or charset."}


def add_common_errors(result: dict, generator: object, request: object, public: bool) -> dict:
    """drf-spectacular post-processing hook: every /api/ operation documents COMMON_ERRORS, and
    free-text string parameters say they take no NUL byte."""
    ref = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    for path, operations in result.get("paths", {}).items():
        if not path.startswith("/api/"):
            continue
        for operation in operations.values():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            extra = dict(COMMON_ERRORS)
            if "requestBody" in operation:
                extra.update(BODY_ERRORS)
            for code, description in extra.items():
                operation["responses"].setdefault(
                    code, {"content": ref, "description": description}
                )
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                # The request guard refuses NUL bytes in any URL (PostgreSQL cannot compare them).
                if schema.get("type") == "string" and not {"pattern", "enum", "format"} & set(
                    schema
                ):
                    schema["pattern"] = "^[^\\u0000]*$"
    return result
