"""The token lookup cached in the shared Redis: a request whose token is cached costs one Redis
GET instead of a PostgreSQL round trip (and, for a cached dashboard body, no database at all).

Revocation is seen at once by every process, because every process reads the same Redis and a
revocation deletes the entries there in the same code path as the database rows:

- ``<prefix>:tok:<digest>``: the token row and its user's row (without the password hash);
  TTL ``API_TOKEN_CACHE_SECONDS`` (a backstop: nothing relies on it while Redis answers);
- ``<prefix>:tokuid:<digest>``: that user's id, beside the entry (same TTL, same set), so one
  Redis script can read the token and, by its user, the dashboard's data version and cached body
  in a single round trip (``trading/conditional.py``, ``prefetch``);
- ``<prefix>:tokset:<user>``: the keys of that user's cached tokens;
- ``<prefix>:tokgen``: one counter moved by every ``forget_user``, whoever's.

``forget_user`` (one script, atomic in Redis) moves the generation and deletes every cached
token of the user. It is called by the token services (revoke, revoke all, the per-user cap of
``token_create``, expiry) and by ``post_save``/``post_delete`` of the user (deactivation,
password change, deletion, any edit in the admin), once at the call and again after commit (a
lookup between the two reads the old row; the second call deletes what it cached).
A lookup that missed fills the entry only if the generation it read before going to the
database is still current: a revocation that ran in between, anyone's, wins (``_FILL``; it
only costs that lookup its fill). A sliding-expiry refresh deletes the token's entry (a delete
never races: only fills can).

Without Redis, or while it fails, every lookup goes to the database (and nothing is cached). A
revocation while Redis fails cannot delete the entries: they live until their TTL.
"""

from __future__ import annotations

import logging
import pickle
from typing import Any

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction

from zerobot.lib.redis_client import shared_redis

logger = logging.getLogger("zerobot.cache")
_OUTAGE = {"cache_outage": True}  # one line per outage and minute (zerobot.lib.logfilters)

# KEYS: entry, user's set, generation, user id key. ARGV: value, ttl, the generation read
# before the database (empty: none was there yet), user id.
_FILL = """
local gen = redis.call('GET', KEYS[3]) or ''
if gen ~= ARGV[3] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('SET', KEYS[4], ARGV[4], 'EX', ARGV[2])
redis.call('SADD', KEYS[2], KEYS[1], KEYS[4])
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 1
"""
# The name under which a lookup made ahead of authentication (one round trip with other reads,
# ``trading/conditional.py``) hands its result to ``token_with_user``: ``(digest, raw entry or
# None)`` on the HttpRequest.
PREFETCHED = "zb_token_prefetched"
# KEYS: user's set, generation.
_FORGET = """
redis.call('INCR', KEYS[2])
local keys = redis.call('SMEMBERS', KEYS[1])
for _, key in ipairs(keys) do redis.call('DEL', key) end
redis.call('DEL', KEYS[1])
return #keys
"""
_scripts: dict[tuple[int, str], Any] = {}


def _script(client: Any, source: str) -> Any:
    key = (id(client), source)
    script = _scripts.get(key)
    if script is None:
        script = _scripts[key] = client.register_script(source)  # EVALSHA, EVAL on NOSCRIPT
    return script


def _seconds() -> int:
    return int(settings.API_TOKEN_CACHE_SECONDS)


def _client() -> Any | None:
    return shared_redis() if _seconds() > 0 else None


def _entry_key(digest: str) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:tok:{digest}"


def user_id_key(digest: str) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:tokuid:{digest}"


def entry_key(digest: str) -> str:
    return _entry_key(digest)


def _set_key(user_id: int) -> str:
    return f"{settings.CACHE_KEY_PREFIX}:tokset:{int(user_id)}"


def _gen_key() -> str:
    return f"{settings.CACHE_KEY_PREFIX}:tokgen"


def get(digest: str) -> tuple[tuple, tuple] | None:
    """The cached ``(token row, user row)`` of this digest, or None (not cached, cache off, or
    Redis failing)."""
    client = _client()
    if client is None:
        return None
    try:
        raw = client.get(_entry_key(digest))
    except Exception as exc:
        logger.warning("token cache unavailable: %s", exc, extra=_OUTAGE)
        return None
    return loads(raw)


def loads(raw: bytes | None) -> tuple[tuple, tuple] | None:
    """An entry's ``(token row, user row)`` (None for None)."""
    return pickle.loads(raw) if raw is not None else None  # noqa: S301 - our own Redis, our rows


def generation() -> bytes | None:
    """The generation now (b"" before any ``forget_user``), None without the cache: read it
    before the database, hand it to ``fill``."""
    client = _client()
    if client is None:
        return None
    try:
        return client.get(_gen_key()) or b""
    except Exception as exc:
        logger.warning("token cache unavailable: %s", exc, extra=_OUTAGE)
        return None


def fill(digest: str, user_id: int, gen: bytes, token_row: tuple, user_row: tuple) -> bool:
    """Cache the rows if ``gen`` (read before the database) is still current."""
    client = _client()
    if client is None:
        return False
    value = pickle.dumps((token_row, user_row), protocol=pickle.HIGHEST_PROTOCOL)
    try:
        done = _script(client, _FILL)(
            keys=[_entry_key(digest), _set_key(user_id), _gen_key(), user_id_key(digest)],
            args=[value, _seconds(), gen, int(user_id)],
        )
    except Exception as exc:
        logger.warning("token cache not filled: %s", exc, extra=_OUTAGE)
        return False
    return bool(done)


def _forget(user_id: int) -> None:
    client = shared_redis()  # even with the cache off now: entries of before may still be there
    if client is None:
        return
    try:
        _script(client, _FORGET)(keys=[_set_key(user_id), _gen_key()])
    except Exception as exc:
        logger.warning("cached tokens of user %s not forgotten: %s", user_id, exc, extra=_OUTAGE)


def forget_token(digest: str) -> None:
    """Drop one cached token (its row changed: a sliding-expiry refresh)."""
    client = shared_redis()
    if client is None:
        return
    try:
        client.delete(_entry_key(digest), user_id_key(digest))
    except Exception as exc:
        logger.warning("cached token not forgotten: %s", exc, extra=_OUTAGE)


def forget_user(user_id: int, using: str = DEFAULT_DB_ALIAS) -> None:
    """Drop every cached token of the user, now and (inside a transaction) again after commit."""
    user_id = int(user_id)
    _forget(user_id)
    if connections[using].in_atomic_block:
        transaction.on_commit(lambda: _forget(user_id), using=using, robust=True)


def _on_user_changed(sender: Any, instance: Any, using: str, **kwargs: Any) -> None:
    if instance.pk is not None:
        forget_user(instance.pk, using=using)


def connect_signals() -> None:
    """Called by AccountsConfig.ready(): any saved or deleted user loses its cached tokens
    (deactivation, password, deletion and its cascade, edits in the admin)."""
    from django.contrib.auth import get_user_model
    from django.db.models.signals import post_delete, post_save

    user_model = get_user_model()
    post_save.connect(_on_user_changed, sender=user_model, dispatch_uid="tokencache.user.save")
    post_delete.connect(_on_user_changed, sender=user_model, dispatch_uid="tokencache.user.del")
