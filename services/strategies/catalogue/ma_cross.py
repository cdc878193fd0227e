"""ma_cross: fast/slow SMA crossover on M1 mid closes.

Rule, on each closed candle of the decision timeframe (M1 unless a backtest or deployment
derives it onto another one with `sdk.on_timeframe`): fast = SMA(fast_period) and slow = SMA(slow_period) of mid
closes, evaluated on the last candle and the one before it.
* buy  when fast <= slow on the previous candle and fast > slow on the last one;
* sell when fast >= slow on the previous candle and fast < slow on the last one.
Exit signal: a long closes once fast < slow (the opposite cross has happened), a short once
fast > slow. Checking the state rather than the single crossing candle means an exit worker
that missed that candle still closes the position.
Both points of the crossing are computed from candles: the factor stream carries only the
latest value, and mixing it with a recomputed previous value could invent a cross.
Ties: the averages are exact (mid closes snapped to 1/200 pip and summed as integers, see
_indicators.py), so fast == slow is a tie, never a float-noise cross: a tie is "not above"
and "not below". A cross needs strictly above (below) now; touching and turning back is none,
and a tie followed by a strict move is a cross. Reads only the last slow_period + 1 candles.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from services.strategies.catalogue._indicators import price_unit, price_units
from services.strategies.params import BaseParams, bounds, require
from services.strategies.sdk import EntrySignal, ExitSignal, MarketView, OpenPosition, Strategy
from services.strategies.vector import CandleColumns, Signals


@dataclass(frozen=True, slots=True, kw_only=True)
class MaCrossParams(BaseParams):
    fast_period: int = 10
    slow_period: int = 30
    stop_loss_pips: Decimal = Decimal("10")
    take_profit_pips: Decimal = Decimal("20")
    max_hold_minutes: int = 240
    # What the analysis plane may set while a worker runs; slow_period stays inside the 200-candle book.
    tunable = bounds(fast_period=(2, 50), slow_period=(5, 150), stop_loss_pips=(Decimal(2), Decimal(100)),
                     take_profit_pips=(Decimal(2), Decimal(200)), max_hold_minutes=(5, 1440))

    def validate(self) -> None:
        require(self.fast_period >= 1, f"param 'fast_period' must be at least 1, got {self.fast_period}")
        require(
            self.fast_period < self.slow_period,
            f"param 'fast_period' ({self.fast_period}) must be below 'slow_period' ({self.slow_period})",
        )


class MaCross(Strategy):
    slug = "ma_cross"
    Params = MaCrossParams
    timeframes = ("M1",)

    _memo: _Window | None = None

    def _sides(self, view: MarketView) -> tuple[int, int] | None:
        """sign(fast - slow) on the candle before the last and on the last, exactly; None while warming up."""
        p, memo = self.params, self._memo
        if memo is not None and memo.view is view and memo.params is p:
            return memo.sides  # the same view (both workers of a backtest decide on one): the same closes
        closes = view.closes(self.decision_timeframe)[-(p.slow_period + 1):]
        if len(closes) < p.slow_period + 1:
            return None
        # Kept for the exact closes it was computed from, so an answer never depends on what was
        # asked before: the EXIT and the ENTRY worker of a backtest share this instance and ask
        # about the same candle, and the next candle's window is this one moved on by one.
        key = closes.tobytes()
        if memo is not None and memo.params is p and memo.key == key:
            return memo.sides
        if memo is not None and memo.params is p and memo.key[_F64:] == key[:-_F64]:
            units = memo.units[1:]
            units.append(price_unit(float(closes[-1]), p.pip))
            fast_before, slow_before = memo.fast, memo.slow  # its sums ending at what is now the candle before
        else:
            units = price_units(closes, p.pip).tolist()  # Python ints: exact, and quick to sum a few
            fast_before, slow_before = sum(units[-p.fast_period - 1:-1]), sum(units[:-1])
        # The windows ending at the candle before the last, then moved on by one candle.
        fast, slow = fast_before + units[-1] - units[-p.fast_period - 1], slow_before + units[-1] - units[0]
        sides = (_side(fast_before, slow_before, p), _side(fast, slow, p))
        self._memo = _Window(p, view, key, units, fast, slow, sides)
        return sides

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        sides = self._sides(view)
        if sides is None:
            return None
        before, now = sides
        p = self.params
        if before <= 0 and now > 0:
            return self.enter("buy", f"SMA({p.fast_period}) crossed above SMA({p.slow_period}) on {self.decision_timeframe}")
        if before >= 0 and now < 0:
            return self.enter("sell", f"SMA({p.fast_period}) crossed below SMA({p.slow_period}) on {self.decision_timeframe}")
        return None

    def exit_signal(self, view: MarketView, position: OpenPosition) -> ExitSignal | None:
        sides = self._sides(view)
        if sides is None:
            return None
        now = sides[1]
        if position.side == "long" and now < 0:
            return self.close(f"fast SMA below slow SMA on {self.decision_timeframe}: the opposite cross")
        if position.side == "short" and now > 0:
            return self.close(f"fast SMA above slow SMA on {self.decision_timeframe}: the opposite cross")
        return None

    def indicators(self, view: MarketView) -> dict[str, float]:
        """The two averages on the last candle, for the decision's signal (floats: the decision itself
        compares them exactly)."""
        p = self.params
        closes = view.closes(self.decision_timeframe)
        if len(closes) < p.slow_period:
            return {}
        return {"sma_fast": float(closes[-p.fast_period:].mean()), "sma_slow": float(closes[-p.slow_period:].mean())}

    def vector_rule(self) -> "MaCrossVector":
        return MaCrossVector(self.params)


_F64 = 8  # bytes of one close in a window's key


@dataclass(slots=True)
class _Window:
    """The last window `_sides` answered: the view it was read from, its closes as bytes, their units,
    the exact sums of the fast and slow windows ending at its last candle, and the answer."""

    params: MaCrossParams
    view: MarketView
    key: bytes
    units: list[int]
    fast: int
    slow: int
    sides: tuple[int, int]


def _side(fast_sum: int, slow_sum: int, p: MaCrossParams) -> int:
    """sign(fast average - slow average), from exact sums: fast_sum / fast_n against slow_sum / slow_n."""
    difference = fast_sum * p.slow_period - slow_sum * p.fast_period
    return (difference > 0) - (difference < 0)


class MaCrossVector:
    """The same rule over every candle at once (the fast backtest)."""

    def __init__(self, params: MaCrossParams) -> None:
        self.params = params

    def signals(self, candles: CandleColumns) -> Signals:
        p = self.params
        n, fast, slow = len(candles), p.fast_period, p.slow_period
        side = np.zeros(n, dtype=np.int64)  # sign(fast - slow), from candle slow_period - 1 on (both windows full)
        if n >= slow:
            total = np.concatenate(([0], np.cumsum(price_units(candles.prices("close"), p.pip))))  # exact sums
            ends = total[slow:]
            fast_sums, slow_sums = ends - total[slow - fast:n + 1 - fast], ends - total[:n + 1 - slow]
            side[slow - 1:] = np.sign(fast_sums * slow - slow_sums * fast)
        # A decision needs slow_period + 1 candles: the sides of the last two.
        now, before = side[slow:], side[slow - 1:-1]
        enter, exit_long, exit_short = np.zeros(n, dtype=np.int8), np.zeros(n, dtype=bool), np.zeros(n, dtype=bool)
        np.less(now, 0, out=exit_long[slow:])
        np.greater(now, 0, out=exit_short[slow:])
        enter[slow:] = exit_short[slow:] & (before <= 0)
        enter[slow:] -= exit_long[slow:] & (before >= 0)
        return Signals(enter=enter, exit_long=exit_long, exit_short=exit_short)
