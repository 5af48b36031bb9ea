"""Deterministic, realistic, fast demo data (``manage.py seed_demo``).

Realistic: each symbol's price is a geometric random walk on a one-minute grid; every position is
opened by one fill and closed by one or more fills at the walk's prices; fees are 0.1 % of
notional; each bot's capital, running totals and equity snapshots follow from its fills exactly as
``trading.services`` would have left them (the ledger tests check this).

Fast: money is computed in integer units (1e-8 for cash, 1e-12 for prices and quantities) so it is
exact without ``Decimal`` in the inner loop; equity curves are vectorised with numpy (per symbol,
open quantity and cost basis are step functions, so unrealized PnL at every snapshot is
``price(t) * Q(t) - K(t)``); rows reach PostgreSQL through ``COPY`` in batches of bots.

Deterministic: the same ``seed``, profile, counts and ``end`` give the same rows.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import repeat
from typing import Any

import numpy as np
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection, transaction

from trading.engine.strategies import validate_strategy
from trading.models import (
    AccountEquityRollup,
    AccountEquitySnapshot,
    Bot,
    BotDailyPnl,
    BotPnlRollup,
    BotSymbolStats,
    EquityRollup,
    EquitySnapshot,
    Position,
    Timeframe,
    Trade,
)
from trading.risk import liquidation_price, validate_risk_params
from trading.services import stats_rebuild
from trading.services.rollups import equity_rollups_rebuild
from zerobot.lib.money import quantize

DEMO_USERNAME = "demo"
# Every demo user's e-mail is in this reserved domain (RFC 2606): --reset deletes only them.
DEMO_EMAIL_DOMAIN = "demo.zerobot.invalid"
DEMO_PASSWORD = "zerobot-demo"  # noqa: S105 - printed to the user on purpose; demo data only
TRADER_PREFIX = "trader"

# Everything seed_demo writes, children first (the order --reset deletes in).
SEEDED_MODELS = (
    Trade, EquityRollup, EquitySnapshot, AccountEquityRollup, AccountEquitySnapshot, Position,
    BotSymbolStats, BotPnlRollup, BotDailyPnl, Bot,
)  # fmt: skip

MONEY = 10**8  # cash, fees, PnL: 8 decimal places
UNIT = 10**12  # prices, quantities: 12 decimal places
FEE_BPS = 10  # 0.1 % of notional per fill

SYMBOLS: list[tuple[str, float]] = [
    ("BTC/USDT", 60_000.0), ("ETH/USDT", 3_000.0), ("SOL/USDT", 150.0), ("BNB/USDT", 550.0),
    ("XRP/USDT", 0.55), ("ADA/USDT", 0.45), ("DOGE/USDT", 0.12), ("AVAX/USDT", 30.0),
    ("DOT/USDT", 6.0), ("LINK/USDT", 14.0), ("POL/USDT", 0.7), ("LTC/USDT", 80.0),
    ("TRX/USDT", 0.12), ("SHIB/USDT", 0.000018), ("ATOM/USDT", 8.0), ("UNI/USDT", 7.0),
    ("XLM/USDT", 0.11), ("NEAR/USDT", 5.0), ("APT/USDT", 9.0), ("ARB/USDT", 1.1),
]  # fmt: skip
# Built-in strategies of the engine (trading.engine.strategies), with their default parameters.
STRATEGIES = ["momentum", "mean_reversion", "sma_cross", "manual"]
STATUSES = (
    [Bot.Status.ACTIVE] * 6 + [Bot.Status.PAUSED] * 2 + [Bot.Status.STOPPED, Bot.Status.INACTIVE]
)
CAPITALS = [10_000, 25_000, 50_000, 100_000]
LEVERAGES = [1, 1, 1, 2, 3, 5]


@dataclass(frozen=True)
class Profile:
    users: int
    bots_per_user: int
    trades_per_bot: int
    open_positions: int
    closed_positions: int
    snapshots_per_bot: int
    symbols: int
    days: int = 90
    # Minutes per step of the price grid: fills and snapshots land on it (a fill at a random
    # second of its step). 1 is the exchange's minute; a coarser grid keeps a very long history
    # cheap (9,000 days at 1 minute are 13M prices per symbol, ~2 GB for 20 symbols).
    step_minutes: int = 1

    @property
    def bots(self) -> int:
        return self.users * self.bots_per_user

    def validate(self) -> None:
        if self.users < 1 or self.bots_per_user < 1:
            raise ValueError("users and bots-per-user must be at least 1.")
        if not 1 <= self.symbols <= len(SYMBOLS):
            raise ValueError(f"symbols must be between 1 and {len(SYMBOLS)}.")
        if min(self.open_positions, self.closed_positions, self.snapshots_per_bot) < 0:
            raise ValueError("counts must not be negative.")
        needed = self.open_positions + 2 * self.closed_positions
        if self.trades_per_bot < needed:
            raise ValueError(
                f"trades-per-bot={self.trades_per_bot} is too few: {self.open_positions} open and "
                f"{self.closed_positions} closed positions need at least {needed} fills."
            )
        if self.trades_per_bot > needed and self.closed_positions == 0:
            raise ValueError("extra fills are partial closes: they need closed positions.")
        if self.days < 1:
            raise ValueError("days must be at least 1.")
        if not 1 <= self.step_minutes <= 1440:
            raise ValueError("step-minutes must be between 1 and 1440.")
        if self.snapshots_per_bot > self.days * 1440 // self.step_minutes + 1:
            raise ValueError("more snapshots per bot than steps of the price grid.")


PROFILES: dict[str, Profile] = {
    # ~5k trades: seeds in a couple of seconds, enough to click through everything.
    "small": Profile(users=2, bots_per_user=3, trades_per_bot=850, open_positions=25,
                     closed_positions=400, snapshots_per_bot=500, symbols=8),
    # The benchmark data set of PERFORMANCE.md: 100 bots, 100k trades, 200k snapshots.
    "reference": Profile(users=10, bots_per_user=10, trades_per_bot=1000, open_positions=50,
                         closed_positions=450, snapshots_per_bot=2000, symbols=20),
    # 10x the reference history: 1,000 bots, 1M trades, 2M snapshots.
    "large": Profile(users=100, bots_per_user=10, trades_per_bot=1000, open_positions=50,
                     closed_positions=450, snapshots_per_bot=2000, symbols=20),
    # 10x the history of each reference bot (900 days, 10,000 fills, 20,000 snapshots, the same
    # 50 open positions), for 2 users: the demo user has the reference's 10 bots, each 10x deeper.
    "deep": Profile(users=2, bots_per_user=10, trades_per_bot=10000, open_positions=50,
                    closed_positions=4500, snapshots_per_bot=20000, symbols=20, days=900),
    # 100x the history of each reference bot in time and snapshots (9,000 days, 200,000
    # snapshots at the reference's ~65-minute spacing; 10,000 fills as "deep": the trades' own
    # series is the bench's scale phase), for the demo user alone, on a 30-minute price grid.
    "deep100": Profile(users=1, bots_per_user=10, trades_per_bot=10000, open_positions=50,
                       closed_positions=4500, snapshots_per_bot=200000, symbols=20, days=9000,
                       step_minutes=30),
}  # fmt: skip


@dataclass
class SeedResult:
    users: int
    bots: int
    positions: int
    trades: int
    snapshots: int
    seconds: float = 0.0


def usernames(profile: Profile) -> list[str]:
    width = max(2, len(str(profile.users)))
    return [DEMO_USERNAME] + [f"{TRADER_PREFIX}{i:0{width}d}" for i in range(2, profile.users + 1)]


# --- Price paths --------------------------------------------------------------------------------


def _tick_units(price: float) -> int:
    """Price step in 1e-12 units: six significant digits, as exchanges quote."""
    exponent = int(np.floor(np.log10(price))) - 5
    return max(1, 10 ** (exponent + 12)) if exponent + 12 >= 0 else 1


def price_paths(profile: Profile, rng: np.random.Generator) -> tuple[list[str], np.ndarray]:
    """Per symbol, one price per step (``step_minutes``) over ``days`` (floats; rounded to ticks
    when used)."""
    minutes = profile.days * 24 * 60 // profile.step_minutes + 1
    per_year = 365 * 24 * 60 / profile.step_minutes
    names = [name for name, _ in SYMBOLS[: profile.symbols]]
    paths = np.empty((profile.symbols, minutes))
    for i, (_, start) in enumerate(SYMBOLS[: profile.symbols]):
        # ~60 % annualised volatility, a small random drift per symbol.
        sigma = 0.6 / np.sqrt(per_year)
        drift = rng.normal(0, 0.3) / per_year
        steps = rng.normal(drift, sigma, minutes - 1)
        paths[i, 0] = start
        paths[i, 1:] = start * np.exp(np.cumsum(steps))
        tick = _tick_units(start) / UNIT  # quote on the tick grid, like an exchange
        paths[i] = np.maximum(tick, np.round(paths[i] / tick) * tick)
    return names, paths


# --- Integer money helpers ----------------------------------------------------------------------


def _div_half_even(numerator: int, denominator: int) -> int:
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def _fmt_array(values: np.ndarray, places: int) -> list[str]:
    """``_fmt`` of every int64 of ``values`` (snapshots: ~200,000 per bot), without a call each."""
    magnitude = np.abs(values)
    scale = 10**places
    signs = np.where(values < 0, "-", "").tolist()
    return [
        f"{sign}{whole}.{frac:0{places}d}"
        for sign, whole, frac in zip(
            signs, (magnitude // scale).tolist(), (magnitude % scale).tolist(), strict=True
        )
    ]


def _fmt_times(start: datetime, minutes: np.ndarray) -> list[str]:
    """``start`` + each of ``minutes``, formatted as ``_fmt_time_for_db`` does, vectorised."""
    base = np.datetime64(start.astimezone(UTC).replace(tzinfo=None), "s")
    text = np.datetime_as_string(base + minutes.astype("timedelta64[m]"), unit="s")
    if connection.vendor == "postgresql":
        return np.char.add(np.char.replace(text, "T", " "), "+00").tolist()
    return np.char.replace(text, "T", " ").tolist()


def _fmt(value: int, places: int) -> str:
    sign = "-" if value < 0 else ""
    value = abs(value)
    scale = 10**places
    return f"{sign}{value // scale}.{value % scale:0{places}d}"


def _liquidation_units(*, long: bool, entry: int, margin: int, qty: int) -> int | None:
    """trading.risk.liquidation_price in 1e-12 units (Decimal once per position: exact)."""
    price = liquidation_price(
        side="long" if long else "short", entry=Decimal(entry).scaleb(-12),
        margin=Decimal(margin).scaleb(-8), open_quantity=Decimal(qty).scaleb(-12),
    )  # fmt: skip
    return None if price is None else int(price.scaleb(12))


# --- One bot ------------------------------------------------------------------------------------


@dataclass
class BotRows:
    positions: list[tuple]
    trades: list[tuple]
    snapshots: list[tuple]
    capital: int  # final cash, 1e-8 units
    peak_equity: int = 0  # 1e-8 units
    max_drawdown_pct: str = "0.0000"


def generate_bot(
    *,
    bot_id: int,
    owner_id: int,
    initial_capital: int,
    bot_symbols: list[int],
    profile: Profile,
    names: list[str],
    paths: np.ndarray,
    start: datetime,
    first_position_id: int,
    rng: random.Random,
    fmt_time: Callable[[datetime], str],
) -> BotRows:
    minutes = paths.shape[1] - 1  # steps of the grid (minutes when step_minutes is 1)
    step = profile.step_minutes
    capital0 = initial_capital * MONEY
    # (minute, seq, cash delta, symbol index, signed qty delta, margin delta, cost-basis delta)
    events: list[tuple[int, int, int, int, int, int, int]] = []
    positions: list[tuple] = []
    trades: list[tuple] = []
    end_minute = minutes

    n_open, n_closed = profile.open_positions, profile.closed_positions
    extra = profile.trades_per_bot - n_open - 2 * n_closed
    partials = [0] * n_closed
    for k in range(extra):
        partials[k % n_closed] += 1 if n_closed else 0

    # Fees are 0.1 % of each fill: beyond ~10,000 fills at full size they alone would eat the
    # capital, so positions shrink in proportion (1 up to 10,000 fills: those profiles unchanged).
    size = min(1.0, 10_000 / max(1, profile.trades_per_bot))
    ticks = {sym: _tick_units(float(paths[sym][0])) for sym in bot_symbols}
    specs: list[tuple[int, int | None, int]] = []  # (open minute, close minute or None, partials)
    for i in range(n_closed):
        hold_minutes = rng.lognormvariate(6.5, 1.2)  # median ~11 h
        hold = min(end_minute - 2, max(5, int(hold_minutes) // step))
        opened = rng.randrange(0, end_minute - hold - 1)
        specs.append((opened, opened + hold, partials[i]))
    open_window = max(2, end_minute // 5)  # still-open positions opened in the last fifth
    for _ in range(n_open):
        specs.append((rng.randrange(end_minute - open_window, end_minute), None, 0))
    specs.sort(key=lambda spec: spec[0])

    order = 0
    for index, (opened, closed, n_partials) in enumerate(specs):
        position_id = first_position_id + index
        sym = rng.choice(bot_symbols)
        symbol = names[sym]
        path = paths[sym]
        tick = ticks[sym]
        long = rng.random() < 0.6
        direction = 1 if long else -1
        leverage = rng.choice(LEVERAGES)
        entry = max(tick, round(path[opened] * UNIT / tick) * tick)
        notional_target = initial_capital * rng.uniform(0.004, 0.012) * leverage * size  # quote
        raw_qty = notional_target / (entry / UNIT)
        qty_step = 10 ** max(0, int(np.floor(np.log10(raw_qty))) - 3 + 12) if raw_qty > 0 else 1
        qty = max(qty_step, int(raw_qty * UNIT // qty_step) * qty_step)
        margin = _div_half_even(qty * entry, leverage * 10**16)
        fee_open = _div_half_even(qty * entry * FEE_BPS, 10_000 * 10**16)
        opened_at = start + timedelta(minutes=opened * step, seconds=rng.randrange(60 * step))
        order += 1
        trades.append((
            owner_id, bot_id, position_id, symbol, "buy" if long else "sell", _fmt(qty, 12),
            _fmt(entry, 12), _fmt(fee_open, 8), "0", fmt_time(opened_at), f"seed-{bot_id}-{order}",
            "open",
        ))  # fmt: skip
        events.append(
            (
                opened,
                order,
                -(margin + fee_open),
                sym,
                direction * qty,
                margin,
                direction * qty * entry,
            )
        )

        fills: list[tuple[int, int]] = []  # (minute, quantity) closing fills
        if closed is not None:
            remaining = qty
            span = closed - opened
            for p in range(n_partials):
                minute = opened + max(1, span * (p + 1) // (n_partials + 1))
                part = max(qty_step, (remaining // 2) // qty_step * qty_step)
                if part >= remaining:
                    break
                fills.append((min(minute, closed - 1), part))
                remaining -= part
            fills.append((closed, remaining))

        margin_left, open_qty = margin, qty
        realized = 0
        fees = fee_open
        closed_qty = 0
        exit_price = entry
        closed_at = None
        liquidation = _liquidation_units(long=long, entry=entry, margin=margin, qty=qty)
        close_reason = ""
        for minute, part in fills:
            exit_price = max(tick, round(path[minute] * UNIT / tick) * tick)
            reason = "signal"
            if liquidation is not None and (
                exit_price <= liquidation if long else exit_price >= liquidation
            ):
                # As position_close does: the rest of the position goes at the liquidation price.
                exit_price, part, reason = liquidation, open_qty, "liquidation"
            pnl = _div_half_even((exit_price - entry) * part * direction, 10**16)
            fee = _div_half_even(part * exit_price * FEE_BPS, 10_000 * 10**16)
            release = (
                margin_left if part == open_qty else _div_half_even(margin_left * part, open_qty)
            )
            if reason == "liquidation":
                fee = max(0, min(fee, release + pnl))
            margin_left -= release
            open_qty -= part
            closed_qty += part
            realized += pnl
            fees += fee
            executed_at = start + timedelta(minutes=minute * step, seconds=rng.randrange(60 * step))
            executed_at = max(executed_at, opened_at)
            order += 1
            trades.append((
                owner_id, bot_id, position_id, symbol, "sell" if long else "buy", _fmt(part, 12),
                _fmt(exit_price, 12), _fmt(fee, 8), _fmt(pnl, 8), fmt_time(executed_at),
                f"seed-{bot_id}-{order}", reason,
            ))  # fmt: skip
            events.append(
                (minute, order, release + pnl - fee, sym, -direction * part, -release,
                 -direction * part * entry)
            )  # fmt: skip
            closed_at = executed_at
            close_reason = reason
            if open_qty == 0:
                break
        # The stored levels of risk_params' defaults (stop_loss_pct 5, take_profit_pct 10), as
        # position_open derives them (half-even to 12 places); kept after the close.
        stop = _div_half_even(entry * (100 - direction * 5), 100)
        take = _div_half_even(entry * (100 + direction * 10), 100)
        if closed is None:
            current = max(tick, round(path[end_minute] * UNIT / tick) * tick)
        else:
            current = exit_price
        positions.append((
            position_id, owner_id, bot_id, symbol, "long" if long else "short", _fmt(qty, 12),
            _fmt(closed_qty, 12), f"{leverage}.00", _fmt(entry, 12), _fmt(current, 12),
            _fmt(stop, 12) if stop is not None and stop > 0 else None,
            _fmt(take, 12) if take is not None else None,
            "open" if closed is None else "closed", fmt_time(opened_at),
            fmt_time(closed_at) if closed_at is not None else None, _fmt(margin_left, 8),
            _fmt(realized, 8), _fmt(fees, 8),
            None if liquidation is None else _fmt(liquidation, 12), close_reason,
        ))  # fmt: skip

    # Cash must never go negative at any instant (the database would refuse it too).
    events.sort(key=lambda e: (e[0], e[1]))
    cash_deltas = np.array([e[2] for e in events], dtype=np.int64)
    cash_path = capital0 + np.cumsum(cash_deltas)
    if len(cash_path) and cash_path.min() < 0:
        raise RuntimeError(f"bot {bot_id}: generated cash went negative; use another --seed")
    final_cash = int(cash_path[-1]) if len(cash_path) else capital0

    snapshots, peak, drawdown = _snapshots(
        profile=profile, events=events, paths=paths, start=start,
        capital0=capital0, owner_id=owner_id, bot_id=bot_id, fmt_time=fmt_time,
    )  # fmt: skip
    return BotRows(
        positions=positions, trades=trades, snapshots=snapshots, capital=final_cash,
        peak_equity=peak, max_drawdown_pct=drawdown,
    )  # fmt: skip


def _snapshots(
    *,
    profile: Profile,
    events: list[tuple[int, int, int, int, int, int, int]],
    paths: np.ndarray,
    start: datetime,
    capital0: int,
    owner_id: int,
    bot_id: int,
    fmt_time: Callable[[datetime], str],
) -> tuple[list[tuple], int, str]:
    """Equity at evenly spaced instants = cash + locked margin + unrealized PnL at that minute.

    Events are sorted by minute, so each series is a cumulative sum read at ``searchsorted``.
    Per symbol, unrealized PnL = price(t) * Q(t) - K(t) with Q the open signed quantity and K
    its cost basis: no loop over positions per snapshot.
    """
    n = profile.snapshots_per_bot
    if n == 0:
        return [], 0, "0.0000"
    minutes = paths.shape[1] - 1
    snap_minutes = np.linspace(0, minutes, n).round().astype(np.int64)
    ev_minutes = np.array([e[0] for e in events], dtype=np.int64)
    # side="left": a snapshot at minute m counts the fills of minutes < m only, all executed
    # before m:00 (a fill in minute m happens at m:ss, after the snapshot instant).
    idx = np.searchsorted(ev_minutes, snap_minutes, side="left")
    cash = capital0 + np.concatenate([[0], np.cumsum([e[2] for e in events], dtype=np.int64)])[idx]
    margin = np.concatenate([[0], np.cumsum([e[5] for e in events], dtype=np.int64)])[idx]
    # Exact integers (1e-24 units: price 1e-12 x quantity 1e-12): Python ints in object arrays,
    # since a SHIB quantity in 1e-12 units alone overflows int64.
    unrealized24 = np.zeros(n, dtype=object)
    by_symbol: dict[int, list[int]] = {}
    for i, event in enumerate(events):
        by_symbol.setdefault(event[3], []).append(i)
    for sym, indices in by_symbol.items():
        at = np.searchsorted(ev_minutes[indices], snap_minutes, side="left")
        q = np.concatenate(
            [[0], np.cumsum(np.array([events[i][4] for i in indices], dtype=object))]
        )
        k = np.concatenate(
            [[0], np.cumsum(np.array([events[i][6] for i in indices], dtype=object))]
        )
        tick = _tick_units(float(paths[sym][0]))
        prices = (
            np.rint(paths[sym][snap_minutes] * UNIT / tick).astype(np.int64).astype(object) * tick
        )
        unrealized24 += prices * q[at] - k[at]
    unrealized_units = np.array(
        [_div_half_even(int(value), 10**16) for value in unrealized24], dtype=np.int64
    )
    equity = cash + margin + unrealized_units
    # All-time peak and max drawdown, as equity_snapshot_record keeps them on the bot: exact
    # Decimals for the candidates only (float ratios within 1e-9 of the float maximum).
    peaks = np.maximum.accumulate(equity)
    positive = peaks > 0
    ratios = np.where(positive, (peaks - equity) / np.where(positive, peaks, 1), -1.0)
    candidates = np.flatnonzero(positive & (ratios >= ratios.max() - 1e-9))
    drawdowns = [Decimal(int(peaks[j] - equity[j])) * 100 / Decimal(int(peaks[j]))
                 for j in candidates]  # fmt: skip
    max_dd = min(quantize(max(drawdowns, default=Decimal(0)), 4), Decimal(100))  # as the service
    times = _fmt_times(start, snap_minutes * profile.step_minutes)
    rows = list(
        zip(
            repeat(owner_id), repeat(bot_id), times, _fmt_array(equity, 8),
            _fmt_array(cash, 8), _fmt_array(unrealized_units, 8), strict=False,
        )
    )  # fmt: skip
    return rows, int(peaks[-1]), str(max_dd)


# --- Loading ------------------------------------------------------------------------------------

POSITION_COLUMNS = (
    "id", "owner_id", "bot_id", "symbol", "side", "quantity", "closed_quantity", "leverage",
    "entry_price", "current_price", "stop_loss", "take_profit", "status", "opened_at",
    "closed_at", "margin", "realized_pnl", "fees", "liquidation_price", "close_reason",
)  # fmt: skip
TRADE_COLUMNS = (
    "owner_id", "bot_id", "position_id", "symbol", "side", "quantity", "price", "fee",
    "realized_pnl", "executed_at", "client_order_id", "reason",
)  # fmt: skip
SNAPSHOT_COLUMNS = ("owner_id", "bot_id", "taken_at", "equity", "cash", "unrealized_pnl")


def _copy_text(rows: list[tuple]) -> str:
    # None -> \N; no value we generate contains a tab, newline or backslash.
    return "".join("\t".join("\\N" if v is None else str(v) for v in row) + "\n" for row in rows)


def load_rows(table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
    """COPY on PostgreSQL (one round trip per batch); executemany elsewhere."""
    if not rows:
        return
    cols = ", ".join(columns)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            with cursor.cursor.copy(f"COPY {table} ({cols}) FROM STDIN") as copy:
                copy.write(_copy_text(rows))
        else:
            marks = ", ".join(["%s"] * len(columns))
            cursor.executemany(f"INSERT INTO {table} ({cols}) VALUES ({marks})", rows)


def _fmt_time_for_db() -> Callable[[datetime], str]:
    if connection.vendor == "postgresql":
        return lambda moment: moment.isoformat()  # aware UTC: "...+00:00" (strftime: 3x slower)
    return lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S")  # Django's SQLite format (UTC)


def _reserve_position_ids(count: int) -> int:
    """First id of ``count`` consecutive position ids nobody else will be given."""
    table = Position._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # Until this transaction ends nobody else inserts positions: the range is ours.
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
            cursor.execute("SELECT pg_get_serial_sequence(%s, 'id')", [table])
            sequence = cursor.fetchone()[0]
            cursor.execute("SELECT nextval(%s)", [sequence])
            first = cursor.fetchone()[0]
            if count > 1:
                cursor.execute("SELECT setval(%s, %s)", [sequence, first + count - 1])
            return first
        cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}")
        return cursor.fetchone()[0]


def demo_users() -> Any:
    """The users seed_demo created: marked by their e-mail domain, never by their name."""
    return get_user_model().objects.filter(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")


def real_users() -> Any:
    return get_user_model().objects.exclude(email__endswith=f"@{DEMO_EMAIL_DOMAIN}")


def reset() -> None:
    """Delete the demo users and everything they own; nothing else.

    Every trading row carries its owner, so each table is one ``DELETE ... WHERE owner_id IN``
    (children first; no ORM cascade collecting a million rows in Python). Other users' rows and
    every sequence are left alone: ids are never reused, so nobody's bookmarks or logs point at
    someone else's data afterwards.
    """
    owners = list(demo_users().values_list("id", flat=True))
    if not owners:
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            for model in SEEDED_MODELS:
                marks = ", ".join(["%s"] * len(owners))
                cursor.execute(
                    f"DELETE FROM {model._meta.db_table} WHERE owner_id IN ({marks})", owners
                )
        demo_users().delete()  # their tokens, sessions and admin log entries by cascade


def seed(
    profile: Profile,
    *,
    seed_value: int = 42,
    end: datetime | None = None,
    batch_bots: int = 50,
    progress: Callable[[int], Any] | None = None,
) -> SeedResult:
    """Create users, bots, positions, trades, snapshots and running totals for ``profile``."""
    profile.validate()
    end = (end or datetime.now(UTC)).replace(second=0, microsecond=0)
    start = end - timedelta(days=profile.days)
    np_rng = np.random.default_rng(seed_value)
    rng = random.Random(seed_value)
    names, paths = price_paths(profile, np_rng)
    fmt_time = _fmt_time_for_db()

    User = get_user_model()  # noqa: N806
    logins = usernames(profile)
    if User.objects.filter(username__in=logins, bots__isnull=False).exists():
        raise ValueError("Demo data already exists; run with --reset to start over.")
    taken = User.objects.filter(username__in=logins).exclude(
        email__endswith=f"@{DEMO_EMAIL_DOMAIN}"
    )
    if taken.exists():
        raise ValueError(
            f"Users {', '.join(sorted(u.username for u in taken))} exist and are not demo users; "
            "the demo data will not take them over."
        )
    # All or nothing: a failure part-way leaves no half-seeded bots behind.
    with transaction.atomic():
        password = make_password(DEMO_PASSWORD)  # hashed once, shared by every demo user
        existing = {u.username: u for u in User.objects.filter(username__in=logins)}
        new_users = [
            User(username=name, email=f"{name}@{DEMO_EMAIL_DOMAIN}", password=password,
                 is_staff=name == DEMO_USERNAME, is_superuser=name == DEMO_USERNAME)
            for name in logins
            if name not in existing
        ]  # fmt: skip
        User.objects.bulk_create(new_users)
        users = {u.username: u for u in User.objects.filter(username__in=logins)}

        risk = validate_risk_params({})
        bots: list[Bot] = []
        for user_index, name in enumerate(logins):
            for b in range(profile.bots_per_user):
                count = rng.randint(min(3, profile.symbols), min(6, profile.symbols))
                picked = sorted(rng.sample(range(profile.symbols), count))
                capital = rng.choice(CAPITALS)
                strategy = STRATEGIES[(user_index + b) % len(STRATEGIES)]
                bots.append(Bot(
                    owner=users[name], name=f"{strategy.replace('_', ' ').title()} #{b + 1:02d}",
                    strategy=strategy, strategy_params=validate_strategy(strategy, {}),
                    status=rng.choice(STATUSES), paper_trading=True,
                    initial_capital=capital, capital=capital, symbols=[names[i] for i in picked],
                    timeframe=rng.choice(Timeframe.values), risk_params=risk,
                ))  # fmt: skip
        Bot.objects.bulk_create(bots)
        if bots[0].pk is None:  # backends without RETURNING give no ids back
            by_key = {
                (b.owner_id, b.name): b.pk for b in Bot.objects.filter(owner__in=users.values())
            }
            for bot in bots:
                bot.pk = by_key[(bot.owner_id, bot.name)]

        per_bot = profile.open_positions + profile.closed_positions
        first_id = _reserve_position_ids(len(bots) * per_bot)
        result = SeedResult(users=len(logins), bots=len(bots), positions=0, trades=0, snapshots=0)
        capitals: list[tuple[int, str]] = []
        # Rows of a batch live in memory until its COPY: ~2M rows at most (deep100: 6 bots).
        per_batch = max(
            1,
            min(batch_bots, 2_000_000 // (profile.trades_per_bot + profile.snapshots_per_bot + 1)),
        )
        for offset in range(0, len(bots), per_batch):
            batch = bots[offset : offset + per_batch]
            positions: list[tuple] = []
            trades: list[tuple] = []
            snapshots: list[tuple] = []
            for i, bot in enumerate(batch):
                rows = generate_bot(
                    bot_id=bot.pk, owner_id=bot.owner_id, initial_capital=int(bot.initial_capital),
                    bot_symbols=[names.index(s) for s in bot.symbols], profile=profile, names=names,
                    paths=paths, start=start, first_position_id=first_id + (offset + i) * per_bot,
                    rng=rng, fmt_time=fmt_time,
                )  # fmt: skip
                positions += rows.positions
                trades += rows.trades
                snapshots += rows.snapshots
                capitals.append(
                    (
                        bot.pk,
                        _fmt(rows.capital, 8),
                        _fmt(rows.peak_equity, 8),
                        rows.max_drawdown_pct,
                    )
                )
            load_rows(Position._meta.db_table, POSITION_COLUMNS, positions)
            load_rows(Trade._meta.db_table, TRADE_COLUMNS, trades)
            load_rows(EquitySnapshot._meta.db_table, SNAPSHOT_COLUMNS, snapshots)
            result.positions += len(positions)
            result.trades += len(trades)
            result.snapshots += len(snapshots)
            if progress:
                progress(len(batch))

        _set_bot_totals(capitals)
        stats_rebuild(bot_ids=[bot.pk for bot in bots])
        _account_from_snapshots([bot.pk for bot in bots])
        owner_ids = sorted(user.pk for user in users.values())
        for offset in range(0, len(owner_ids), 5):  # statements of a few owners each: a web
            # request's statement_timeout (tests) would cancel one over 1,000 bots
            equity_rollups_rebuild(owner_ids=owner_ids[offset : offset + 5])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # VACUUM also sets the visibility map (deep pages' index-only scans need it); it
            # cannot run inside a transaction (tests), where ANALYZE alone does.
            command = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
            for model in SEEDED_MODELS:
                cursor.execute(f"{command} {model._meta.db_table}")
    return result


def _set_bot_totals(totals: list[tuple[int, str, str, str]]) -> None:
    """capital, peak_equity, max_drawdown_pct: one UPDATE ... FROM (VALUES ...) per 1,000 bots."""
    table = Bot._meta.db_table
    with connection.cursor() as cursor:
        for offset in range(0, len(totals), 1000):
            chunk = totals[offset : offset + 1000]
            if connection.vendor == "postgresql":
                values = ", ".join(["(%s, %s::numeric, %s::numeric, %s::numeric)"] * len(chunk))
                cursor.execute(
                    f"UPDATE {table} b SET capital = v.capital, peak_equity = v.peak, "
                    f"max_drawdown_pct = v.dd FROM (VALUES {values}) AS v(id, capital, peak, dd) "
                    "WHERE b.id = v.id",
                    [x for row in chunk for x in row],
                )
            else:
                cursor.executemany(
                    f"UPDATE {table} SET capital = %s, peak_equity = %s, max_drawdown_pct = %s "
                    "WHERE id = %s",
                    [(capital, peak, dd, pk) for pk, capital, peak, dd in chunk],
                )


def _account_from_snapshots(bot_ids: list[int]) -> None:
    """The summed curve per owner. Every seeded bot is snapshotted at the same instants, so a
    GROUP BY equals "each bot's latest snapshot carried forward, summed" (the services' rule)."""
    if not bot_ids:
        return
    marks = ",".join(["%s"] * len(bot_ids))
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            INSERT INTO {AccountEquitySnapshot._meta.db_table}
                (owner_id, taken_at, equity, cash, unrealized_pnl, bots)
            SELECT owner_id, taken_at, SUM(equity), SUM(cash), SUM(unrealized_pnl), COUNT(*)
            FROM {EquitySnapshot._meta.db_table} WHERE bot_id IN ({marks})
            GROUP BY owner_id, taken_at
            ORDER BY owner_id, taken_at
            """,
            bot_ids,
        )
