"""Pieces of ``manage.py bench`` (monitoring/management/commands/bench.py): the dedicated
benchmark database, the side-by-side comparisons, the scale series, the engine section and the
charts. Benchmark code: nothing in the product imports it."""
