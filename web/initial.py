"""The dashboard's first data, rendered into the page (a JSON data island) so first paint does not
wait on the browser's API requests.

Each entry is the body of one API request the page's JavaScript would make at start, produced by
the API view itself (resolved from its URL, called in process with a GET copy of the page
request: same scoping, parameters, serializer and renderer as over HTTP). Under ASGI the page's
sync views run one at a time, so nine requests after the HTML cost nine sequential trips; here
they cost one.

The island is ``<script type="application/json">`` (no script is executed: CSP-safe), escaped as
Django's ``json_script`` escapes (``<``, ``>``, ``&`` as ``\\u003C`` ...). The JavaScript consumes
each entry once (web/static/web/js/api.js) and fetches over HTTP from then on.
"""

from __future__ import annotations

import copy
import logging
from datetime import UTC, datetime

import orjson
from django.conf import settings
from django.http import HttpRequest, QueryDict
from django.urls import resolve
from django.utils.safestring import SafeString, mark_safe

from trading import events

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

_ESCAPES = {ord(">"): "\\u003E", ord("<"): "\\u003C", ord("&"): "\\u0026"}


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
    # Each embedded body has the query budget of the request it stands for (monitoring).
    request.query_budget = settings.MAX_QUERIES_PER_REQUEST * (1 + len(PANEL_REQUESTS) + 3)
    parts: list[bytes] = []
    bots_body: bytes | None = None
    for path, params in PANEL_REQUESTS:
        body = _get(request, path, params)
        if body is None:
            continue
        if path == "/api/bots/":
            bots_body = body
        parts.append(orjson.dumps(request_key(path, params)) + b":" + body)
    candles = _candles(request, bots_body)
    island = b'{"seq":%s,"requests":{%s},"candles":%s}' % (
        b"null" if seq is None else str(seq).encode(),
        b",".join(parts),
        candles,
    )
    return mark_safe(island.decode().translate(_ESCAPES))  # noqa: S308 - escaped like json_script


def _candles(request: HttpRequest, bots_body: bytes | None) -> bytes:
    """The candle panel's three bodies for the first symbol of the user's bots (what the page
    shows first), or null."""
    if bots_body is None or settings.MARKET_DATA_PROVIDER not in LOCAL_PROVIDERS:
        return b"null"
    symbols = sorted({s for bot in orjson.loads(bots_body)["results"] for s in bot["symbols"]})
    if not symbols:
        return b"null"
    symbol = symbols[0]
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
