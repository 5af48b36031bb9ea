"""Input validation and response shapes of the auth endpoints."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model, password_validation
from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from zerobot.lib.serializers import StrictSerializer


def _validate_password(password: str, user: Any, field: str) -> None:
    try:
        password_validation.validate_password(password, user)
    except DjangoValidationError as exc:
        raise serializers.ValidationError({field: list(exc.messages)}) from None


class RegisterIn(StrictSerializer):
    username = serializers.RegexField(
        r"^[\w.@+-]{3,150}$", max_length=150,
        help_text="3-150 letters, digits and @ . + - _",
    )  # fmt: skip
    email = serializers.EmailField(required=False, allow_blank=True, max_length=254)
    password = serializers.CharField(write_only=True, trim_whitespace=False, max_length=128)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = get_user_model()(username=attrs["username"], email=attrs.get("email", ""))
        _validate_password(attrs["password"], user, "password")
        return attrs


class LoginIn(StrictSerializer):
    username = serializers.CharField(help_text="Username or e-mail address.", max_length=254)
    password = serializers.CharField(trim_whitespace=False, max_length=128)


class PasswordChangeIn(StrictSerializer):
    old_password = serializers.CharField(trim_whitespace=False, max_length=128)
    new_password = serializers.CharField(trim_whitespace=False, max_length=128)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        user = self.context["user"]
        if not user.check_password(attrs["old_password"]):
            raise serializers.ValidationError({"old_password": ["Wrong password."]})
        _validate_password(attrs["new_password"], user, "new_password")
        return attrs


class UserOut(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    email = serializers.EmailField()
    is_staff = serializers.BooleanField()


class TokenOut(serializers.Serializer):
    token = serializers.CharField(help_text="Send as 'Authorization: Token <token>'.")
    expires_at = serializers.DateTimeField(
        help_text="Expiry; with sliding expiry each use moves it forward."
    )
    user = UserOut()
