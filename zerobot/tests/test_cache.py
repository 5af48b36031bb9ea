"""Redis is real in these tests; an outage must degrade to logged misses, never an exception."""

from __future__ import annotations

import logging

import pytest
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.utils.module_loading import import_string

from zerobot.lib.logfilters import CacheOutageFilter

pytestmark = pytest.mark.redis


def test_the_configured_cache_is_redis_and_round_trips() -> None:
    cache.set("zb:test:key", {"price": "1.5"}, 30)
    assert cache.get("zb:test:key") == {"price": "1.5"}
    from django_redis import get_redis_connection

    client = get_redis_connection("default")
    parser = client.connection_pool.connection_kwargs["parser_class"]
    assert parser.__name__ == "_HiredisParser"


def test_an_unreachable_redis_is_a_logged_miss_not_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Same options as production, pointed at a port nothing listens on."""
    config = dict(settings.CACHES["default"])
    options = dict(config["OPTIONS"])
    down: BaseCache = import_string(config["BACKEND"])(
        "redis://127.0.0.1:1/0", {**config, "OPTIONS": options}
    )
    CacheOutageFilter.reset_all()  # the outage's first failure is logged (then once a minute)
    with caplog.at_level(logging.WARNING, logger=settings.DJANGO_REDIS_LOGGER):
        assert down.get("anything") is None
        down.set("anything", 1, 10)  # must not raise
        assert down.get_or_set("k", lambda: "computed", 10) == "computed"
    assert [r for r in caplog.records if "Connection" in r.getMessage()]
