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

The loop holds no money: it records, per fill, the tick, the side and whether it is an entry
order. Since the desks never add to a position, a position is always `units` (or nothing),
the fills alternate opening and closing one, and a trade is a pair of fills. The Decimal
fills are built when asked for (`fills`, `raw_fills`: the report); the closed trades' count
and exact net PnL (`closed_trades()`: a sweep) come from integer sums of the prices in units
of their last decimal, which give the per-fill Decimal loop's value and exponent whenever
that loop is exact (every coefficient within the context's 28 digits), and fall back to that
loop otherwise.

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

from services.backtest.cache import CachedTicks, micros, scaled_floats
from services.backtest.trades import FillRecord
from services.market_data.instruments import Timeframe
from services.order.brokers.paper import PaperSettings
from services.strategies.sdk import Strategy
from services.strategies.vector import CandleColumns, NotVectorizable

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_NEVER = 1 << 62
#: Decimal's default context keeps 28 digits: an operation whose exact result has more is rounded.
_EXACT = 10 ** 28
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

    @property
    def close_tick(self) -> np.ndarray:
        return self.candles.closed_tick  # decision_candles always sets it


@dataclass(frozen=True, slots=True)
class _Fills:
    """The fills of a run as the loop records them: per fill, the tick it filled at, +1 buy / -1 sell,
    and whether it is an entry order (its size is `units`) or an exit order (the whole position,
    `units` too, written as the ledger's running quantity writes it)."""

    ticks: CachedTicks
    paper: PaperSettings
    units: Decimal
    tick: np.ndarray  # int64
    side: np.ndarray  # int64, +1 / -1
    entry: np.ndarray  # bool

    def raw(self) -> list[tuple[int, int, Decimal, Decimal, Decimal]]:
        ticks, paper = self.ticks, self.paper
        price_of, slippage = ticks.price, paper.slippage
        rate, per_unit = paper.commission_rate, paper.commission_per_unit
        sizes = (abs(Decimal(0) + self.units), self.units)  # an exit order's, an entry order's
        quotes = np.where(self.side > 0, ticks.ask[self.tick], ticks.bid[self.tick]).tolist()
        fills = []
        for us, direction, entry, units in zip(ticks.time_us[self.tick].tolist(), self.side.tolist(),
                                               self.entry.tolist(), quotes):
            price = price_of(units)
            if slippage:
                price = price + slippage if direction > 0 else price - slippage
            size = sizes[entry]
            fills.append((us, direction, size, price, size * price * rate + size * per_unit))
        return fills

    def closed_trades(self) -> tuple[int, Decimal] | None:
        """(trades closed, their net PnL) from integer sums, equal in value and exponent to what the
        per-fill Decimal loop (_decimal_closed_trades) gives; None where that is not certain."""
        count = len(self.side) // 2
        if count == 0:
            return 0, Decimal(0)
        units, exponent_u = _coefficient(self.units)
        if exponent_u > 0:  # an exit order's size is then written with another exponent than an entry's
            return None
        ticks, paper = self.ticks, self.paper
        exponent_p = -ticks.price_scale
        quotes = np.where(self.side > 0, ticks.ask[self.tick], ticks.bid[self.tick])
        shift, slip = 1, 0
        if paper.slippage:  # price = quote +/- slippage, written with the finer of the two exponents
            slip, exponent_s = _coefficient(paper.slippage)
            exponent_p = min(exponent_p, exponent_s)
            shift, slip = 10 ** (-ticks.price_scale - exponent_p), slip * 10 ** (exponent_s - exponent_p)
        if (int(np.abs(quotes).max()) * shift + abs(slip)) * len(quotes) >= 1 << 62:
            return None  # the sums below would not fit in int64
        prices = quotes * shift + self.side * slip if slip else quotes
        opening, closing = prices[0:2 * count:2], prices[1:2 * count:2]
        moved = (closing - opening) * self.side[0:2 * count:2]  # per trade, in units of the price's last decimal
        gross_sum, gross_abs = int(moved.sum()), int(np.abs(moved).sum())
        price_sum, price_abs = int(opening.sum() + closing.sum()), int(np.abs(opening).sum() + np.abs(closing).sum())
        rate, exponent_r = _coefficient(paper.commission_rate)
        per_unit, exponent_c = _coefficient(paper.commission_per_unit)
        # Exponents as Decimal gives them: a product adds its operands', a sum takes the smaller.
        notional, fee, gross = exponent_u + exponent_p + exponent_r, exponent_u + exponent_c, exponent_u + exponent_p
        result = min(0, gross, notional, fee)
        net = (units * gross_sum * 10 ** (gross - result) - units * rate * price_sum * 10 ** (notional - result)
               - 2 * count * units * per_unit * 10 ** (fee - result))
        # Every intermediate of the Decimal loop is at most this many units of 10**result: all exact below 28 digits.
        largest = abs(units) * ((gross_abs + price_abs) * 10 ** (gross - result)
                                + abs(rate) * price_abs * 10 ** (notional - result)
                                + 2 * count * abs(per_unit) * 10 ** (fee - result))
        if largest >= _EXACT:
            return None
        return count, Decimal(net).scaleb(result)


@dataclass(slots=True)
class FastResult:
    strategy: str
    instrument: str
    curve_time_us: np.ndarray  # one sample per decision candle, at its end
    curve_equity: np.ndarray  # float64
    curve_exposed: np.ndarray  # bool
    ticks: int
    decision_bars: int
    _fills_at: _Fills = field(repr=False)
    _raw: list | None = field(default=None, repr=False)
    _fills: list[FillRecord] | None = field(default=None, repr=False)

    @property
    def raw_fills(self) -> list[tuple[int, int, Decimal, Decimal, Decimal]]:
        """(time in µs, +1 buy / -1 sell, quantity, price, commission) per fill, in the venue's order,
        exact Decimals; built when first asked for (a sweep needs only `closed_trades()`)."""
        if self._raw is None:
            self._raw = self._fills_at.raw()
        return self._raw

    @property
    def fills(self) -> list[FillRecord]:
        if self._fills is None:
            self._fills = [FillRecord(time=_at(us), strategy=self.strategy, instrument=self.instrument,
                                      side="buy" if direction > 0 else "sell", quantity=size, price=price,
                                      commission=commission)
                           for us, direction, size, price, commission in self.raw_fills]
        return self._fills

    def closed_trades(self) -> tuple[int, Decimal]:
        """(trades closed, their net PnL), exactly as round_trips counts and sums them."""
        exact = self._fills_at.closed_trades()
        return exact if exact is not None else _decimal_closed_trades(self.raw_fills)


def _decimal_closed_trades(raw_fills: list[tuple]) -> tuple[int, Decimal]:
    """closed_trades fill by fill in Decimals (the rule the integer sums reproduce).

    The desks never add to a position, so every fill opens one from flat, closes it (all
    of it, or part of it for an entry of another size against it) or flips it."""
    count, net = 0, Decimal(0)
    held, average, gross, commission = Decimal(0), Decimal(0), Decimal(0), Decimal(0)
    for _, direction, size, price, cost in raw_fills:
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
    if len(times) > 1 and (times[1:] < times[:-1]).any():
        raise NotVectorizable("ticks are out of time order (the aggregator drops late ticks one by one)")
    width = Timeframe[timeframe].seconds * 1_000_000
    bucket = times // width
    starts = np.flatnonzero(np.concatenate(([True], bucket[1:] != bucket[:-1]))) if len(times) else np.array([], int)
    closed = starts[:-1]  # the last bucket is never closed by a tick
    ends = starts[1:]
    scale = 10.0 ** ticks.price_scale
    mid_ticks: list[np.ndarray] = []

    def at(side: str, index: np.ndarray) -> np.ndarray:
        """The side's prices at these ticks of the window: correctly rounded, as float(Decimal) is,
        and mid = (bid + ask) / 2 of those floats (elementwise: the same floats as over every tick)."""
        if side == "mid":
            return (at("bid", index) + at("ask", index)) / 2
        return getattr(ticks, side)[first:last][index] / scale

    def build(side: str, field_name: str) -> np.ndarray:
        if field_name == "open":
            return at(side, closed)
        if field_name == "close":
            return at(side, ends - 1)
        if not len(starts):
            return np.zeros(0)
        extreme = np.maximum if field_name == "high" else np.minimum
        if side != "mid":  # dividing by the scale keeps the order: the extreme's quotient is the quotients' extreme
            return extreme.reduceat(getattr(ticks, side)[first:last], starts)[:-1] / scale
        if not mid_ticks:
            mid_ticks.append(at("mid", slice(None)))
        return extreme.reduceat(mid_ticks[0], starts)[:-1]

    start_us = bucket[closed] * width
    others: dict[str, CandleColumns] = {}

    def other(frame: str) -> CandleColumns:
        if frame not in others:
            others[frame] = decision_candles(ticks, frame, first, last).candles
        return others[frame]

    candles = CandleColumns(start_us=start_us, end_us=start_us + width, tick_count=ends - closed, build=build,
                            volumes=lambda: _volumes(ticks, first, last, starts), closed_us=times[ends],
                            closed_tick=ends + first, timeframe=other)
    return DecisionCandles(candles=candles)


def _volumes(ticks: CachedTicks, first: int, last: int, starts: np.ndarray) -> np.ndarray:
    """Each closed candle's volume as the aggregator gives it: its exact sum (of the units, as integers),
    rounded once to a float."""
    if len(starts) < 2:
        return np.zeros(0)
    return scaled_floats(np.add.reduceat(ticks.volume[first:last], starts)[:-1], ticks.volume_scale)


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


class _Guards:
    """The stop-loss and take-profit of the open position against the executable closes
    (a long sells at the bid, a short buys at the ask), snapped to 1/100 pip."""

    def __init__(self, backtest: FastBacktest, ticks: CachedTicks, close_tick: np.ndarray) -> None:
        p = backtest.params
        self.quantum = Decimal(1).scaleb(-backtest.quantum_decimals)
        self.stop, self.take = p.stop_loss_pips * p.pip_size, p.take_profit_pips * p.pip_size
        self.closes = {1: _snapped(ticks.bid[close_tick - 1], ticks.price_scale, backtest.quantum_decimals),
                       -1: _snapped(ticks.ask[close_tick - 1], ticks.price_scale, backtest.quantum_decimals)}
        self.extremes = {side: (int(closes.min()), int(closes.max())) for side, closes in self.closes.items()}
        self.levels: tuple[int, int] | None = None

    def open(self, side: int, average: Decimal) -> None:
        """A position opened at `average`: its levels in quanta, None when no close in the data reaches them."""
        lowest, highest = self.extremes[side]
        if side > 0:
            stop_level = _units(average - self.stop, self.quantum, ROUND_FLOOR)
            take_level = _units(average + self.take, self.quantum, ROUND_CEILING)
            self.levels = None if stop_level < lowest and take_level > highest else (stop_level, take_level)
        else:
            stop_level = _units(average + self.stop, self.quantum, ROUND_CEILING)
            take_level = _units(average - self.take, self.quantum, ROUND_FLOOR)
            self.levels = None if stop_level > highest and take_level < lowest else (stop_level, take_level)

    def hit(self, side: int, start: int, stop: int) -> int:
        """The first candle in [start, stop) whose executable close reaches the stop-loss or take-profit;
        _NEVER when none does."""
        if self.levels is None or start >= stop:
            return _NEVER
        stop_level, take_level = self.levels
        window = self.closes[side][start:stop]
        if side > 0:
            hits = np.flatnonzero((window <= stop_level) | (window >= take_level))
        else:
            hits = np.flatnonzero((window >= stop_level) | (window <= take_level))
        return start + int(hits[0]) if len(hits) else _NEVER


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
        fills = self._trade(ticks, market, last)
        return self._result(ticks, market, fills, last - first)

    def _fill_ticks(self, ticks: CachedTicks, decided: np.ndarray, last: int) -> np.ndarray:
        """The paper venue's rule: per order decided at tick `decided`, the index of the tick it fills at
        (`last` or beyond: the data ends first)."""
        latency = self.settings.paper.latency_ms * 1000
        times = ticks.time_us[:last]
        if self.settings.fill_at == "current":
            if latency == 0:
                return decided
            return np.maximum(decided + 1, times.searchsorted(times[decided] + latency))
        if latency == 0:  # the next tick, unless it has the same time: then the first later one is searched
            later = np.minimum(decided + 1, last - 1)
            tied = np.flatnonzero((decided + 1 < last) & (times[later] == times[decided]))
            later[decided + 1 >= last] = last
            later[tied] = times.searchsorted(times[decided[tied]] + 1)
            return later
        return times.searchsorted(times[decided] + 1 + latency)

    def _trade(self, ticks: CachedTicks, market: DecisionCandles, last: int) -> _Fills:
        """The fills: each one's tick, side and entry flag, from the candles where the position can change."""
        p, candles, close_tick = self.params, market.candles, market.close_tick
        n = len(candles)
        decided, side, entry = _decisions([], [], [])
        at = decided
        if n:
            signals = self.rule.signals(candles)
            hold_us = p.max_hold_minutes * 60_000_000
            # Exits no price or time in the data can reach are not looked for at each position.
            # A fill price and a close both lie within the data's quotes (a fill also its slippage away).
            span = Decimal(int(max(ticks.ask[:last].max(), ticks.bid[:last].max())
                               - min(ticks.ask[:last].min(), ticks.bid[:last].min()))).scaleb(-ticks.price_scale)
            reach = min(p.stop_loss_pips, p.take_profit_pips) * p.pip_size <= span + self.settings.paper.slippage
            guards = _Guards(self, ticks, close_tick) if reach else None
            timed = hold_us <= int(ticks.time_us[last - 1] - ticks.time_us[0])
            gated = type(self.strategy).is_active is not Strategy.is_active
            fill_at = self._fill_ticks(ticks, close_tick, last)
            if guards is None and not timed and not gated:
                decided, side, entry = _by_signals(signals, n)
            else:
                decided, side, entry = self._loop(ticks, market, last, signals, fill_at, guards,
                                                  hold_us if timed else None, gated)
            at = fill_at[decided]
            kept = int(np.searchsorted(at, last))  # fill ticks never go back: the data ends before the rest fill
            decided, side, entry, at = decided[:kept], side[:kept], entry[:kept], at[:kept]
            following = decided + 1 < n
            if np.any(at[following] > close_tick[decided[following] + 1]):
                raise NotVectorizable("an order would still be working at the next decision (latency longer "
                                      "than a candle); the event path handles that")
        return _Fills(ticks=ticks, paper=self.settings.paper, units=p.units, tick=at, side=side, entry=entry)

    def _loop(self, ticks: CachedTicks, market: DecisionCandles, last: int, signals, fill_at: np.ndarray,
              guards: _Guards | None, hold_us: int | None, gated: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per fill, the candle it was decided at, its side and entry flag: a loop over the candles where
        the position can change, for runs where a protective exit, a time-stop or `is_active` can decide."""
        candles = market.candles
        n = len(candles)
        enter = signals.enter
        enter_at = enter.item
        # Index lists and bisect: the loop asks "the next one at or after k" once per position.
        entries = np.flatnonzero(enter).tolist()
        # A position can end by signal at its exit signal or at an entry against it (which, alone, closes it).
        exit_at = {1: signals.exit_long.item, -1: signals.exit_short.item}
        ends = {1: np.flatnonzero(np.logical_or(signals.exit_long, enter < 0)).tolist(),
                -1: np.flatnonzero(np.logical_or(signals.exit_short, enter > 0)).tolist()}
        end_us = candles.end_us
        slippage = self.settings.paper.slippage
        filled_at, times = fill_at.item, ticks.time_us.item
        is_active = (lambda k: self.strategy.is_active(_at(end_us.item(k)))) if gated else None
        decided, sides, entries_flag = [], [], []
        held, opened_us, k = 0, 0, 0  # held: +1 long, -1 short, 0 flat (a position is always `units`)
        while k < n:
            exit_now = False
            if held == 0:
                i = bisect_left(entries, k)
                if gated:
                    while i < len(entries) and not is_active(entries[i]):
                        i += 1
                if i == len(entries):
                    break
                k = entries[i]
                side = enter_at(k)
            else:
                stops = ends[held]
                i = bisect_left(stops, k)
                horizon = stops[i] if i < len(stops) else n
                due = int(end_us.searchsorted(opened_us + hold_us)) if hold_us is not None else _NEVER
                horizon = max(k, min(horizon, due))
                # Up to and including the horizon: a stop can fire on the candle an entry signal is on.
                hit = guards.hit(held, k, min(horizon + 1, n)) if guards is not None else _NEVER
                k = min(horizon, hit)
                if k >= n:
                    break
                exit_now = hit == k or bool(exit_at[held](k)) or due <= k
                side = enter_at(k)
                if side == held or (side and gated and not is_active(k)):
                    side = 0  # the ENTRY desk does not add; is_active gates entries only
                if not exit_now and side == 0:
                    k += 1  # an entry signal in the position's own direction: nothing is sent
                    continue
            j = filled_at(k)
            if j >= last:
                break  # the data ends before the order could fill (the event path leaves it working)
            if exit_now:  # the EXIT desk's order, the whole position
                decided.append(k)
                sides.append(-held)
                entries_flag.append(False)
                held = 0
            if side:
                decided.append(k)
                sides.append(side)
                entries_flag.append(True)
                if held:  # against the position: it closes it
                    held = 0
                else:
                    held, opened_us = side, times(j)
                    if guards is not None:
                        price = ticks.price(int(ticks.ask[j] if side > 0 else ticks.bid[j]))
                        guards.open(side, (price + slippage if side > 0 else price - slippage) if slippage else price)
            k += 1
        return _decisions(decided, sides, entries_flag)

    def _result(self, ticks: CachedTicks, market: DecisionCandles, fills: _Fills, tick_count: int) -> FastResult:
        """The equity curve the event path samples at each decision: the ledger marked at the deciding quote."""
        close_tick = market.close_tick
        n = len(close_tick)
        starting = float(self.settings.starting_cash)
        # The ledger's average-cost rules over arrays (the desks never add to a position, so the
        # average is the price of the fill that last opened or flipped it).
        # Floats straight from the tick columns (analytics): converting each Decimal was a tenth of a run.
        at, count = fills.tick, len(fills.tick)
        direction = fills.side.astype(np.float64)
        size = np.full(count, float(fills.units))
        paper = self.settings.paper
        quote = np.where(direction > 0, ticks.ask[at], ticks.bid[at]) / 10.0 ** ticks.price_scale
        price = quote + direction * float(paper.slippage)
        signed = direction * size
        commission = size * price * float(paper.commission_rate) + size * float(paper.commission_per_unit)
        held_after = np.cumsum(signed)
        held_before = held_after - signed
        opens = (held_before == 0) | ((held_after != 0) & (np.sign(held_after) != np.sign(held_before)))
        last_open = np.maximum.accumulate(np.where(opens, np.arange(count), 0)) if count else signed
        avg_after = price[last_open.astype(int)] if count else price
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
        # Fills after which each candle is sampled, as runs of candles per ledger state (np.repeat: a few
        # thousand fills searched among the candles, not every candle among the fills).
        first_sampled = np.searchsorted(close_tick, at, "right" if same_quote else "left")
        runs = np.diff(np.concatenate(([0], first_sampled, [n])))
        qty, avg_price, bal = np.repeat(quantity, runs), np.repeat(average, runs), np.repeat(balance, runs)
        # A long is marked at the bid, a short at the ask: (mark - average) * quantity, which is
        # (average - ask) * -quantity for a short, float for float.
        mark = np.where(qty > 0, ticks.bid[close_tick], ticks.ask[close_tick]) / 10.0 ** ticks.price_scale
        unrealized = (mark - avg_price) * qty
        return FastResult(strategy=self.strategy.slug, instrument=self.params.instrument,
                          curve_time_us=market.candles.end_us, curve_equity=bal + unrealized,
                          curve_exposed=qty != 0, ticks=tick_count, decision_bars=n, _fills_at=fills)


def _by_signals(signals, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What _loop returns, over arrays, for runs where only the signals decide (no protective exit
    within reach, no time-stop, no is_active).

    A position then opens at an entry signal and ends at the first candle after it where its
    exit signal or an entry against it is: a flip there when both are (the next position opens
    at that candle), else flat until the next entry signal. So each opening leads to the next one
    by array lookups, and only the chain from the first is walked in Python."""
    enter = signals.enter
    opens = np.flatnonzero(enter)
    if not len(opens):
        return _decisions([], [], [])
    side = enter[opens].astype(np.int64)
    long = side > 0
    close = np.where(long, _first_after(np.flatnonzero(np.logical_or(signals.exit_long, enter < 0)), opens, n),
                     _first_after(np.flatnonzero(np.logical_or(signals.exit_short, enter > 0)), opens, n))
    closing = close < n
    at = np.minimum(close, n - 1)
    exits = np.where(long, signals.exit_long[at], signals.exit_short[at]).astype(bool) & closing
    flip = exits & (enter[at] == -side)
    following = np.where(flip, np.searchsorted(opens, close, "left"), np.searchsorted(opens, close, "right"))
    following[~closing | (following >= len(opens))] = -1
    chain, path, i = following.tolist(), [], 0
    while i >= 0:
        path.append(i)
        i = chain[i]
    path = np.array(path, dtype=np.int64)
    # Per position its opening fill (an entry order), then its closing fill: the EXIT desk's order, or an entry
    # order against it. The last position may stay open.
    decided = np.stack((opens[path], close[path]), axis=1).ravel()
    sides = np.stack((side[path], -side[path]), axis=1).ravel()
    entry = np.stack((np.ones(len(path), dtype=bool), ~exits[path]), axis=1).ravel()
    if not closing[path[-1]]:
        decided, sides, entry = decided[:-1], sides[:-1], entry[:-1]
    return decided, sides, entry


def _decisions(decided, sides, entries) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per fill: the candle it was decided at, +1 buy / -1 sell, whether it is an entry order."""
    return np.array(decided, dtype=np.int64), np.array(sides, dtype=np.int64), np.array(entries, dtype=bool)


def _first_after(indices: np.ndarray, at: np.ndarray, n: int) -> np.ndarray:
    """Per value of `at`, the first of the sorted `indices` above it; n where there is none."""
    if not len(indices):
        return np.full(len(at), n, dtype=np.int64)
    where = np.searchsorted(indices, at, "right")
    return np.where(where < len(indices), indices[np.minimum(where, len(indices) - 1)], n)


def _coefficient(value: Decimal) -> tuple[int, int]:
    """(coefficient, exponent) of a finite Decimal: value == coefficient * 10**exponent."""
    sign, digits, exponent = value.as_tuple()
    coefficient = int("".join(map(str, digits)) or "0")
    return (-coefficient if sign else coefficient), exponent


def _units(level: Decimal, quantum: Decimal, rounding: str) -> int:
    return int((level / quantum).to_integral_value(rounding=rounding))


def _at(time_us) -> datetime:
    return _EPOCH + timedelta(microseconds=int(time_us))
