"""python manage.py equity_rollups_rebuild [--user NAME ...]

Recomputes the equity rollups (``trading.services.rollups``) of every user, or of the named ones,
from their snapshots: each user's summed-curve rollups and every one of their bots'. A repair
tool (the snapshot writers keep the rollups in their own transaction; the migration that added
them backfilled them): one transaction per user, so a long run never holds every lock at once.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from trading import dataversion, locks
from trading.services.rollups import equity_rollups_rebuild


class Command(BaseCommand):
    help = "Recompute the equity rollups of every user (or the named ones) from the snapshots."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--user", action="append", default=[], help="username (repeatable)")

    def handle(self, *args: Any, **options: Any) -> None:
        users = get_user_model().objects.order_by("pk")
        if options["user"]:
            users = users.filter(username__in=options["user"])
            missing = set(options["user"]) - set(users.values_list("username", flat=True))
            if missing:
                raise CommandError(f"No such user: {', '.join(sorted(missing))}.")
        started = time.perf_counter()
        ids = list(users.values_list("pk", flat=True))
        for owner_id in ids:
            with transaction.atomic():
                locks.lock_owner(owner_id)  # no snapshot of theirs is written meanwhile
                equity_rollups_rebuild(owner_ids=[owner_id])
                dataversion.bump_on_commit(owner_id)  # raw SQL: no post_save
        self.stdout.write(
            f"rebuilt the equity rollups of {len(ids)} user(s) in "
            f"{time.perf_counter() - started:.1f} s"
        )
