"""Writes of the accounts app: users, passwords, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

from accounts import tokencache
from accounts.models import ApiToken

# Register refuses a taken username and a taken e-mail with the same words, in the same time,
# without saying which (the throttle bounds how fast anyone can probe).
IDENTITY_UNAVAILABLE = "This username or e-mail address cannot be used; choose another."


class IdentityUnavailable(Exception):
    pass


@dataclass(frozen=True)
class Issued:
    key: str  # shown once; the database keeps its digest
    expires_at: datetime


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def token_ttl() -> timedelta:
    return timedelta(hours=settings.API_TOKEN_TTL_HOURS)


def token_create(*, user: Any) -> Issued:
    """A new token for ``user`` (its key is never stored). Drops the user's
    expired tokens and, past ``API_TOKENS_PER_USER``, the oldest: a user's tokens are bounded."""
    key = secrets.token_urlsafe(32)
    now = timezone.now()
    with transaction.atomic():
        tokens = ApiToken.objects.for_user(user.pk)
        tokens.filter(expires_at__lte=now).delete()
        keep = settings.API_TOKENS_PER_USER - 1
        surplus = list(tokens.order_by("-created_at", "-id").values_list("id", flat=True)[keep:])
        if surplus:
            ApiToken.objects.filter(id__in=surplus).delete()
            tokencache.forget_user(user.pk)  # revoked: no process may still accept them
        token = ApiToken.objects.create(
            user=user, digest=digest_of(key), expires_at=now + token_ttl()
        )
    return Issued(key=key, expires_at=token.expires_at)


def token_revoke(*, token: ApiToken) -> None:
    """Delete the token; every process refuses it from now on (its cached copy is dropped)."""
    ApiToken.objects.filter(pk=token.pk).delete()
    tokencache.forget_user(token.user_id)


def tokens_revoke_all(*, user_id: int) -> int:
    deleted, _ = ApiToken.objects.for_user(user_id).delete()
    tokencache.forget_user(user_id)
    return deleted


def email_taken(email: str) -> bool:
    # uses accounts_user_email_ci_uniq (LOWER(email) WHERE email <> '')
    return (
        get_user_model()
        .objects.exclude(email="")
        .annotate(email_lower=Lower("email"))
        .filter(email_lower=email.lower())
        .exists()
    )


def user_register(*, username: str, email: str, password: str) -> Any:
    """Create an account; ``IdentityUnavailable`` if the username or the e-mail is taken
    (case-insensitively), checked in one query and enforced by unique indexes against races."""
    User = get_user_model()  # noqa: N806
    email = User.objects.normalize_email(email or "")
    taken = Q(username__iexact=username)
    if email:
        taken |= Q(email_lower=email.lower()) & ~Q(email="")
    if User.objects.annotate(email_lower=Lower("email")).filter(taken).exists():
        raise IdentityUnavailable(IDENTITY_UNAVAILABLE)
    try:
        with transaction.atomic():
            return User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:  # a concurrent registration took it between the check and here
        raise IdentityUnavailable(IDENTITY_UNAVAILABLE) from None


def user_password_change(*, user: Any, new_password: str) -> Issued:
    """Set the password (every token of the user is revoked by the validators' hook,
    accounts.validators.RevokeTokensOnPasswordChange) and return a fresh token."""
    user.set_password(new_password)
    user.save(update_fields=["password"])
    return token_create(user=user)
