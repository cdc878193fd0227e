"""The other engines bench/backtest_throughput.py measures, each running the SMA 10/30 cross on
the same mid-price M1 bars (always in the market: a cross closes one side and opens the other).

Each returns (seconds, trades). Timings cover the backtest itself, not the import or the
conversion of the bars into the engine's own format (vectorbt: the best of `repeats` calls after
a first one in which numba compiled its kernels, the way the fast path is timed: that first
call is reported apart).
"""

from __future__ import annotations

import time
import warnings

import pandas as pd

UNITS = 10_000


def backtesting_py(frame: pd.DataFrame) -> tuple[float, int]:
    from backtesting import Backtest
    from backtesting.test._test import SmaCross

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = time.perf_counter()
        stats = Backtest(frame, SmaCross, cash=10_000_000, finalize_trades=False).run()
        return time.perf_counter() - began, len(stats._trades)


def backtesting_py_optimize(frame: pd.DataFrame, fast: range, slow: range) -> tuple[float, int]:
    """Backtest.optimize over the grid (its own multiprocessing on); returns (seconds, runs)."""
    from backtesting import Backtest
    from backtesting.test._test import SmaCross

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        began = time.perf_counter()
        _, heatmap = Backtest(frame, SmaCross, cash=10_000_000, finalize_trades=False).optimize(
            fast=fast, slow=slow, constraint=lambda p: p.fast < p.slow, maximize="Equity Final [$]",
            return_heatmap=True)
        return time.perf_counter() - began, len(heatmap)


def backtrader(frame: pd.DataFrame) -> tuple[float, int]:
    import backtrader as bt

    class SmaCross(bt.Strategy):
        def __init__(self):
            self.cross = bt.ind.CrossOver(bt.ind.SMA(period=10), bt.ind.SMA(period=30))
            self.trades = 0

        def notify_trade(self, trade):
            self.trades += trade.isclosed

        def next(self):
            if self.cross > 0:
                self.close()
                self.buy(size=UNITS)
            elif self.cross < 0:
                self.close()
                self.sell(size=UNITS)

    cerebro = bt.Cerebro(stdstats=False)
    cerebro.adddata(bt.feeds.PandasData(dataname=frame))
    cerebro.addstrategy(SmaCross)
    cerebro.broker.setcash(10_000_000)
    began = time.perf_counter()
    strategy = cerebro.run()[0]
    return time.perf_counter() - began, strategy.trades


def vectorbt(frame: pd.DataFrame, repeats: int = 7) -> tuple[list[float], int, float]:
    """(seconds of each of `repeats` calls after the first, trades, first-call seconds including numba's compile)."""
    import vectorbt as vbt

    def once() -> int:
        close = frame["Close"]
        fast, slow = vbt.MA.run(close, 10), vbt.MA.run(close, 30)
        up, down = fast.ma_crossed_above(slow), fast.ma_crossed_below(slow)
        portfolio = vbt.Portfolio.from_signals(close, entries=up, exits=down, short_entries=down, short_exits=up,
                                               size=UNITS, price=frame["Open"].shift(-1).ffill(), init_cash=10_000_000,
                                               freq="1min")
        return int(portfolio.trades.closed.count())

    began = time.perf_counter()
    once()
    first = time.perf_counter() - began
    times, trades = [], 0
    for _ in range(repeats):
        began = time.perf_counter()
        trades = once()
        times.append(time.perf_counter() - began)
    return times, trades, first


def nautilus(frame: pd.DataFrame) -> tuple[float, int]:
    """NautilusTrader's BacktestEngine with its SimpleMovingAverage indicators, fills on the bars."""
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig, StrategyConfig
    from nautilus_trader.indicators import SimpleMovingAverage
    from nautilus_trader.model.currencies import JPY
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType, OrderSide
    from nautilus_trader.model.identifiers import Venue
    from nautilus_trader.model.objects import Money, Quantity
    from nautilus_trader.persistence.wranglers import BarDataWrangler
    from nautilus_trader.test_kit.providers import TestInstrumentProvider
    from nautilus_trader.trading.strategy import Strategy

    class CrossConfig(StrategyConfig, frozen=True):
        bar_type: str

    class SmaCross(Strategy):
        def __init__(self, config: CrossConfig) -> None:
            super().__init__(config)
            self.bar_type = BarType.from_str(config.bar_type)
            self.fast, self.slow = SimpleMovingAverage(10), SimpleMovingAverage(30)
            self.before = 0

        def on_start(self) -> None:
            self.instrument = self.cache.instrument(self.bar_type.instrument_id)
            self.register_indicator_for_bars(self.bar_type, self.fast)
            self.register_indicator_for_bars(self.bar_type, self.slow)
            self.subscribe_bars(self.bar_type)

        def on_bar(self, bar: Bar) -> None:
            if not self.slow.initialized:
                return
            now = (self.fast.value > self.slow.value) - (self.fast.value < self.slow.value)
            if self.before <= 0 < now or self.before >= 0 > now:
                self.close_all_positions(self.bar_type.instrument_id)
                side = OrderSide.BUY if now > 0 else OrderSide.SELL
                self.submit_order(self.order_factory.market(self.bar_type.instrument_id, side,
                                                            Quantity.from_int(UNITS)))
            self.before = now

    instrument = TestInstrumentProvider.default_fx_ccy("USD/JPY")
    engine = BacktestEngine(BacktestEngineConfig(logging=LoggingConfig(log_level="ERROR")))
    engine.add_venue(venue=Venue("SIM"), oms_type=OmsType.HEDGING, account_type=AccountType.MARGIN,
                     base_currency=JPY, starting_balances=[Money(10_000_000_000, JPY)])
    engine.add_instrument(instrument)
    bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-MID-EXTERNAL")
    bars = BarDataWrangler(bar_type, instrument).process(
        frame.rename(columns=str.lower).assign(volume=1_000_000).tz_localize("UTC"))
    engine.add_data(bars)
    engine.add_strategy(SmaCross(CrossConfig(bar_type=str(bar_type))))
    began = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - began
    positions = engine.cache.positions_closed()
    engine.dispose()
    return seconds, len(positions)
