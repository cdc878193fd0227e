"""Numbers as a venue takes them: exact multiples of its steps, written without exponents.

`str(Decimal)` writes `1E+4` or `1.2E-7`, which no venue reads, and rounding silently
sends a different order than the strategy asked for (a truncated size fills less and the
order never completes). So a price or a size is checked against the instrument's steps
from the venue's own metadata and refused before anything is sent when it does not fit:
OANDA `displayPrecision` / `tradeUnitsPrecision` / `minimumTradeSize`
(https://developer.oanda.com/rest-live-v20/primitives-df/#Instrument), GMO Coin
`tickSize` / `sizeStep` / `minOrderSize` / `maxOrderSize` (GET /public/v1/symbols,
https://api.coin.z.com/docs/#symbols), ccxt `markets[symbol].precision` and `limits`.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.order.brokers.base import BrokerRejected

PRECISION_RULE = "venue.precision"


def plain(value: Decimal) -> str:
    """Fixed-point text with no exponent and no needless trailing zeros: 10000, 0.00000012, 149.5."""
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text or "0"


def step_of_places(places: int) -> Decimal:
    """The step of a count of decimals: 3 -> 0.001, 0 -> 1."""
    return Decimal(1).scaleb(-places)


@dataclass(frozen=True, kw_only=True, slots=True)
class InstrumentRules:
    """What one venue accepts for one instrument."""

    venue: str
    instrument: str
    price_step: Decimal | None       # None: the venue states no price step
    size_step: Decimal
    min_size: Decimal | None = None
    max_size: Decimal | None = None
    unit: str = ""                   # how the size reads in sentences ("units", "BTC")

    def size(self, quantity: Decimal) -> str:
        """The size as the venue's text, or BrokerRejected(rule="venue.precision") with a sentence."""
        shown = f"{plain(quantity)} {self.unit}".rstrip()
        if quantity % self.size_step != 0:
            raise BrokerRejected(f"quantity {shown} has more decimals than {self.venue}'s {self.instrument} size "
                                 f"step {plain(self.size_step)}; the order was not sent", rule=PRECISION_RULE)
        if self.min_size is not None and quantity < self.min_size:
            raise BrokerRejected(f"quantity {shown} is below {self.venue}'s {self.instrument} minimum order size "
                                 f"{plain(self.min_size)}; the order was not sent", rule=PRECISION_RULE)
        if self.max_size is not None and quantity > self.max_size:
            raise BrokerRejected(f"quantity {shown} is above {self.venue}'s {self.instrument} maximum order size "
                                 f"{plain(self.max_size)}; the order was not sent", rule=PRECISION_RULE)
        return plain(quantity)

    def price(self, price: Decimal) -> str:
        """The price as the venue's text, or BrokerRejected(rule="venue.precision") with a sentence."""
        if price <= 0:
            raise BrokerRejected(f"price {plain(price)} is not positive; the order was not sent", rule=PRECISION_RULE)
        if self.price_step is not None and price % self.price_step != 0:
            raise BrokerRejected(f"price {plain(price)} is not a multiple of {self.venue}'s {self.instrument} price "
                                 f"step {plain(self.price_step)}; the order was not sent", rule=PRECISION_RULE)
        return plain(price)
