"""API tokens: one per login, stored as a SHA-256 digest, with an expiry."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from accounts.querysets import ApiTokenQuerySet


class ApiToken(models.Model):
    """A bearer token (``Authorization: Token <key>``). The key is shown once, at login; the
    database keeps only its digest, so a leaked table or admin page grants nothing. A key is 32
    random bytes, so an unsalted SHA-256 is enough (nothing to brute-force)."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )  # its index serves logout-all and the per-user cap (accounts.services)
    # unique: the authentication lookup, one index probe per request (accounts.auth)
    digest = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = "API token"

    def __str__(self) -> str:
        return f"token {self.pk} of user {self.user_id}"
