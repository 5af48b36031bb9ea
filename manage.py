#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

from __future__ import annotations

import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "zerobot.settings")
    if sys.argv[1:2] != ["runserver"]:
        # Commands (seeding, rebuilds, syncs) run long statements on purpose: the web's
        # statement_timeout (settings.DB_STATEMENT_TIMEOUT_MS) is not theirs unless set.
        os.environ.setdefault("DB_STATEMENT_TIMEOUT_MS", "0")
        # A command opens the connections it uses, no idle floor (the web's DB_POOL_MIN_SIZE):
        # `manage.py check` or a cron job runs on one connection, not on a pre-filled pool.
        os.environ.setdefault("DB_POOL_MIN_SIZE", "0")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
