"""The position plane's settings: trading day and financing, parsed once, bad values named."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from services.common.config import ConfigError, Env
from services.common.tradingday import TradingCalendar
from services.position.config import PositionConfig


def test_defaults_and_values():
    config = PositionConfig.from_env(Env({}))
    assert (config.currency, config.trading_day, config.financing_source) == ("JPY", TradingCalendar.fx(), "rates")
    assert not config.financing_rates
    config = PositionConfig.from_env(Env({"QUANTMESH_TRADING_DAY_END": "00:00 UTC",
                                          "QUANTMESH_FINANCING_LONG_RATES": "USD_JPY=0.042,EUR_USD=-0.031",
                                          "QUANTMESH_FINANCING_SHORT_RATES": "USD_JPY=-0.051"}))
    assert str(config.trading_day) == "00:00 UTC"
    assert config.financing_rates.annual_rate("EUR_USD", D(1)) == D("-0.031")
    assert config.financing_rates.annual_rate("USD_JPY", D(-1)) == D("-0.051")
    assert config.financing_rates.annual_rate("EUR_USD", D(-1)) is None


@pytest.mark.parametrize("env, message", [
    ({"QUANTMESH_TRADING_DAY_END": "5pm"}, "QUANTMESH_TRADING_DAY_END='5pm' is not a time and a time zone"),
    ({"QUANTMESH_FINANCING_SOURCE": "oanda"}, "QUANTMESH_FINANCING_SOURCE='oanda' is not one of rates, venue"),
    ({"QUANTMESH_FINANCING_LONG_RATES": "USD_JPY"}, "QUANTMESH_FINANCING_LONG_RATES has 'USD_JPY'"),
    ({"QUANTMESH_FINANCING_SOURCE": "venue", "QUANTMESH_FINANCING_SHORT_RATES": "USD_JPY=-0.05"},
     "the venue reports financing"),
])
def test_bad_values_name_the_variable(env, message):
    with pytest.raises(ConfigError, match=message):
        PositionConfig.from_env(Env(env))
