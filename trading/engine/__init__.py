"""The bot engine: strategies (``strategies/``), one bot cycle (``cycle.py``), lease scheduling in
PostgreSQL (``schedule.py``), the threaded runner behind ``manage.py run_bots`` (``runner.py``) and
the Celery tasks (``tasks.py``). README, "How a bot trades", describes it end to end."""
