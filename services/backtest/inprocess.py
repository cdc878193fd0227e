"""The in-process backtest: one event loop, a simulated clock, the planes' own domain code.

Per tick, in this order (the same order the live mesh sees events in):
1. the clock moves to the tick's time;
2. the paper venue sees the quote: orders waiting for it fill, and the fills go through
   the order engine into the position ledger, exactly as WatchFills feeds the position plane;
3. the candle aggregator takes the tick; each candle it closes goes to the factor engine
   and to the strategy's candle book;
4. when a candle of the strategy's decision timeframe closes, the position ledger is
   marked at this quote, an equity sample is taken, and the EXIT desk and then the ENTRY
   desk decide; their intents go to the order engine (guard, risk, write-ahead, venue).

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
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from decimal import Decimal

from services.backtest.report import EquityPoint
from services.backtest.trades import FillRecord
from services.common.clock import SimulatedClock
from services.common.flags import GuardVerdict
from services.common.tradingday import TradingCalendar
from services.common.vocabulary import OrderState
from services.market_data.candles import CandleAggregator
from services.market_data.factors import FactorEngine, parse_factors
from services.market_data.feeds.base import FeedTick
from services.market_data.instruments import Timeframe
from services.order.brokers.paper import MemoryVenueStore, PaperBroker, PaperSettings
from services.order.engine import OrderEngine, build_engine
from services.order.exposure import LedgerExposure
from services.order.intents import Intent
from services.order.journal import JournalSettings
from services.order.repository import MemoryOrderStore
from services.order.risk import RiskLimits
from services.position.currency import quote_currency
from services.position.financing import NO_RATES, FinancingRates
from services.position.ledger import AccountFigures, Ledger, LedgerFill, Mark
from services.strategies.book import CandleBook
from services.strategies.desk import Decision, EntryDesk, ExitDesk, IntentDraft
from services.strategies.sdk import Bar, Ohlc, OpenPosition, Strategy, StrategyHarness

log = logging.getLogger(__name__)
#: An intent the order plane refused or that ended without working (the desk may try again).
NOT_WORKING = frozenset({OrderState.REJECTED, OrderState.CANCELED, OrderState.EXPIRED})


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestSettings:
    starting_cash: Decimal = Decimal("10000000")
    account: str = "backtest"
    fill_at: str = "next"  # "next" | "current"
    paper: PaperSettings = field(default_factory=PaperSettings)
    limits: RiskLimits = field(default_factory=RiskLimits)
    factors: str | None = None  # the market_data plane's default set when None
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


class _AllowAll:
    """The control plane's answer in a backtest: every flag on (the guard itself is unchanged)."""

    def verdict(self, slug: str, role: str, reduces_position: bool) -> GuardVerdict:
        return GuardVerdict(allowed=True, rule="", reason="")


def to_bar(candle) -> Bar:
    def ohlc(o):
        return Ohlc(open=o.open, high=o.high, low=o.low, close=o.close)

    return Bar(instrument=candle.instrument, timeframe=candle.timeframe.name, start=candle.start, end=candle.end,
               bid=ohlc(candle.bid), ask=ohlc(candle.ask), mid=ohlc(candle.mid), tick_count=candle.tick_count,
               volume=candle.volume, closed_time=candle.closed_time)


class InProcessBacktest:
    def __init__(self, strategy: Strategy, settings: BacktestSettings = BacktestSettings()) -> None:
        self.strategy = strategy
        self.settings = settings
        self.harness = StrategyHarness(strategy, logging.getLogger(f"strategy.{strategy.slug}"))
        self.instrument = strategy.params.instrument
        self.decision_timeframe = strategy.decision_timeframe
        self.book = CandleBook(self.instrument, strategy.history_bars())
        self.aggregator = CandleAggregator([Timeframe[tf] for tf in self.book.timeframes])
        self.factors = FactorEngine(parse_factors(settings.factors) if settings.factors else None)
        currency = settings.currency or quote_currency(self.instrument)
        self.ledger = Ledger(starting_cash=settings.starting_cash, currency=currency,
                             calendar=settings.trading_day, financing=settings.financing)
        self.venue = PaperBroker(MemoryVenueStore(), settings.paper)
        self.store = MemoryOrderStore()
        self.entry_desk = EntryDesk(self.harness)
        self.exit_desk = ExitDesk(self.harness)
        self.result = BacktestResult(fills=[], curve=[], decisions=[], rejected=[], currency=currency)
        self._last_fill_seq = 0
        self._pending_exits: dict[str, OpenPosition] = {}
        self.clock: SimulatedClock | None = None
        self.orders: OrderEngine | None = None

    async def run(self, ticks: AsyncIterator[FeedTick], *, on_tick: Callable[[FeedTick], None] | None = None) -> BacktestResult:
        async for tick in ticks:
            if self.clock is None:
                await self._open(tick)
            await self.step(tick)
            if on_tick is not None:
                on_tick(tick)
        if self.orders is not None:
            await self.orders.stop()
        self.result.account = self.ledger.account_figures(self.settings.account)
        return self.result

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

    async def step(self, tick: FeedTick) -> None:
        self.result.ticks += 1
        self.clock.advance_to(tick.time)
        await self._quote(tick)
        for candle in self.aggregator.on_tick(tick):
            bar = to_bar(candle)
            self.book.add_bar(bar)
            values = self.factors.on_candle(candle)
            if values is not None:
                self.book.set_factors(bar.timeframe, bar.start, values)
            if bar.timeframe == self.decision_timeframe:
                await self._decide(bar, tick)
                if self.settings.fill_at == "current":
                    await self._quote(tick)

    async def _quote(self, tick: FeedTick) -> None:
        await self.venue.on_quote(tick.instrument, tick.time, tick.bid, tick.ask)
        for execution in self.venue.drain_executions():
            await self.orders.apply_execution(execution)
        if self.orders.fill_events.last_seq > self._last_fill_seq:
            async for seq, event in self.store.fill_events(self._last_fill_seq, self.orders.fill_events.last_seq):
                self._book_fill(event.fill)
                self._last_fill_seq = seq

    def _book_fill(self, fill) -> None:
        self.ledger.apply_fill(LedgerFill(fill_id=fill.fill_id, account=fill.account, instrument=fill.instrument,
                                          strategy=fill.strategy_slug, side=fill.side, quantity=fill.quantity,
                                          price=fill.price, commission=fill.commission, time=fill.time))
        self.ledger.take_bookkeeping()  # nothing to store in a backtest: the ledger is the record
        self.result.fills.append(FillRecord(time=fill.time, strategy=fill.strategy_slug, instrument=fill.instrument,
                                            side=fill.side, quantity=fill.quantity, price=fill.price,
                                            commission=fill.commission))

    def _open_positions(self) -> list[OpenPosition]:
        out = []
        for p in self.ledger.positions(self.settings.account, strategies=(self.strategy.slug,),
                                       instruments=(self.instrument,)):
            if p.quantity != 0:
                out.append(OpenPosition(instrument=p.instrument, quantity=p.quantity,
                                        average_price=p.average_price, opened_time=p.opened_time))
        return out

    async def _decide(self, bar: Bar, tick: FeedTick) -> None:
        self.result.decision_bars += 1
        self.ledger.apply_mark(Mark(instrument=tick.instrument, bid=tick.bid, ask=tick.ask, time=tick.time))
        self.ledger.take_bookkeeping()
        positions = self._open_positions()
        figures = self.ledger.account_figures(self.settings.account)
        self.result.curve.append(EquityPoint(time=bar.end, equity=figures.equity, exposed=bool(positions)))
        view = self.book.view(now=bar.end)
        drafts: list[tuple[IntentDraft, OpenPosition | None]] = []
        for decision, draft, position in self.exit_desk.decide(view, positions):
            self._note(decision)
            if draft is not None:
                drafts.append((draft, position))
        net = sum((p.quantity for p in positions), Decimal(0))
        decision, draft = self.entry_desk.decide(view, bar.start, net)
        self._note(decision)
        if draft is not None:
            drafts.append((draft, None))
        for draft, position in drafts:
            if self.settings.fill_at == "current":
                # Fill at the quote the decision saw (backtesting.py's next-bar open), so the
                # live rule "only at a later quote" is lifted for this comparison setting.
                draft = replace(draft, decision_time=None)
            order, _ = await self.orders.submit(_intent(draft, self.settings.account), actor="backtest")
            if order.state in NOT_WORKING:
                self.result.rejected.append((draft.client_order_id, f"{order.reject_rule}: {order.reason}"))
                if position is not None:
                    self.exit_desk.refused(position)

    def _note(self, decision: Decision) -> None:
        if decision.action != "hold":
            self.result.decisions.append(decision)


def _intent(draft: IntentDraft, account: str) -> Intent:
    return Intent(client_order_id=draft.client_order_id, strategy_slug=draft.slug, role=draft.role,
                  instrument=draft.instrument, side=draft.side, quantity=draft.quantity,
                  order_type="limit" if draft.limit_price is not None else "market", limit_price=draft.limit_price,
                  time_in_force="GTC" if draft.limit_price is not None else "IOC", reduce_only=draft.reduce_only,
                  account=account, note=draft.note, decision_time=draft.decision_time)
