"""Exposure for pre-trade risk, read locally: one port method, no RPC on the order path.

`StreamedExposure` answers from the position plane's WatchExposure view (followed by
services.common.exposure.ExposureFollower) plus the fills this plane has recorded that
the view does not include yet (the tail): sizes are then exact as of this plane's own
last fill, and drawdown and consecutive losses are as of the view's fill seq. When the
tail is not empty, the check first waits briefly for the view to catch up, so a risk
rule is never judged on a view that misses one of this plane's own fills unless the
position plane is slow. When the view is stale (the position plane silent past its
bound) the answer says so; pre-trade refuses entries then and judges exits on the own
book's sizes.

`LedgerExposure` reads a ledger in the same process (a backtest), `OwnBookExposure`
only this plane's own fills (QUANTMESH_POSITIONS_SOURCE=own_book: sizes, no PnL).
"""

from __future__ import annotations

import collections
from decimal import Decimal
from typing import Protocol

from services.common.exposure import ExposureFollower
from services.order.positions import OwnBook
from services.order.records import FillRecord
from services.order.risk import Exposure

ZERO = Decimal(0)


class ExposureSource(Protocol):
    async def exposure(self, account: str, slug: str, instrument: str, *, recorded_fill_seq: int) -> Exposure:
        """The exposure an order of `slug` in `instrument` would change, including every fill up to
        `recorded_fill_seq` where the source can; `stale_reason` is set when it cannot be trusted."""


class StreamedExposure:
    def __init__(self, follower: ExposureFollower, book: OwnBook, *, catch_up_seconds: float = 0.25,
                 tail_size: int = 100_000) -> None:
        self._follower = follower
        self._book = book
        self._catch_up = catch_up_seconds
        self._tail: collections.deque[FillRecord] = collections.deque(maxlen=tail_size)

    def on_fill(self, fill: FillRecord) -> None:
        """The journal calls this after each stored fill."""
        self._tail.append(fill)

    async def exposure(self, account, slug, instrument, *, recorded_fill_seq):
        follower = self._follower
        view = follower.latest
        if view is not None and view.last_fill_seq < recorded_fill_seq and follower.stale_reason() is None:
            await follower.wait_for_fill_seq(recorded_fill_seq, self._catch_up)
            view = follower.latest
        stale = follower.stale_reason()
        if view is not None and stale is None and view.account and view.account != account:
            stale = f"the position plane's exposure view is of account {view.account}, not {account}"
        if view is None or stale is not None:
            return Exposure(strategy_position=self._book.strategy(account, slug, instrument),
                            instrument_position=self._book.instrument(account, instrument),
                            drawdown_fraction=ZERO, consecutive_losses=0, stale_reason=stale or "no view")
        while self._tail and self._tail[0].seq <= view.last_fill_seq:
            self._tail.popleft()
        strategy = view.strategy_position(slug, instrument)
        total = view.instrument_position(instrument)
        for fill in self._tail:
            if fill.account == account and fill.instrument == instrument:
                total += fill.signed_quantity
                if fill.strategy_slug == slug:
                    strategy += fill.signed_quantity
        return Exposure(strategy_position=strategy, instrument_position=total,
                        drawdown_fraction=view.drawdown_fraction, consecutive_losses=view.losses(slug))


class LedgerExposure:
    """Over a position ledger in this process: always current (a backtest)."""

    def __init__(self, ledger) -> None:
        self._ledger = ledger

    async def exposure(self, account, slug, instrument, *, recorded_fill_seq):
        ledger = self._ledger
        position = ledger.position(account, instrument, slug)
        return Exposure(strategy_position=position.quantity if position else ZERO,
                        instrument_position=ledger.net_quantities(account).get(instrument, ZERO),
                        drawdown_fraction=ledger.account_figures(account).drawdown_fraction,
                        consecutive_losses=ledger.strategy_figures(account, slug).consecutive_losses)


class OwnBookExposure:
    """Sizes from this plane's own fills; no PnL (drawdown 0, no losses)."""

    def __init__(self, book: OwnBook) -> None:
        self._book = book

    async def exposure(self, account, slug, instrument, *, recorded_fill_seq):
        return Exposure(strategy_position=self._book.strategy(account, slug, instrument),
                        instrument_position=self._book.instrument(account, instrument),
                        drawdown_fraction=ZERO, consecutive_losses=0)
