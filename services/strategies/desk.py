"""Turning a strategy's answers into order intents, the same way live and in a backtest.

The desk is pure: it gets a MarketView, the strategy's positions and the flag
verdict, and returns what was decided and the intent to send, if any. Client
order ids are derived from the decision itself, so a restarted worker that
decides again on the same candle sends the same id and the order plane returns
the first order instead of opening a second one:

- entry: `<slug>.e.<instrument>.<decision candle start>`;
- exit:  `<slug>.x.<instrument>.<position opened time>.<attempt>`, one id per open
  position, so a position is never exited twice by overlapping decisions; the
  attempt number moves on only after an attempt was refused or canceled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from quantmesh.common.v1 import common_pb2
from quantmesh.order.v1 import order_pb2
from services.common.wire import SIDE_TO_PROTO, decimal_text
from services.strategies.sdk import MarketView, OpenPosition, StrategyHarness

#: The longest note an intent carries (the order plane accepts 1,000 characters; a reason longer
#: than this is a strategy writing prose, and its start says what matters).
MAX_NOTE_CHARS = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class IntentDraft:
    """An order intent in the strategy's words, before it becomes a protobuf."""

    client_order_id: str
    slug: str
    role: str  # "entry" | "exit"
    instrument: str
    side: str  # "buy" | "sell"
    quantity: Decimal
    limit_price: Decimal | None
    reduce_only: bool
    note: str
    # The newest quote the decision saw (Bar.closed_time); the order fills only after it.
    decision_time: datetime | None = None
    # Protection the venue holds once the entry fills (price distances), with protect_at_venue.
    stop_loss_distance: Decimal | None = None
    take_profit_distance: Decimal | None = None
    trailing_stop_distance: Decimal | None = None
    # Opens or turns a position only: the order plane refuses it if it would add (its book never lags).
    no_pyramiding: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    time: datetime
    action: str  # "enter" | "exit" | "hold" | "skip"
    reason: str
    instrument: str
    client_order_id: str = ""
    confidence: float | None = None  # the entry signal's, when it gave one


def intent_message(draft: IntentDraft, *, account: str, trace: common_pb2.TraceContext | None = None
                   ) -> order_pb2.OrderIntent:
    """The one translation of a draft into the order plane's contract, live and in a backtest.

    Market orders leave time in force unset, which the order plane reads as IOC (a market
    order does not rest); limit orders as GTC. The note is cut to MAX_NOTE_CHARS.
    """
    intent = order_pb2.OrderIntent(
        client_order_id=draft.client_order_id, strategy_slug=draft.slug,
        role=common_pb2.STRATEGY_ROLE_ENTRY if draft.role == "entry" else common_pb2.STRATEGY_ROLE_EXIT,
        instrument=draft.instrument, side=SIDE_TO_PROTO[draft.side], quantity=decimal_text(draft.quantity),
        order_type=order_pb2.ORDER_TYPE_LIMIT if draft.limit_price is not None else order_pb2.ORDER_TYPE_MARKET,
        limit_price=decimal_text(draft.limit_price), reduce_only=draft.reduce_only, account=account,
        note=draft.note[:MAX_NOTE_CHARS], trace_context=trace)
    if draft.decision_time is not None:
        intent.decision_time.FromDatetime(draft.decision_time)
    intent.stop_loss_distance = decimal_text(draft.stop_loss_distance)
    intent.take_profit_distance = decimal_text(draft.take_profit_distance)
    intent.trailing_stop_distance = decimal_text(draft.trailing_stop_distance)
    intent.no_pyramiding = draft.no_pyramiding
    return intent


def _stamp(moment: datetime, *, micros: bool = False) -> str:
    return moment.strftime("%Y%m%dT%H%M%S%f" if micros else "%Y%m%dT%H%M%S")


def decision_time(harness: StrategyHarness, view: MarketView) -> datetime | None:
    """The closed_time of the decision candle: the newest quote this decision saw."""
    bar = view.last(harness.strategy.decision_timeframe)
    return bar.closed_time if bar is not None else None


def entry_client_id(slug: str, instrument: str, candle_start: datetime) -> str:
    return f"{slug}.e.{instrument}.{_stamp(candle_start)}"


def exit_client_id(slug: str, instrument: str, opened: datetime, attempt: int) -> str:
    return f"{slug}.x.{instrument}.{_stamp(opened, micros=True)}.{attempt}"


class EntryDesk:
    """Asks the strategy for an entry on each decision candle.

    It does not add to a position in the same direction (no pyramiding): an ENTRY
    worker proposes *entries*, and a second buy while long would be an add the
    strategy never asked to size. An entry against the open position is allowed;
    the EXIT worker closes the old side. The position it reads may lag the fills, so
    every entry also asks the order plane not to add (no_pyramiding), which judges on
    its own book.
    """

    def __init__(self, harness: StrategyHarness) -> None:
        self.harness = harness

    def decide(self, view: MarketView, candle_start: datetime, position: Decimal) -> tuple[Decision, IntentDraft | None]:
        slug, instrument = self.harness.slug, view.instrument
        signal = self.harness.entry(view)
        if signal is None:
            return Decision(time=view.now, action="hold", reason="no entry signal", instrument=instrument), None
        if (signal.side == "buy" and position > 0) or (signal.side == "sell" and position < 0):
            return Decision(time=view.now, action="skip", instrument=instrument,
                            reason=f"already {'long' if position > 0 else 'short'} {abs(position)}; "
                                   f"not adding: {signal.reason}"), None
        client_id = entry_client_id(slug, instrument, candle_start)
        params = self.harness.strategy.params
        protection = dict(stop_loss_distance=params.stop_loss_pips * params.pip_size,
                          take_profit_distance=params.take_profit_pips * params.pip_size,
                          trailing_stop_distance=params.trailing_stop_pips * params.pip_size
                          if params.trailing_stop_pips else None) if params.protect_at_venue else {}
        draft = IntentDraft(client_order_id=client_id, slug=slug, role="entry", instrument=instrument,
                            side=signal.side, quantity=signal.quantity, limit_price=signal.limit_price,
                            reduce_only=False, note=signal.reason, decision_time=decision_time(self.harness, view),
                            no_pyramiding=True, **protection)
        return Decision(time=view.now, action="enter", reason=signal.reason, instrument=instrument,
                        client_order_id=client_id, confidence=signal.confidence), draft


class ExitDesk:
    """Asks the strategy, for each open position, whether to close it now."""

    def __init__(self, harness: StrategyHarness) -> None:
        self.harness = harness
        self._attempts: dict[tuple[str, datetime], int] = {}

    def refused(self, position: OpenPosition) -> None:
        """The last exit of `position` was refused or canceled: the next one gets a new id."""
        key = (position.instrument, position.opened_time)
        self._attempts[key] = self._attempts.get(key, 0) + 1

    def decide(self, view: MarketView, positions: Sequence[OpenPosition]) -> list[tuple[Decision, IntentDraft | None, OpenPosition | None]]:
        slug = self.harness.slug
        out: list[tuple[Decision, IntentDraft | None, OpenPosition | None]] = []
        live = [p for p in positions if p.instrument == view.instrument and p.quantity != 0]
        if not live:
            return [(Decision(time=view.now, action="hold", reason="no open position", instrument=view.instrument),
                     None, None)]
        for position in live:
            signal = self.harness.exit(view, position)
            if signal is None:
                out.append((Decision(time=view.now, action="hold", instrument=position.instrument,
                                     reason=f"holding {position.side} {abs(position.quantity)}"), None, position))
                continue
            quantity = signal.quantity if signal.quantity is not None else abs(position.quantity)
            attempt = self._attempts.get((position.instrument, position.opened_time), 0)
            client_id = exit_client_id(slug, position.instrument, position.opened_time, attempt)
            draft = IntentDraft(client_order_id=client_id, slug=slug, role="exit", instrument=position.instrument,
                                side="sell" if position.quantity > 0 else "buy", quantity=quantity,
                                limit_price=None, reduce_only=True, note=f"{signal.rule}: {signal.reason}",
                                decision_time=decision_time(self.harness, view))
            out.append((Decision(time=view.now, action="exit", reason=f"{signal.rule}: {signal.reason}",
                                 instrument=position.instrument, client_order_id=client_id), draft, position))
        return out
