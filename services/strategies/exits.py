"""Protective exits every strategy gets: stop-loss, take-profit, time-stop.

The rule, exactly:

* The quote is the last closed candle of the decision timeframe (when no timeframe is
  given: the finest timeframe present in the view, S5 before M1 before M5 ...), taken on
  the side the position would close at: a long sells, so it is checked at that candle's
  **bid close**; a short buys back, so it is checked at its **ask close**.
* Open profit in pips = (bid close - average price) / pip_size for a long,
  (average price - ask close) / pip_size for a short.
* stop_loss when open profit <= -stop_loss_pips; otherwise take_profit when open profit
  >= take_profit_pips. Both thresholds are inclusive: touching the level closes.
* Otherwise time_stop when view.now - opened_time >= max_hold_minutes (inclusive).
  The time-stop also applies when no candle is available yet.
* Candle prices (doubles) are snapped to 1/100 pip before the comparison.
* Every protective exit closes the whole position (quantity None).

Checking the executable side (not mid) means a stop never reports a loss smaller than the
one actually taken: the spread is part of the loss.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

from services.strategies import sdk

if TYPE_CHECKING:
    from services.strategies.params import BaseParams
    from services.strategies.sdk import ExitSignal, MarketView, OpenPosition

__all__ = ["open_profit_pips", "protective_exit"]


def _quote_timeframe(view: MarketView, timeframe: str | None) -> str | None:
    if timeframe is not None:
        return timeframe
    return next((tf for tf in sdk.TIMEFRAMES if view.bars.get(tf)), None)


@lru_cache(maxsize=64)
def _max_hold(minutes: int) -> timedelta:
    """Asked at every exit decision, with the same few arguments."""
    return timedelta(minutes=minutes)


def open_profit_pips(params: BaseParams, position: OpenPosition, bid_close: float, ask_close: float) -> Decimal:
    """Profit in pips if the position were closed at this candle's executable close."""
    # Candle prices are doubles; snap them to 1/100 pip so 149.89999999999998 counts as
    # 149.9 and a stop exactly at the level fires the same way every run.
    quantum = params.pip_size / 100
    if position.side == "long":
        move = Decimal(repr(bid_close)).quantize(quantum) - position.average_price
    else:
        move = position.average_price - Decimal(repr(ask_close)).quantize(quantum)
    return move / params.pip_size


def protective_exit(
    params: BaseParams,
    view: MarketView,
    position: OpenPosition,
    *,
    timeframe: str | None = None,
) -> ExitSignal | None:
    """Stop-loss, then take-profit, then time-stop, per the module docstring; else None."""
    if position.quantity == 0:
        return None
    tf = _quote_timeframe(view, timeframe)
    bar = view.last(tf) if tf is not None else None
    # Held at the venue, the stop-loss and take-profit are the venue's to fire: never both.
    if bar is not None and not params.protect_at_venue:
        profit = open_profit_pips(params, position, bar.bid.close, bar.ask.close)
        closes_at = "bid" if position.side == "long" else "ask"
        if profit <= -params.stop_loss_pips:
            return sdk.ExitSignal(
                rule="stop_loss",
                reason=f"{position.side} down {-profit:.1f} pips at {closes_at} {tf} close; "
                f"stop-loss is {params.stop_loss_pips} pips",
            )
        if profit >= params.take_profit_pips:
            return sdk.ExitSignal(
                rule="take_profit",
                reason=f"{position.side} up {profit:.1f} pips at {closes_at} {tf} close; "
                f"take-profit is {params.take_profit_pips} pips",
            )
    held = view.now - position.opened_time
    if held >= _max_hold(params.max_hold_minutes):
        return sdk.ExitSignal(
            rule="time_stop",
            reason=f"held {held.total_seconds() / 60:.0f} minutes; time-stop is {params.max_hold_minutes} minutes",
        )
    return None
