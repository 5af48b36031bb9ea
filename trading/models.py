"""Bots, their positions, trades and equity snapshots.

Ids are ``bigint`` identities, not UUIDs: every hot index ends in ``id`` as the keyset tie-breaker,
an 8-byte increasing key keeps those indexes ~half the size of 16-byte random UUIDs and appends at
the right edge of the B-tree (no random page splits during bulk recording), and COPY-based seeding
can reserve id ranges. Guessable ids leak nothing: every query is scoped to its owner and another
user's object is a 404.

``owner`` is denormalised onto Position, Trade and EquitySnapshot (always equal to ``bot.owner``,
set by ``trading.services``) so that every per-user list is one index range scan in display order
instead of a join over the user's bots followed by a sort.
"""

from __future__ import annotations

from decimal import Decimal, localcontext

from django.conf import settings
from django.db import models
from django.db.models import F, Q
from django.db.models.functions import Now
from django.utils import timezone

from marketdata.timeframes import Timeframe
from trading.querysets import (
    AccountEquityQuerySet,
    BotQuerySet,
    EquitySnapshotQuerySet,
    PositionQuerySet,
    TradeQuerySet,
)
from zerobot.lib.fields import MoneyField, PriceField, QuantityField
from zerobot.lib.money import LEVERAGE_DECIMAL_PLACES, LEVERAGE_MAX_DIGITS, MONEY_CONTEXT, money

ZERO = Decimal("0")


class BotStatus(models.TextChoices):
    INACTIVE = "inactive", "Inactive"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    STOPPED = "stopped", "Stopped"


class PositionSide(models.TextChoices):
    LONG = "long", "Long"
    SHORT = "short", "Short"


class PositionStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


class TradeSide(models.TextChoices):
    BUY = "buy", "Buy"
    SELL = "sell", "Sell"


class TradeReason(models.TextChoices):
    """Why a fill happened: ``open`` for an opening fill, the close reason for a closing one."""

    OPEN = "open", "Open"
    SIGNAL = "signal", "Strategy signal"
    STOP_LOSS = "stop_loss", "Stop-loss"
    TAKE_PROFIT = "take_profit", "Take-profit"
    LIQUIDATION = "liquidation", "Liquidation"
    MANUAL = "manual", "Manual (API, admin)"
    RISK = "risk", "Risk rule"


CLOSE_REASONS = frozenset(TradeReason.values) - {TradeReason.OPEN}


class Bot(models.Model):
    """A paper-trading bot. ``capital`` is its free cash; margin in open positions is not in it."""

    Status = BotStatus

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="bots",
        db_index=False,  # bot_owner_created_idx starts with owner
    )
    name = models.CharField(max_length=100)
    strategy = models.CharField(max_length=50)
    status = models.CharField(max_length=10, choices=BotStatus.choices, default=BotStatus.INACTIVE)
    paper_trading = models.BooleanField(default=True)
    initial_capital = MoneyField()
    capital = MoneyField(
        help_text="Free cash (initial capital + realized PnL - fees - open margin)."
    )
    symbols = models.JSONField(
        default=list, help_text='Traded symbols, e.g. ["BTC/USDT", "ETH/USDT"].'
    )
    timeframe = models.CharField(max_length=3, choices=Timeframe.choices, default=Timeframe.H1)
    peak_equity = MoneyField(default=ZERO, help_text="Highest equity snapshot so far.")
    max_drawdown_pct = models.DecimalField(
        max_digits=7, decimal_places=4, default=ZERO,
        help_text="Largest fall from a previous peak, in % of that peak, over all snapshots.",
    )  # fmt: skip
    risk_params = models.JSONField(
        default=dict,
        help_text="max_position_pct, max_drawdown_pct, max_trades_per_day, max_open_positions, "
        "stop_loss_pct, take_profit_pct, validated (see trading.risk).",
    )
    status_reason = models.CharField(
        max_length=200, blank=True, default="", db_default="",
        help_text="Why the bot last changed status when a rule changed it (e.g. max drawdown).",
    )  # fmt: skip
    strategy_params = models.JSONField(
        default=dict, blank=True,
        help_text="The strategy's parameters, defaults filled (trading.engine.strategies).",
    )  # fmt: skip
    # Engine schedule (trading.engine.schedule): a runner claims a bot when next_run_at is due
    # and its lease is free, runs one cycle at next_run_at (its as_of), then moves next_run_at on
    # and frees the lease. A crashed runner's lease expires and another runner picks the bot up.
    next_run_at = models.DateTimeField(
        default=timezone.now, db_default=Now(), help_text="When the next cycle is due (its as_of)."
    )
    lease_until = models.DateTimeField(
        null=True, blank=True, help_text="A runner holds this bot's cycle until then."
    )
    lease_owner = models.CharField(max_length=64, blank=True, default="", db_default="")
    last_cycle_at = models.DateTimeField(
        null=True, blank=True, help_text="as_of of the last cycle."
    )
    last_error = models.TextField(
        blank=True, default="", db_default="", help_text="Error of the last cycle (blank if none)."
    )
    cycle_count = models.PositiveBigIntegerField(default=0, db_default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = BotQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(capital__gte=0), name="bot_capital_non_negative"),
            models.CheckConstraint(
                condition=Q(initial_capital__gt=0), name="bot_initial_capital_positive"
            ),
            models.CheckConstraint(
                condition=Q(status__in=BotStatus.values), name="bot_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(timeframe__in=Timeframe.values), name="bot_timeframe_valid"
            ),
            # One name per user, so a dashboard never shows two indistinguishable bots.
            models.UniqueConstraint(fields=["owner", "name"], name="bot_owner_name_uniq"),
        ]
        indexes = [
            # A user's bots, newest first: /api/bots/ and every dashboard "my bots" lookup.
            models.Index(fields=["owner", "-created_at", "-id"], name="bot_owner_created_idx"),
            # The engine's claim query (trading.engine.schedule.CLAIM_SQL): active bots by due
            # time. Partial: paused/stopped bots, usually most of them, are not in it.
            models.Index(
                fields=["next_run_at", "id"], name="bot_due_idx", condition=Q(status="active")
            ),
        ]

    def __str__(self) -> str:
        return self.name


class Position(models.Model):
    """An exposure in one symbol, opened by one trade and closed by one or more."""

    Side = PositionSide
    Status = PositionStatus

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # position_owner_opened_idx starts with owner
        help_text="Always bot.owner (denormalised for single-index per-user lists).",
    )
    bot = models.ForeignKey(
        Bot,
        on_delete=models.CASCADE,
        related_name="positions",
        db_index=False,  # position_bot_opened_idx starts with bot
    )
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=5, choices=PositionSide.choices)
    quantity = QuantityField(help_text="Quantity opened.")
    closed_quantity = QuantityField(default=ZERO, help_text="Part of quantity closed so far.")
    leverage = models.DecimalField(
        max_digits=LEVERAGE_MAX_DIGITS, decimal_places=LEVERAGE_DECIMAL_PLACES, default=Decimal("1")
    )
    entry_price = PriceField()
    current_price = PriceField()
    stop_loss = PriceField(null=True, blank=True)
    take_profit = PriceField(null=True, blank=True)
    liquidation_price = PriceField(
        null=True, blank=True,
        help_text="Where the loss plus the closing fee uses up the margin (trading.risk); "
        "null when it cannot be reached (a 1x long).",
    )  # fmt: skip
    status = models.CharField(
        max_length=6, choices=PositionStatus.choices, default=PositionStatus.OPEN
    )
    close_reason = models.CharField(
        max_length=12, blank=True, default="", db_default="",
        help_text="Reason of the fill that closed it (blank while open).",
    )  # fmt: skip
    opened_at = models.DateTimeField()
    closed_at = models.DateTimeField(null=True, blank=True)
    margin = MoneyField(
        default=ZERO, help_text="Cash locked by the open quantity (quantity x entry / leverage)."
    )
    realized_pnl = MoneyField(default=ZERO, help_text="Gross PnL realised so far (fees excluded).")
    fees = MoneyField(default=ZERO, help_text="Fees of all this position's trades.")

    objects = PositionQuerySet.as_manager()

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(quantity__gt=0), name="position_quantity_positive"),
            models.CheckConstraint(
                condition=Q(entry_price__gt=0), name="position_entry_price_positive"
            ),
            models.CheckConstraint(condition=Q(leverage__gte=1), name="position_leverage_min_1"),
            models.CheckConstraint(condition=Q(fees__gte=0), name="position_fees_non_negative"),
            models.CheckConstraint(condition=Q(margin__gte=0), name="position_margin_non_negative"),
            models.CheckConstraint(
                condition=Q(closed_quantity__gte=0, closed_quantity__lte=F("quantity")),
                name="position_closed_quantity_in_range",
            ),
            models.CheckConstraint(
                condition=Q(side__in=PositionSide.values), name="position_side_valid"
            ),
            models.CheckConstraint(
                condition=(Q(status="open", closed_at__isnull=True))
                | Q(status="closed", closed_at__isnull=False, closed_at__gte=F("opened_at")),
                name="position_closed_at_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(close_reason="") | Q(close_reason__in=sorted(CLOSE_REASONS)),
                name="position_close_reason_valid",
            ),
        ]
        indexes = [
            # A user's positions newest first (/api/positions/, also ?status=closed: most are).
            models.Index(fields=["owner", "-opened_at", "-id"], name="position_owner_opened_idx"),
            # A user's open positions (/api/dashboard/positions, ?status=open). Partial: open
            # positions are a few % of all, so this index stays small and hot.
            models.Index(
                fields=["owner", "-opened_at", "-id"],
                name="position_owner_open_idx",
                condition=Q(status="open"),
            ),
            # One bot's positions newest first (?bot=); also serves the bot FK (cascade deletes).
            models.Index(fields=["bot", "-opened_at", "-id"], name="position_bot_opened_idx"),
            # One bot's open positions: the bot cycle and ?bot=&status=open. Partial on open.
            models.Index(
                fields=["bot", "-opened_at", "-id"],
                name="position_bot_open_idx",
                condition=Q(status="open"),
            ),
            # Open positions in given symbols, whoever holds them: positions_mark of all bots.
            models.Index(
                fields=["symbol", "id"], name="position_open_symbol_idx", condition=Q(status="open")
            ),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol}"

    @property
    def open_quantity(self) -> Decimal:
        return self.quantity - self.closed_quantity

    @property
    def unrealized_pnl(self) -> Decimal:
        """At the stored mark, by the one rounding rule (``trading.querysets``): 0 once closed."""
        if self.status == self.Status.CLOSED:
            return money(ZERO)
        direction = 1 if self.side == self.Side.LONG else -1
        with localcontext(MONEY_CONTEXT):
            return money((self.current_price - self.entry_price) * self.open_quantity * direction)


class Trade(models.Model):
    """One fill. ``client_order_id`` is unique per bot, so recording the same order twice is a no-op."""

    Side = TradeSide
    Reason = TradeReason

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # trade_owner_time_idx starts with owner
        help_text="Always bot.owner (denormalised for single-index per-user lists).",
    )
    bot = models.ForeignKey(
        Bot,
        on_delete=models.CASCADE,
        related_name="trades",
        db_index=False,  # trade_bot_time_idx and trade_bot_client_order_uniq start with bot
    )
    # Kept when its position is deleted: the trade is the ledger, the position a view of it.
    # Indexed (the default) for "trades of a position" and for SET NULL on delete.
    position = models.ForeignKey(
        Position, on_delete=models.SET_NULL, null=True, blank=True, related_name="trades"
    )
    symbol = models.CharField(max_length=32)
    side = models.CharField(max_length=4, choices=TradeSide.choices)
    quantity = QuantityField()
    price = PriceField()
    fee = MoneyField(default=ZERO)
    realized_pnl = MoneyField(
        default=ZERO, help_text="Gross PnL this fill realised (closing fills)."
    )
    executed_at = models.DateTimeField()
    client_order_id = models.CharField(max_length=64)
    reason = models.CharField(
        max_length=12, choices=TradeReason.choices, default=TradeReason.OPEN,
        db_default=TradeReason.OPEN, help_text="open, or why a closing fill closed.",
    )  # fmt: skip

    objects = TradeQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bot", "client_order_id"], name="trade_bot_client_order_uniq"
            ),
            models.CheckConstraint(condition=Q(quantity__gt=0), name="trade_quantity_positive"),
            models.CheckConstraint(condition=Q(price__gt=0), name="trade_price_positive"),
            models.CheckConstraint(condition=Q(fee__gte=0), name="trade_fee_non_negative"),
            models.CheckConstraint(condition=Q(side__in=TradeSide.values), name="trade_side_valid"),
            models.CheckConstraint(
                condition=Q(reason__in=TradeReason.values), name="trade_reason_valid"
            ),
        ]
        indexes = [
            # A user's trades newest first: /api/trades/, /api/dashboard/trades (keyset on id).
            models.Index(fields=["owner", "-executed_at", "-id"], name="trade_owner_time_idx"),
            # One bot's trades newest first: ?bot=, the bot cycle's recent fills.
            models.Index(fields=["bot", "-executed_at", "-id"], name="trade_bot_time_idx"),
            # Market-wide trades in one symbol newest first: last traded price per symbol.
            models.Index(fields=["symbol", "-executed_at", "-id"], name="trade_symbol_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.side} {self.quantity} {self.symbol} @ {self.price}"


class EquitySnapshot(models.Model):
    """A bot's equity at one instant: cash + margin in open positions + their unrealized PnL."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        db_index=False,  # no per-user snapshot reads (summed curves use AccountEquitySnapshot)
    )
    bot = models.ForeignKey(
        Bot,
        on_delete=models.CASCADE,
        related_name="equity_snapshots",
        db_index=False,  # equity_bot_time_uniq starts with bot
    )
    taken_at = models.DateTimeField()
    equity = MoneyField()
    cash = MoneyField()
    unrealized_pnl = MoneyField(default=ZERO)

    objects = EquitySnapshotQuerySet.as_manager()

    class Meta:
        constraints = [
            # One snapshot per bot and instant (a summed curve must not count one twice). Its
            # index (bot, taken_at DESC) serves a bot's equity curve in time order, both ways.
            models.UniqueConstraint(F("bot"), F("taken_at").desc(), name="equity_bot_time_uniq"),
        ]
        # No (owner, taken_at) index: summed curves read AccountEquitySnapshot instead.

    def __str__(self) -> str:
        return f"{self.bot_id} @ {self.taken_at:%Y-%m-%d %H:%M}: {self.equity}"


class AccountEquitySnapshot(models.Model):
    """A user's equity summed over their bots at one instant, kept by ``equity_snapshot_record``.

    Each row is, for every bot of the owner, its latest snapshot at or before ``taken_at``
    (carried forward), summed. The summed equity curve reads these rows (one per instant)
    instead of grouping every bot's snapshots per request.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    taken_at = models.DateTimeField()
    equity = MoneyField()
    cash = MoneyField()
    unrealized_pnl = MoneyField(default=ZERO)
    bots = models.PositiveIntegerField(default=0, help_text="Bots with a snapshot so far.")

    objects = AccountEquityQuerySet.as_manager()

    class Meta:
        constraints = [
            # A user's summed equity curve over a period (and the portfolio drawdown).
            models.UniqueConstraint(
                F("owner"), F("taken_at").desc(), name="account_owner_time_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id} @ {self.taken_at:%Y-%m-%d %H:%M}: {self.equity}"


# Rollup levels (bucket width in seconds): hour, UTC day, week (Monday 00:00 UTC). Buckets are
# ``date_bin(width, taken_at, ROLLUP_ORIGIN)``; the origin, a Monday midnight, aligns all three.
ROLLUP_WIDTHS = (3600, 86400, 604800)
ROLLUP_ORIGIN = "1970-01-05 00:00:00+00"


class EquityRollupFields(models.Model):
    """One bucket of an equity series (a bot's snapshots or a user's summed curve) at one level.

    ``open/high/low/close`` are the equity of the bucket's first, highest, lowest and last rows;
    the sums and ``n`` give exact averages of any run of buckets; ``drawdown`` is the largest fall
    from a running peak inside the bucket, as a fraction (``(peak - equity) / peak``; runs of
    buckets combine exactly: a later bucket's low against an earlier bucket's high);
    ``peak`` and ``run_drawdown`` are the all-time running peak and max drawdown at the bucket's
    end. Kept by ``trading.services.rollups`` in the snapshots' transaction.
    """

    width = models.PositiveIntegerField(help_text="Bucket width in seconds (ROLLUP_WIDTHS).")
    bucket = models.DateTimeField(help_text="Start of the bucket (UTC).")
    n = models.PositiveIntegerField(help_text="Snapshots (rows of the series) in the bucket.")
    open = MoneyField()
    high = MoneyField()
    low = MoneyField()
    close = MoneyField()
    equity_sum = models.DecimalField(max_digits=34, decimal_places=8)
    cash_sum = models.DecimalField(max_digits=34, decimal_places=8)
    unrealized_sum = models.DecimalField(max_digits=34, decimal_places=8)
    drawdown = models.DecimalField(max_digits=40, decimal_places=30, null=True)
    peak = MoneyField(help_text="Highest equity of the series up to the end of the bucket.")
    run_drawdown = models.DecimalField(max_digits=40, decimal_places=30, null=True)

    class Meta:
        abstract = True


class EquityRollup(EquityRollupFields):
    """A bot's equity snapshots rolled up per hour, day and week (``ROLLUP_WIDTHS``)."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bot = models.ForeignKey(
        Bot, on_delete=models.CASCADE, related_name="equity_rollups", db_index=False
    )

    class Meta:
        constraints = [
            # One bot's equity curve and drawdown at one level over a period (?bot=).
            models.UniqueConstraint(
                fields=["bot", "width", "bucket"], name="equityrollup_bot_width_bucket_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.width}s @ {self.bucket:%Y-%m-%d %H:%M}"


class AccountEquityRollup(EquityRollupFields):
    """A user's summed equity curve (``AccountEquitySnapshot``) rolled up like ``EquityRollup``."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bots = models.PositiveIntegerField(default=0, help_text="Most bots counted in the bucket.")

    class Meta:
        constraints = [
            # A user's summed equity curve and portfolio drawdown at one level over a period.
            models.UniqueConstraint(
                fields=["owner", "width", "bucket"], name="accountrollup_owner_width_bucket_uniq"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.owner_id} {self.width}s @ {self.bucket:%Y-%m-%d %H:%M}"


class BotSymbolStats(models.Model):
    """Running totals per bot and symbol, kept by the services in the same transaction as the trades.

    Dashboards read these few rows (bots x symbols) instead of aggregating the whole trade history,
    so their cost stays flat as history grows. ``trading.services.stats_rebuild`` recomputes them
    from the ledger (seeding, repair) and tests check both paths agree.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bot = models.ForeignKey(
        Bot, on_delete=models.CASCADE, related_name="symbol_stats", db_index=False
    )
    symbol = models.CharField(max_length=32)
    trade_count = models.PositiveIntegerField(default=0)
    closed_positions = models.PositiveIntegerField(default=0)
    wins = models.PositiveIntegerField(default=0, help_text="Closed positions with net PnL > 0.")
    losses = models.PositiveIntegerField(default=0, help_text="Closed positions with net PnL < 0.")
    realized_pnl = MoneyField(default=ZERO, help_text="Gross realized PnL of all fills.")
    fees = MoneyField(default=ZERO)
    gross_profit = MoneyField(default=ZERO, help_text="Sum of net PnL of winning positions.")
    gross_loss = MoneyField(default=ZERO, help_text="Sum of -net PnL of losing positions (>= 0).")

    class Meta:
        verbose_name_plural = "bot symbol stats"
        constraints = [
            # Also the index for "stats of one bot" and "stats of a user's bots" via bot.
            models.UniqueConstraint(fields=["bot", "symbol"], name="botstats_bot_symbol_uniq"),
        ]
        indexes = [
            # All stats rows of a user: dashboard stats and performance without a join.
            models.Index(fields=["owner", "bot"], name="botstats_owner_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.symbol}"


class BotDailyPnl(models.Model):
    """Realized PnL and fees per bot and UTC day, kept like ``BotSymbolStats``."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="daily_pnl", db_index=False)
    day = models.DateField()
    trade_count = models.PositiveIntegerField(default=0)
    realized_pnl = MoneyField(default=ZERO)
    fees = MoneyField(default=ZERO)

    class Meta:
        verbose_name = "bot daily PnL"
        verbose_name_plural = "bot daily PnL"
        constraints = [
            # Serves one bot's PnL per day over a period.
            models.UniqueConstraint(fields=["bot", "day"], name="dailypnl_bot_day_uniq"),
        ]
        indexes = [
            # A user's PnL per day over a period (performance endpoint, all bots).
            models.Index(fields=["owner", "day"], name="dailypnl_owner_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.day}: {self.realized_pnl}"


class BotPnlRollup(models.Model):
    """``BotDailyPnl`` per bot and ISO week (from Monday), calendar month or year (UTC), kept by
    ``trading.services.totals.stats_add`` in the same statement as the day row.

    The performance endpoint reads these for long periods, so its daily PnL costs at most the
    bots x the rows of the response, whatever the length of the history (``dashboard.
    daily_pnl_sql``). ``day`` is the bucket's first day.
    """

    class Unit(models.TextChoices):
        WEEK = "week"
        MONTH = "month"
        YEAR = "year"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    bot = models.ForeignKey(Bot, on_delete=models.CASCADE, related_name="+", db_index=False)
    unit = models.CharField(max_length=5, choices=Unit.choices)
    day = models.DateField(help_text="First day of the week, month or year.")
    trade_count = models.PositiveIntegerField(default=0)
    realized_pnl = MoneyField(default=ZERO)
    fees = MoneyField(default=ZERO)

    class Meta:
        verbose_name = "bot PnL rollup"
        constraints = [
            # The upsert of every fill; one bot's PnL per week/month/year (?bot=).
            models.UniqueConstraint(
                fields=["bot", "unit", "day"], name="pnlrollup_bot_unit_day_uniq"
            ),
        ]
        indexes = [
            # A user's PnL per week/month/year over a long period (performance, all bots).
            models.Index(fields=["owner", "unit", "day"], name="pnlrollup_owner_unit_day_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.bot_id} {self.unit} {self.day}: {self.realized_pnl}"
