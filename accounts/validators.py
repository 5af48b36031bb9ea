"""Password rules beyond Django's four, and the hook that revokes tokens on a password change."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError

MIN_DISTINCT_CHARACTERS = 4


class NotBlankPasswordValidator:
    """Refuses passwords of only whitespace and passwords of fewer than 4 distinct characters
    ("        ", "aaaaaaaa", "abababab"), which Django's length/common/numeric rules let through."""

    def validate(self, password: str, user: Any = None) -> None:
        if not password.strip():
            raise ValidationError("This password is only spaces.", code="password_blank")
        if len(set(password)) < MIN_DISTINCT_CHARACTERS:
            raise ValidationError(
                f"This password has fewer than {MIN_DISTINCT_CHARACTERS} different characters.",
                code="password_too_simple",
            )

    def get_help_text(self) -> str:
        return (
            f"Your password must not be only spaces and must have at least "
            f"{MIN_DISTINCT_CHARACTERS} different characters."
        )


class RevokeTokensOnPasswordChange:
    """Validates nothing. Django calls ``password_changed`` of every configured validator after
    each password change that goes through ``set_password`` + ``save`` (the API, the admin,
    ``manage.py changepassword``): every API token of the user stops working at that moment.
    (Sessions are invalidated by Django itself: their hash includes the password's.)"""

    def validate(self, password: str, user: Any = None) -> None:
        return None

    def password_changed(self, password: str, user: Any = None) -> None:
        if user is not None and user.pk is not None:
            from accounts.services import tokens_revoke_all

            tokens_revoke_all(user_id=user.pk)

    def get_help_text(self) -> str:
        return ""
