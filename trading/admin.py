"""Admin for trading data, built to stay fast on millions of rows.

Every change list: ``list_select_related`` for the columns it shows (no N+1), ``raw_id_fields``
instead of <select>s over every bot or user, ``show_full_result_count=False`` (no COUNT(*) over the
whole table on filtered pages), and an ordering that an index serves.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.core.exceptions import EmptyResultSet
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import QuerySet
from django.utils.functional import cached_property

from marketdata.symbols import normalize_symbol
from trading.models import Bot, BotDailyPnl, BotSymbolStats, EquitySnapshot, Position, Trade


class EstimatedCountPaginator(Paginator):
    """Past ``threshold`` rows a change list shows PostgreSQL's row estimate as its count.

    ``show_full_result_count=False`` removes the admin's second COUNT(*), but the paginator still
    counts the page's queryset: tens of ms on 1M rows, on every page view. The planner's
    estimate for the same query (one EXPLAIN, ~1 ms) is precise enough to number pages of a
    big list; small results (under the threshold) are counted exactly.
    """

    threshold = 100_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connection.vendor == "postgresql":
            try:
                sql, params = queryset.order_by().query.sql_with_params()
            except EmptyResultSet:  # e.g. queryset.none(): nothing to count
                return 0
            with connection.cursor() as cursor:
                cursor.execute(f"EXPLAIN (FORMAT JSON) {sql}", params)
                raw = cursor.fetchone()[0]
            plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
            if plan["Plan Rows"] > self.threshold:
                return int(plan["Plan Rows"])
        return super().count


class SymbolSearchMixin:
    """The search box takes a symbol and matches it exactly (``symbol = 'BTC/USDT'``), which the
    symbol indexes serve. Django's ``=field`` search is case-insensitive (UPPER(symbol) = ...),
    which no index serves: 200 ms on 1M trades."""

    search_help_text = "An exact symbol, e.g. BTC/USDT"

    def get_search_results(
        self, request: Any, queryset: QuerySet, search_term: str
    ) -> tuple[QuerySet, bool]:
        if not search_term.strip():
            return queryset, False
        try:
            return queryset.filter(symbol=normalize_symbol(search_term)), False
        except ValueError:
            return queryset.none(), False


@admin.register(Bot)
class BotAdmin(admin.ModelAdmin):
    list_display = (
        "id",
        "name",
        "owner",
        "strategy",
        "status",
        "timeframe",
        "capital",
        "created_at",
    )
    list_filter = ("status", "timeframe", "paper_trading")
    list_select_related = ("owner",)
    search_fields = ("name", "strategy", "owner__username")
    raw_id_fields = ("owner",)
    readonly_fields = ("capital", "initial_capital", "created_at", "updated_at")
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(Position)
class PositionAdmin(SymbolSearchMixin, admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    list_display = (
        "id",
        "bot",
        "symbol",
        "side",
        "status",
        "quantity",
        "entry_price",
        "current_price",
        "realized_pnl",
        "opened_at",
        "closed_at",
    )
    list_filter = ("status", "side")
    list_select_related = ("bot",)
    search_fields = ("symbol",)  # see SymbolSearchMixin; filter by bot with ?bot__id__exact=
    raw_id_fields = ("owner", "bot")
    readonly_fields = ("owner", "margin", "realized_pnl", "fees", "closed_quantity")
    show_full_result_count = False
    ordering = ("-id",)
    date_hierarchy = None  # a date drill-down runs DISTINCT over all rows: too slow at 1M


@admin.register(Trade)
class TradeAdmin(SymbolSearchMixin, admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    list_display = (
        "id",
        "bot",
        "symbol",
        "side",
        "quantity",
        "price",
        "fee",
        "realized_pnl",
        "executed_at",
        "client_order_id",
    )
    list_filter = ("side",)
    list_select_related = ("bot",)
    search_fields = ("symbol",)  # see SymbolSearchMixin; filter by bot with ?bot__id__exact=
    raw_id_fields = ("owner", "bot", "position")
    readonly_fields = ("owner", "realized_pnl")
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(admin.ModelAdmin):
    paginator = EstimatedCountPaginator
    list_display = ("id", "bot", "taken_at", "equity", "cash", "unrealized_pnl")
    list_select_related = ("bot",)
    search_fields = ("=bot__name",)
    raw_id_fields = ("owner", "bot")
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(BotSymbolStats)
class BotSymbolStatsAdmin(SymbolSearchMixin, admin.ModelAdmin):
    list_display = ("bot", "symbol", "trade_count", "wins", "losses", "realized_pnl", "fees")
    list_select_related = ("bot",)
    search_fields = ("symbol",)
    raw_id_fields = ("owner", "bot")
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(BotDailyPnl)
class BotDailyPnlAdmin(admin.ModelAdmin):
    list_display = ("bot", "day", "trade_count", "realized_pnl", "fees")
    list_select_related = ("bot",)
    search_fields = ("=bot__name",)
    raw_id_fields = ("owner", "bot")
    show_full_result_count = False
    ordering = ("-id",)
