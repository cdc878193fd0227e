"""The one small interface every feed adapter implements."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class FeedTick:
    """One top-of-book quote as the feed saw it. `time` is timezone-aware UTC."""

    instrument: str
    time: datetime
    bid: Decimal
    ask: Decimal
    volume: Decimal = Decimal(0)
    aggressor: str | None = None  # "buy" | "sell" when the feed reports trades


class Feed(Protocol):
    name: str
    instruments: tuple[str, ...]

    def ticks(self) -> AsyncIterator[FeedTick]:
        """Ticks in time order per instrument; ends when the feed has no more (replay)."""


def trade_print(instrument: str, time: datetime, price: Decimal, quantity: Decimal, aggressor: str | None, *,
                book: tuple[Decimal, Decimal] | None = None, half_spread: Decimal = Decimal(0)) -> FeedTick:
    """A trade as a tick: its volume is the traded quantity, its aggressor the taker's side
    ("buy" or "sell") when the venue tells it.

    Bid and ask are the venue's quoted book at that moment where the venue gives one (`book`,
    a live feed that also follows the ticker). Where only trades are known (a trade file), a
    trade tells a price, not a book: bid and ask are both the trade price (or `half_spread`
    either side of it), so a candle's bid, ask and mid are then the last-price series. A fill
    against such a tick fills at the last trade price, kinder than a real book by half a
    spread; a backtest on trade prints charges a spread only when one is given (--spread).
    """
    bid, ask = book if book is not None else (price - half_spread, price + half_spread)
    return FeedTick(instrument, time, bid, ask, quantity, aggressor)


_SHOWN_SKIPS = 5
_LOGGED_AT = frozenset(10 ** n for n in range(12))  # 1st, 10th, 100th, ... skip of an endless feed


@dataclass(slots=True)
class FeedStats:
    """What a feed read and what it had to skip, so a bad file is visible, not silent.

    Skips are counted, not logged one by one: a file's feed summarizes them once when it ends
    (`summary`); a venue's endless stream (`live`) logs its 1st, 10th, 100th, ... skip.
    """

    feed: str
    live: bool = False
    rows_read: int = 0
    malformed: int = 0
    malformed_lines: list[int] = field(default_factory=list)
    first_skips: list[tuple[int, str]] = field(default_factory=list)

    def skip(self, line: int, reason: str) -> None:
        self.malformed += 1
        if len(self.malformed_lines) < 1_000:  # bounded: a wholly broken file must not eat memory
            self.malformed_lines.append(line)
        if len(self.first_skips) < _SHOWN_SKIPS:
            self.first_skips.append((line, reason))
        if self.live and self.malformed in _LOGGED_AT:
            log.warning("skipped a malformed feed message", extra={
                "feed": self.feed, "row": line, "reason": reason, "skipped_so_far": self.malformed})

    def summary(self, source: str) -> str:
        """One paragraph: how many rows of `source` were skipped, and where and why for the first few."""
        if not self.malformed:
            return ""
        shown = "\n".join(f"  {source}:{line}: {reason}" for line, reason in self.first_skips)
        more = f"\n  ... and {self.malformed - len(self.first_skips):,} more" if self.malformed > len(
            self.first_skips) else ""
        return f"skipped {self.malformed:,} of {self.rows_read:,} rows of {source}:\n{shown}{more}"
