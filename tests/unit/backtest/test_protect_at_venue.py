"""protect_at_venue: the entry carries its stop-loss and take-profit distances, the order plane
rests them at the (paper) venue once the entry fills, and the venue closes the position at the
first quote that crosses, tick by tick, between decision candles; the EXIT worker leaves those
two exits alone. Prices worked by hand."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal as D

import pytest

from services.backtest.fast import FastBacktest, NotVectorizable
from services.backtest.inprocess import BacktestSettings, InProcessBacktest
from services.market_data.feeds.base import FeedTick
from services.strategies.params import BaseParams
from services.strategies.registry import load_strategy
from services.strategies.sdk import EntrySignal, Strategy

T0 = datetime(2024, 1, 9, 9, 0, tzinfo=timezone.utc)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Params(BaseParams):
    instrument: str = "EUR_USD"
    pip_size: D = D("0.0001")
    stop_loss_pips: D = D(10)
    take_profit_pips: D = D(20)
    max_hold_minutes: int = 10**6
    warmup_bars: int = 1


class BuyOnce(Strategy):
    """Buys 10,000 at the first decision; never exits by itself."""

    slug = "buy_once"
    Params = _Params
    timeframes = ("M1",)

    def decide_entry(self, view):
        return EntrySignal(side="buy", quantity=D(10000), reason="test")

    def exit_signal(self, view, position):
        return None


def tick(seconds: int, bid: str, ask: str) -> FeedTick:
    return FeedTick(instrument="EUR_USD", time=T0 + timedelta(seconds=seconds), bid=D(bid), ask=D(ask))


async def ticks(items):
    for item in items:
        yield item


def _run(protect: bool, items):
    return InProcessBacktest(BuyOnce(_Params(protect_at_venue=protect)), BacktestSettings()).run(ticks(items))


# Decision at 09:01 buys; it fills at the ask 1.0852 -> stop at 1.0842, take-profit at 1.0872 (the bid).
BASE = [tick(0, "1.0850", "1.0852"), tick(60, "1.0850", "1.0852"), tick(70, "1.0850", "1.0852")]


async def test_the_venue_stop_closes_between_decisions_at_the_crossing_quote():
    # 09:01:20 the bid falls through 1.0842: the resting stop fills there, 40 s before the next candle closes.
    result = await _run(True, [*BASE, tick(80, "1.0845", "1.0847"), tick(100, "1.0840", "1.0842"),
                               tick(110, "1.0830", "1.0832"), tick(180, "1.0830", "1.0832")])
    assert [(f.side, f.price, f.time) for f in result.fills] == [
        ("buy", D("1.0852"), T0 + timedelta(seconds=70)), ("sell", D("1.0840"), T0 + timedelta(seconds=100))]
    assert result.account.realized_pnl == D("-12.0000")  # (1.0840 - 1.0852) x 10,000


async def test_the_take_profit_fills_and_the_stop_is_canceled_with_it():
    result = await _run(True, [*BASE, tick(90, "1.0875", "1.0877"), tick(100, "1.0830", "1.0832"),
                               tick(180, "1.0830", "1.0832")])
    # One close only: the stop does not fire at 1.0830 after the take-profit closed the position.
    assert [(f.side, f.price) for f in result.fills] == [("buy", D("1.0852")), ("sell", D("1.0872"))]


async def test_without_it_the_exit_worker_checks_the_stop_at_the_candle_close():
    # The same quotes: the bid is back above the stop when the 09:01 candle closes, so nothing closes.
    quotes = [*BASE, tick(100, "1.0840", "1.0842"), tick(110, "1.0849", "1.0851"), tick(180, "1.0849", "1.0851")]
    unprotected = await _run(False, quotes)
    assert [f.side for f in unprotected.fills] == ["buy"]
    protected = await _run(True, quotes)
    assert [(f.side, f.price) for f in protected.fills] == [("buy", D("1.0852")), ("sell", D("1.0840"))]


def test_the_fast_path_sends_it_to_the_event_path():
    with pytest.raises(NotVectorizable, match="protect_at_venue"):
        FastBacktest(load_strategy("ma_cross", {"protect_at_venue": "true"}))
    assert FastBacktest(load_strategy("ma_cross", {})).strategy.slug == "ma_cross"  # it has a vector rule


async def test_a_trailing_stop_follows_the_bid_up_and_closes_when_it_falls_back_by_the_distance():
    # Stop-loss 10 pips below the fill (1.0842), take-profit 20 above (1.0872), trailing 5 pips:
    # its first trigger is 1.0852 - 0.0005 = 1.0847; the bid climbs to 1.0866 (trigger 1.0861),
    # then falls to 1.0860: the trailing stop sells there, well above the fixed stop-loss.
    params = _Params(protect_at_venue=True, trailing_stop_pips=D(5))
    quotes = [*BASE, tick(80, "1.0858", "1.0860"), tick(90, "1.0866", "1.0868"), tick(100, "1.0862", "1.0864"),
              tick(110, "1.0860", "1.0862"), tick(115, "1.0830", "1.0832"), tick(180, "1.0830", "1.0832")]
    result = await InProcessBacktest(BuyOnce(params), BacktestSettings()).run(ticks(quotes))
    assert [(f.side, f.price, f.time) for f in result.fills] == [
        ("buy", D("1.0852"), T0 + timedelta(seconds=70)), ("sell", D("1.0860"), T0 + timedelta(seconds=110))]
    assert result.account.realized_pnl == D("8.0000")  # (1.0860 - 1.0852) x 10,000; one close, never two


async def test_a_trailing_stop_that_never_moves_fires_at_its_first_trigger():
    params = _Params(protect_at_venue=True, trailing_stop_pips=D(5))
    quotes = [*BASE, tick(80, "1.0849", "1.0851"), tick(90, "1.0847", "1.0849"), tick(180, "1.0830", "1.0832")]
    result = await InProcessBacktest(BuyOnce(params), BacktestSettings()).run(ticks(quotes))
    assert [(f.side, f.price) for f in result.fills] == [("buy", D("1.0852")), ("sell", D("1.0847"))]


def test_a_trailing_stop_needs_the_venue_to_hold_it():
    from services.strategies.params import StrategyConfigError
    with pytest.raises(StrategyConfigError, match="protect_at_venue=true"):
        _Params(trailing_stop_pips=D(5))
