"""The dashboard's first data, rendered into the page (a JSON data island) so first paint does not
wait on the browser's API requests.

Each entry is the body of one API request the page's JavaScript would make at start, produced by
the API view itself (resolved from its URL, called in process with a GET copy of the page
request: same scoping, parameters, serializer and renderer as over HTTP). Under ASGI the page's
sync views run one at a time, so nine requests after the HTML cost nine sequential trips; here
they cost one.

With the dashboard response cache on (``DASHBOARD_CACHE_SECONDS``, a known data version: see
``trading/conditional.py``) everything but the event number and the bot list is kept in the
cache as one value, under the same key parts as each body's own cache (user, data version, time
bucket) plus the candle panel's symbol and hour: a reload with no new data makes one cache read
instead of eight in-process API requests. The bot list is always read fresh (the engine moves
its cycle counters and last error without a data version change).

The island is ``<script type="application/json">`` (no script is executed: CSP-safe), escaped as
Django's ``json_script`` escapes (``<``, ``>``, ``&`` as ``\\u003C`` ...). The JavaScript consumes
each entry once (web/static/web/js/api.js) and fetches over HTTP from then on.
"""

from __future__ import annotations

import copy
import hashlib
import logging
import time
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest, QueryDict
from django.urls import resolve
from django.utils.safestring import SafeString, mark_safe

from trading import dataversion, events

logger = logging.getLogger("zerobot.web")

# What dashboard.js requests at start (keep in step with it): (path, parameters).
PANEL_REQUESTS: list[tuple[str, dict[str, str]]] = [
    ("/api/dashboard/stats", {}),
    ("/api/bots/", {"limit": "1000"}),
    ("/api/dashboard/equity-curve", {"period": "30d", "points": "300"}),
    ("/api/dashboard/positions", {"limit": "100"}),
    ("/api/dashboard/trades", {"limit": "50"}),
    ("/api/dashboard/performance", {"period": "30d"}),
]
BOTS_REQUEST = PANEL_REQUESTS[1]
# The candle panel's defaults (dashboard.html's selected options) and its window.
CANDLE_TIMEFRAME, CANDLE_TIMEFRAME_SECONDS, CANDLE_INDICATOR, CANDLE_LIMIT = (
    "1h",
    3600,
    "sma:20",
    150,
)
# Providers whose reads never leave the machine: only then does the page render the candle
# panel's data (a cold read from a real venue would hold the whole page behind the exchange).
LOCAL_PROVIDERS = frozenset({"synthetic"})


def _escaped(body: bytes) -> bytes:
    """``body`` safe inside ``<script>``, as ``json_script`` escapes it. On bytes: three
    ``replace`` calls take 0.04 ms for 70 kB of JSON where ``str.translate`` with a mapping took
    7.4 ms (2026-12-03, load 3.5), which had been half the page's server time on a cache hit."""
    return body.replace(b"&", b"\\u0026").replace(b"<", b"\\u003C").replace(b">", b"\\u003E")


def request_key(path: str, params: dict[str, str]) -> str:
    """The key the JavaScript computes for a URL: path, then the parameters sorted by name."""
    query = "&".join(f"{name}={params[name]}" for name in sorted(params) if params[name] != "")
    return f"{path}?{query}"


def _get(request: HttpRequest, path: str, params: dict[str, str]) -> bytes | None:
    """The body the API answers to GET path?params for this request's user (None unless 200)."""
    sub = copy.copy(request)
    query = QueryDict(mutable=True)
    query.update(params)
    sub.method = "GET"
    sub.path = sub.path_info = path
    sub.GET = query
    meta = {k: v for k, v in request.META.items() if not k.startswith("HTTP_IF_")}  # not ours
    sub.META = {**meta, "REQUEST_METHOD": "GET", "PATH_INFO": path,
                "QUERY_STRING": query.urlencode(), "HTTP_ACCEPT": "application/json"}  # fmt: skip
    match = resolve(path)
    sub.resolver_match = match
    try:
        response = match.func(sub, *match.args, **match.kwargs)
        if hasattr(response, "render"):
            response.render()
    except Exception:  # the browser will ask again over HTTP and show that panel's error
        logger.exception("initial data: GET %s failed", path)
        return None
    if response.status_code != 200:
        return None
    return response.content


def initial_data(request: HttpRequest) -> SafeString:
    """The page's data island: ``{"seq", "requests": {key: body}, "candles"}``, escaped for a
    ``<script type="application/json">`` element."""
    # The event number first: anything committed after it has a larger one, so the socket's
    # greeting tells the page to refetch what this data may have missed.
    seq = events.current_seq(request.user.pk)
    # Read before the bodies: a write meanwhile leaves them under the old key (never served).
    version = dataversion.current(request.user.pk) if settings.DASHBOARD_CACHE_SECONDS else None
    # Each embedded body has the query budget of the request it stands for (monitoring).
    request.query_budget = settings.MAX_QUERIES_PER_REQUEST * (1 + len(PANEL_REQUESTS) + 3)
    path, params = BOTS_REQUEST
    bots_body = _get(request, path, params)
    parts = (
        []
        if bots_body is None
        else [_escaped(orjson.dumps(request_key(path, params)) + b":" + bots_body)]
    )
    key = None if version is None else _cache_key(request, version, _first_symbol(bots_body))
    rest = None if key is None else cache.get(key)
    if rest is None:
        rest = _rest(request, bots_body)
        if key is not None:
            cache.set(key, rest, timeout=2 * settings.DASHBOARD_CACHE_SECONDS)
    requests, candles = rest
    island = b'{"seq":%s,"requests":{%s},"candles":%s}' % (
        b"null" if seq is None else str(seq).encode(),
        b",".join([*parts, *requests]),
        candles,
    )
    return mark_safe(island.decode())  # noqa: S308 - every piece is _escaped (like json_script)


def _rest(request: HttpRequest, bots_body: bytes | None) -> tuple[list[bytes], bytes]:
    """Every entry but the bot list (``"key":body`` pieces), and the candle panel's data, each
    already escaped (what the cache keeps: a hit escapes nothing but the bot list)."""
    parts: list[bytes] = []
    for path, params in PANEL_REQUESTS:
        if (path, params) == BOTS_REQUEST:
            continue
        body = _get(request, path, params)
        if body is not None:
            parts.append(_escaped(orjson.dumps(request_key(path, params)) + b":" + body))
    return parts, _escaped(_candles(request, bots_body))


def _cache_key(request: HttpRequest, version: int, symbol: str | None) -> str:
    """The island's key: what each body's own cache key holds (trading/conditional.py), plus
    what the candle panel's data depends on (its symbol, the hour its window ends in)."""
    now = time.time()
    ident = (
        f"{request.user.pk}:{version}:{int(now // settings.DASHBOARD_CACHE_SECONDS)}:"
        f"{symbol}:{int(now // CANDLE_TIMEFRAME_SECONDS)}:{settings.MARKET_DATA_PROVIDER}"
    )
    # v2: the values are escaped pieces (a value of the version before is never read as one).
    return "dash:island:v2:" + hashlib.blake2b(ident.encode(), digest_size=12).hexdigest()


def _first_symbol(bots_body: bytes | None) -> str | None:
    if bots_body is None:
        return None
    symbols = sorted({s for bot in orjson.loads(bots_body)["results"] for s in bot["symbols"]})
    return symbols[0] if symbols else None


def _candles(request: HttpRequest, bots_body: bytes | None) -> bytes:
    """The candle panel's three bodies for the first symbol of the user's bots (what the page
    shows first), or null."""
    symbol = _first_symbol(bots_body)
    if symbol is None or settings.MARKET_DATA_PROVIDER not in LOCAL_PROVIDERS:
        return b"null"
    now = datetime.now(UTC).timestamp()
    start = (int(now // CANDLE_TIMEFRAME_SECONDS) - CANDLE_LIMIT) * CANDLE_TIMEFRAME_SECONDS
    since = datetime.fromtimestamp(start, UTC).isoformat().replace("+00:00", "Z")
    common = {"symbol": symbol, "timeframe": CANDLE_TIMEFRAME, "limit": str(CANDLE_LIMIT)}
    ohlcv = _get(request, "/api/market/ohlcv", common)
    indicators = _get(request, "/api/market/indicators", {**common, "names": CANDLE_INDICATOR})
    trades = _get(
        request,
        "/api/dashboard/trades",
        {"symbol": symbol, "executed_after": since, "limit": "1000"},
    )
    if ohlcv is None or indicators is None or trades is None:
        return b"null"
    head = orjson.dumps(
        {
            "symbol": symbol,
            "timeframe": CANDLE_TIMEFRAME,
            "indicator": CANDLE_INDICATOR,
            "limit": CANDLE_LIMIT,
            "since": since,
        }
    )
    return head[:-1] + b',"ohlcv":%s,"indicators":%s,"trades":%s}' % (ohlcv, indicators, trades)


def wants_initial(request: HttpRequest) -> bool:
    """``/?initial=0`` serves the page without the island (every panel fetched by the browser,
    as before): for comparing both in one run (bench_page)."""
    return request.GET.get("initial") != "0"
