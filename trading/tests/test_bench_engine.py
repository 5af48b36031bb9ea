"""``bench_engine``'s round reports what its cycles' errors said, not only how many there were
(``manage.py bench`` writes the round into results.json and report.md)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model

from monitoring.bench import report
from trading.engine.strategies.builtin import MovingAverageCross
from trading.management.commands.bench_engine import PREFIX, ErrorTexts, _fleet, _round

pytestmark = [pytest.mark.postgres, pytest.mark.redis, pytest.mark.django_db(transaction=True)]


def test_a_round_lists_its_distinct_error_texts_with_counts(monkeypatch: Any) -> None:
    def broken(self: Any, view: Any, params: Any) -> None:
        raise ValueError("no such series")

    monkeypatch.setattr(MovingAverageCross, "decide", broken)
    # 8 bots over 2 symbols: strategies cycle sma_cross, mean_reversion, momentum, sma_cross
    # (EMAs), so bots 0, 3, 4 and 7 are sma_cross; each fails on both symbols (the text names
    # the last one: BTC/USDT then ETH/USDT for bots 0 and 4, the other way for 3 and 7).
    ids = _fleet(8, 2)
    try:
        row = _round(ids, 2)
    finally:
        get_user_model().objects.filter(username__startswith=PREFIX).delete()
    assert row["cycles"] == 8
    assert row["errors"] == 4
    assert row["error_messages"] == [
        {"message": "strategy sma_cross on BTC/USDT: ValueError('no such series')", "count": 2},
        {"message": "strategy sma_cross on ETH/USDT: ValueError('no such series')", "count": 2},
    ] or row["error_messages"] == [
        {"message": "strategy sma_cross on ETH/USDT: ValueError('no such series')", "count": 2},
        {"message": "strategy sma_cross on BTC/USDT: ValueError('no such series')", "count": 2},
    ]


class _Result:
    def __init__(self, error: str) -> None:
        self.error = error


def test_error_texts_keep_the_first_few_and_count_the_rest() -> None:
    texts = ErrorTexts(limit=2)
    for error in ["a", "", "b", "a", "c", "d", "b"]:
        texts.add(_Result(error), 0.0)
    assert texts.rows() == [
        {"message": "a", "count": 2},
        {"message": "b", "count": 2},
        {"message": "(other texts)", "count": 2},
    ]


def test_the_report_shows_the_error_texts_of_each_round() -> None:
    row = {
        "bots": 10, "cycles_per_s": 30.0, "p50_ms": 1.0, "p95_ms": 2.0, "errors": 1,
        "pool_size": 4, "pool_errors": 0, "peak_server_connections": 5, "cache_hit": 1.0,
        "error_messages": [{"message": "strategy sma_cross on BTC/USDT: IndexError('x')",
                            "count": 1}],
        "warm_up": {"cycles_per_s": 20.0, "error_messages": []},
    }  # fmt: skip
    lines = report._engine({"engine": {"concurrency": 10, "pool_max": 20, "symbols": 20,
                                       "fleets": [row], "skipped": {}}})  # fmt: skip
    text = "\n".join(lines)
    assert "10 bots, measured round: 1 x `strategy sma_cross on BTC/USDT: IndexError('x')`" in text
    assert "warm-up round:" not in text
