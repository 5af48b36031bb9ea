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
# Monitoring: Silk is mounted (its access rules are tested) but samples no request, so it adds no
# query to other tests' counts; no background flush thread (tests flush by hand); no toolbar
# (debug-toolbar refuses to run under tests, its check E001).
os.environ.setdefault("SILK_ENABLED", "1")
os.environ.setdefault("SILKY_INTERCEPT_PERCENT", "0")
os.environ.setdefault("MONITORING_FLUSH_SECONDS", "0")
os.environ.setdefault("DEBUG_TOOLBAR", "0")
# The test client and the servers tests start speak plain HTTP (production redirects to HTTPS).
os.environ.setdefault("SECURE_SSL_REDIRECT", "0")
# The page's browser tests load its JS from the app folders (no collectstatic in the suite).
os.environ.setdefault("WHITENOISE_USE_FINDERS", "1")
# Most tests write and read in one test transaction, which never commits: the data version would
# not move. The cache's own tests (trading/tests/test_conditional.py) turn it on, with commits.
os.environ.setdefault("DASHBOARD_CACHE_SECONDS", "0")
# Likewise the token cache: tests that end tokens with a bare .update() (no service, no
# forget) and the query counts, which count the token lookup (the cache's miss). Its own
# tests (accounts/tests/test_tokencache.py) turn it on.
os.environ.setdefault("API_TOKEN_CACHE_SECONDS", "0")

from zerobot.settings import *  # noqa: F403

ALLOWED_HOSTS = [*ALLOWED_HOSTS, "testserver"]  # noqa: F405
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast user creation
