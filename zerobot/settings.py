"""zerobot settings: one module, driven by environment variables.

Every variable is read through ``zerobot.lib.env``; a malformed value raises ``ImproperlyConfigured``
naming the variable. See README.md ("Configuration") for the full list.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

from zerobot.lib.env import (
    env_bool,
    env_float,
    env_hosts,
    env_int,
    env_list,
    env_networks,
    env_str,
    env_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent

# --- Core ---------------------------------------------------------------------------------------
DEBUG = env_bool("DEBUG", False)
SECRET_KEY = env_str("SECRET_KEY")
if SECRET_KEY is None:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set SECRET_KEY to a long random string, or DEBUG=1 for a local "
            "development run (which uses an insecure built-in key)."
        )
    SECRET_KEY = "django-insecure-zerobot-development-only"
elif len(SECRET_KEY) < 32 and not DEBUG:
    raise ImproperlyConfigured(
        "SECRET_KEY is shorter than 32 characters; use a long random string."
    )

ALLOWED_HOSTS = env_hosts("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "zerobot",
    "accounts",
    "trading",
    "marketdata",
    "monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Refuses what no view can handle (bad charset, oversized body, NUL bytes), serves API routes
    # with and without the trailing slash, maps an unavailable database to 503 (zerobot.lib).
    "zerobot.lib.middleware.RequestGuardMiddleware",
    "zerobot.lib.middleware.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "zerobot.lib.middleware.MessageMiddleware",  # Django's, but none on /api/
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "zerobot.urls"
WSGI_APPLICATION = "zerobot.wsgi.application"
ASGI_APPLICATION = "zerobot.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Security -----------------------------------------------------------------------------------
# Production defaults (DEBUG off): HTTPS only, HSTS, secure cookies. `manage.py check --deploy
# --fail-level WARNING` passes with them (make checks runs it). Behind a TLS-terminating proxy set
# TRUSTED_PROXIES to the number of proxies in front; the outermost must set X-Forwarded-Proto and
# X-Forwarded-For (zerobot.lib.throttle.client_ip).
TRUSTED_PROXIES = env_int("TRUSTED_PROXIES", 0, minimum=0, maximum=10)
if TRUSTED_PROXIES:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", not DEBUG)
# Probes and scrapes come over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", not DEBUG)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The admin, the monitoring dashboard and /api/docs/ run no inline script (the docs use the
# split Swagger view); inline style attributes remain in admin templates. Silk and the debug
# toolbar (staff only) inline their scripts: they get no policy.
CONTENT_SECURITY_POLICY = env_str(
    "CONTENT_SECURITY_POLICY",
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
)
CONTENT_SECURITY_POLICY_EXEMPT = ("/silk/", "/__debug__/")
# Bodies: 1 MiB is ~1,000x the largest write of the API (zerobot.lib.middleware refuses more).
REQUEST_MAX_BODY_BYTES = env_int("REQUEST_MAX_BODY_BYTES", 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = REQUEST_MAX_BODY_BYTES

# --- Database -----------------------------------------------------------------------------------
# A postgres:// URL gets psycopg 3 with Django's native connection pool: a request borrows a
# connection (~0.1 ms) instead of opening one (~2.4 ms + ~4 ms server CPU). The pool is per
# process; the `monitoring.W001` system check compares processes x max size with the server's
# max_connections. Unset: an embedded SQLite file, so a first run needs no server.
DATABASE_URL = env_url("DATABASE_URL", schemes=("postgres", "postgresql", "sqlite"))
# Sizes per process. A web worker keeps DB_POOL_MIN_SIZE open (a request never waits for a new
# connection while the worker idles) and may grow to DB_POOL_MAX_SIZE under a burst; manage.py
# sets the floor to 0 for its commands, so a one-shot command opens only what it uses (one
# connection for a command that runs its queries on one thread). PERFORMANCE.md, "Connection
# budget", has the sizing rule and the figures.
DB_POOL_MIN_SIZE = env_int("DB_POOL_MIN_SIZE", 2, minimum=0)
DB_POOL_MAX_SIZE = env_int("DB_POOL_MAX_SIZE", 20, minimum=1)
DB_POOL_TIMEOUT = env_float("DB_POOL_TIMEOUT", 10.0, minimum=0.1, maximum=600)
if DB_POOL_MIN_SIZE > DB_POOL_MAX_SIZE:
    raise ImproperlyConfigured(
        f"DB_POOL_MIN_SIZE={DB_POOL_MIN_SIZE} is larger than DB_POOL_MAX_SIZE={DB_POOL_MAX_SIZE}."
    )
# Processes that each hold a pool, for the connection-budget check (monitoring.checks): the web
# workers (gunicorn.conf.py reads the same variable, same default), and the other long-running
# processes with a pool of the same size (bot runners, workers). One-shot commands open one
# connection each: DB_POOL_COMMAND_CONNECTIONS is what the budget keeps for those running at once.
WEB_CONCURRENCY = env_int("WEB_CONCURRENCY", 2, minimum=1)
DB_POOL_OTHER_PROCESSES = env_int("DB_POOL_OTHER_PROCESSES", 1, minimum=0)
DB_POOL_COMMAND_CONNECTIONS = env_int("DB_POOL_COMMAND_CONNECTIONS", 3, minimum=0)
# No statement of a web request may run longer than this (ms; 0 = no limit): a stuck query must
# give its pooled connection back well before the worker timeout (gunicorn.conf.py, 30 s). The
# cancelled request answers 503 + Retry-After. manage.py defaults it to 0 for commands (seeding,
# rebuilds and syncs run long statements on purpose); bot runners set their own.
DB_STATEMENT_TIMEOUT_MS = env_int("DB_STATEMENT_TIMEOUT_MS", 5_000, minimum=0, maximum=3_600_000)
# Server-side parameter binding, and with it PostgreSQL prepared statements after a statement ran
# DB_PREPARE_THRESHOLD times on a connection (psycopg's prepare_threshold; Django's client-side
# binding, the default, never prepares). Off by default: PERFORMANCE.md, "Over HTTP", measured it.
DB_SERVER_SIDE_BINDING = env_bool("DB_SERVER_SIDE_BINDING", False)
DB_PREPARE_THRESHOLD = env_int("DB_PREPARE_THRESHOLD", 2, minimum=0, maximum=1000)
# PostgreSQL's JIT compiles a statement whose estimated cost passes jit_above_cost. Ours are
# index reads of a few hundred rows, but a branch that never runs (the equity curve's scan
# fallback, period=all) is costed at the whole history: at 100x depth it took ~100 ms with JIT
# for a statement that runs in ~3 ms without (PERFORMANCE.md, "History depth"). 1: the server's
# setting.
DB_JIT = env_bool("DB_JIT", False)


def _database_from_url(url: str | None) -> dict:
    if url is None:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path) or ":memory:"}
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured(
            "DATABASE_URL names no database (postgres://user@host:5432/NAME)."
        )
    return {
        "ENGINE": "zerobot.lib.postgresql",  # Django's, with a cheaper pool check
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        # The pool owns connection lifetime: Django requires CONN_MAX_AGE=0 with it.
        "CONN_MAX_AGE": 0,
        # Checked when a connection is taken from the pool, so a server restart costs no
        # failed request (without it each pooled connection fails once after a restart:
        # tests/faults restarts a private server and checks no request fails).
        "CONN_HEALTH_CHECKS": True,
        "OPTIONS": {
            # libpq: set for the session of every pooled connection, no statement per request.
            "options": f"-c statement_timeout={DB_STATEMENT_TIMEOUT_MS}"
            + ("" if DB_JIT else " -c jit=off"),
            **(
                {"server_side_binding": True, "prepare_threshold": DB_PREPARE_THRESHOLD}
                if DB_SERVER_SIDE_BINDING
                else {}
            ),
            "pool": {
                "min_size": DB_POOL_MIN_SIZE,
                "max_size": DB_POOL_MAX_SIZE,
                "timeout": DB_POOL_TIMEOUT,
                "name": "zerobot",
            },
        },
        "TEST": {"NAME": f"test_{name}"},
    }


DATABASES = {"default": _database_from_url(DATABASE_URL)}
# Benchmarks only (`manage.py bench`: pooled vs a new connection per request): 1 drops the pool,
# so every request opens and closes its own server connection. Never for production.
DB_POOL_DISABLED = env_bool("DB_POOL_DISABLED", False)
if DB_POOL_DISABLED:
    DATABASES["default"].get("OPTIONS", {}).pop("pool", None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache --------------------------------------------------------------------------------------
# Redis via django-redis with the hiredis parser. Fail-open: an outage turns every cache call into
# a logged miss (IGNORE_EXCEPTIONS) within the socket timeouts, never a 500 or a 5 s hang.
REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
REDIS_CONNECT_TIMEOUT = env_float("REDIS_CONNECT_TIMEOUT", 0.25, minimum=0.01, maximum=30)
REDIS_SOCKET_TIMEOUT = env_float("REDIS_SOCKET_TIMEOUT", 0.25, minimum=0.01, maximum=30)
CACHE_KEY_PREFIX = env_str("CACHE_KEY_PREFIX", "zb")
# After a Redis failure, new connections fail at once for this long (zerobot.lib.redis_breaker):
# a hung Redis costs one socket timeout per period per process, not one per cache call.
REDIS_BREAKER_SECONDS = env_float("REDIS_BREAKER_SECONDS", 5.0, minimum=0, maximum=300)
# Dashboard responses (trading/conditional.py): ETag from the user's data version, 304 on
# If-None-Match, and a per-user cache of the bodies, all keyed by this time bucket too: a body is
# at most this many seconds old as to its sliding window's edges (never as to a write). 0: off.
DASHBOARD_CACHE_SECONDS = env_int("DASHBOARD_CACHE_SECONDS", 30, minimum=0, maximum=3600)
_REDIS_POOL_KWARGS: dict = {
    "max_connections": env_int("REDIS_MAX_CONNECTIONS", 200, minimum=1),
    "health_check_interval": 30,
    "retry_on_timeout": False,
}
if REDIS_URL and REDIS_URL.startswith("redis://"):  # rediss:// and unix:// keep their class
    from zerobot.lib.redis_breaker import BreakerConnection

    _REDIS_POOL_KWARGS["connection_class"] = BreakerConnection
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "TIMEOUT": 300,
            "OPTIONS": {
                "CLIENT_CLASS": "django_redis.client.DefaultClient",
                "PARSER_CLASS": "redis.connection._HiredisParser",
                "SOCKET_CONNECT_TIMEOUT": REDIS_CONNECT_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_SOCKET_TIMEOUT,
                "IGNORE_EXCEPTIONS": True,
                "CONNECTION_POOL_KWARGS": _REDIS_POOL_KWARGS,
            },
        }
    }
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "LOCATION": "zerobot",
            "KEY_PREFIX": CACHE_KEY_PREFIX,
            "TIMEOUT": 300,
        }
    }
DJANGO_REDIS_IGNORE_EXCEPTIONS = True
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
DJANGO_REDIS_LOGGER = "zerobot.cache"

# --- API ----------------------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "accounts.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_RENDERER_CLASSES": [
        "zerobot.lib.api.ORJSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_PARSER_CLASSES": [
        "zerobot.lib.api.DecimalJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "EXCEPTION_HANDLER": "zerobot.lib.api.exception_handler",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "COERCE_DECIMAL_TO_STRING": True,
    "DATETIME_FORMAT": "iso-8601",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # DRF's own throttles identify clients like zerobot.lib.throttle.client_ip: never by the raw,
    # client-written X-Forwarded-For.
    "NUM_PROXIES": TRUSTED_PROXIES,
}
# Login, register and the admin login, per client address (accounts.throttles): counted in Redis,
# in process memory while Redis is unavailable (fail closed, never unlimited).
AUTH_THROTTLE_RATE = env_str("AUTH_THROTTLE_RATE", "20/minute")
# Failed logins per account name from all addresses together (accounts.backends): past it, that
# name's logins are refused for the rest of the window, right password included.
AUTH_ACCOUNT_FAILURE_RATE = env_str("AUTH_ACCOUNT_FAILURE_RATE", "30/hour")
AUTHENTICATION_BACKENDS = ["accounts.backends.ThrottledModelBackend"]
# API tokens (accounts): one per login, stored hashed; logout revokes it, a password change
# revokes all. A token expires API_TOKEN_TTL_HOURS after its last use (sliding) or after its
# creation (API_TOKEN_SLIDING=0).
API_TOKEN_TTL_HOURS = env_float("API_TOKEN_TTL_HOURS", 24 * 7, minimum=0.01, maximum=24 * 366)
API_TOKEN_SLIDING = env_bool("API_TOKEN_SLIDING", True)
API_TOKENS_PER_USER = env_int("API_TOKENS_PER_USER", 20, minimum=1, maximum=1000)
# Seconds a token lookup stays in the shared Redis (accounts/tokencache.py; 0: no cache). Only a
# backstop: revocation, logout and any change of the user drop the cached copies at once.
API_TOKEN_CACHE_SECONDS = env_int("API_TOKEN_CACHE_SECONDS", 30, minimum=0, maximum=3600)
SPECTACULAR_SETTINGS = {
    "TITLE": "zerobot API",
    "DESCRIPTION": "Paper-trading bots: bots, positions, trades, equity, dashboard, market data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "BotStatusEnum": "trading.models.BotStatus",
        "PositionStatusEnum": "trading.models.PositionStatus",
        "PositionSideEnum": "trading.models.PositionSide",
        "TradeSideEnum": "trading.models.TradeSide",
        "TimeframeEnum": "marketdata.timeframes.Timeframe",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    # One error shape for every 4xx/5xx (zerobot.lib.api): the answers any operation can give are
    # added to every operation by this hook, the others are declared on the views.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "zerobot.lib.schema.add_common_errors",
    ],
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

# --- Monitoring ---------------------------------------------------------------------------------
# Query profiling per request (monitoring.middleware), Prometheus /metrics, pool monitoring, the
# admin dashboard (/admin/monitoring/), Silk and the debug toolbar. README.md, "Monitoring".
# Outermost but for Silk, so the measured duration covers every other middleware.
MIDDLEWARE.insert(0, "monitoring.middleware.QueryProfilingMiddleware")
SLOW_QUERY_MS = env_float("SLOW_QUERY_MS", 50.0, minimum=0)
MAX_QUERIES_PER_REQUEST = env_int("MAX_QUERIES_PER_REQUEST", 10, minimum=1)
# /metrics is readable by staff, and without a login from these networks (REMOTE_ADDR: a proxy in
# front must not be on them, or every client would look internal).
# Default: none (staff only). Behind a proxy on the same host every client would come from
# 127.0.0.1, so a network is allowed only when configured explicitly.
METRICS_ALLOWED_NETWORKS = env_networks("METRICS_ALLOWED_NETWORKS", [])
# prometheus-client's multiprocess mode (one file per gunicorn worker, summed at scrape time).
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR")
if PROMETHEUS_MULTIPROC_DIR and not Path(PROMETHEUS_MULTIPROC_DIR).is_dir():
    raise ImproperlyConfigured(
        f"PROMETHEUS_MULTIPROC_DIR={PROMETHEUS_MULTIPROC_DIR!r} is not a directory; create it "
        "(gunicorn.conf.py empties or creates it when gunicorn starts)."
    )
POOL_ALERT_PCT = env_float("POOL_ALERT_PCT", 90.0, minimum=1, maximum=100)
# A background thread per process samples the pool and writes the in-memory per-minute aggregates
# to the database every MONITORING_FLUSH_SECONDS (0: no thread; the test suite flushes by hand).
MONITORING_FLUSH_SECONDS = env_float("MONITORING_FLUSH_SECONDS", 10.0, minimum=0, maximum=3600)
POOL_LOG_SECONDS = env_float("POOL_LOG_SECONDS", 60.0, minimum=1, maximum=86400)
MONITORING_RETENTION_HOURS = env_int("MONITORING_RETENTION_HOURS", 48, minimum=1, maximum=24 * 90)
# Loggers that write one JSON object per line (LOGGING below).
MONITORING_JSON_LOGGERS = (
    "zerobot.requests", "zerobot.slow_queries", "zerobot.pool", "zerobot.engine.cycle",
)  # fmt: skip

# Silk (/silk/): staff only, a sample of requests, bounded storage. Outermost, so its own
# bookkeeping writes are not counted as the endpoint's queries.
SILK_ENABLED = env_bool("SILK_ENABLED", DEBUG)
SILKY_INTERCEPT_PERCENT = env_int(
    "SILKY_INTERCEPT_PERCENT", 100 if DEBUG else 10, minimum=0, maximum=100
)
SILKY_MAX_RECORDED_REQUESTS = env_int("SILKY_MAX_RECORDED_REQUESTS", 5_000, minimum=1)
SILKY_MAX_RECORDED_REQUESTS_CHECK_PERCENT = 10  # garbage-collect on ~1 request in 10
SILKY_MAX_REQUEST_BODY_SIZE = 16 * 1024
SILKY_MAX_RESPONSE_BODY_SIZE = 16 * 1024
SILKY_AUTHENTICATION = True
SILKY_AUTHORISATION = True
SILKY_IGNORE_PATHS = ["/healthz", "/readyz", "/metrics"]
# Never True: Silk would re-run every statement under EXPLAIN ANALYZE, which executes an UPDATE a
# second time (a balance debited twice). The monitoring.E001 check refuses it.
SILKY_ANALYZE_QUERIES = False
SILKY_PYTHON_PROFILER = False


def _staff_only(user: object) -> bool:
    return bool(getattr(user, "is_staff", False))


SILKY_PERMISSIONS = _staff_only
# Never recorded: anything about credentials (login responses carry tokens, bodies passwords).
# Silk masks Authorization and Cookie headers itself. Setting this function replaces Silk's own
# sampling, so it samples SILKY_INTERCEPT_PERCENT itself.
SILKY_NEVER_RECORD = ("/api/auth/", "/admin/login/", "/admin/logout/", "/admin/password_change/")


def _silk_should_record(request: object) -> bool:
    import random

    from django.conf import settings

    if getattr(request, "path_info", "").startswith(settings.SILKY_NEVER_RECORD):
        return False
    return random.random() * 100 < settings.SILKY_INTERCEPT_PERCENT  # sampling, not security


SILKY_INTERCEPT_FUNC = _silk_should_record
if SILK_ENABLED:
    INSTALLED_APPS.append("silk")
    MIDDLEWARE.insert(0, "silk.middleware.SilkyMiddleware")

# django-debug-toolbar: only with DEBUG, shown to staff only; after AuthenticationMiddleware so the
# callback can see request.user.
DEBUG_TOOLBAR_ENABLED = DEBUG and env_bool("DEBUG_TOOLBAR", True)
if DEBUG_TOOLBAR_ENABLED:
    INSTALLED_APPS.append("debug_toolbar")
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "debug_toolbar.middleware.DebugToolbarMiddleware",
    )
    DEBUG_TOOLBAR_CONFIG = {"SHOW_TOOLBAR_CALLBACK": "monitoring.toolbar.show_toolbar"}
# --- Market data -------------------------------------------------------------------------------
# Where candles, tickers and funding rates come from, and how long Redis keeps them (marketdata/).
# "synthetic" is deterministic and offline (demos, tests, benchmarks); "ccxt" is a real exchange.
MARKET_DATA_PROVIDER = env_str("MARKET_DATA_PROVIDER", "synthetic")
if MARKET_DATA_PROVIDER not in ("synthetic", "ccxt"):
    raise ImproperlyConfigured(
        f"MARKET_DATA_PROVIDER={MARKET_DATA_PROVIDER!r} is not a provider: use synthetic or ccxt."
    )
EXCHANGE_ID = env_str("EXCHANGE_ID", "okx").lower()
if not EXCHANGE_ID.isascii() or not EXCHANGE_ID.replace("_", "").isalnum():
    raise ImproperlyConfigured(
        f"EXCHANGE_ID={EXCHANGE_ID!r} is not a ccxt exchange id such as okx or binance."
    )
# One HTTP request to the exchange, and one whole call (every retry and back-off sleep included):
# kept well under MARKET_CACHE_LOCK_TIMEOUT and gunicorn's worker timeout (30 s).
EXCHANGE_TIMEOUT_MS = env_int("EXCHANGE_TIMEOUT_MS", 3_000, minimum=100, maximum=120_000)
EXCHANGE_DEADLINE_MS = env_int("EXCHANGE_DEADLINE_MS", 6_000, minimum=100, maximum=120_000)
SYNTHETIC_MARKET_SEED = env_int("SYNTHETIC_MARKET_SEED", 42, minimum=0)
# Which symbols the synthetic provider lists (pairs such as BTC/USDT; each also as its perpetual,
# BTC/USDT:USDT). Empty: its built-in list (marketdata/clients/synthetic.py). A ccxt venue lists
# its own markets. Either way nobody can make the server store made-up symbols.
MARKET_SYMBOLS = tuple(s.upper() for s in env_list("MARKET_SYMBOLS", []))
# New series (symbol x timeframe not stored yet) one user may open per UTC day; 0: no limit.
MARKET_NEW_SERIES_PER_USER = env_int("MARKET_NEW_SERIES_PER_USER", 50, minimum=0)
# Seconds: OHLCV, tickers and funding rates; indicators (recomputed from cached candles).
MARKET_DATA_CACHE_TTL = env_int("MARKET_DATA_CACHE_TTL", 300, minimum=1, maximum=86_400)
INDICATOR_CACHE_TTL = env_int("INDICATOR_CACHE_TTL", 900, minimum=1, maximum=86_400)
# Single-flight: how long one computation may hold a key's lock; waiters wait at most this long.
MARKET_CACHE_LOCK_TIMEOUT = env_float("MARKET_CACHE_LOCK_TIMEOUT", 10.0, minimum=0.1, maximum=300)
if EXCHANGE_DEADLINE_MS / 1000 >= MARKET_CACHE_LOCK_TIMEOUT:
    raise ImproperlyConfigured(
        f"EXCHANGE_DEADLINE_MS={EXCHANGE_DEADLINE_MS} must be shorter than "
        f"MARKET_CACHE_LOCK_TIMEOUT={MARKET_CACHE_LOCK_TIMEOUT:g} s: a computation waiting on the "
        "exchange must end before other processes stop waiting for it."
    )
# Seconds after a candle closes before its cached series expire (exchanges publish a closed
# candle a moment late); and how long the circuit breaker skips a failing Redis.
MARKET_DATA_CLOSE_LAG = env_float("MARKET_DATA_CLOSE_LAG", 3.0, minimum=0, maximum=300)
MARKET_CACHE_BREAKER_SECONDS = env_float(
    "MARKET_CACHE_BREAKER_SECONDS", 5.0, minimum=0.1, maximum=600
)

# --- Auth, i18n, static -------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    # Eight spaces, or "aaaaaaaa", pass the four above.
    {"NAME": "accounts.validators.NotBlankPasswordValidator"},
    # Not a rule: Django calls password_changed() of every validator on each password change
    # (API, admin, changepassword): that is where every API token of the user is revoked.
    {"NAME": "accounts.validators.RevokeTokensOnPasswordChange"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
        "json": {"()": "monitoring.logs.JSONFormatter"},  # monitoring: one JSON object per line
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain"},
        "json": {"class": "logging.StreamHandler", "formatter": "json"},
    },
    "filters": {"cache_outage": {"()": "zerobot.lib.logfilters.CacheOutageFilter"}},
    "loggers": {
        **{
            name: {"handlers": ["json"], "level": "INFO", "propagate": False}
            for name in MONITORING_JSON_LOGGERS
        },
        # django-redis logs each failed call with a traceback: one line per outage and minute.
        "zerobot.cache": {"filters": ["cache_outage"]},
    },
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
}

# --- Web page and live updates (web/, trading/events.py) ----------------------------------------
# The dashboard page at / (web/), its websocket /ws/events (Django Channels) and the event
# publisher. One block, so the other settings stay as they were. README.md, "The dashboard page".
INSTALLED_APPS.append("web")
# Static files (the page's JS and CSS, uPlot, the admin's) are served by the application under any
# server (WhiteNoise): from the apps' folders when WHITENOISE_USE_FINDERS (DEBUG and the tests),
# else from STATIC_ROOT, filled by `manage.py collectstatic` (`make serve` runs it).
MIDDLEWARE.insert(
    MIDDLEWARE.index("django.middleware.security.SecurityMiddleware") + 1,
    "whitenoise.middleware.WhiteNoiseMiddleware",
)
WHITENOISE_USE_FINDERS = env_bool("WHITENOISE_USE_FINDERS", DEBUG)
WHITENOISE_AUTOREFRESH = DEBUG
if not WHITENOISE_USE_FINDERS:
    # From STATIC_ROOT: names with their content's hash, served as immutable for ever
    # (zerobot/lib/staticstorage.py). The finders serve the apps' folders under the plain names.
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "zerobot.lib.staticstorage.HashedStaticFilesStorage"},
    }
if WHITENOISE_USE_FINDERS:
    import warnings

    # Without collectstatic there is no STATIC_ROOT, and the finders serve everything.
    warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)
LOGIN_URL = "web:login"
LOGIN_REDIRECT_URL = "web:dashboard"
LOGOUT_REDIRECT_URL = "web:login"
# Channel layer: Redis when REDIS_URL is set (every process sees every event), else in process
# memory (one server process: `make run`). `capacity` bounds what waits for one socket: a slow or
# dead client loses its oldest messages, publishers never wait. No socket timeout: the layer's
# receive blocks for up to 5 s by design; publishers do not share its connections anyway
# (trading/events.py sends from its own thread).
WS_CHANNEL_CAPACITY = env_int("WS_CHANNEL_CAPACITY", 200, minimum=10, maximum=100_000)
# With Redis: "pubsub" (default; zerobot/lib/channel_layer.py: one PUBLISH per group message,
# each process hands it to its own sockets) or "lists" (channels_redis.core.RedisChannelLayer:
# one stored copy per socket, popped back by its process; slower to fan out, PERFORMANCE.md
# "Dashboard page"). Every process of a deployment must use the same one.
WS_CHANNEL_LAYER = env_str("WS_CHANNEL_LAYER", "pubsub")
_CHANNEL_BACKENDS = {
    "pubsub": "zerobot.lib.channel_layer.BoundedPubSubChannelLayer",
    "lists": "channels_redis.core.RedisChannelLayer",
}
if WS_CHANNEL_LAYER not in _CHANNEL_BACKENDS:
    raise ImproperlyConfigured(
        f"WS_CHANNEL_LAYER must be one of {sorted(_CHANNEL_BACKENDS)}, not {WS_CHANNEL_LAYER!r}"
    )
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": _CHANNEL_BACKENDS[WS_CHANNEL_LAYER],
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": REDIS_CONNECT_TIMEOUT}],
                "prefix": f"{CACHE_KEY_PREFIX}:asgi",
                "capacity": WS_CHANNEL_CAPACITY,
                "expiry": 60,
                # pub/sub: the pushes waiting for a socket that is behind go as one frame.
                **({"merge_type": "event.push"} if WS_CHANNEL_LAYER == "pubsub" else {}),
            },
        }
    }
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels.layers.InMemoryChannelLayer",
            "CONFIG": {"capacity": WS_CHANNEL_CAPACITY, "expiry": 60},
        }
    }
# Events waiting in a publishing process for its sender thread; beyond this they are dropped.
EVENTS_QUEUE_SIZE = env_int("EVENTS_QUEUE_SIZE", 10_000, minimum=10, maximum=10_000_000)
# A socket that takes longer than this to accept one message is dropped (its client reconnects
# and refetches); a socket's login is re-checked this often (revoked sessions and tokens).
WS_SEND_TIMEOUT_SECONDS = env_float("WS_SEND_TIMEOUT_SECONDS", 5.0, minimum=0.05, maximum=300)
WS_REAUTH_SECONDS = env_float("WS_REAUTH_SECONDS", 60.0, minimum=1, maximum=86_400)

# --- Bot engine (trading.engine; README, "How a bot trades") -------------------------------------
# Paper execution: the fee rate charged on every fill's notional (0.001 = 0.1 %, a typical taker
# fee) and the slippage, in % of the price, every market fill moves against the order.
ENGINE_FEE_RATE = str(env_float("ENGINE_FEE_RATE", 0.001, minimum=0, maximum=0.1))
ENGINE_SLIPPAGE_PCT = str(env_float("ENGINE_SLIPPAGE_PCT", 0.05, minimum=0, maximum=10))
# Celery (trading.engine.tasks): broker for the cycle tasks; defaults to REDIS_URL's server.
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL", REDIS_URL or "memory://")
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-cycle leaves the task for another
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
# The lease dispatcher (Celery beat) claims due bots this often and queues their cycles.
ENGINE_INTERVAL_SECONDS = env_float("ENGINE_INTERVAL_SECONDS", 60.0, minimum=0.05, maximum=86_400)
ENGINE_DISPATCH_SECONDS = env_float("ENGINE_DISPATCH_SECONDS", 5.0, minimum=0.05, maximum=3600)
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_TASK_DEFAULT_QUEUE", "zerobot")
