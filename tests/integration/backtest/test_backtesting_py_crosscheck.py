"""quantmesh's backtest against an independent backtester: backtesting.py's own SmaCross.

Data: the hourly EURUSD bars bundled with backtesting.py (5,000 bars, 2017-04-19 to
2018-02-07). Settings that make the two comparable:

- strategy: quantmesh's ma_cross (fast 10, slow 30: SmaCross's values) derived onto H1 with
  `sdk.on_timeframe`; its protective exits (stop-loss, take-profit, time-stop) are set far
  out of reach, so only the crosses trade, as in SmaCross (`position.close(); buy()` = our
  EXIT worker closes on the opposite cross and the ENTRY worker opens the other side);
- fills: `fill_at="current"`: a market order fills at the quote that closed the decision
  candle, which for bar data is the next bar's open (backtesting.py's default,
  trade_on_close=False); no slippage, no latency; bid = ask = the bar price (spread 0);
- commission: 0.0002 of the traded value on every fill, backtesting.py's `commission=.0002`;
- risk: limits set out of reach (backtesting.py has none);
- size: SmaCross buys with 99.99 % of equity, so sizes differ; trades are compared on
  direction, entry and exit time and entry and exit price. A second run of the same
  SmaCross logic with a fixed size of 10,000 units compares PnL and commission too.
- the trade still open at the end is left out on both sides (finalize_trades=False).
"""

from __future__ import annotations

from datetime import timezone
from decimal import Decimal

import pytest
from backtesting import Backtest
from backtesting.lib import crossover
from backtesting.test import EURUSD
from backtesting.test._test import SmaCross

from services.backtest.data import ticks_from
from services.backtest.inprocess import BacktestSettings, InProcessBacktest
from services.backtest.trades import round_trips
from services.order.brokers.paper import PaperSettings
from services.order.risk import RiskLimits
from services.strategies.registry import catalogue
from services.strategies.sdk import on_timeframe

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:backtesting", "ignore::DeprecationWarning", "ignore:.*dayofweek")

COMMISSION = 0.0002
UNITS = 10_000


class SmaCrossFixedSize(SmaCross):
    """SmaCross's own rule, with a fixed size so PnL can be compared to the unit."""

    def next(self):
        if crossover(self.sma1, self.sma2):
            self.position.close()
            self.buy(size=UNITS)
        elif crossover(self.sma2, self.sma1):
            self.position.close()
            self.sell(size=UNITS)


@pytest.fixture(scope="module")
def eurusd_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("eurusd") / "EURUSD_H1.csv"
    EURUSD.rename_axis("time").reset_index().to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
async def quantmesh_trades(eurusd_csv):
    cls = on_timeframe(catalogue()["ma_cross"], "H1")
    params = cls.Params(instrument="EUR_USD", units=Decimal(UNITS), pip_size=Decimal("0.0001"), fast_period=10,
                        slow_period=30, stop_loss_pips=Decimal(10**6), take_profit_pips=Decimal(10**6),
                        max_hold_minutes=10**9, warmup_bars=40)
    settings = BacktestSettings(
        starting_cash=Decimal(100_000), fill_at="current",
        paper=PaperSettings(commission_rate=Decimal(str(COMMISSION))),
        limits=RiskLimits(max_order_quantity=Decimal(10**9), max_position_per_instrument=Decimal(10**9),
                          max_position_per_strategy=Decimal(10**9), max_drawdown_fraction=Decimal(1),
                          max_consecutive_losses=10**6, max_orders_per_second=Decimal(10**6)))
    result = await InProcessBacktest(cls(params), settings).run(ticks_from(str(eurusd_csv), "EUR_USD"))
    assert result.rejected == []
    trades, _ = round_trips(result.fills)
    return trades


def reference(strategy):
    stats = Backtest(EURUSD, strategy, cash=100_000, commission=COMMISSION, finalize_trades=False).run()
    return stats._trades


def as_utc(ts):
    return ts.to_pydatetime().replace(tzinfo=timezone.utc)


def test_same_trades_as_backtesting_py_smacross(quantmesh_trades):
    theirs = reference(SmaCross)
    assert len(theirs) > 100  # a real comparison, not two empty lists
    ours = [(t.direction, t.entry_time, round(float(t.entry_price), 5), t.exit_time, round(float(t.exit_price), 5))
            for t in quantmesh_trades]
    expected = [("long" if row.Size > 0 else "short", as_utc(row.EntryTime), round(row.EntryPrice, 5),
                 as_utc(row.ExitTime), round(row.ExitPrice, 5)) for row in theirs.itertuples()]
    assert ours == expected


def test_same_pnl_and_commission_with_a_fixed_size(quantmesh_trades):
    theirs = reference(SmaCrossFixedSize)
    assert len(theirs) == len(quantmesh_trades)
    for mine, row in zip(quantmesh_trades, theirs.itertuples()):
        assert mine.size == UNITS and abs(row.Size) == UNITS
        assert float(mine.gross_pnl - mine.commission) == pytest.approx(row.PnL, abs=1e-6)
        assert float(mine.commission) == pytest.approx(row.Commission, abs=1e-6)
