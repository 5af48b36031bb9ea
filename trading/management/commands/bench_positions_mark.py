"""python manage.py bench_positions_mark [--sizes 1,100,1000,10000] [--symbols 20] [--repeat 7]

Time of ``services.positions_mark`` (one UPDATE for all open positions of the given symbols)
against the naive loop (one ``save()`` per position), for one bot holding N open positions over
``--symbols`` symbols. Prints, per size: statements, rows updated and the median wall time of
``--repeat`` runs. Everything runs in one transaction that is rolled back: no row is left behind.
Numbers: PERFORMANCE.md ("Marking positions").
"""

from __future__ import annotations

import statistics
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from trading import services
from trading.models import Bot, Position

SYMBOL_BASES = (
    "BTC ETH SOL BNB XRP ADA DOGE AVAX DOT LINK POL LTC TRX SHIB ATOM UNI XLM NEAR APT ARB"
)


class Command(BaseCommand):
    help = "Benchmark positions_mark (one statement) against a save() per position."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--sizes", default="1,100,1000,10000")
        parser.add_argument("--symbols", type=int, default=20)
        parser.add_argument("--repeat", type=int, default=7)
        parser.add_argument("--naive-max", type=int, default=1000, help="largest size for the loop")

    def handle(self, *args: Any, **options: Any) -> None:
        sizes = [int(size) for size in options["sizes"].split(",")]
        symbols = [f"{base}/USDT" for base in SYMBOL_BASES.split()][: options["symbols"]]
        if not symbols or min(sizes) < 1:
            raise CommandError("--sizes and --symbols must be positive.")
        self.stdout.write(
            f"positions_mark vs save() per position; {len(symbols)} symbols, median of "
            f"{options['repeat']} runs ({connection.vendor})"
        )
        self.stdout.write(f"{'positions':>10} {'statements':>11} {'rows':>7} {'mark ms':>9} "
                          f"{'loop ms':>9}")  # fmt: skip
        with transaction.atomic():
            for size in sizes:
                self._one(size, symbols, options)
            transaction.set_rollback(True)

    def _one(self, size: int, symbols: list[str], options: dict[str, Any]) -> None:
        owner = get_user_model().objects.create_user(f"bench-mark-{size}-{time.time_ns()}")
        bot = Bot.objects.create(
            owner=owner, name="bench", strategy="bench", status="active",
            initial_capital=Decimal(10**9), capital=Decimal(10**9), symbols=symbols,
        )  # fmt: skip
        opened = datetime.now(UTC)
        Position.objects.bulk_create(
            Position(
                owner=owner, bot=bot, symbol=symbols[i % len(symbols)], side="long",
                quantity=Decimal("0.5"), entry_price=Decimal("100"), current_price=Decimal("100"),
                opened_at=opened, margin=Decimal("50"),
            )
            for i in range(size)
        )  # fmt: skip
        marks, loops = [], []
        statements = rows = 0
        for run in range(options["repeat"]):
            prices = {s: Decimal("100") + Decimal(run + 1) / 7 + i for i, s in enumerate(symbols)}
            with CaptureQueriesContext(connection) as queries:
                started = time.perf_counter()
                rows = services.positions_mark(prices=prices, bot_id=bot.pk)
                marks.append(time.perf_counter() - started)
            statements = len(queries)
            if size <= options["naive_max"]:
                started = time.perf_counter()
                for position in Position.objects.filter(bot=bot, status="open"):
                    position.current_price = prices[position.symbol] + 1
                    position.save(update_fields=["current_price"])
                loops.append(time.perf_counter() - started)
        loop = f"{statistics.median(loops) * 1000:9.2f}" if loops else f"{'-':>9}"
        self.stdout.write(
            f"{size:>10} {statements:>11} {rows:>7} {statistics.median(marks) * 1000:9.2f} {loop}"
        )
