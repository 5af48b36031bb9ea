"""The naive implementation the dashboard is measured against (PERFORMANCE.md, "Baseline").

What a first version typically looks like, and what peers such as Freqtrade do: a plain
ModelSerializer over an unoptimised queryset (no select_related, no .values(), COUNT(*) paging)
and aggregates computed in Python over the whole history on every request. Test-only code:
mounted under /baseline/ by ``tests.performance.urls`` and by ``bench_api --baseline``.

Two more for ``manage.py bench``'s side-by-side ratios, each differing from something else in one
thing only: ``positions-eager`` is the naive positions view with ``select_related("bot")`` (so
against ``positions`` it measures the N+1 alone), and ``trades/all`` renders the product's own
trade rows (``api_rows``, the same renderer) for the user's whole history instead of one page.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.urls import path
from rest_framework import serializers
from rest_framework.pagination import PageNumberPagination
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from trading.models import Bot, EquitySnapshot, Position, Trade
from zerobot.lib.params import period_param


class TradeSerializer(serializers.ModelSerializer):
    class Meta:
        model = Trade
        fields = "__all__"


class PositionSerializer(serializers.ModelSerializer):
    bot_name = serializers.CharField(source="bot.name")  # N+1 without select_related
    unrealized_pnl = serializers.DecimalField(max_digits=40, decimal_places=8)

    class Meta:
        model = Position
        fields = "__all__"


class Pages(PageNumberPagination):
    page_size_query_param = "limit"
    page_size = 100


class StatsView(APIView):
    def get(self, request: Request) -> Response:
        bots = list(Bot.objects.filter(owner=request.user))
        trades = list(Trade.objects.filter(bot__in=bots))
        positions = list(Position.objects.filter(bot__in=bots))
        open_positions = [p for p in positions if p.status == "open"]
        closed = [p for p in positions if p.status == "closed"]
        wins = sum(1 for p in closed if p.realized_pnl - p.fees > 0)
        losses = sum(1 for p in closed if p.realized_pnl - p.fees < 0)
        cash = sum((b.capital for b in bots), Decimal(0))
        margin = sum((p.margin for p in open_positions), Decimal(0))
        unrealized = sum((p.unrealized_pnl for p in open_positions), Decimal(0))
        return Response({
            "bots": len(bots), "cash": cash, "equity": cash + margin + unrealized,
            "realized_pnl": sum((t.realized_pnl for t in trades), Decimal(0)),
            "fees": sum((t.fee for t in trades), Decimal(0)), "trade_count": len(trades),
            "open_positions": len(open_positions), "wins": wins, "losses": losses,
        })  # fmt: skip


class EquityCurveView(APIView):
    def get(self, request: Request) -> Response:
        _, start = period_param(request)
        snapshots = EquitySnapshot.objects.filter(bot__owner=request.user)
        if start:
            snapshots = snapshots.filter(taken_at__gte=start)
        points: dict[datetime, Decimal] = defaultdict(Decimal)
        for snap in snapshots.order_by("taken_at"):
            points[snap.taken_at.replace(minute=0, second=0, microsecond=0)] += snap.equity
        series = sorted(points.items())
        step = max(1, len(series) // 500)
        return Response([{"t": t, "equity": e} for t, e in series[::step]])


class PositionsView(APIView):
    def get(self, request: Request) -> Response:
        queryset = Position.objects.filter(bot__owner=request.user, status="open").order_by(
            "-opened_at"
        )
        pager = Pages()
        page = pager.paginate_queryset(queryset, request, view=self)
        return pager.get_paginated_response(PositionSerializer(page, many=True).data)


class EagerPositionsView(APIView):
    """PositionsView with the bot loaded in the same query: one query instead of 1 + rows."""

    def get(self, request: Request) -> Response:
        queryset = (
            Position.objects.filter(bot__owner=request.user, status="open")
            .select_related("bot")
            .order_by("-opened_at")
        )
        pager = Pages()
        page = pager.paginate_queryset(queryset, request, view=self)
        return pager.get_paginated_response(PositionSerializer(page, many=True).data)


class WholeTradeListView(APIView):
    """Every trade of the user, newest first, in the product's row shape and renderer (what
    /api/trades/ would answer without pages)."""

    def get(self, request: Request) -> Response:
        rows = Trade.objects.for_owner(request.user).api_rows().order_by("-executed_at", "-id")
        return Response({"count": len(rows := list(rows)), "results": rows})


class TradesView(APIView):
    def get(self, request: Request) -> Response:
        queryset = Trade.objects.filter(bot__owner=request.user).order_by("-executed_at")
        pager = Pages()
        page = pager.paginate_queryset(queryset, request, view=self)
        return pager.get_paginated_response(TradeSerializer(page, many=True).data)


class PerformanceView(APIView):
    def get(self, request: Request) -> Response:
        _, start = period_param(request)
        result: dict[str, Any] = {}
        for bot in Bot.objects.filter(owner=request.user):
            closed = [p for p in Position.objects.filter(bot=bot, status="closed")]
            trades = list(Trade.objects.filter(bot=bot))
            equity = [s.equity for s in EquitySnapshot.objects.filter(bot=bot).order_by("taken_at")
                      if start is None or s.taken_at >= start]  # fmt: skip
            peak, drawdown = Decimal(0), Decimal(0)
            for value in equity:
                peak = max(peak, value)
                if peak:
                    drawdown = max(drawdown, (peak - value) / peak)
            wins = [p for p in closed if p.realized_pnl - p.fees > 0]
            losses = [p for p in closed if p.realized_pnl - p.fees < 0]
            daily: dict[str, Decimal] = defaultdict(Decimal)
            for trade in trades:
                if start is None or trade.executed_at >= start:
                    daily[trade.executed_at.astimezone(UTC).date().isoformat()] += (
                        trade.realized_pnl
                    )
            result[bot.name] = {
                "trades": len(trades), "wins": len(wins), "losses": len(losses),
                "realized_pnl": sum((t.realized_pnl for t in trades), Decimal(0)),
                "max_drawdown": drawdown, "daily": daily,
            }  # fmt: skip
        return Response(result)


urlpatterns = [
    path("baseline/dashboard/stats", StatsView.as_view()),
    path("baseline/dashboard/equity-curve", EquityCurveView.as_view()),
    path("baseline/dashboard/positions", PositionsView.as_view()),
    path("baseline/dashboard/trades", TradesView.as_view()),
    path("baseline/dashboard/performance", PerformanceView.as_view()),
    path("baseline/dashboard/positions-eager", EagerPositionsView.as_view()),
    path("baseline/trades/all", WholeTradeListView.as_view()),
]
