"""The in-process backtest (the event path): one event loop, a simulated clock, the live code.

The strategy's ENTRY and EXIT workers are the live `StrategyWorker`, unchanged, over
in-process ports instead of gRPC ones: candles straight from the aggregator, positions from
the position ledger, intents into the order engine (`build_engine` with a memory store, the
paper venue with a memory book). An intent takes the live path there too: the worker's draft
becomes the wire `OrderIntent` (services/strategies/desk.py `intent_message`) and the order
plane's own `validate_intent` turns it into the engine's Intent, so time in force, note and
decision time are what the live order plane would see.

Per tick, in this order (the same order the live mesh sees events in):
1. the clock moves to the tick's time;
2. the paper venue sees the quote: orders waiting for it fill, and the fills go through
   the order engine into the position ledger, exactly as WatchFills feeds the position plane;
3. the candle aggregator takes the tick; each candle it closes goes to the factor engine
   (only for the factors the strategy reads) and to both workers' candle books;
4. when a candle of the strategy's decision timeframe closes, the position ledger is
   marked at this quote, an equity sample is taken, and the EXIT worker and then the ENTRY
   worker decide; their intents go to the order engine (guard, risk, write-ahead, venue).

Market orders fill at the next quote after the decision (`fill_at="next"`, like the live
paper venue), or at the quote that closed the decision candle (`fill_at="current"`: with
bar data that is the next bar's open, which is what backtesting.py does).

Money follows the position plane's rules (services/position/currency.py): the ledger keeps
the account's currency (`currency`; by default the instrument's quote currency, so a
one-instrument backtest needs no conversion). A backtest in another currency converts
through `conversion_quotes` (the data holds one instrument), for example USD_JPY at
150.00 / 150.02 for EUR_USD on a JPY account; without one, the money stays unconverted
and entries are refused with risk.unconverted_pnl, as live. Financing is charged at each
trading-day rollover from `financing` rates, and the daily loss limit and the N-day
drawdown read the same trading days, all in data time.

A quote reaches the venue only while it has an order to match, or just before an order is
sent (so the order's reference time is that quote's, as live). With nothing working, a quote
changes nothing at the venue but its last quote time, so the trades are the same; it saves
a lock, a gather and a store write per tick.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from services.backtest.data import CachedWindow
from services.backtest.report import EquityPoint
from services.backtest.trades import FillRecord
from services.common.clock import SimulatedClock
from services.common.flags import GuardVerdict
from services.common.tradingday import TradingCalendar
from services.common.vocabulary import OPEN, IN_FLIGHT, OrderState
from services.market_data.candles import CandleAggregator
from services.market_data.factors import FactorEngine, parse_factors
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import Timeframe
from services.order.brokers.paper import MemoryVenueStore, PaperBroker, PaperSettings
from services.order.engine import OrderEngine, build_engine
from services.order.exposure import LedgerExposure
from services.order.intents import validate_intent
from services.order.journal import JournalSettings
from services.order.repository import MemoryOrderStore
from services.order.risk import RiskLimits
from services.position.currency import quote_currency
from services.position.financing import NO_RATES, FinancingRates
from services.position.ledger import AccountFigures, Ledger, LedgerFill, Mark
from services.strategies.adapters import SubmitOutcome
from services.strategies.book import CandleBook
from services.strategies.desk import Decision, IntentDraft, intent_message
from services.strategies.params import params_as_text
from services.strategies.sdk import Bar, OpenPosition, Strategy, StrategyHarness
from services.strategies.status import WorkerStatus
from services.strategies.tuning import Tuning
from services.strategies.worker import StrategyWorker

log = logging.getLogger(__name__)
#: An intent the order plane refused or that ended without working (the desk may try again).
NOT_WORKING = frozenset({OrderState.REJECTED, OrderState.CANCELED, OrderState.EXPIRED})
_WORKING = frozenset(OPEN) | frozenset(IN_FLIGHT)


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestSettings:
    starting_cash: Decimal = Decimal("10000000")
    account: str = "backtest"
    fill_at: str = "next"  # "next" | "current"
    paper: PaperSettings = field(default_factory=PaperSettings)
    limits: RiskLimits = field(default_factory=RiskLimits)
    currency: str | None = None  # the account's; None: the instrument's quote currency
    conversion_quotes: tuple[Mark, ...] = ()  # standing quotes converting into `currency`
    trading_day: TradingCalendar = field(default_factory=TradingCalendar.fx)
    financing: FinancingRates = NO_RATES

    def __post_init__(self) -> None:
        if self.fill_at not in ("next", "current"):
            raise ValueError(f"fill_at must be 'next' or 'current', got {self.fill_at!r}")


@dataclass(slots=True)
class BacktestResult:
    fills: list[FillRecord]
    curve: list[EquityPoint]
    decisions: list[Decision]
    rejected: list[tuple[str, str]]  # (client order id, reason)
    ticks: int = 0
    decision_bars: int = 0
    currency: str = ""
    account: AccountFigures | None = None  # the ledger's figures at the end, in `currency`

    def __repr__(self) -> str:
        # Not every fill and sample: asyncio.run formats the finished task's result (Python 3.11 restoring SIGINT).
        return (f"BacktestResult({len(self.fills)} fills, {len(self.curve)} samples, {self.ticks} ticks, "
                f"{self.decision_bars} decision bars)")


#: Allocations between two young-generation collections during a run (Python's default is 700).
YOUNG_COLLECTION_EVERY = 50_000


@contextlib.contextmanager
def _fewer_collections() -> Iterator[None]:
    """A run allocates millions of short-lived objects (ticks, candles, views, Decimals) that die
    by reference counting; collecting cycles every 700 of them found little to free and cost 5-10%
    of the run (the bench month). Collections still happen, less often; the settings come back after."""
    before = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_EVERY, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)


class _AllowAll:
    """The control plane's answer in a backtest: every flag on (the guard itself is unchanged)."""

    _ALLOWED = GuardVerdict(allowed=True, rule="", reason="")  # immutable: one answer serves every question

    def verdict(self, slug: str, role: str, reduces_position: bool) -> GuardVerdict:
        return self._ALLOWED


def to_bar(candle) -> Bar:
    # The aggregator's Ohlc records are the strategy's too (services/common/prices.py): shared, not copied.
    return Bar(instrument=candle.instrument, timeframe=candle.timeframe.name, start=candle.start, end=candle.end,
               bid=candle.bid, ask=candle.ask, mid=candle.mid, tick_count=candle.tick_count, volume=candle.volume,
               closed_time=candle.closed_time)


class LedgerPositions:
    """The worker's positions port over the position ledger (live: the WatchExposure stream)."""

    def __init__(self, ledger: Ledger, account: str) -> None:
        self._ledger = ledger
        self._account = account
        self._last: OpenPosition | None = None

    async def open_positions(self, slug: str, instrument: str) -> list[OpenPosition]:
        # One (instrument, strategy) position at most: read by its key, not by filtering them all.
        p = self._ledger.position(self._account, instrument, slug)
        if p is None or p.quantity == 0:
            return []
        # A fill gives the position new values and a mark none: while the very same ones stand, the
        # last record (immutable) is the answer again, not a new one per decision.
        last = self._last
        if last is None or last.quantity is not p.quantity or last.average_price is not p.average_price \
                or last.opened_time is not p.opened_time or last.instrument != p.instrument:
            last = self._last = OpenPosition(instrument=p.instrument, quantity=p.quantity,
                                             average_price=p.average_price, opened_time=p.opened_time)
        return [last]

    async def net_position(self, slug: str, instrument: str) -> Decimal:
        p = self._ledger.position(self._account, instrument, slug)
        return Decimal(0) if p is None or p.quantity == 0 else Decimal(0) + p.quantity  # as the sum over the open ones


class EngineOrders:
    """The worker's order gateway over the order engine (live: Order.Submit over gRPC)."""

    def __init__(self, backtest: "InProcessBacktest") -> None:
        self._backtest = backtest

    async def submit(self, draft: IntentDraft, trace) -> SubmitOutcome:
        bt = self._backtest
        await bt.quote_to_venue()
        message = intent_message(draft, account=bt.settings.account, trace=trace)
        if bt.settings.fill_at == "current":
            # Fill at the quote the decision saw (backtesting.py's next-bar open), so the
            # live rule "only at a later quote" is lifted for this comparison setting.
            message.ClearField("decision_time")
        intent = validate_intent(message, instruments=(bt.instrument,), default_account=bt.settings.account)
        order, duplicate = await bt.orders.submit(intent, actor="backtest")
        if order.state in NOT_WORKING:
            bt.result.rejected.append((draft.client_order_id, f"{order.reject_rule}: {order.reason}"))
        else:
            bt.working.add(draft.client_order_id)
        return SubmitOutcome(accepted=order.state not in NOT_WORKING, order_id=order.order_id, state=order.state,
                             reason=order.reason, duplicate=duplicate)


class InProcessBacktest:
    def __init__(self, strategy: Strategy, settings: BacktestSettings = BacktestSettings(), *,
                 make_strategy: Callable[[], Strategy] | None = None, policy=None) -> None:
        """`make_strategy` builds the second worker's instance (live: two processes, two instances);
        by default both workers share `strategy`, which holds no state of its own. `policy` (a
        services/backtest/policy.py PolicyReplay) is the workers' settings source, fed every
        candle and fill: the allocation policy walk-forward."""
        self.policy = policy
        self.strategy = strategy
        self.settings = settings
        self.instrument = strategy.params.instrument
        self.decision_timeframe = strategy.decision_timeframe
        currency = settings.currency or quote_currency(self.instrument)
        self.ledger = Ledger(starting_cash=settings.starting_cash, currency=currency,
                             calendar=settings.trading_day, financing=settings.financing)
        self.venue = PaperBroker(MemoryVenueStore(), settings.paper)
        self.store = MemoryOrderStore()
        self.result = BacktestResult(fills=[], curve=[], decisions=[], rejected=[], currency=currency)
        self.working: set[str] = set()  # client ids the venue may still fill
        self.protected_at_venue = strategy.params.protect_at_venue
        self.clock: SimulatedClock | None = None
        self.orders: OrderEngine | None = None
        self._last_fill_seq = 0
        self._tick: FeedTick | None = None
        self._quoted: FeedTick | None = None  # the last quote the venue saw
        specs = strategy.factor_specs()
        self.factors = FactorEngine(parse_factors(specs)) if specs else None
        instances = {"exit": strategy, "entry": make_strategy() if make_strategy else strategy}
        # One candle book for both workers when they hold the same history: fed the same candles, two
        # books would hold the same, and each candle is added and each decision's view built once.
        entry = instances["entry"]
        shared = entry.params.instrument == self.instrument and entry.history_bars() == strategy.history_bars()
        book = CandleBook(self.instrument, strategy.history_bars()) if shared else None
        self.workers = [self._worker(role, instances[role], book) for role in ("exit", "entry")]
        self.aggregator = CandleAggregator([Timeframe[tf] for tf in self.workers[0].book.timeframes])

    def _worker(self, role: str, strategy: Strategy, book: CandleBook | None) -> StrategyWorker:
        harness = StrategyHarness(strategy, logging.getLogger(f"strategy.{strategy.slug}.{role}"))
        status = WorkerStatus(slug=strategy.slug, role=role, started=datetime.now(timezone.utc),
                              params=params_as_text(strategy.params), state="RUNNING")
        return StrategyWorker(harness=harness, role=role, market=None,
                              positions=LedgerPositions(self.ledger, self.settings.account), orders=EngineOrders(self),
                              flags=_AllowAll(), status=status, on_decision=self._note, tracer=None,
                              tuning=Tuning(strategy, self.policy) if self.policy is not None else None, book=book)

    def _note(self, decision: Decision) -> None:
        if decision.action != "hold":
            self.result.decisions.append(decision)

    async def run(self, ticks: AsyncIterator[FeedTick], *, on_tick: Callable[[FeedTick], None] | None = None) -> BacktestResult:
        with _fewer_collections():
            if isinstance(ticks, CachedWindow):
                await self._run_rows(ticks, on_tick)
            else:
                await self._run_ticks(ticks, on_tick)
        if self.orders is not None:
            await self.orders.stop()
        self.result.account = self.ledger.account_figures(self.settings.account)
        return self.result

    async def _run_ticks(self, ticks: AsyncIterator[FeedTick], on_tick: Callable[[FeedTick], None] | None) -> None:
        async for tick in ticks:
            if self.clock is None:
                await self._open(tick)
            # One tick, inline (no coroutine per tick: three in four close no candle and meet
            # no working order, and a coroutine each was a few percent of a run).
            self.result.ticks += 1
            self.clock.advance_to(tick.time)
            self._tick = tick
            if self.working:
                await self.quote_to_venue()
            closed = self.aggregator.on_tick(tick)
            if closed:
                await self._on_candles(closed, tick)
            if on_tick is not None:
                on_tick(tick)

    async def _run_rows(self, window: CachedWindow, on_tick: Callable[[FeedTick], None] | None) -> None:
        """`_run_ticks` over cached columns: the same steps in the same order, with the FeedTick of a
        tick built only when something reads it (the venue while an order works, a closed candle's
        sample and decisions, `on_tick`); a tick that only extends a candle goes to the aggregator
        as its parts, the floats it would have taken of the FeedTick's Decimals."""
        columns = await window.columns()
        instrument, aggregator = columns.instrument, self.aggregator
        for time, seconds, bid, ask, volume, b, a, v, s in columns.quotes(window.start, window.end):
            tick = None
            if self.clock is None:
                tick = columns.tick(time, b, a, v, s)
                await self._open(tick)
            self.result.ticks += 1
            self.clock.advance_to(time)
            if self.working:
                self._tick = tick = tick or columns.tick(time, b, a, v, s)
                await self.quote_to_venue()
            closed = aggregator.on_quote(instrument, time, bid, ask, volume, seconds)
            if closed:
                self._tick = tick = tick or columns.tick(time, b, a, v, s)
                await self._on_candles(closed, tick)
            if on_tick is not None:
                on_tick(tick or columns.tick(time, b, a, v, s))

    async def _open(self, first: FeedTick) -> None:
        self.clock = SimulatedClock(first.time)
        for quote in self.settings.conversion_quotes:
            self.ledger.apply_mark(Mark(instrument=quote.instrument, bid=quote.bid, ask=quote.ask, time=first.time))
        self.orders = build_engine(store=self.store, broker=self.venue, flags=_AllowAll(),
                                   exposure=LedgerExposure(self.ledger), limits=self.settings.limits, clock=self.clock,
                                   journal=JournalSettings(group_commit=False))
        # No executions follower task: fills are pulled after each quote, so the order of
        # events is fixed by the data, never by the event loop's scheduling.
        await self.orders.start(recover=False, follow_executions=False)

    async def _on_candles(self, closed: list, tick: FeedTick) -> None:
        """The candles this tick closed, in order: factors, the equity sample, both workers' decisions."""
        for candle in closed:
            bar = to_bar(candle)
            if self.policy is not None:
                self.policy.on_candle(bar)
            values = self.factors.on_candle(candle) if self.factors is not None else None
            decides = bar.timeframe == self.decision_timeframe
            if decides:
                self._sample(bar, tick)
            for worker in self.workers:  # EXIT, then ENTRY, as the live mesh hands them events
                await worker.on_candle(bar)
                if values is not None:
                    await worker.on_factors(bar.timeframe, bar.start, values)
                if worker.waiting:  # every event of this candle is in: no factors still to come
                    await worker.settle()
            if decides and self.settings.fill_at == "current" and self.working:
                self._quoted = None
                await self.quote_to_venue()

    async def quote_to_venue(self) -> None:
        """Shows the venue the current quote (once), then books what it filled."""
        tick = self._tick
        if tick is None or tick is self._quoted:
            return
        self._quoted = tick
        await self.venue.on_quote(tick.instrument, tick.time, tick.bid, tick.ask)
        for execution in self.venue.drain_executions():
            await self.orders.apply_execution(execution)
        if self.orders.fill_events.last_seq > self._last_fill_seq:
            async for seq, event in self.store.fill_events(self._last_fill_seq, self.orders.fill_events.last_seq):
                self._book_fill(event.fill)
                self._last_fill_seq = seq
        if self.protected_at_venue:
            # Stops and take-profits the order plane placed at the venue on a fill work from the next quote.
            self.working.update(o.intent.client_order_id for o in self.orders.journal.working_orders())
        if self.working:
            for cid in list(self.working):
                order = await self.store.by_client_id(cid)
                if order is None or order.state not in _WORKING:
                    self.working.discard(cid)

    def _book_fill(self, fill) -> None:
        self.ledger.apply_fill(LedgerFill(fill_id=fill.fill_id, account=fill.account, instrument=fill.instrument,
                                          strategy=fill.strategy_slug, side=fill.side, quantity=fill.quantity,
                                          price=fill.price, commission=fill.commission, time=fill.time))
        self.ledger.take_bookkeeping()  # nothing to store in a backtest: the ledger is the record
        if self.policy is not None:
            self.policy.on_fill(fill)
        self.result.fills.append(FillRecord(time=fill.time, strategy=fill.strategy_slug, instrument=fill.instrument,
                                            side=fill.side, quantity=fill.quantity, price=fill.price,
                                            commission=fill.commission))

    def _sample(self, bar: Bar, tick: FeedTick) -> None:
        """Marks the ledger at the deciding quote and takes the equity sample of this decision."""
        self.result.decision_bars += 1
        account = self.settings.account
        moved = self.ledger.apply_mark(Mark(instrument=tick.instrument, bid=tick.bid, ask=tick.ask, time=tick.time))
        if self.ledger.has_bookkeeping():  # a rollover's financing, money converted: dropped, as at a fill
            self.ledger.take_bookkeeping()
        position = self.ledger.position(account, self.instrument, self.strategy.slug)
        exposed = position is not None and position.quantity != 0
        # The mark already computed the figures of an account whose money it moved; not twice.
        for figures in moved:
            if figures.account == account:
                break
        else:
            figures = self.ledger.account_figures(account)
        self.result.curve.append(EquityPoint(time=bar.end, equity=figures.equity, exposed=exposed))
