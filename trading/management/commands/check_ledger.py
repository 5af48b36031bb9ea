"""python manage.py check_ledger [--bot ID]

Checks the ledger rules (``trading.ledger``) for every bot, or one: capital against the fills,
each position's fills, no duplicated fill, snapshots consistent. Prints each violation with the
bot and the difference and exits with status 1 if there is any; 0 and "ledger OK" otherwise.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from trading.ledger import check_ledger
from trading.models import Bot


class Command(BaseCommand):
    help = "Check the ledger invariants of every bot (or one); non-zero exit on any violation."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--bot", type=int, help="check only this bot id")

    def handle(self, *args: Any, **options: Any) -> None:
        bot_id = options["bot"]
        if bot_id is not None and not Bot.objects.filter(pk=bot_id).exists():
            raise CommandError(f"There is no bot {bot_id}.")
        violations = check_ledger(bot_id=bot_id)
        scope = f"bot {bot_id}" if bot_id is not None else f"{Bot.objects.count()} bot(s)"
        if violations:
            for violation in violations:
                self.stderr.write(str(violation))
            raise CommandError(f"ledger broken: {len(violations)} violation(s) in {scope}.")
        self.stdout.write(f"ledger OK: {scope}")
