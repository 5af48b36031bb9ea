from __future__ import annotations

from django.db import models
from django.utils import timezone


class ApiTokenQuerySet(models.QuerySet):
    def for_user(self, user_id: int) -> ApiTokenQuerySet:
        return self.filter(user_id=user_id)

    def expired(self) -> ApiTokenQuerySet:
        return self.filter(expires_at__lte=timezone.now())
