"""The market data settings block: defaults, and bad values that name their variable."""

from __future__ import annotations

import pytest
from django.core.exceptions import ImproperlyConfigured

from zerobot.tests.test_settings import load as load_settings

VARIABLES = [
    "MARKET_DATA_PROVIDER", "EXCHANGE_ID", "EXCHANGE_TIMEOUT_MS", "SYNTHETIC_MARKET_SEED",
    "MARKET_DATA_CACHE_TTL", "INDICATOR_CACHE_TTL", "MARKET_CACHE_LOCK_TIMEOUT",
    "EXCHANGE_DEADLINE_MS", "MARKET_DATA_CLOSE_LAG", "MARKET_CACHE_BREAKER_SECONDS",
]  # fmt: skip


def load(monkeypatch: pytest.MonkeyPatch, **env: str) -> dict:
    """zerobot.settings read in a fresh namespace (see zerobot/tests/test_settings.py), with none
    of the market data variables set but ``env``."""
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return load_settings(monkeypatch, **env)


def test_defaults_are_offline_with_5_and_15_minute_ttls(monkeypatch: pytest.MonkeyPatch) -> None:
    settings = load(monkeypatch)
    assert settings["MARKET_DATA_PROVIDER"] == "synthetic"
    assert (settings["MARKET_DATA_CACHE_TTL"], settings["INDICATOR_CACHE_TTL"]) == (300, 900)
    # One request 3 s, one call 6 s: under the cache lock (10 s) and gunicorn's timeout (30 s).
    assert (settings["EXCHANGE_TIMEOUT_MS"], settings["EXCHANGE_DEADLINE_MS"]) == (3_000, 6_000)
    assert settings["MARKET_CACHE_LOCK_TIMEOUT"] == 10.0
    assert settings["MARKET_DATA_CLOSE_LAG"] == 3.0
    assert load(monkeypatch, EXCHANGE_ID="Binance")["EXCHANGE_ID"] == "binance"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("MARKET_DATA_PROVIDER", "binance"),
        ("EXCHANGE_ID", "okx; rm -rf"),
        ("EXCHANGE_TIMEOUT_MS", "10s"),
        ("EXCHANGE_TIMEOUT_MS", "0"),
        ("SYNTHETIC_MARKET_SEED", "-1"),
        ("MARKET_DATA_CACHE_TTL", "0"),
        ("MARKET_DATA_CACHE_TTL", "five minutes"),
        ("INDICATOR_CACHE_TTL", "86401"),
        ("MARKET_CACHE_LOCK_TIMEOUT", "nan"),
        ("MARKET_CACHE_LOCK_TIMEOUT", "5"),  # shorter than the exchange deadline (6 s)
        ("EXCHANGE_DEADLINE_MS", "20000"),
        ("MARKET_DATA_CLOSE_LAG", "-1"),
        ("MARKET_CACHE_BREAKER_SECONDS", "0"),
    ],
)
def test_a_bad_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    with pytest.raises(ImproperlyConfigured, match=variable):
        load(monkeypatch, **{variable: value})
