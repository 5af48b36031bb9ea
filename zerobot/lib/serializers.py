"""A DRF serializer that refuses fields it does not accept, instead of ignoring them."""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers


class StrictSerializer(serializers.Serializer):
    """Unknown and read-only fields in the input are a 400 naming each of them.

    DRF drops fields it does not know: ``{"capital": "1e9"}`` on a create answered 200 and changed
    nothing, which a client reads as accepted. ``read_only_reasons`` maps fields that exist on the object
    but cannot be written here to the reason given back.
    """

    read_only_reasons: ClassVar[dict[str, str]] = {}

    def to_internal_value(self, data: Any) -> Any:
        if hasattr(data, "keys"):
            writable = {name for name, field in self.fields.items() if not field.read_only}
            errors: dict[str, list[str]] = {}
            for name in sorted(set(data.keys()) - writable):
                reason = self.read_only_reasons.get(name)
                label = str(name)[:100]
                errors[label] = [f"{label} is read-only: {reason}" if reason else "Unknown field."]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)
