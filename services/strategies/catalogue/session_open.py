"""session_open: M5 opening-range breakout of a trading session (default: Tokyo open, 00:00 UTC).

Rule, with the session starting each day at `session_start` (UTC):
* opening range = the M5 candles inside [start, start + range_minutes); range high/low = the
  highest mid high / lowest mid low of those candles;
* the strategy is active (is_active) from the session start until start + active_minutes,
  inclusive of the end so the candle that closes exactly at the end is still decided;
* on each M5 candle that closes after the range and by the window's end:
  buy when its mid close > range high, sell when its mid close < range low, but only if no
  earlier candle of this session after the range closed outside it: the first breakout is the
  only one, so there is at most one entry per session day (stateless, so a restarted worker
  cannot enter twice).
Ties: a close exactly at the range high or low is inside it (no breakout). Reads the candles of
the current session only (warmup_bars covers a day).
Exits: protective only.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from services.strategies.params import BaseParams, check_hhmm, require
from services.strategies.per_candle import per_candle
from services.strategies.sdk import EntrySignal, MarketView, Strategy


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOpenParams(BaseParams):
    session_start: str = "00:00"
    range_minutes: int = 30
    active_minutes: int = 180
    stop_loss_pips: Decimal = Decimal("15")
    take_profit_pips: Decimal = Decimal("30")
    max_hold_minutes: int = 240
    warmup_bars: int = 300  # a full day of M5 candles back to the last session start

    def validate(self) -> None:
        check_hhmm("session_start", self.session_start)
        require(
            self.range_minutes >= 5 and self.range_minutes % 5 == 0,
            f"param 'range_minutes' must be a positive multiple of 5 (M5 candles), got {self.range_minutes}",
        )
        require(
            self.range_minutes < self.active_minutes < 24 * 60,
            f"param 'active_minutes' ({self.active_minutes}) must be above 'range_minutes' "
            f"({self.range_minutes}) and below 1440",
        )


class SessionOpen(Strategy):
    slug = "session_open"
    Params = SessionOpenParams
    timeframes = ("M5",)
    # The fast path asks this rule at every candle, on the view a live worker would hold (per_candle.py).
    vector_rule = per_candle

    def session_start(self, at: datetime) -> datetime:
        """The most recent session start at or before `at`."""
        hours, minutes = check_hhmm("session_start", self.params.session_start)
        start = at.replace(hour=hours, minute=minutes, second=0, microsecond=0)
        return start if start <= at else start - timedelta(days=1)

    def is_active(self, now: datetime) -> bool:
        return now - self.session_start(now) <= timedelta(minutes=self.params.active_minutes)

    def decide_entry(self, view: MarketView) -> EntrySignal | None:
        p = self.params
        bars = view.bars.get("M5", ())
        if not bars:
            return None
        last = bars[-1]
        start = self.session_start(last.start)
        range_end = start + timedelta(minutes=p.range_minutes)
        window_end = start + timedelta(minutes=p.active_minutes)
        if last.start < range_end or last.end > window_end:
            return None
        opening = [bar.mid for bar in bars if start <= bar.start and bar.end <= range_end]
        if not opening:
            return None
        high, low = max(c.high for c in opening), min(c.low for c in opening)
        earlier = [bar.mid.close for bar in bars[:-1] if bar.start >= range_end]
        if any(close > high or close < low for close in earlier):
            return None  # this session already broke out: one entry per session day
        close = last.mid.close
        if close > high:
            return self.enter("buy", f"M5 close {close} above the {p.range_minutes}-minute opening range high {high}")
        if close < low:
            return self.enter("sell", f"M5 close {close} below the {p.range_minutes}-minute opening range low {low}")
        return None
