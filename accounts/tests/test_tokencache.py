"""The token cache (accounts/tokencache.py) on the real Redis: a cached token costs no query and
answers what the database answers; every revocation is refused at once, in this process and in
another one; a lookup racing a revocation caches nothing; without Redis the database decides."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from accounts import tokencache
from accounts.auth import token_with_user
from accounts.models import ApiToken
from accounts.services import digest_of, token_create, token_revoke, tokens_revoke_all

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.postgres, pytest.mark.redis]
ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-9"


@pytest.fixture(autouse=True)
def _cache_on(settings: Any) -> None:
    settings.API_TOKEN_CACHE_SECONDS = 30


@pytest.fixture
def alice() -> Any:
    return get_user_model().objects.create_user("alice", password=PASSWORD, first_name="A")


def client_for(key: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return api


def test_a_cached_token_costs_no_query_and_is_the_same(
    alice: Any, django_assert_num_queries: Any
) -> None:
    key = token_create(user=alice).key
    api = client_for(key)
    with django_assert_num_queries(1):  # the miss: token + user, one join
        first = api.get("/api/auth/me")
    with django_assert_num_queries(0):  # from Redis
        again = api.get("/api/auth/me")
    assert first.status_code == again.status_code == 200
    assert first.content == again.content

    cached = token_with_user(digest_of(key))
    expected = ApiToken.objects.select_related("user").get(digest=digest_of(key))
    fields = [f.attname for f in ApiToken._meta.concrete_fields]
    assert [getattr(cached, f) for f in fields] == [getattr(expected, f) for f in fields]
    user_fields = [f.attname for f in get_user_model()._meta.concrete_fields]
    assert [getattr(cached.user, f) for f in user_fields] == [
        getattr(expected.user, f) for f in user_fields
    ]  # password included: deferred, loaded on demand


def test_the_password_hash_never_goes_to_redis(alice: Any) -> None:
    key = token_create(user=alice).key
    assert client_for(key).get("/api/auth/me").status_code == 200
    raw = tokencache.shared_redis().get(tokencache._entry_key(digest_of(key)))
    assert raw is not None
    assert alice.password.encode() not in raw
    assert alice.password not in pickle.loads(raw)[1]


def test_logout_and_logout_all_are_refused_at_once(alice: Any) -> None:
    phone, laptop, tablet = (token_create(user=alice).key for _ in range(3))
    for key in (phone, laptop, tablet):
        assert client_for(key).get("/api/auth/me").status_code == 200  # all three cached
    assert client_for(phone).post("/api/auth/logout").status_code == 204
    assert client_for(phone).get("/api/auth/me").status_code == 401
    assert client_for(laptop).get("/api/auth/me").status_code == 200
    assert client_for(laptop).post("/api/auth/logout-all").status_code == 204
    for key in (laptop, tablet):
        assert client_for(key).get("/api/auth/me").status_code == 401


@pytest.mark.parametrize("change", ["password", "deactivate", "delete"])
def test_a_changed_user_is_refused_at_once(alice: Any, change: str) -> None:
    key = token_create(user=alice).key
    assert client_for(key).get("/api/auth/me").status_code == 200
    if change == "password":
        alice.set_password("an0ther-pass-word")
        alice.save()
    elif change == "deactivate":
        alice.is_active = False
        alice.save()  # what the admin does
    else:
        alice.delete()
    assert client_for(key).get("/api/auth/me").status_code == 401


@override_settings(API_TOKENS_PER_USER=2)
def test_tokens_dropped_by_the_per_user_cap_are_refused_at_once(alice: Any) -> None:
    oldest = token_create(user=alice).key
    token_create(user=alice)
    assert client_for(oldest).get("/api/auth/me").status_code == 200
    token_create(user=alice)  # the cap drops the oldest
    assert client_for(oldest).get("/api/auth/me").status_code == 401


@override_settings(API_TOKEN_SLIDING=True, API_TOKEN_TTL_HOURS=10)
def test_a_sliding_refresh_writes_once_and_the_cache_follows(
    alice: Any, django_assert_num_queries: Any
) -> None:
    key = token_create(user=alice).key
    ApiToken.objects.update(expires_at=timezone.now() + timedelta(hours=2))
    api = client_for(key)
    with django_assert_num_queries(2):  # the miss, then the one UPDATE of its expiry
        assert api.get("/api/auth/me").status_code == 200
    with django_assert_num_queries(1):  # its entry was dropped: read again (the new expiry)
        assert api.get("/api/auth/me").status_code == 200
    with django_assert_num_queries(0):
        assert api.get("/api/auth/me").status_code == 200


def test_a_lookup_racing_a_revocation_caches_nothing(alice: Any) -> None:
    token = ApiToken.objects.get(digest=digest_of(token_create(user=alice).key))
    generation = tokencache.generation()  # a lookup read it, then the database...
    row = (token.pk, token.user_id, token.digest, token.created_at, token.expires_at)
    token_revoke(token=token)  # ...and the revocation ran before it could fill
    assert not tokencache.fill(token.digest, alice.pk, generation, row, ())
    assert tokencache.get(token.digest) is None
    assert token_with_user(token.digest) is None


def test_without_redis_the_database_decides(alice: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    key = token_create(user=alice).key
    assert client_for(key).get("/api/auth/me").status_code == 200  # cached
    with socket.socket() as s:  # a port nobody listens on: every Redis call fails
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dead = redis.Redis(port=port, socket_connect_timeout=0.2, socket_timeout=0.2)
    monkeypatch.setattr(tokencache, "shared_redis", lambda: dead)
    assert client_for(key).get("/api/auth/me").status_code == 200  # from the database
    tokens_revoke_all(user_id=alice.pk)  # cannot forget in Redis: the database still refuses
    assert client_for(key).get("/api/auth/me").status_code == 401


WATCHER = """
import sys
from accounts.auth import token_with_user
digest = sys.argv[1]
print("before", token_with_user(digest) is not None, flush=True)
sys.stdin.readline()
print("after", token_with_user(digest) is not None, flush=True)
"""


def test_another_process_refuses_a_token_revoked_here(alice: Any) -> None:
    """A second Django process (same Redis, same database) caches the token, this process
    revokes it, and the other one's next lookup refuses it."""
    key = token_create(user=alice).key
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "zerobot.test_settings",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
        "CACHE_KEY_PREFIX": settings.CACHE_KEY_PREFIX,
        "API_TOKEN_CACHE_SECONDS": "30",
        "DB_POOL_MIN_SIZE": "0",
        "PYTHONPATH": str(ROOT),
    }
    watcher = subprocess.Popen(
        [sys.executable, "-c", "import django; django.setup()\n" + WATCHER, digest_of(key)],
        cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert watcher.stdout is not None and watcher.stdin is not None
        assert watcher.stdout.readline().split() == ["before", "True"]
        assert tokencache.get(digest_of(key)) is not None  # it filled the shared cache
        token_revoke(token=ApiToken.objects.get(digest=digest_of(key)))
        watcher.stdin.write("go\n")
        watcher.stdin.flush()
        assert watcher.stdout.readline().split() == ["after", "False"]
    finally:
        watcher.kill()
        watcher.wait(timeout=30)
