"""Deploy checks (``manage.py check --deploy``) of the project's own posture."""

from __future__ import annotations

from typing import Any

from django.core import checks

from zerobot.lib.redis_client import shared_redis, uses_redis


@checks.register(checks.Tags.caches, deploy=True)
def redis_memory_is_bounded(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """Redis with no ``maxmemory`` grows until the host runs out of memory; a cache should evict
    instead (DEVELOPERS.md: ``--maxmemory 256mb --maxmemory-policy allkeys-lru``)."""
    if not uses_redis():
        return []
    try:
        config = shared_redis().config_get("maxmemory*")
    except Exception:  # unreachable, or CONFIG disabled (managed Redis): nothing to say
        return []
    if int(config.get("maxmemory", 0) or 0) == 0 or config.get("maxmemory-policy") == "noeviction":
        return [
            checks.Warning(
                f"Redis has maxmemory={config.get('maxmemory')} and policy "
                f"{config.get('maxmemory-policy')}: the cache can grow without bound.",
                hint="Start Redis with --maxmemory 256mb --maxmemory-policy allkeys-lru "
                "(or CONFIG SET both).",
                id="zerobot.W001",
            )
        ]
    return []
