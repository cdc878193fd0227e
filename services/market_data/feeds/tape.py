"""What a live venue feed has seen: the latest quote per instrument and the trades passed on.

A venue's ticker and its trades arrive on separate channels, so a trade can arrive after a
quote stamped later than the trade. The aggregator drops a tick older than the last one of
its instrument, and a dropped trade would be traded volume lost; so a trade print older than
the newest tick this feed passed on is stamped at that newest time instead (it lands in the
candle that is open, never in one already closed). Quotes keep their own times.
A trade with an id is passed on once: venues resend trades on reconnects and polls overlap.
"""

from __future__ import annotations

import collections
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

from services.market_data.feeds.base import FeedTick, trade_print

_REMEMBERED_TRADES = 10_000  # per instrument: far more than one poll or reconnect replays


class VenueTape:
    def __init__(self) -> None:
        self._book: dict[str, tuple[Decimal, Decimal]] = {}
        self._newest: dict[str, datetime] = {}
        self._seen: dict[str, tuple[set, collections.deque]] = {}

    def quote(self, tick: FeedTick) -> FeedTick:
        """Records a quote from the venue's ticker and passes it on."""
        self._book[tick.instrument] = (tick.bid, tick.ask)
        self._note(tick)
        return tick

    def trade(self, instrument: str, trade_id: object, time: datetime, price: Decimal, quantity: Decimal,
              aggressor: str | None) -> FeedTick | None:
        """The trade as a tick, or None when a trade with the same id was passed on before
        (`trade_id` None: a venue that never repeats a trade)."""
        if trade_id is not None:
            seen, order = self._seen.setdefault(instrument, (set(), collections.deque()))
            if trade_id in seen:
                return None
            seen.add(trade_id)
            order.append(trade_id)
            if len(order) > _REMEMBERED_TRADES:
                seen.discard(order.popleft())
        tick = trade_print(instrument, time, price, quantity, aggressor, book=self._book.get(instrument))
        newest = self._newest.get(instrument)
        if newest is not None and tick.time < newest:
            tick = replace(tick, time=newest)
        self._note(tick)
        return tick

    def _note(self, tick: FeedTick) -> None:
        newest = self._newest.get(tick.instrument)
        if newest is None or tick.time > newest:
            self._newest[tick.instrument] = tick.time
