"""Params parse from text, refuse unknown names and bad values with a sentence."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.strategies.catalogue.ma_cross import MaCrossParams
from services.strategies.params import StrategyConfigError, params_as_text, parse_params
from services.strategies.registry import catalogue, describe, load_strategy


def test_text_is_converted_by_field_type():
    params = parse_params(MaCrossParams, {"fast_period": "5", "units": "2500", "instrument": "EUR_USD"})
    assert params.fast_period == 5
    assert params.units == Decimal("2500")
    assert params.instrument == "EUR_USD"
    assert params.slow_period == 30  # default kept


def test_params_round_trip_through_text():
    for cls in catalogue().values():
        params = cls.Params()
        assert parse_params(cls.Params, params_as_text(params)) == params


def test_unknown_param_names_it_and_lists_known_ones():
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy("ma_cross", {"fast": "5"})
    message = str(caught.value)
    assert "unknown param 'fast' for ma_cross" in message
    assert "fast_period" in message and "slow_period" in message


def test_bad_type_names_the_param_and_the_type():
    with pytest.raises(StrategyConfigError, match=r"param 'fast_period' for ma_cross must be an integer, got 'ten'"):
        load_strategy("ma_cross", {"fast_period": "ten"})
    with pytest.raises(StrategyConfigError, match=r"param 'units' for ma_cross must be a decimal number"):
        load_strategy("ma_cross", {"units": "lots"})
    with pytest.raises(StrategyConfigError, match=r"param 'units' for ma_cross must be a decimal number"):
        load_strategy("ma_cross", {"units": "NaN"})
    with pytest.raises(StrategyConfigError, match=r"param 'threshold' for tick_imbalance must be a number"):
        load_strategy("tick_imbalance", {"threshold": "inf"})


def test_invalid_combination_is_refused_with_a_sentence():
    with pytest.raises(StrategyConfigError, match=r"'fast_period' \(30\) must be below 'slow_period' \(10\)"):
        load_strategy("ma_cross", {"fast_period": "30", "slow_period": "10"})
    with pytest.raises(StrategyConfigError, match=r"param 'units' must be positive"):
        load_strategy("ma_cross", {"units": "-1"})
    with pytest.raises(StrategyConfigError, match=r"param 'session_start' must be a UTC time of day as HH:MM"):
        load_strategy("session_open", {"session_start": "25:00"})
    with pytest.raises(StrategyConfigError, match=r"'oversold' < 'exit_level' < 'overbought'"):
        load_strategy("rsi_threshold", {"oversold": "60"})


def test_params_are_frozen():
    params = MaCrossParams()
    with pytest.raises(AttributeError):
        params.fast_period = 3  # type: ignore[misc]


def test_unknown_slug_lists_known_slugs():
    with pytest.raises(StrategyConfigError) as caught:
        load_strategy("ma_crossover", {})
    message = str(caught.value)
    assert "unknown strategy 'ma_crossover'" in message
    for slug in ("ma_cross", "rsi_threshold", "session_open", "scalp_ping_5s"):
        assert slug in message


def test_catalogue_is_complete_and_read_only():
    slugs = set(catalogue())
    assert slugs == {
        "ma_cross", "rsi_threshold", "bollinger_touch", "scalp_ping_5s", "macd_rsi_div", "tick_imbalance",
        "squeeze_pulse_break", "wick_reversal_blend", "wick_reversal_pro", "m1scalper", "micro_multi",
        "micro_adaptive_revert", "impulse_retest_s5", "session_open",
    }
    with pytest.raises(TypeError):
        catalogue()["mine"] = object  # type: ignore[index]


def test_describe_lists_every_strategy_with_defaults():
    listing = {entry["slug"]: entry for entry in describe()}
    assert len(listing) == 14
    ma = listing["ma_cross"]
    assert ma["summary"].startswith("ma_cross:")
    assert ma["timeframes"] == ["M1"]
    assert ma["params"]["fast_period"] == "10"
    assert listing["micro_multi"]["timeframes"] == ["M1", "M5", "H1"]
    for entry in listing.values():
        assert entry["summary"] and entry["params"]["stop_loss_pips"]
