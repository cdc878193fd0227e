"""Candles: the incremental aggregator of the live path.

Rules (the polars batch path in batch.py follows the same ones and gives identical candles):
- a bucket is [start, start + width), start aligned to the Unix epoch (so D1 is 00:00-24:00
  UTC and H4 starts at 00:00, 04:00, ... UTC); a tick at exactly `end` opens the next bucket;
- bid and ask OHLC come from the ticks' bid and ask; mid is (bid + ask) / 2 of each tick,
  in floats, as candles are analytics;
- volume is summed exactly: the ticks' decimal volumes are added as decimals (`exact_volume`)
  and `volume` is that sum rounded once to a float. An exact sum does not depend on how the
  ticks are grouped, so the batch path, a bucket rebuilt after a restart from stored S5
  candles and the live path agree to the last bit (float sums differ at 1e-15);
- a bucket closes on the first tick past its end (`on_tick`) or when the clock passes its
  end (`close_due`), whichever comes first; an empty bucket never produces a candle;
- `closed_time` is the data time that closed it: the closing tick's time, or the `now`
  given to `close_due`. It is the newest quote a decision on the candle can have seen, so it
  comes from the data, never from the wall clock of the process;
- out-of-order ticks: a tick older than the last accepted tick of its instrument is counted
  in `late_ticks` and dropped (it would rewrite a candle that may already be closed and
  streamed); a tick with the same timestamp as the last accepted one is accepted.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Context, Decimal

from services.common.prices import Ohlc
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import TIMEFRAMES, Timeframe


@dataclass(frozen=True, slots=True)
class Candle:
    instrument: str
    timeframe: Timeframe
    start: datetime
    end: datetime
    bid: Ohlc
    ask: Ohlc
    mid: Ohlc
    tick_count: int
    volume: float  # exact_volume rounded once, for analytics
    closed: bool = True
    # Data time that closed the bucket (see the module rules); None while open, and on
    # candles stored before it was recorded.
    closed_time: datetime | None = None
    # The exact sum of the tick volumes; None on candles stored before it was recorded.
    exact_volume: Decimal | None = None


# 80 significant digits: every sum of real feed volumes is exact (the default 28 could round
# a long sum of 8-decimal crypto quantities); never trapping keeps a tick from being half-applied.
_EXACT = Context(prec=80)


def exact_volume_of(candle: Candle) -> Decimal:
    """The candle's exact volume; for one stored before it was recorded, its float's shortest decimal."""
    return candle.exact_volume if candle.exact_volume is not None else Decimal(repr(candle.volume))


class _Bucket:
    __slots__ = ("start", "end", "bo", "bh", "bl", "bc", "ao", "ah", "al", "ac", "mo", "mh", "ml", "mc",
                 "count", "volume")

    def __init__(self, start: int, width: int, bid: float, ask: float, mid: float, volume: Decimal, count: int) -> None:
        self.start, self.end = start, start + width
        self.bo = self.bh = self.bl = self.bc = bid
        self.ao = self.ah = self.al = self.ac = ask
        self.mo = self.mh = self.ml = self.mc = mid
        self.count, self.volume = count, volume

    def add(self, bid: float, ask: float, mid: float, volume: Decimal) -> None:
        if bid > self.bh:
            self.bh = bid
        elif bid < self.bl:
            self.bl = bid
        if ask > self.ah:
            self.ah = ask
        elif ask < self.al:
            self.al = ask
        if mid > self.mh:
            self.mh = mid
        elif mid < self.ml:
            self.ml = mid
        self.bc, self.ac, self.mc = bid, ask, mid
        self.count += 1
        self.volume = _EXACT.add(self.volume, volume)

    def merge(self, c: Candle) -> None:
        """Adds a finer closed candle (restoring an open bucket from stored S5 candles)."""
        self.bh, self.bl, self.bc = max(self.bh, c.bid.high), min(self.bl, c.bid.low), c.bid.close
        self.ah, self.al, self.ac = max(self.ah, c.ask.high), min(self.al, c.ask.low), c.ask.close
        self.mh, self.ml, self.mc = max(self.mh, c.mid.high), min(self.ml, c.mid.low), c.mid.close
        self.count += c.tick_count
        self.volume = _EXACT.add(self.volume, exact_volume_of(c))

    def candle(self, instrument: str, timeframe: Timeframe, closed_time: datetime | None = None) -> Candle:
        """The candle of this bucket: closed at `closed_time`, or still open when it is None."""
        return Candle(instrument, timeframe, _utc(self.start), _utc(self.end),
                      Ohlc(self.bo, self.bh, self.bl, self.bc), Ohlc(self.ao, self.ah, self.al, self.ac),
                      Ohlc(self.mo, self.mh, self.ml, self.mc), self.count, float(self.volume),
                      closed_time is not None, closed_time, self.volume)


_ZERO = Decimal(0)


def _utc(epoch_seconds: int) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, timezone.utc)


class CandleAggregator:
    """Per instrument and timeframe, the open bucket; closed candles come out in time order.

    Pure: no I/O, no clock of its own. Usable as is by a backtest:
        closed = aggregator.on_tick(tick)      # candles closed by this tick (finest timeframe first)
        closed += aggregator.close_due(now)    # candles whose end the clock has passed
    """

    def __init__(self, timeframes: Iterable[Timeframe] = TIMEFRAMES) -> None:
        self.timeframes = tuple(sorted(set(timeframes), key=lambda tf: tf.seconds))
        self._widths = tuple(tf.seconds for tf in self.timeframes)
        self._open: dict[str, list[_Bucket | None]] = {}
        self._last_time: dict[str, datetime] = {}
        self.late_ticks: dict[str, int] = {}

    def is_late(self, tick: FeedTick) -> bool:
        last = self._last_time.get(tick.instrument)
        return last is not None and tick.time < last

    def on_tick(self, tick: FeedTick) -> list[Candle]:
        return self.on_quote(tick.instrument, tick.time, float(tick.bid), float(tick.ask), tick.volume)

    def on_quote(self, instrument: str, time: datetime, bid: float, ask: float, volume: Decimal,
                 seconds: float | None = None) -> list[Candle]:
        """`on_tick` of a tick given by its parts, prices as the floats candles take (a backtest
        reading cached columns builds no FeedTick for a tick that only extends a candle); `seconds`
        is `time.timestamp()` when the caller has it already."""
        last = self._last_time.get(instrument)
        if last is not None and time < last:  # is_late, inline: this runs on every tick
            self.late_ticks[instrument] = self.late_ticks.get(instrument, 0) + 1
            return []
        self._last_time[instrument] = time
        buckets = self._open.get(instrument)
        if buckets is None:
            buckets = self._open[instrument] = [None] * len(self.timeframes)
        ts = time.timestamp() if seconds is None else seconds
        mid = (bid + ask) / 2
        closed: list[Candle] = []
        for i, width in enumerate(self._widths):
            bucket = buckets[i]
            if bucket is not None and ts < bucket.end:
                bucket.add(bid, ask, mid, volume)
                continue
            if bucket is not None:
                closed.append(bucket.candle(instrument, self.timeframes[i], time))
            buckets[i] = _Bucket(int(ts // width) * width, width, bid, ask, mid, volume, 1)
        return closed

    def close_due(self, now: datetime) -> list[Candle]:
        """Closes every open bucket whose end is at or before `now` (their closed_time is `now`)."""
        ts = now.timestamp()
        closed: list[Candle] = []
        for instrument, buckets in self._open.items():
            for i, bucket in enumerate(buckets):
                if bucket is not None and bucket.end <= ts:
                    closed.append(bucket.candle(instrument, self.timeframes[i], now))
                    buckets[i] = None
        closed.sort(key=lambda c: (c.end, c.timeframe.seconds))
        return closed

    def open_candles(self, instrument: str) -> list[Candle]:
        """The candles still being built (closed=False), finest first."""
        return [b.candle(instrument, tf)
                for tf, b in zip(self.timeframes, self._open.get(instrument, ())) if b is not None]

    def restore(self, instrument: str, finer: Iterable[Candle], closed_until: dict[Timeframe, datetime],
                last_tick_time: datetime | None) -> None:
        """Rebuilds open buckets after a restart from stored closed candles of a finer timeframe.

        `finer` are closed candles (e.g. S5) in time order; a bucket of timeframe tf is rebuilt
        only from candles starting at or after `closed_until[tf]` (the end of the last stored
        tf candle), so a stored candle is never produced twice. Ticks older than
        `last_tick_time` are then late (they were ingested before the restart).
        """
        buckets = self._open.setdefault(instrument, [None] * len(self.timeframes))
        for c in finer:
            c_start = int(c.start.timestamp())
            for i, (tf, width) in enumerate(zip(self.timeframes, self._widths)):
                if width <= c.timeframe.seconds or width % c.timeframe.seconds:
                    continue
                bound = closed_until.get(tf)
                if bound is not None and c.start < bound:
                    continue
                start = c_start // width * width
                bucket = buckets[i]
                if bucket is None or bucket.start != start:
                    # An older restored bucket is superseded: it was closed and stored already.
                    bucket = buckets[i] = _Bucket(start, width, c.bid.open, c.ask.open, c.mid.open, _ZERO, 0)
                    bucket.bh, bucket.bl = c.bid.high, c.bid.low
                    bucket.ah, bucket.al = c.ask.high, c.ask.low
                    bucket.mh, bucket.ml = c.mid.high, c.mid.low
                bucket.merge(c)
        if last_tick_time is not None:
            self._last_time[instrument] = last_tick_time
