"""python manage.py refresh_market_data [--symbol BTC/USDT] [--timeframe 1h]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from marketdata import services
from marketdata.clients.base import MarketDataError
from marketdata.timeframes import Timeframe


class Command(BaseCommand):
    help = (
        "Invalidate cached market data and indicators: everything, one symbol (all its "
        "timeframes, ticker and funding rate), one timeframe, or one series."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--symbol", help="e.g. BTC/USDT")
        parser.add_argument("--timeframe", choices=Timeframe.values)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = services.market_data_refresh(
                symbol=options["symbol"], timeframe=options["timeframe"]
            )
        except MarketDataError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Refreshed {result.describe()}."))
