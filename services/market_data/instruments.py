"""Instruments this plane knows and the candle timeframes it builds."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from decimal import Decimal


class Timeframe(enum.Enum):
    """Candle widths; every bucket is aligned to the Unix epoch, hence to 00:00 UTC."""

    S5 = 5
    M1 = 60
    M5 = 300
    H1 = 3_600
    H4 = 14_400
    D1 = 86_400

    @property
    def seconds(self) -> int:
        return self.value


TIMEFRAMES: tuple[Timeframe, ...] = tuple(Timeframe)


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    symbol: str
    tick_size: Decimal
    quote_currency: str


#: What the built-in feeds can carry. A real venue adapter brings its own specs.
KNOWN_INSTRUMENTS: dict[str, InstrumentSpec] = {
    "USD_JPY": InstrumentSpec("USD_JPY", Decimal("0.001"), "JPY"),
    "EUR_USD": InstrumentSpec("EUR_USD", Decimal("0.00001"), "USD"),
    "BTC_JPY": InstrumentSpec("BTC_JPY", Decimal("1"), "JPY"),
}


def spec_for(symbol: str) -> InstrumentSpec:
    """The spec of a known symbol, or a generic one (quote currency from the symbol's suffix)."""
    known = KNOWN_INSTRUMENTS.get(symbol)
    if known is not None:
        return known
    quote = symbol.rpartition("_")[2] or symbol
    return InstrumentSpec(symbol, Decimal("0.00001"), quote)
