"""The project's shared Redis: django-redis's connection for the default cache, or None.

None when the default cache is not django-redis (development on local memory): a counter, a
sequence number or a data version kept there would be per process, so callers that need one
shared across processes fall back or say they cannot know. Errors of the Redis calls themselves
(down, hung, circuit open) are the caller's to handle.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings


def uses_redis() -> bool:
    """Whether the default cache is the shared Redis (django-redis)."""
    return "django_redis" in settings.CACHES["default"]["BACKEND"]


def shared_redis() -> Any | None:
    """The default cache's Redis client, or None without Redis."""
    if not uses_redis():
        return None
    from django_redis import get_redis_connection

    return get_redis_connection("default")
