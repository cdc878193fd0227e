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


@dataclass(slots=True)
class FeedStats:
    """What a feed read and what it had to skip, so a bad file is visible, not silent."""

    feed: str
    rows_read: int = 0
    malformed: int = 0
    malformed_lines: list[int] = field(default_factory=list)

    def skip(self, line: int, reason: str) -> None:
        self.malformed += 1
        if len(self.malformed_lines) < 1_000:  # bounded: a wholly broken file must not eat memory
            self.malformed_lines.append(line)
        log.warning("skipped a malformed feed row", extra={"feed": self.feed, "line": line, "reason": reason})
