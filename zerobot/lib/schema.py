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
