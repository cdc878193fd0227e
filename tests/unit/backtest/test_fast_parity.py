"""The fast path makes the event path's trades: fill for fill, on real USD/JPY data.

The event path is the live worker over the order engine, paper venue and ledger; the fast
path is whole arrays and a loop at the candles where the position can change. Both runs use
the same strategy object, costs that make every price differ from the quote (commission,
slippage), tight protective exits so stop-loss, take-profit and time-stop all fire (the fast
path's loop), and again with them out of reach (only the signals decide: the fast path walks the
chain of positions over arrays), and risk limits out of reach (the fast path does not run the
order plane's pre-trade rules).
Every catalogue strategy either has a vector rule and is checked here, or says it has none.
"""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest

from services.backtest.cache import TickCache
from services.backtest.data import MarketData
from services.backtest.fast import FastBacktest, FastSettings, NotVectorizable
from services.backtest.inprocess import BacktestSettings, InProcessBacktest
from services.backtest.trades import round_trips
from services.order.brokers.paper import PaperSettings
from services.order.risk import RiskLimits
from services.strategies.registry import catalogue, load_strategy
from services.strategies.sdk import Strategy
from tests.support.data import TRUEFX_TICKS, bar_spec

LIMITS_OFF = RiskLimits(max_order_quantity=Decimal(10**9), max_position_per_instrument=Decimal(10**9),
                        max_position_per_strategy=Decimal(10**9), max_drawdown_fraction=Decimal(1),
                        max_consecutive_losses=10**6, max_orders_per_second=Decimal(10**6),
                        max_daily_loss_fraction=Decimal(1), max_open_positions=10**6)
PAPER = PaperSettings(slippage=Decimal("0.001"), commission_rate=Decimal("0.00002"))
START, END = datetime(2013, 2, 4, tzinfo=timezone.utc), datetime(2013, 2, 7, tzinfo=timezone.utc)
CASES = {
    "ma_cross": {"fast_period": "3", "slow_period": "8", "stop_loss_pips": "3", "take_profit_pips": "4",
                 "max_hold_minutes": "7"},
    "bollinger_touch": {"stop_loss_pips": "6", "take_profit_pips": "8", "max_hold_minutes": "60"},
    # S5 candles of one-minute bars hold one tick each (four a minute): the rules still trade on them.
    "scalp_ping_5s": {"lookback": "4", "momentum_k": "1.5", "max_spread_pips": "2", "min_momentum_pips": "0.5"},
    # On real ticks (TrueFX, 35 minutes): an S5 candle of a bar file holds one tick, so no flow.
    "tick_imbalance": {"lookback": "4", "threshold": "0.3", "min_ticks": "6", "stop_loss_pips": "1",
                       "take_profit_pips": "1", "max_hold_minutes": "1"},
    # The rules whose indicators are seeded afresh in every window: their own code at every candle
    # (services/strategies/per_candle.py), tight exits so the fast path's loop meets every kind.
    "rsi_threshold": {"stop_loss_pips": "3", "take_profit_pips": "4", "max_hold_minutes": "7"},
    "m1scalper": {"stop_loss_pips": "3", "take_profit_pips": "4", "max_hold_minutes": "7"},
    "micro_adaptive_revert": {"stop_loss_pips": "3", "take_profit_pips": "4", "max_hold_minutes": "7"},
    "wick_reversal_blend": {"stop_loss_pips": "3", "take_profit_pips": "4", "max_hold_minutes": "7"},
    "macd_rsi_div": {"stop_loss_pips": "5", "take_profit_pips": "6", "max_hold_minutes": "30"},
    "session_open": {"stop_loss_pips": "5", "take_profit_pips": "6", "max_hold_minutes": "30"},
    "squeeze_pulse_break": {"stop_loss_pips": "5", "take_profit_pips": "6", "max_hold_minutes": "30"},
    "wick_reversal_pro": {"stop_loss_pips": "5", "take_profit_pips": "6", "max_hold_minutes": "30"},
    # M1 decisions reading M5 and H1 candles, handed to the book in the order they closed.
    "micro_multi": {"stop_loss_pips": "3", "take_profit_pips": "4", "max_hold_minutes": "7"},
}
#: The S5 rules are checked on one day: four times as many candles a day as M1.
#: The M5 rules, and a wick rule that trades a few times a day, over the whole month.
WINDOWS = {"scalp_ping_5s": (START, datetime(2013, 2, 5, tzinfo=timezone.utc)), "tick_imbalance": (None, None),
           **dict.fromkeys(("macd_rsi_div", "session_open", "squeeze_pulse_break", "wick_reversal_pro",
                            "wick_reversal_blend"), (None, None)),
           "micro_multi": (START, datetime(2013, 2, 11, tzinfo=timezone.utc))}
#: session_open enters once a day at most; micro_multi's three timeframes agree on a few entries a day.
MIN_TRADES = {"tick_imbalance": 10, "session_open": 16, "micro_multi": 20}


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    return MarketData(bar_spec(), "USD_JPY", cache=TickCache(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def truefx(tmp_path_factory):
    return MarketData(str(TRUEFX_TICKS), "USD_JPY", cache=TickCache(tmp_path_factory.mktemp("ticks")))


def _fills(fills):
    return [(f.time, f.side, f.quantity, f.price, f.commission) for f in fills]


#: Protective exits and the time-stop out of reach: only the signals decide, and the fast path
#: follows the chain of positions over arrays instead of its loop (the bench's case).
EXITS_OUT_OF_REACH = {"stop_loss_pips": "100000", "take_profit_pips": "100000", "max_hold_minutes": "1000000000"}


@pytest.mark.parametrize("exits", ["tight", "out of reach"])
@pytest.mark.parametrize("fill_at", ["next", "current"])
@pytest.mark.parametrize("slug", sorted(CASES))
async def test_fast_path_makes_the_event_paths_trades(month, truefx, slug, fill_at, exits, monkeypatch):
    signals_only = exits == "out of reach"
    strategy = load_strategy(slug, {**CASES[slug], **(EXITS_OUT_OF_REACH if signals_only else {})})
    if slug == "tick_imbalance":
        month = truefx
    columns = await month.columns()
    start, end = WINDOWS.get(slug, (START, END))
    event = await InProcessBacktest(strategy, BacktestSettings(limits=LIMITS_OFF, paper=PAPER, fill_at=fill_at)).run(
        month.ticks(start, end))
    assert event.rejected == []
    if signals_only and type(strategy).is_active is Strategy.is_active:
        # The chain over arrays, not the loop, must make them (a rule gated by is_active needs the loop).
        monkeypatch.setattr(FastBacktest, "_loop", None)
    fast = FastBacktest(strategy, FastSettings(paper=PAPER, fill_at=fill_at)).run(columns, start, end)
    trades, _ = round_trips(event.fills)
    assert len(trades) >= MIN_TRADES.get(slug, 30) // (2 if signals_only else 1), "a real comparison: many trades"
    assert _fills(fast.fills) == _fills(event.fills)
    assert fast.closed_trades() == (len(trades), sum((t.net_pnl for t in trades), Decimal(0)))
    assert fast.decision_bars == event.decision_bars
    # The equity curve is analytics in floats on the fast path; it follows the ledger's to the cent.
    assert [float(p.equity) for p in event.curve] == pytest.approx(list(fast.curve_equity), abs=0.01)
    assert [p.exposed for p in event.curve] == list(fast.curve_exposed)


@pytest.mark.parametrize("paper", [
    PaperSettings(), PAPER, PaperSettings(slippage=Decimal("0.0005"), commission_per_unit=Decimal("0.00001")),
    PaperSettings(commission_rate=Decimal("0.000035"), commission_per_unit=Decimal("0.01"),
                  slippage=Decimal("0.00100"))])
@pytest.mark.parametrize("units", ["10000", "1234.5", "0.001", "1E+4"])
async def test_the_closed_trades_integer_sums_give_the_decimal_ledgers_figure_and_exponent(month, paper, units):
    """closed_trades() sums prices as integers; the per-fill Decimal loop is the rule, and a sweep's CSV
    writes the Decimal as it is, so the exponent must be the loop's too."""
    from services.backtest.fast import _decimal_closed_trades

    strategy = load_strategy("ma_cross", {**CASES["ma_cross"], "units": units})
    fast = FastBacktest(strategy, FastSettings(paper=paper)).run(await month.columns(), START, END)
    count, net = fast.closed_trades()
    assert count > 30
    # The integer sums answer unless an exit order's size is written with another exponent than the units.
    assert (fast._fills_at.closed_trades() is None) == (units == "1E+4")
    loop_count, loop_net = _decimal_closed_trades(fast.raw_fills)
    assert (count, str(net)) == (loop_count, str(loop_net))
    trades, _ = round_trips(fast.fills)
    assert net == sum((t.net_pnl for t in trades), Decimal(0))


async def test_the_comparison_covers_every_exit_and_both_directions(month):
    """Guards the parity test against a vacuous equality on what can differ."""
    strategy = load_strategy("ma_cross", CASES["ma_cross"])
    event = await InProcessBacktest(strategy, BacktestSettings(limits=LIMITS_OFF, paper=PAPER)).run(
        month.ticks(START, END))
    rules = {d.reason.split(":")[0] for d in event.decisions if d.action == "exit"}
    assert {"stop_loss", "take_profit", "time_stop", "signal"} <= rules
    assert {f.side for f in event.fills} == {"buy", "sell"}


@pytest.mark.parametrize("slug", sorted(catalogue()))
def test_every_catalogue_strategy_is_parity_tested_or_says_it_runs_on_the_event_path(slug):
    strategy = load_strategy(slug, {})
    if strategy.vector_rule() is None:
        with pytest.raises(NotVectorizable, match=f"{slug} has no vector rule; it runs on the event path"):
            FastBacktest(strategy)
    else:
        assert slug in CASES


async def test_latency_moves_the_fill_the_same_way_and_a_latency_past_the_next_decision_is_declined(month):
    strategy = load_strategy("ma_cross", CASES["ma_cross"])
    late = PaperSettings(slippage=PAPER.slippage, commission_rate=PAPER.commission_rate, latency_ms=20_000)
    event = await InProcessBacktest(strategy, BacktestSettings(limits=LIMITS_OFF, paper=late)).run(
        month.ticks(START, END))
    fast = FastBacktest(strategy, FastSettings(paper=late)).run(await month.columns(), START, END)
    assert len(event.fills) > 60 and _fills(fast.fills) == _fills(event.fills)
    assert all(f.time.second == 30 for f in fast.fills[:20])  # 20 s after the deciding quote: the 30 s quote
    slow = PaperSettings(latency_ms=120_000)
    with pytest.raises(NotVectorizable, match="still be working at the next decision"):
        FastBacktest(strategy, FastSettings(paper=slow)).run(await month.columns(), START, END)
