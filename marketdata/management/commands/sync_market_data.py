"""python manage.py sync_market_data --symbols BTC/USDT ETH/USDT --timeframes 1h 4h --since 30d"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from marketdata import services, timeframes
from marketdata.clients import get_client
from marketdata.clients.base import MarketDataError
from marketdata.management.commands._args import split_list, time_arg, timeframes_arg


class Command(BaseCommand):
    help = (
        "Fill stored candles from the configured market data client (MARKET_DATA_PROVIDER). "
        "Resumable: a series whose range start is stored continues after its newest candle."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--symbols",
            nargs="+",
            required=True,
            help="e.g. BTC/USDT ETH/USDT (or comma-separated).",
        )
        parser.add_argument("--timeframes", nargs="+", help="e.g. 1h 4h (default 1h).")
        parser.add_argument(
            "--since", default="30d", help="ISO 8601 time or relative (30d, 12h); default 30d."
        )
        parser.add_argument("--until", help="ISO 8601 time or relative (default: now).")
        parser.add_argument(
            "--page-size", type=int, default=1000, help="Candles per request and per upsert."
        )
        parser.add_argument(
            "--funding",
            action="store_true",
            help="Also store each symbol's settled funding rates since --since (its perpetual).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        symbols = split_list(options["symbols"])
        frames = timeframes_arg(options["timeframes"], ["1h"])
        now = timeframes.utcnow()
        since = time_arg(options["since"], now=now, option="--since")
        until = time_arg(options["until"], now=now, option="--until") if options["until"] else None
        if options["page_size"] < 1:
            raise CommandError("--page-size must be at least 1.")
        client = get_client()
        end = until or now
        total = sum(
            max(0, int((end - since).total_seconds()) // timeframes.timeframe_seconds(tf))
            for tf in frames
        ) * len(symbols)
        bar = tqdm(total=total, unit="candle", desc=f"sync {client.exchange_id}",
                   disable=options["verbosity"] == 0)  # fmt: skip
        results = []
        try:
            for symbol in symbols:
                for timeframe in frames:
                    bar.set_postfix_str(f"{symbol} {timeframe}")
                    results.append(
                        services.candles_sync(
                            symbol=symbol,
                            timeframe=timeframe,
                            since=since,
                            until=until,
                            client=client,
                            page_size=options["page_size"],
                            progress=bar.update,
                        )
                    )
        except MarketDataError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        if options["funding"]:
            for symbol in symbols:
                try:
                    written = services.funding_history_sync(
                        symbol=symbol, since=since, client=client
                    )
                except MarketDataError as exc:
                    raise CommandError(str(exc)) from None
                self.stdout.write(f"{symbol} funding rates: {written} written")
        for r in results:
            resumed = f", resumed after {r.resumed_from:%Y-%m-%d %H:%M}" if r.resumed_from else ""
            self.stdout.write(
                f"{r.symbol} {r.timeframe}: {r.fetched} fetched, {r.written} written "
                f"({r.start:%Y-%m-%d %H:%M} .. {r.end:%Y-%m-%d %H:%M} UTC{resumed})"
            )
