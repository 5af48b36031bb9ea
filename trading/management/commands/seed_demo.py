"""python manage.py seed_demo [--profile small|reference|large] [--reset] [--seed N] ..."""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from trading.models import Bot
from trading.seed import DEMO_PASSWORD, DEMO_USERNAME, PROFILES, real_users, reset, seed

OVERRIDES = {
    "users": "users",
    "bots_per_user": "bots per user",
    "trades_per_bot": "trades (fills) per bot",
    "open_positions": "open positions per bot",
    "closed_positions": "closed positions per bot",
    "snapshots_per_bot": "equity snapshots per bot",
    "symbols": "symbols in the universe (max 20)",
    "days": "days of history",
    "step_minutes": "minutes per step of the price grid (fills and snapshots land on it)",
}


class Command(BaseCommand):
    help = "Seed deterministic, realistic demo data (users, bots, positions, trades, equity)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--profile", choices=sorted(PROFILES), default="small")
        parser.add_argument("--seed", type=int, default=42, help="Random seed (default 42).")
        parser.add_argument(
            "--end",
            help="Last instant of the history, ISO 8601 UTC (default: now). Same --seed and "
            "--end give the same data.",
        )
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the demo users and their data first (never anyone else's).",
        )
        parser.add_argument(
            "--allow-real-users",
            action="store_true",
            help="Let --reset run on a database where users other than the demo users exist "
            "(their data is still never touched).",
        )
        parser.add_argument(
            "--if-empty", action="store_true", help="Do nothing if any bot exists (make run)."
        )
        parser.add_argument(
            "--force",
            action="store_true",
            help="Seed even with DEBUG off. The demo users include a superuser whose password "
            "is published in the README: never on a reachable server.",
        )
        for option, text in OVERRIDES.items():
            parser.add_argument(
                f"--{option.replace('_', '-')}", type=int, help=f"Override: {text}."
            )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError(
                "seed_demo creates a superuser with a published password; it runs only with "
                "DEBUG=1 (or --force, for a throwaway database)."
            )
        if options["if_empty"] and Bot.objects.exists():
            self.stdout.write("Database already has bots; not seeding (--if-empty).")
            return
        profile = PROFILES[options["profile"]]
        profile = replace(
            profile, **{k: options[k] for k in OVERRIDES if options.get(k) is not None}
        )
        try:
            profile.validate()
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        end = None
        if options["end"]:
            try:
                end = datetime.fromisoformat(options["end"])
            except ValueError:
                raise CommandError(f"--end {options['end']!r} is not an ISO 8601 time.") from None
            end = end.replace(tzinfo=UTC) if end.tzinfo is None else end.astimezone(UTC)

        if options["reset"] and not options["allow_real_users"]:
            others = real_users().count()
            if others:
                raise CommandError(
                    f"This database has {others} user(s) that seed_demo did not create: it looks "
                    "like a real one. --reset deletes only the demo users' data, but refuses to "
                    "run here unless you add --allow-real-users."
                )
        started = time.perf_counter()
        if options["reset"]:
            reset()
        bar = tqdm(total=profile.bots, unit="bot", desc=f"seed {options['profile']}",
                   disable=options["verbosity"] == 0)  # fmt: skip
        try:
            result = seed(profile, seed_value=options["seed"], end=end, progress=bar.update)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        finally:
            bar.close()
        elapsed = time.perf_counter() - started
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {result.users} users, {result.bots} bots, {result.positions:,} positions, "
                f"{result.trades:,} trades, {result.snapshots:,} equity snapshots "
                f"in {elapsed:.1f} s."
            )
        )
        self.stdout.write(
            f"Demo login: username {DEMO_USERNAME!r}, password {DEMO_PASSWORD!r} "
            "(staff: /admin/ and the API)."
        )
