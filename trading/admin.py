"""Admin for trading data, built to stay fast on millions of rows.

Every change list: ``list_select_related`` for the columns it shows (no N+1), ``raw_id_fields``
instead of <select>s over every bot or user, ``show_full_result_count=False`` (no COUNT(*) over the
whole table on filtered pages), and an ordering that an index serves.
"""

from __future__ import annotations

from django.contrib import admin

from trading.models import Bot, BotDailyPnl, BotSymbolStats, EquitySnapshot, Position, Trade


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
class PositionAdmin(admin.ModelAdmin):
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
    search_fields = ("=symbol", "=bot__name")
    raw_id_fields = ("owner", "bot")
    readonly_fields = ("owner", "margin", "realized_pnl", "fees", "closed_quantity")
    show_full_result_count = False
    ordering = ("-id",)
    date_hierarchy = None  # a date drill-down runs DISTINCT over all rows: too slow at 1M


@admin.register(Trade)
class TradeAdmin(admin.ModelAdmin):
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
    # "=" makes them exact matches that an index can serve, not LIKE '%...%' scans.
    search_fields = ("=symbol", "=client_order_id", "=bot__name")
    raw_id_fields = ("owner", "bot", "position")
    readonly_fields = ("owner", "realized_pnl")
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(admin.ModelAdmin):
    list_display = ("id", "bot", "taken_at", "equity", "cash", "unrealized_pnl")
    list_select_related = ("bot",)
    search_fields = ("=bot__name",)
    raw_id_fields = ("owner", "bot")
    show_full_result_count = False
    ordering = ("-id",)


@admin.register(BotSymbolStats)
class BotSymbolStatsAdmin(admin.ModelAdmin):
    list_display = ("bot", "symbol", "trade_count", "wins", "losses", "realized_pnl", "fees")
    list_select_related = ("bot",)
    search_fields = ("=symbol", "=bot__name")
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
