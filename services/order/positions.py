"""The order plane's own book: net quantity per (account, strategy, instrument) from its own fills.

The order plane is the single writer of fills, so this book is exact at the moment of a
decision (the position plane lags by one WatchFills hop) and it is there when the
position plane is not. Pre-trade uses it to decide "does this order reduce", and as the
sizes of exits judged while the position plane's view is stale, so a strategy can
always get out.
"""

from __future__ import annotations

from decimal import Decimal


class OwnBook:
    def __init__(self, positions: dict[tuple[str, str, str], Decimal] | None = None) -> None:
        self._net: dict[tuple[str, str, str], Decimal] = dict(positions or {})

    def reset(self, positions: dict[tuple[str, str, str], Decimal]) -> None:
        self._net = dict(positions)

    def apply(self, account: str, slug: str, instrument: str, signed_quantity: Decimal) -> None:
        key = (account, slug, instrument)
        self._net[key] = self._net.get(key, Decimal(0)) + signed_quantity

    def apply_fill(self, fill) -> None:
        """A journal listener: any record with account, strategy_slug, instrument, signed_quantity."""
        self.apply(fill.account, fill.strategy_slug, fill.instrument, fill.signed_quantity)

    def positions(self) -> dict[tuple[str, str, str], Decimal]:
        """(account, strategy, instrument) -> signed quantity, flat ones left out."""
        return {key: q for key, q in self._net.items() if q != 0}

    def strategy(self, account: str, slug: str, instrument: str) -> Decimal:
        return self._net.get((account, slug, instrument), Decimal(0))

    def instrument(self, account: str, instrument: str) -> Decimal:
        return sum((q for (a, _, i), q in self._net.items() if a == account and i == instrument), Decimal(0))
