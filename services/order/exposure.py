"""Exposure for pre-trade risk, read locally: one port method, no RPC on the order path.

`StreamedExposure` answers from the position plane's WatchExposure view (followed by
services.common.exposure.ExposureFollower) plus the fills this plane has recorded that
the view does not include yet (the tail): sizes and the count of open positions are
then exact as of this plane's own last fill, and the money figures (equity, drawdown,
the trading days' realized PnL and peaks, unconverted money, consecutive losses) are as
of the view's fill seq. When the
tail is not empty, an entry's check first waits briefly for the view to catch up, so a risk
rule is never judged on a view that misses one of this plane's own fills unless the
position plane is slow. An order that reduces never waits: it is judged on sizes, which
the tail makes exact. When the view is stale (the position plane silent past its
bound) the answer says so; pre-trade refuses entries then and judges exits on the own
book's sizes.

`LedgerExposure` reads a ledger in the same process (a backtest), `OwnBookExposure`
only this plane's own fills (QUANTMESH_POSITIONS_SOURCE=own_book: sizes and open
positions, no PnL).
"""

from __future__ import annotations

import collections
import time
from decimal import Decimal
from typing import Protocol

from opentelemetry import trace

from services.common.exposure import ExposureFollower, ExposureSnapshot, Unconverted
from services.order.positions import OwnBook
from services.order.records import FillRecord
from services.order.risk import AccountRisk, Exposure

ZERO = Decimal(0)


class ExposureSource(Protocol):
    async def exposure(self, account: str, slug: str, instrument: str, *,
                       recorded_fill_seq: int | None) -> Exposure:
        """The exposure an order of `slug` in `instrument` would change, including every fill up to
        `recorded_fill_seq` where the source can (None: the caller reads only sizes, which need no
        catch-up); `stale_reason` is set when it cannot be trusted."""


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
        # Wait briefly for a view that includes this plane's latest fill, or for the first view at
        # all (just after a start); never for a plane that has gone silent: that fails fast. A caller
        # reading only sizes (recorded_fill_seq None) never waits: the tail below makes them exact.
        behind = recorded_fill_seq is not None and (view is None or view.last_fill_seq < recorded_fill_seq)
        if behind and self._catch_up > 0 and (view is None or follower.stale_reason() is None):
            began = time.perf_counter()
            await follower.wait_for_fill_seq(recorded_fill_seq, self._catch_up)
            view = follower.latest
            # On the order's span, so a slow Submit's trace says where its time went.
            trace.get_current_span().set_attribute("order.exposure_wait_ms", (time.perf_counter() - began) * 1e3)
        stale = follower.stale_reason()
        if view is not None and stale is None and view.account and view.account != account:
            stale = f"the position plane's exposure view is of account {view.account}, not {account}"
        if view is None or stale is not None:
            return Exposure(strategy_position=self._book.strategy(account, slug, instrument),
                            instrument_position=self._book.instrument(account, instrument),
                            drawdown_fraction=ZERO, consecutive_losses=0, stale_reason=stale or "no view")
        while self._tail and self._tail[0].seq <= view.last_fill_seq:
            self._tail.popleft()
        held = {(p.strategy, p.instrument): p.quantity for p in view.positions}
        for fill in self._tail:
            if fill.account == account:
                key = (fill.strategy_slug, fill.instrument)
                held[key] = held.get(key, ZERO) + fill.signed_quantity
        return Exposure(strategy_position=held.get((slug, instrument), ZERO),
                        instrument_position=sum((q for (_, i), q in held.items() if i == instrument), ZERO),
                        drawdown_fraction=view.drawdown_fraction, consecutive_losses=view.losses(slug),
                        open_positions=sum(1 for q in held.values() if q != 0), account=_account(view),
                        reconciliation_blocks=view.reconciliation_blocks)


def _account(view: ExposureSnapshot) -> AccountRisk | None:
    if view.equity is None:
        return None  # a position plane too old to send the money figures: the size rules still hold
    return AccountRisk(currency=view.currency, equity=view.equity, days=view.days,
                       unconverted=tuple(str(u) for u in view.unconverted))


class LedgerExposure:
    """Over a position ledger in this process: always current (a backtest)."""

    def __init__(self, ledger) -> None:
        self._ledger = ledger

    async def exposure(self, account, slug, instrument, *, recorded_fill_seq):
        ledger = self._ledger
        position = ledger.position(account, instrument, slug)
        figures = ledger.account_figures(account)
        money = AccountRisk(currency=ledger.currency, equity=figures.equity,
                            days=ledger.trading_days(account, equity=figures.equity),
                            unconverted=tuple(str(Unconverted(*u)) for u in ledger.unconverted(account)))
        return Exposure(strategy_position=position.quantity if position else ZERO,
                        instrument_position=ledger.net_quantities(account).get(instrument, ZERO),
                        drawdown_fraction=figures.drawdown_fraction,
                        consecutive_losses=ledger.consecutive_losses(account, slug),
                        open_positions=ledger.open_position_count(account), account=money)


class OwnBookExposure:
    """Sizes from this plane's own fills; no PnL (drawdown 0, no losses)."""

    def __init__(self, book: OwnBook) -> None:
        self._book = book

    async def exposure(self, account, slug, instrument, *, recorded_fill_seq):
        return Exposure(strategy_position=self._book.strategy(account, slug, instrument),
                        instrument_position=self._book.instrument(account, instrument),
                        drawdown_fraction=ZERO, consecutive_losses=0,
                        open_positions=sum(1 for (a, _, _) in self._book.positions() if a == account))
