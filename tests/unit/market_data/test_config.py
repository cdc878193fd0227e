"""MarketDataConfig: defaults, and a sentence naming the variable for each bad value."""

from __future__ import annotations

import pytest

from services.common.config import ConfigError, Env
from services.market_data.config import MarketDataConfig
from tests.support.data import TRUEFX_TICKS


def test_defaults_are_a_realtime_synthetic_usd_jpy_feed_with_the_default_factors():
    config = MarketDataConfig.from_env(Env({}))
    assert config.feed.kind == "synthetic" and config.instruments == ("USD_JPY",)
    assert config.speed.factor == 1.0 and config.synthetic_seed == 7
    assert config.server.listen == "127.0.0.1:50051" and len(config.factors) == 9
    assert config.stream_queue == 1_000 and config.tick_window == 10_000


def test_a_replay_defaults_to_max_speed():
    path = TRUEFX_TICKS
    config = MarketDataConfig.from_env(Env({"QUANTMESH_FEED": f"replay:{path}"}))
    assert config.feed.paths == (path,) and config.speed.factor is None


def test_a_push_feed_takes_any_instruments_and_no_file():
    config = MarketDataConfig.from_env(Env({"QUANTMESH_FEED": "push", "QUANTMESH_INSTRUMENTS": "USD_JPY,XAU_USD"}))
    assert config.feed.kind == "push" and config.feed.paths == ()
    assert config.instruments == ("USD_JPY", "XAU_USD")


@pytest.mark.parametrize("env, variable", [
    ({"QUANTMESH_FEED": "kafka"}, "QUANTMESH_FEED='kafka' is not one of synthetic"),
    ({"QUANTMESH_FEED": "push:ticks.csv"}, "QUANTMESH_FEED='push:ticks.csv' is not one of .*, push"),
    ({"QUANTMESH_FEED": "replay:/nope.csv"}, "QUANTMESH_FEED='replay:/nope.csv': the tick file"),
    ({"QUANTMESH_FEED": "bars:/a.csv"}, "QUANTMESH_FEED"),
    ({"QUANTMESH_INSTRUMENTS": "XAU_USD"}, "QUANTMESH_INSTRUMENTS='XAU_USD': the synthetic feed has no model"),
    ({"QUANTMESH_REPLAY_SPEED": "warp"}, "QUANTMESH_REPLAY_SPEED"),
    ({"QUANTMESH_FACTORS": "rsi:0"}, "QUANTMESH_FACTORS"),
    ({"QUANTMESH_SYNTHETIC_SEED": "seven"}, "QUANTMESH_SYNTHETIC_SEED"),
    ({"QUANTMESH_STREAM_QUEUE": "0"}, "QUANTMESH_STREAM_QUEUE=0 is below the minimum 1"),
    ({"QUANTMESH_TICK_WINDOW": "-5"}, "QUANTMESH_TICK_WINDOW"),
    ({"QUANTMESH_SYNTHETIC_START": "monday"}, "QUANTMESH_SYNTHETIC_START"),
])
def test_bad_values_name_the_variable(env, variable):
    with pytest.raises(ConfigError, match=variable.replace("(", r"\(").replace("?", r"\?")):
        MarketDataConfig.from_env(Env(env))
