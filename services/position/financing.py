"""Financing (swap): what holding a position across the daily rollover earns or costs.

Two sources, never both (QUANTMESH_FINANCING_SOURCE):

- `rates` (the default, for the paper venue and backtests): the ledger charges every
  position open at a rollover (the trading-day boundary, 17:00 New York by default) itself,
  from configurable annual rates per instrument and side:

      amount = |quantity| x close-out price x annual rate / 365      (in the quote currency)

  A positive rate earns, a negative one pays. The close-out price is the side of the latest
  quote the position would close at (a long at the bid, a short at the ask), or its average
  price before any quote. Every calendar day's rollover counts, so a position held from
  Friday to Monday is charged three times: the same total over a week as the venues that
  charge a triple day on Wednesday, on other days. An instrument without a rate is charged
  nothing.
- `venue` (OANDA reports financing in its DAILY_FINANCING transactions): the ledger
  computes nothing; the order plane records the venue's charges per trade, booked to the
  strategy whose entry opened it, and lists them (Order.ListFinancing); `feeds.FinancingFollower`
  asks for new ones and hands each to `PositionEngine.apply_financing` as a `FinancingCharge`
  with the venue's own id ("venue:<id>", booked once), in the currency the venue states (OANDA:
  the account's home currency).

Either way a charge is booked to the position's strategy, in the account's currency by
the rules of services/position/currency.py, and counts in the trading day it is booked in.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

DAYS_PER_YEAR = Decimal(365)
SOURCES = ("rates", "venue")


@dataclass(frozen=True, slots=True, kw_only=True)
class FinancingRates:
    """Annual rates per instrument for long and short positions (0.02 = 2 % a year earned)."""

    long: tuple[tuple[str, Decimal], ...] = ()
    short: tuple[tuple[str, Decimal], ...] = ()

    def annual_rate(self, instrument: str, quantity: Decimal) -> Decimal | None:
        table = self.long if quantity > 0 else self.short
        for name, rate in table:
            if name == instrument:
                return rate
        return None

    def __bool__(self) -> bool:
        return bool(self.long or self.short)


NO_RATES = FinancingRates()


@dataclass(frozen=True, slots=True, kw_only=True)
class FinancingCharge:
    """One charge on one strategy's position: positive earned, negative paid."""

    charge_id: str       # unique: "rollover:<account>:<instrument>:<strategy>:<time>" or the venue's id
    account: str
    instrument: str
    strategy: str
    time: datetime       # the rollover (or the venue's transaction time)
    amount: Decimal
    currency: str        # the money's currency: the instrument's quote, or as the venue states
    quantity: Decimal    # the signed position charged (0 when the venue does not say)
    price: Decimal | None = None        # the close-out price used by `rates`
    annual_rate: Decimal | None = None  # the rate used by `rates`
    source: str = "rates"  # "rates" | "venue"

    def __post_init__(self) -> None:
        if not self.amount.is_finite():
            raise ValueError(f"financing {self.charge_id}: amount {self.amount} must be a finite number")
        if self.source not in SOURCES:
            raise ValueError(f"financing {self.charge_id}: source {self.source!r} is not one of {', '.join(SOURCES)}")


def rollover_charge(*, account: str, instrument: str, strategy: str, quantity: Decimal, price: Decimal,
                    rollover: datetime, rates: FinancingRates, currency: str) -> FinancingCharge | None:
    """The `rates` charge of one position at one rollover; None when the instrument has no rate."""
    rate = rates.annual_rate(instrument, quantity)
    if rate is None or quantity == 0:
        return None
    amount = abs(quantity) * price * rate / DAYS_PER_YEAR
    return FinancingCharge(charge_id=f"rollover:{account}:{instrument}:{strategy}:{rollover.isoformat()}",
                           account=account, instrument=instrument, strategy=strategy, time=rollover,
                           amount=amount, currency=currency, quantity=quantity, price=price, annual_rate=rate)
