"""The fast research backtest (`quantmesh backtest --fast`): whole arrays, a loop only where the position can change.

The event path steps every tick through the live worker, order engine and ledger. Here the
same rules are applied to columns:

1. candles of the decision timeframe are built from the tick columns with numpy, by the
   aggregator's rules (services/market_data/candles.py): buckets aligned to the epoch,
   mid = (bid + ask) / 2 per tick in floats; a candle is decided at the tick that closes it
   (the first tick of a later bucket), so the last candle, which no tick closes, never is;
2. the strategy's `vector_rule()` answers every candle at once (services/strategies/vector.py);
3. a loop visits only the candles where something can happen: an entry signal while flat;
   while a position is open, the first of its exit signal, an entry against it, its
   time-stop (searchsorted on candle ends) and its stop-loss or take-profit (a scan of the
   executable close, snapped to 1/100 pip, against exact Decimal levels: the rule of
   services/strategies/exits.py);
4. at such a candle the desks' rules apply as in the event path: the EXIT desk first (the whole
   position, reduce-only), then the ENTRY desk, which never adds to an open position in the
   same direction; `is_active` gates entries;
5. fills follow the paper venue (services/order/brokers/paper.py): a market order fills at the
   first quote later than its decision time (`fill_at="next"`) or at the deciding quote
   (`"current"`), no earlier than `latency` after it; buys at ask + slippage, sells at
   bid - slippage; commission = notional * rate + quantity * per unit; prices and money are
   exact Decimals, in the order the venue accepted the orders (exit, then entry).

What it does not do, and says so (NotVectorizable, the CLI then runs the event path):
strategies without a vector rule, partial fills (QUANTMESH_PAPER_LIQUIDITY), ticks out of
time order, a pip size whose 1/100 is not a power of ten, and an order that would still be
working at the next decision (latency longer than a candle). Pre-trade risk limits are not
checked here: research runs compare rules, and a refusal would need the order plane's whole
state. The equity curve (analytics, for the report and the sweep's objective) is in floats;
trades, PnL and commission are exact.
"""

from __future__ import annotations

from bisect import bisect_left
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import numpy as np

from services.backtest.cache import CachedTicks, micros
from services.backtest.trades import FillRecord
from services.market_data.instruments import Timeframe
from services.order.brokers.paper import PaperSettings
from services.strategies.sdk import Strategy
from services.strategies.vector import CandleColumns, NotVectorizable

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NEVER = 1 << 62
__all__ = ["DecisionCandles", "FastBacktest", "FastResult", "FastSettings", "NotVectorizable", "decision_candles"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FastSettings:
    starting_cash: Decimal = Decimal("10000000")
    fill_at: str = "next"
    paper: PaperSettings = PaperSettings()


@dataclass(frozen=True, slots=True)
class DecisionCandles:
    """The decision timeframe's candles and, per candle, the index of the tick that closed it."""

    candles: CandleColumns
    close_tick: np.ndarray
    _lists: dict = field(default_factory=dict, repr=False, compare=False)

    def as_list(self, name: str) -> list[int]:
        """close_tick or end_us as a Python list, built once for every run of a sweep on these candles."""
        if name not in self._lists:
            self._lists[name] = (self.close_tick if name == "close_tick" else self.candles.end_us).tolist()
        return self._lists[name]


@dataclass(slots=True)
class FastResult:
    # (time in µs, +1 buy / -1 sell, quantity, price, commission) per fill, in the venue's order;
    # FillRecords are built when asked for (a sweep needs only the trades' figures).
    raw_fills: list[tuple[int, int, Decimal, Decimal, Decimal]]
    strategy: str
    instrument: str
    curve_time_us: np.ndarray  # one sample per decision candle, at its end
    curve_equity: np.ndarray  # float64
    curve_exposed: np.ndarray  # bool
    ticks: int
    decision_bars: int
    _fills: list[FillRecord] | None = None

    @property
    def fills(self) -> list[FillRecord]:
        if self._fills is None:
            self._fills = [FillRecord(time=_at(us), strategy=self.strategy, instrument=self.instrument,
                                      side="buy" if direction > 0 else "sell", quantity=size, price=price,
                                      commission=commission)
                           for us, direction, size, price, commission in self.raw_fills]
        return self._fills

    def closed_trades(self) -> tuple[int, Decimal]:
        """(trades closed, their net PnL), exactly as round_trips counts and sums them.

        The desks never add to a position, so every fill opens one from flat, closes it (all
        of it, or part of it for an entry of another size against it) or flips it."""
        count, net = 0, Decimal(0)
        held, average, gross, commission = Decimal(0), Decimal(0), Decimal(0), Decimal(0)
        for _, direction, size, price, cost in self.raw_fills:
            if held == 0:
                held, average, gross, commission = (size if direction > 0 else -size), price, Decimal(0), cost
                continue
            if (direction > 0) == (held > 0):
                raise ValueError("a fast-path fill added to a position; the desks never do")
            if size == abs(held):  # the usual close: the whole fill closes the whole position
                gross += (price - average) * size * (1 if held > 0 else -1)
                count += 1
                net += gross - (commission + cost)
                held = Decimal(0)
                continue
            closing = min(size, abs(held))
            share = closing / size
            gross += (price - average) * closing * (1 if held > 0 else -1)
            commission += cost * share
            if size < abs(held):
                held += size if direction > 0 else -size
                continue
            count += 1
            net += gross - commission
            remainder = size - closing
            held = remainder if direction > 0 else -remainder
            average, gross, commission = price, Decimal(0), cost * (1 - share)
        return count, net


def decision_candles(ticks: CachedTicks, timeframe: str, first: int = 0, last: int | None = None) -> DecisionCandles:
    """Candles of `timeframe` from ticks[first:last], the way the aggregator builds them."""
    last = len(ticks) if last is None else last
    times = ticks.time_us[first:last]
    if len(times) and np.any(np.diff(times) < 0):
        raise NotVectorizable("ticks are out of time order (the aggregator drops late ticks one by one)")
    width = Timeframe[timeframe].seconds * 1_000_000
    bucket = times // width
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1]))) if len(times) else np.array([], int)
    closed = starts[:-1]  # the last bucket is never closed by a tick
    ends = starts[1:]
    scale = 10.0 ** ticks.price_scale
    tick_prices: dict = {}

    def per_tick(side: str) -> np.ndarray:
        if side not in tick_prices:
            if side == "mid":
                tick_prices[side] = (per_tick("bid") + per_tick("ask")) / 2
            else:  # correctly rounded, as float(Decimal) is
                tick_prices[side] = getattr(ticks, side)[first:last] / scale
        return tick_prices[side]

    def build(side: str, field_name: str) -> np.ndarray:
        values = per_tick(side)
        if field_name == "open":
            return values[closed]
        if field_name == "close":
            return values[ends - 1]
        if not len(starts):
            return values[:0]
        return (np.maximum if field_name == "high" else np.minimum).reduceat(values, starts)[:-1]

    start_us = bucket[closed] * width
    candles = CandleColumns(start_us=start_us, end_us=start_us + width, tick_count=ends - closed, build=build)
    return DecisionCandles(candles=candles, close_tick=ends + first)


def _quantum_decimals(pip_size: Decimal) -> int:
    quantum = (pip_size / 100).normalize()
    sign, digits, exponent = quantum.as_tuple()
    if digits != (1,):
        raise NotVectorizable(f"pip_size {pip_size}: its 1/100 is not a power of ten")
    return -exponent


def _snapped(units: np.ndarray, price_scale: int, quantum_decimals: int) -> np.ndarray:
    """Tick prices (units of 10**-price_scale) snapped to the quantum, half to even, as exits.py does."""
    if quantum_decimals >= price_scale:
        return units * 10 ** (quantum_decimals - price_scale)
    step = 10 ** (price_scale - quantum_decimals)
    quotient, remainder = np.divmod(units, step)
    up = (2 * remainder > step) | ((2 * remainder == step) & (quotient % 2 == 1))
    return quotient + up


class FastBacktest:
    def __init__(self, strategy: Strategy, settings: FastSettings = FastSettings()) -> None:
        rule = strategy.vector_rule()
        if rule is None:
            raise NotVectorizable(f"{strategy.slug} has no vector rule; it runs on the event path")
        if settings.paper.liquidity is not None:
            raise NotVectorizable("partial fills (QUANTMESH_PAPER_LIQUIDITY) need the event path")
        if strategy.params.protect_at_venue:
            raise NotVectorizable("stops held at the venue (protect_at_venue) fire tick by tick; "
                                  "they need the event path")
        if settings.fill_at not in ("next", "current"):
            raise ValueError(f"fill_at must be 'next' or 'current', got {settings.fill_at!r}")
        self.strategy = strategy
        self.rule = rule
        self.settings = settings
        self.params = strategy.params
        self.quantum_decimals = _quantum_decimals(self.params.pip_size)

    def run(self, ticks: CachedTicks, start: datetime | None = None, end: datetime | None = None, *,
            candles: dict | None = None) -> FastResult:
        """`candles`: a dict the caller keeps across runs on the same ticks (a sweep), so the
        candles of a window are built once for every parameter set."""
        first = 0 if start is None else int(np.searchsorted(ticks.time_us, micros(start), "left"))
        last = len(ticks) if end is None else int(np.searchsorted(ticks.time_us, micros(end), "left"))
        key = (self.strategy.decision_timeframe, first, last)
        market = None if candles is None else candles.get(key)
        if market is None:
            market = decision_candles(ticks, self.strategy.decision_timeframe, first, last)
            if candles is not None:
                candles[key] = market
        fills, fill_ticks = self._trade(ticks, market, last)
        return self._result(ticks, market, fills, fill_ticks, last - first)

    def _fill_tick(self, ticks: CachedTicks, decided: int, last: int) -> int:
        latency = self.settings.paper.latency_ms * 1000
        when = int(ticks.time_us[decided])
        if self.settings.fill_at == "current":
            if latency == 0:
                return decided
            return max(decided + 1, int(np.searchsorted(ticks.time_us[:last], when + latency, "left")))
        return int(np.searchsorted(ticks.time_us[:last], when + 1 + latency, "left"))

    def _trade(self, ticks: CachedTicks, market: DecisionCandles, last: int) -> tuple[list[FillRecord], list[int]]:
        p, candles, close_tick = self.params, market.candles, market.close_tick
        n = len(candles)
        if n == 0:
            return [], []
        signals = self.rule.signals(candles)
        enter = signals.enter.tolist()
        # Index lists and bisect: the loop asks "the next one after k" thousands of times.
        buys, sells = np.flatnonzero(signals.enter > 0).tolist(), np.flatnonzero(signals.enter < 0).tolist()
        exit_long = np.flatnonzero(signals.exit_long).tolist()
        exit_short = np.flatnonzero(signals.exit_short).tolist()
        entries = np.flatnonzero(signals.enter).tolist()
        closes_at, ends_us = market.as_list("close_tick"), market.as_list("end_us")
        # The executable closes (a long sells at the bid, a short buys at the ask), snapped to 1/100 pip.
        bid_q = _snapped(ticks.bid[close_tick - 1], ticks.price_scale, self.quantum_decimals)
        ask_q = _snapped(ticks.ask[close_tick - 1], ticks.price_scale, self.quantum_decimals)
        quantum = Decimal(1).scaleb(-self.quantum_decimals)
        self._extremes = {True: (int(bid_q.min()), int(bid_q.max())), False: (int(ask_q.min()), int(ask_q.max()))}
        hold_us = p.max_hold_minutes * 60_000_000
        # Exits no price or time in the data can reach are not looked for at each position.
        # A fill price and a close both lie within the data's quotes (a fill also its slippage away).
        span = Decimal(int(max(ticks.ask[:last].max(), ticks.bid[:last].max())
                           - min(ticks.ask[:last].min(), ticks.bid[:last].min()))).scaleb(-ticks.price_scale)
        guards = min(p.stop_loss_pips, p.take_profit_pips) * p.pip_size <= span + self.settings.paper.slippage
        timed = hold_us <= int(ticks.time_us[last - 1] - ticks.time_us[0]) if last else False
        fills: list[tuple] = []
        # The paper venue's market fill: a buy at the ask plus slippage, a sell at the bid minus it.
        price_of, slippage = ticks.price, self.settings.paper.slippage
        fill_ticks: list[int] = []
        quantity, average, opened_us = Decimal(0), Decimal(0), 0
        k = 0
        gated = type(self.strategy).is_active is not Strategy.is_active
        is_active = (lambda k: self.strategy.is_active(_at(ends_us[k]))) if gated else (lambda k: True)
        while k < n:
            exit_now = False
            if quantity == 0:
                i = bisect_left(entries, k)
                while i < len(entries) and not is_active(entries[i]):
                    i += 1
                if i == len(entries):
                    break
                k = entries[i]
                side = enter[k]
            else:
                long = quantity > 0
                nexts = [_next(exit_long if long else exit_short, k), _next(sells if long else buys, k),
                         bisect_left(ends_us, opened_us + hold_us) if timed else _NEVER]
                horizon = max(k, min(min(nexts), n))
                # Up to and including the horizon: a stop can fire on the candle an entry signal is on.
                hit = self._protective_hit(long, average, bid_q if long else ask_q, k, min(horizon + 1, n), quantum) \
                    if guards else _NEVER
                k = min(horizon, hit)
                if k >= n:
                    break
                exit_now = (hit == k or nexts[0] == k or nexts[2] <= k)
                side = enter[k]
                if side == (1 if long else -1) or (side and not is_active(k)):
                    side = 0  # the ENTRY desk does not add; is_active gates entries only
                if not exit_now and side == 0:
                    k += 1  # an entry signal in the position's own direction: nothing is sent
                    continue
            decided = closes_at[k]
            j = self._fill_tick(ticks, decided, last)
            if j >= last:
                break  # the data ends before the order could fill (the event path leaves it working)
            if k + 1 < n and j > closes_at[k + 1]:
                raise NotVectorizable("an order would still be working at the next decision (latency longer "
                                      "than a candle); the event path handles that")
            orders = []
            if exit_now:
                orders.append((-1 if quantity > 0 else 1, abs(quantity)))
            if side:
                orders.append((side, p.units))
            fill_us = int(ticks.time_us[j])
            for direction, size in orders:
                if direction > 0:
                    price = price_of(int(ticks.ask[j]))
                    price = price + slippage if slippage else price
                else:
                    price = price_of(int(ticks.bid[j]))
                    price = price - slippage if slippage else price
                fills.append((fill_us, direction, size, price))
                fill_ticks.append(j)
                signed = size if direction > 0 else -size
                new = quantity + signed
                if quantity == 0 or (new != 0 and (new > 0) != (quantity > 0)):
                    average, opened_us = price, fill_us
                quantity = new
            k += 1
        paper = self.settings.paper
        return [(us, direction, size, price, size * price * paper.commission_rate + size * paper.commission_per_unit)
                for us, direction, size, price in fills], fill_ticks

    def _protective_hit(self, long: bool, average: Decimal, closes_q: np.ndarray, start: int, stop: int,
                        quantum: Decimal) -> int:
        """The first candle in [start, stop) whose executable close reaches the stop-loss or take-profit;
        _NEVER when none does."""
        p = self.params
        if start >= stop:
            return _NEVER
        lowest, highest = self._extremes[long]
        if long:
            stop_level = _units(average - p.stop_loss_pips * p.pip_size, quantum, ROUND_FLOOR)
            take_level = _units(average + p.take_profit_pips * p.pip_size, quantum, ROUND_CEILING)
            if stop_level < lowest and take_level > highest:
                return _NEVER  # out of reach of every close in the data: no scan
            window = closes_q[start:stop]
            hits = np.flatnonzero((window <= stop_level) | (window >= take_level))
        else:
            stop_level = _units(average + p.stop_loss_pips * p.pip_size, quantum, ROUND_CEILING)
            take_level = _units(average - p.take_profit_pips * p.pip_size, quantum, ROUND_FLOOR)
            if stop_level > highest and take_level < lowest:
                return _NEVER
            window = closes_q[start:stop]
            hits = np.flatnonzero((window >= stop_level) | (window <= take_level))
        return start + int(hits[0]) if len(hits) else _NEVER

    def _result(self, ticks: CachedTicks, market: DecisionCandles, fills: list[tuple], fill_ticks: list[int],
                tick_count: int) -> FastResult:
        """The equity curve the event path samples at each decision: the ledger marked at the deciding quote."""
        close_tick = market.close_tick
        n = len(close_tick)
        starting = float(self.settings.starting_cash)
        # The ledger's average-cost rules over arrays (the desks never add to a position, so the
        # average is the price of the fill that last opened or flipped it).
        # Floats straight from the tick columns (analytics): converting each Decimal was a tenth of a run.
        at = np.asarray(fill_ticks, dtype=np.int64)
        direction = np.array([fill[1] for fill in fills], dtype=np.float64)
        size = np.array([fill[2] for fill in fills], dtype=np.float64) if len(fills) else direction
        paper = self.settings.paper
        quote = np.where(direction > 0, ticks.ask[at], ticks.bid[at]) / 10.0 ** ticks.price_scale
        price = quote + direction * float(paper.slippage)
        signed = direction * size
        commission = size * price * float(paper.commission_rate) + size * float(paper.commission_per_unit)
        held_after = np.cumsum(signed)
        held_before = held_after - signed
        opens = (held_before == 0) | ((held_after != 0) & (np.sign(held_after) != np.sign(held_before)))
        last_open = np.maximum.accumulate(np.where(opens, np.arange(len(fills)), 0)) if len(fills) else signed
        avg_after = price[last_open.astype(int)] if len(fills) else price
        avg_before = np.concatenate(([0.0], avg_after[:-1]))
        reduces = (held_before != 0) & (np.sign(signed) != np.sign(held_before))
        realized = np.where(reduces, (price - avg_before) * np.minimum(np.abs(signed), np.abs(held_before))
                            * np.sign(held_before), 0.0)
        balance = np.concatenate(([starting], starting + np.cumsum(realized - commission)))
        quantity = np.concatenate(([0.0], held_after))
        average = np.concatenate(([0.0], np.where(held_after != 0, avg_after, 0.0)))
        # A sample is taken after the deciding quote's fills; with fill_at="current" and no latency a
        # decision's own fills come at that same quote, after the sample.
        same_quote = self.settings.fill_at == "current" and self.settings.paper.latency_ms == 0
        after = np.searchsorted(np.asarray(fill_ticks, dtype=np.int64), close_tick, "left" if same_quote else "right")
        qty, avg_price, bal = quantity[after], average[after], balance[after]
        scale = 10.0 ** ticks.price_scale
        bid, ask = ticks.bid[close_tick] / scale, ticks.ask[close_tick] / scale
        unrealized = np.where(qty > 0, (bid - avg_price) * qty, (avg_price - ask) * -qty)
        return FastResult(raw_fills=fills, strategy=self.strategy.slug, instrument=self.params.instrument,
                          curve_time_us=market.candles.end_us, curve_equity=bal + unrealized,
                          curve_exposed=qty != 0, ticks=tick_count, decision_bars=n)


def _next(indices: list[int], k: int) -> int:
    i = bisect_left(indices, k)
    return indices[i] if i < len(indices) else _NEVER


def _units(level: Decimal, quantum: Decimal, rounding: str) -> int:
    return int((level / quantum).to_integral_value(rounding=rounding))


def _at(time_us) -> datetime:
    return _EPOCH + timedelta(microseconds=int(time_us))
