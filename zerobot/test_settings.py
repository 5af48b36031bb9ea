"""Settings for the test suite: the real settings, with safe defaults for what CI does not export.

CI (``.ci/run``) exports DATABASE_URL and REDIS_URL for the real servers; without them the suite
runs on SQLite and local memory and the tests marked ``postgres``/``redis`` fail (not skip).
"""

from __future__ import annotations

import os

os.environ.setdefault("SECRET_KEY", "test-secret-key-not-for-production-0123456789")
os.environ.setdefault("DEBUG", "0")
# Tests open few connections at once; a big idle floor would only slow the test DB set-up.
os.environ.setdefault("DB_POOL_MIN_SIZE", "2")
os.environ.setdefault("DB_POOL_MAX_SIZE", "20")

from zerobot.settings import *  # noqa: F403

ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
