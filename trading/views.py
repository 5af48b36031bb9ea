"""Trading API: auth, bots, positions, trades and the five dashboard endpoints.

Views are thin: parse and validate parameters (``zerobot.lib.params``), scope every queryset to
``request.user`` in ``get_queryset()``, call one service for writes, and render ``.values()``
rows (or dashboard dicts) through the orjson renderer. Another user's object is a 404, never a
403. Query budgets are asserted in ``trading/tests/test_api.py``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from django.db.models import QuerySet
from django.http import Http404
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    extend_schema,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading import dashboard, events, services
from trading import serializers as s
from trading.conditional import Prefetch, conditional
from trading.models import Bot, Position, Trade
from trading.querysets import BotNotFound
from zerobot.lib.pagination import (
    MAX_LIMIT,
    MIN_LIMIT,
    page_request,
    paginate,
)
from zerobot.lib.params import (
    PERIODS,
    choice_param,
    datetime_param,
    id_param,
    int_param,
    period_param,
    symbol_param,
)
from zerobot.lib.schema import ERROR

# --- OpenAPI parameter declarations -------------------------------------------------------------


def _int_schema(minimum: int, maximum: int) -> dict[str, Any]:
    return {"type": "integer", "minimum": minimum, "maximum": maximum}


ID_SCHEMA = _int_schema(1, 2**63 - 1)
PAGE_PARAMS = [
    OpenApiParameter(
        "page", _int_schema(1, 10_000_000), description="Page number (default 1); not with cursor."
    ),
    OpenApiParameter(
        "limit", _int_schema(MIN_LIMIT, MAX_LIMIT),
        description=f"Rows per page, {MIN_LIMIT}-{MAX_LIMIT} (default 100).",
    ),
    OpenApiParameter(
        "cursor", OpenApiTypes.STR,
        description="Keyset cursor from a previous response's `next`; cost independent of depth.",
    ),
]  # fmt: skip
BOT_PARAM = OpenApiParameter("bot", ID_SCHEMA, description="Only this bot (one of yours).")
SYMBOL_PARAM = OpenApiParameter(
    "symbol", {"type": "string", "pattern": r"^[A-Za-z0-9]{1,15}/[A-Za-z0-9]{1,10}(:[A-Za-z0-9]{1,10})?$"},
    description="e.g. BTC/USDT (case-insensitive)",
)  # fmt: skip
PERIOD_PARAM = OpenApiParameter(
    "period", OpenApiTypes.STR, enum=list(PERIODS), description="Time window (default 30d)."
)
TRADE_PARAMS = [
    BOT_PARAM,
    SYMBOL_PARAM,
    OpenApiParameter("side", OpenApiTypes.STR, enum=["buy", "sell"]),
    OpenApiParameter(
        "executed_after", OpenApiTypes.DATETIME, description="ISO 8601; naive values are UTC."
    ),
    OpenApiParameter(
        "executed_before", OpenApiTypes.DATETIME, description="ISO 8601; naive values are UTC."
    ),
    *PAGE_PARAMS,
]
POSITION_PARAMS = [
    BOT_PARAM,
    SYMBOL_PARAM,
    OpenApiParameter("status", OpenApiTypes.STR, enum=["open", "closed"]),
    OpenApiParameter("side", OpenApiTypes.STR, enum=["long", "short"]),
    *PAGE_PARAMS,
]
# Every 4xx has the one error shape (zerobot.lib.api).
BAD_REQUEST = ERROR


class PageSchema(AutoSchema):
    """Our list actions return the pagination envelope (declared), not a bare array."""

    def _is_list_view(self, serializer: Any = None) -> bool:
        return False

    def get_operation_id(self) -> str:
        # Not a "list view" (above), so list would share retrieve's id ("bots_retrieve").
        operation_id = super().get_operation_id()
        if getattr(self.view, "action", None) == "list":
            return operation_id.rsplit("_", 1)[0] + "_list"
        return operation_id


MAX_ID = 2**63 - 1


def _not_found(what: str) -> Http404:
    return Http404(f"No {what} with that id among yours.")


def _pk(value: Any, what: str) -> int:
    """The URL's id as a bigint; anything else is the same 404 as an id that is not yours."""
    if isinstance(value, int) and 1 <= value <= MAX_ID:
        return value
    raise _not_found(what)


# --- Bots ---------------------------------------------------------------------------------------


class BotViewSet(Prefetch, viewsets.GenericViewSet):
    lookup_value_converter = "int"
    schema = PageSchema()
    """A user's bots. Start, pause and stop change only the status: open positions stay open
    (close them with POST /api/positions/{id}/close)."""

    serializer_class = s.BotOut
    prefetch_actions = ("list",)

    def get_serializer_class(self) -> type:
        # What OPTIONS describes: the input a write accepts, not the bot it returns.
        method = self.request.method if self.request is not None else "GET"
        return {"POST": s.BotIn, "PATCH": s.BotUpdateIn}.get(method, s.BotOut)

    def get_queryset(self) -> QuerySet:
        return Bot.objects.for_owner(self.request.user)

    def get_object(self) -> Bot:
        try:
            return self.get_queryset().get(pk=_pk(self.kwargs["pk"], "bot"))
        except Bot.DoesNotExist:
            raise _not_found("bot") from None

    def _row(self, bot: Bot) -> dict[str, Any]:
        return {field: getattr(bot, "pk" if field == "id" else field) for field in s.BOT_FIELDS}

    @extend_schema(parameters=PAGE_PARAMS, responses={200: s.BotPage, 400: BAD_REQUEST})
    @conditional
    def list(self, request: Request) -> Response:
        pages = page_request(request)
        total, _ = self.get_queryset().list_total()
        rows = self.get_queryset().api_rows()
        return Response(paginate(request, rows, time_field="created_at", total=total, pages=pages))

    @extend_schema(responses={200: s.BotOut, 404: ERROR})
    def retrieve(self, request: Request, pk: int) -> Response:
        return Response(self._row(self.get_object()))

    @extend_schema(request=s.BotIn, responses={201: s.BotOut, 400: BAD_REQUEST})
    def create(self, request: Request) -> Response:
        data = s.BotIn(data=request.data)
        data.is_valid(raise_exception=True)
        bot = services.bot_create(owner=request.user, **data.validated_data)
        return Response(self._row(bot), status=status.HTTP_201_CREATED)

    @extend_schema(request=s.BotUpdateIn, responses={200: s.BotOut, 400: BAD_REQUEST, 404: ERROR})
    def partial_update(self, request: Request, pk: int) -> Response:
        bot = self.get_object()
        data = s.BotUpdateIn(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        return Response(self._row(services.bot_update(bot=bot, **data.validated_data)))

    @extend_schema(responses={204: None, 404: ERROR, 409: ERROR})
    def destroy(self, request: Request, pk: int) -> Response:
        services.bot_delete(bot=self.get_object())
        return Response(status=status.HTTP_204_NO_CONTENT)

    def _set_status(self, request: Request, new_status: str) -> Response:
        bot = self.get_object()
        changed = bot.status != new_status
        bot = services.bot_set_status(bot=bot, status=new_status)
        if changed:  # live update (after commit). To move into bot_set_status (README, events)
            events.publish_bot_status(bot=bot)
        open_positions = Position.objects.for_bot(bot.pk).open().count()
        return Response({"bot": self._row(bot), "open_positions": open_positions})

    @extend_schema(request=None, responses={200: s.BotStatusOut, 404: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def start(self, request: Request, pk: int) -> Response:
        return self._set_status(request, Bot.Status.ACTIVE)

    @extend_schema(request=None, responses={200: s.BotStatusOut, 404: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: int) -> Response:
        return self._set_status(request, Bot.Status.PAUSED)

    @extend_schema(request=None, responses={200: s.BotStatusOut, 404: ERROR, 409: ERROR})
    @action(detail=True, methods=["post"])
    def stop(self, request: Request, pk: int) -> Response:
        """Stop trading. Open positions are NOT closed: the response says how many remain."""
        return self._set_status(request, Bot.Status.STOPPED)


# --- Positions ----------------------------------------------------------------------------------


def positions_page(
    request: Request, *, open_only: bool = False, bot_name: bool = False
) -> dict[str, Any]:
    """Filters bot, status, symbol, side; total from running totals + the open partial index."""
    user_id = request.user.pk
    pages = page_request(request)
    bot_id = id_param(request, "bot")
    symbol = symbol_param(request)
    side = choice_param(request, "side", ["long", "short"])
    wanted = "open" if open_only else choice_param(request, "status", ["open", "closed"])

    queryset = Position.objects.for_owner(request.user)
    if bot_id is not None:
        queryset = queryset.for_bot(bot_id)
    if symbol is not None:
        queryset = queryset.filter(symbol=symbol)
    if side is not None:
        queryset = queryset.filter(side=side)
    if wanted is not None:
        queryset = queryset.filter(status=wanted)

    try:
        total, exact = queryset.list_total(
            owner_id=user_id, bot_id=bot_id, symbol=symbol, side=side, status=wanted
        )
    except BotNotFound:
        raise _not_found("bot") from None
    rows = queryset.api_rows(bot_name=bot_name)
    return paginate(
        request, rows, time_field="opened_at", total=total, total_exact=exact, pages=pages
    )


class PositionViewSet(viewsets.GenericViewSet):
    lookup_value_converter = "int"
    schema = PageSchema()
    serializer_class = s.PositionOut

    def get_queryset(self) -> QuerySet:
        return Position.objects.for_owner(self.request.user)

    def _get(self, pk: int) -> Position:
        try:
            return self.get_queryset().get(pk=_pk(pk, "position"))
        except Position.DoesNotExist:
            raise _not_found("position") from None

    @extend_schema(
        parameters=POSITION_PARAMS, responses={200: s.PositionPage, 400: BAD_REQUEST, 404: ERROR}
    )
    def list(self, request: Request) -> Response:
        return Response(positions_page(request))

    @extend_schema(responses={200: s.PositionOut, 404: ERROR})
    def retrieve(self, request: Request, pk: int) -> Response:
        row = self.get_queryset().filter(pk=_pk(pk, "position")).api_rows().first()
        if row is None:
            raise _not_found("position")
        return Response(row)

    @extend_schema(
        request=s.PositionCloseIn,
        responses={200: s.PositionOut, 400: BAD_REQUEST, 404: ERROR, 409: ERROR},
    )
    @action(detail=True, methods=["post"])
    def close(self, request: Request, pk: int) -> Response:
        """Close the position (or ``quantity`` of it) at ``price`` (default: current price)."""
        position = self._get(pk)
        data = s.PositionCloseIn(data=request.data)
        data.is_valid(raise_exception=True)
        position = services.position_close_at_market(position=position, **data.validated_data)
        return Response(self.get_queryset().filter(pk=position.pk).api_rows().first())


# --- Trades -------------------------------------------------------------------------------------


def trades_page(request: Request) -> dict[str, Any]:
    """Filters bot, symbol, side, executed_after, executed_before.

    Total: from the running totals when only bot/symbol filter (exact, one index probe per
    symbol row); otherwise counted on the index range, capped at COUNT_CAP.
    """
    user_id = request.user.pk
    pages = page_request(request)
    bot_id = id_param(request, "bot")
    symbol = symbol_param(request)
    side = choice_param(request, "side", ["buy", "sell"])
    after = datetime_param(request, "executed_after")
    before = datetime_param(request, "executed_before")
    if after and before and after > before:
        raise serializers.ValidationError(
            {"executed_after": ["executed_after must not be later than executed_before."]}
        )

    queryset = Trade.objects.for_owner(request.user)
    if bot_id is not None:
        queryset = queryset.for_bot(bot_id)
    if symbol is not None:
        queryset = queryset.for_symbol(symbol)
    if side is not None:
        queryset = queryset.filter(side=side)
    if after is not None:
        queryset = queryset.filter(executed_at__gte=after)
    if before is not None:
        queryset = queryset.filter(executed_at__lte=before)

    try:
        total, exact = queryset.list_total(
            owner_id=user_id, bot_id=bot_id, symbol=symbol,
            filtered=side is not None or after is not None or before is not None,
        )  # fmt: skip
    except BotNotFound:
        raise _not_found("bot") from None
    return paginate(
        request, queryset.api_rows(), time_field="executed_at", total=total, total_exact=exact,
        pages=pages,
    )  # fmt: skip


class TradeViewSet(Prefetch, viewsets.GenericViewSet):
    lookup_value_converter = "int"
    schema = PageSchema()
    serializer_class = s.TradeOut
    prefetch_actions = ("list",)

    def get_queryset(self) -> QuerySet:
        return Trade.objects.for_owner(self.request.user)

    @extend_schema(
        parameters=TRADE_PARAMS, responses={200: s.TradePage, 400: BAD_REQUEST, 404: ERROR}
    )
    @conditional
    def list(self, request: Request) -> Response:
        return Response(trades_page(request))

    @extend_schema(responses={200: s.TradeOut, 404: ERROR})
    def retrieve(self, request: Request, pk: int) -> Response:
        row = self.get_queryset().filter(pk=_pk(pk, "trade")).api_rows().first()
        if row is None:
            raise _not_found("trade")
        return Response(row)


# --- Dashboard ----------------------------------------------------------------------------------


def _scope(request: Request) -> dashboard.Scope:
    return dashboard.Scope(owner_id=request.user.pk, bot_id=id_param(request, "bot"))


class DashboardStatsView(Prefetch, APIView):
    """Bots by status, equity, cash, realized/unrealized PnL, return %, open positions, trade
    count and win rate. Balances are current; PnL and counts are all-time (``period`` does not
    apply: see /performance for a period)."""

    @extend_schema(
        parameters=[BOT_PARAM],
        responses={200: s.StatsOut, 400: BAD_REQUEST, 404: ERROR},
        tags=["dashboard"],
    )
    @conditional
    def get(self, request: Request) -> Response:
        try:
            return Response(dashboard.stats(_scope(request)))
        except dashboard.BotNotFound:
            raise _not_found("bot") from None


class DashboardEquityCurveView(Prefetch, APIView):
    """Equity over the period, down-sampled by the database to at most ``points`` buckets;
    one bot (``?bot=``, the per-bot equity endpoint) or summed across the user's bots."""

    @extend_schema(
        parameters=[
            BOT_PARAM, PERIOD_PARAM,
            OpenApiParameter("points", _int_schema(2, 2000), description="Max points, 2-2000 (default 500)."),
        ],
        responses={200: s.EquityCurveOut, 400: BAD_REQUEST, 404: ERROR},
        tags=["dashboard"],
    )  # fmt: skip
    @conditional
    def get(self, request: Request) -> Response:
        scope = _scope(request)
        period, start = period_param(request)
        points = int_param(request, "points", default=500, minimum=2, maximum=2000)
        end = datetime.now(UTC)
        try:
            results = dashboard.equity_curve(scope, start=start, end=end, points=points)
        except dashboard.BotNotFound:
            raise _not_found("bot") from None
        return Response({"bot": scope.bot_id, "period": period, "start": start, "end": end,
                         "points": points, "results": results})  # fmt: skip


class DashboardPositionsView(Prefetch, APIView):
    """Open positions with their bot's name and unrealized PnL (paginated)."""

    @extend_schema(
        parameters=[BOT_PARAM, SYMBOL_PARAM, *PAGE_PARAMS],
        responses={200: s.DashboardPositionPage, 400: BAD_REQUEST, 404: ERROR},
        tags=["dashboard"],
    )
    @conditional
    def get(self, request: Request) -> Response:
        return Response(positions_page(request, open_only=True, bot_name=True))


class DashboardTradesView(Prefetch, APIView):
    """Recent trades, newest first (paginated; same filters as /api/trades/)."""

    @extend_schema(
        parameters=TRADE_PARAMS,
        responses={200: s.TradePage, 400: BAD_REQUEST, 404: ERROR},
        tags=["dashboard"],
    )
    @conditional
    def get(self, request: Request) -> Response:
        return Response(trades_page(request))


class DashboardPerformanceView(Prefetch, APIView):
    """Per bot and per symbol: trades, wins, losses, win rate, realized PnL, profit factor,
    average win/loss (all-time running totals), max drawdown over the period (equity snapshots),
    and PnL per UTC day over the period."""

    @extend_schema(
        parameters=[BOT_PARAM, PERIOD_PARAM],
        responses={200: s.PerformanceOut, 400: BAD_REQUEST, 404: ERROR},
        tags=["dashboard"],
    )
    @conditional
    def get(self, request: Request) -> Response:
        scope = _scope(request)
        period, start = period_param(request)
        try:
            body = dashboard.performance(scope, start=start)
        except dashboard.BotNotFound:
            raise _not_found("bot") from None
        return Response({"period": period, **body})
