"""Paper-venue settings are parsed once, by the order plane's own config, for live, in-process
and --mesh alike: QUANTMESH_PAPER_LIQUIDITY, which the in-process backtest used to ignore, now
gives partial fills there too, and the fast path says it cannot do them."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from services.backtest.data import MarketData
from services.backtest.fast import FastBacktest, FastSettings, NotVectorizable
from services.backtest.inprocess import BacktestSettings, InProcessBacktest
from services.cli.backtest import venue_settings
from services.common.config import Env
from services.order.config import OrderConfig
from services.strategies.registry import load_strategy
from tests.support.data import bar_spec

ENV = {"QUANTMESH_PAPER_LIQUIDITY": "4000", "QUANTMESH_PAPER_SLIPPAGE": "0.002",
       "QUANTMESH_PAPER_COMMISSION_RATE": "0.00002", "QUANTMESH_PAPER_LATENCY_MS": "0",
       "QUANTMESH_RISK_MAX_CONSECUTIVE_LOSSES": "1000"}


def test_the_backtest_reads_the_venue_and_risk_settings_the_order_plane_reads():
    paper, limits = venue_settings(Env(ENV))
    plane = OrderConfig.from_env(Env(ENV))
    assert paper == plane.paper and limits == plane.risk
    assert paper.liquidity == Decimal("4000") and paper.slippage == Decimal("0.002")


async def test_liquidity_splits_fills_in_process_and_the_fast_path_declines_it():
    paper, limits = venue_settings(Env(ENV))
    strategy = load_strategy("ma_cross", {"fast_period": "3", "slow_period": "8"})
    market = MarketData(bar_spec(), "USD_JPY")
    start, end = datetime(2013, 2, 4, 9, tzinfo=timezone.utc), datetime(2013, 2, 4, 12, tzinfo=timezone.utc)
    result = await InProcessBacktest(strategy, BacktestSettings(paper=paper, limits=limits)).run(
        market.ticks(start, end))
    # A market order is IOC: 4,000 of its 10,000 fill at the first quote, the rest expires, as live.
    assert result.fills and {f.quantity for f in result.fills} == {Decimal("4000")}
    with pytest.raises(NotVectorizable, match="QUANTMESH_PAPER_LIQUIDITY"):
        FastBacktest(strategy, FastSettings(paper=paper))
