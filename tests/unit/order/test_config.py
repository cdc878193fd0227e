from decimal import Decimal

import pytest

from services.common.config import ConfigError, Env
from services.order.config import OrderConfig


def test_defaults_are_a_paper_venue_on_three_instruments():
    config = OrderConfig.from_env(Env({}))
    assert config.instruments == ("USD_JPY", "EUR_USD", "BTC_JPY")
    assert (config.broker, config.account, config.positions_source, config.fault) == (
        "paper", "paper", "position_plane", None)
    assert config.paper.liquidity is None and config.paper.slippage == 0 and config.server.listen.endswith(":50053")


def test_paper_settings_come_from_env():
    config = OrderConfig.from_env(Env({"QUANTMESH_PAPER_SLIPPAGE": "0.003", "QUANTMESH_PAPER_LIQUIDITY": "5000",
                                       "QUANTMESH_PAPER_COMMISSION_RATE": "0.00002",
                                       "QUANTMESH_PAPER_LATENCY_MS": "150", "QUANTMESH_INSTRUMENTS": "USD_JPY"}))
    assert (config.paper.slippage, config.paper.liquidity, config.paper.latency_ms) == (
        Decimal("0.003"), Decimal(5000), 150)
    assert config.instruments == ("USD_JPY",)


@pytest.mark.parametrize("name, value", [
    ("QUANTMESH_PAPER_SLIPPAGE", "-1"), ("QUANTMESH_PAPER_LATENCY_MS", "soon"), ("QUANTMESH_BROKER", "oanda"),
    ("QUANTMESH_INSTRUMENTS", "usdjpy"), ("QUANTMESH_FAULT", "explode"), ("QUANTMESH_POSITIONS_SOURCE", "guess"),
    ("QUANTMESH_RISK_MAX_ORDER_QUANTITY", "0"),
])
def test_a_bad_value_names_the_variable(name, value):
    with pytest.raises(ConfigError, match=name):
        OrderConfig.from_env(Env({name: value}))
