"""The pattern book: what past entries came to, bucketed by the market state they were taken in.

An entry (an ENTRY signal) is put in the bucket of its strategy, instrument and side, the
instrument's volatility regime as of its decision (the range metrics' state at that time),
the sessions open then (services/analysis/sessions.py), its confidence bin, and the bins
of the indicators named in the settings (e.g. rsi_14 with edges 30 and 70: "<30",
"30..70", ">=70"). Its outcome is the trade it opened (matched by client order id): a
closed trade counts with its net PnL; an entry whose trade is still open, or that never
filled, counts as an entry only.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from services.analysis import sessions
from services.analysis.ranges import Regime
from services.analysis.trades import Trade

_ZERO = Decimal(0)
CONFIDENCE_BINS = ("0-0.25", "0.25-0.5", "0.5-0.75", "0.75-1")


@dataclass(frozen=True, slots=True, kw_only=True)
class IndicatorBins:
    """Edges of one indicator's bins, ascending."""

    name: str
    edges: tuple[float, ...]

    def label(self, value: float) -> str:
        at = bisect.bisect_right(self.edges, value)
        if at == 0:
            return f"<{self.edges[0]:g}"
        if at == len(self.edges):
            return f">={self.edges[-1]:g}"
        return f"{self.edges[at - 1]:g}..{self.edges[at]:g}"


def parse_bins(text: str) -> tuple[IndicatorBins, ...]:
    """`rsi_14=30/70,adx_14=25` -> bins; ValueError with a sentence when malformed."""
    out = []
    for part in (p.strip() for p in text.split(",") if p.strip()):
        name, sep, edges = part.partition("=")
        try:
            values = tuple(float(e) for e in edges.split("/")) if sep else ()
        except ValueError:
            values = ()
        if not name.strip() or not values or list(values) != sorted(set(values)):
            raise ValueError(f"{part!r} is not NAME=EDGE/EDGE/... with ascending numbers, e.g. rsi_14=30/70")
        out.append(IndicatorBins(name=name.strip(), edges=values))
    return tuple(out)


def confidence_bin(confidence: float | None) -> str:
    if confidence is None:
        return "none"
    return CONFIDENCE_BINS[min(int(confidence * 4), 3)]


@dataclass(frozen=True, slots=True, kw_only=True)
class Entry:
    """An ENTRY signal with the regime as of its decision."""

    strategy: str
    instrument: str
    side: str
    decision_time: datetime
    confidence: float | None
    indicators: Mapping[str, float]
    client_order_id: str
    regime: Regime


@dataclass(frozen=True, slots=True, kw_only=True)
class BucketKey:
    strategy: str
    instrument: str
    side: str
    regime: Regime
    session: str
    confidence: str
    indicator_bins: tuple[tuple[str, str], ...]


@dataclass(slots=True)
class Bucket:
    key: BucketKey
    entries: int = 0
    closed: int = 0
    wins: int = 0
    net_pnl: Decimal = field(default=_ZERO)

    @property
    def win_rate(self) -> float:
        return self.wins / self.closed if self.closed else 0.0

    @property
    def expectancy(self) -> float:
        return float(self.net_pnl / self.closed) if self.closed else 0.0


def key_of(entry: Entry, bins: Sequence[IndicatorBins]) -> BucketKey:
    labels = tuple((b.name, b.label(entry.indicators[b.name])) for b in bins if b.name in entry.indicators)
    return BucketKey(strategy=entry.strategy, instrument=entry.instrument, side=entry.side, regime=entry.regime,
                     session=sessions.label(entry.decision_time), confidence=confidence_bin(entry.confidence),
                     indicator_bins=labels)


def pattern_book(entries: Iterable[Entry], trades: Iterable[Trade], bins: Sequence[IndicatorBins]) -> list[Bucket]:
    """Buckets sorted by strategy, instrument, then most entries first."""
    by_entry = {t.entry_client_order_id: t for t in trades}
    buckets: dict[BucketKey, Bucket] = {}
    for entry in entries:
        key = key_of(entry, bins)
        bucket = buckets.get(key) or buckets.setdefault(key, Bucket(key))
        bucket.entries += 1
        trade = by_entry.get(entry.client_order_id)
        if trade is not None:
            bucket.closed += 1
            bucket.wins += trade.net_pnl > 0
            bucket.net_pnl += trade.net_pnl
    return sorted(buckets.values(), key=lambda b: (b.key.strategy, b.key.instrument, -b.entries, b.key.side,
                                                   b.key.regime, b.key.session, b.key.confidence))


__all__ = ["Bucket", "BucketKey", "CONFIDENCE_BINS", "Entry", "IndicatorBins", "confidence_bin", "key_of",
           "parse_bins", "pattern_book"]
