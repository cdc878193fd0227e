"""Money in the account's currency: which quote converts an instrument's money, at which side.

An instrument BASE_QUOTE makes its PnL, commission and financing in QUOTE (EUR_USD in USD,
USD_JPY in JPY). The account keeps its books in one currency (QUANTMESH_ACCOUNT_CURRENCY,
JPY by default). Money in QUOTE becomes account money through the market's own quote of
the two currencies, as a trader would exchange it:

- QUOTE is the account currency (USD_JPY on a JPY account): nothing to convert;
- the pair QUOTE_ACCOUNT is quoted (EUR_USD on a JPY account: USD_JPY): amount x rate;
- the pair ACCOUNT_QUOTE is quoted (EUR_JPY on a USD account: USD_JPY): amount / rate;
- neither: the money stays unconverted (see "pending" below); there is no triangulation
  through a third currency, so a configuration that needs one fails visibly.

Which side of the quote: a gain is QUOTE money the account would sell for its own
currency, a loss (or a commission) is QUOTE money it would have to buy. A gain converts at
what selling QUOTE gets, a loss at what buying QUOTE costs: with QUOTE_ACCOUNT quoted, a
gain x bid and a loss x ask; with ACCOUNT_QUOTE quoted, a gain / ask and a loss / bid. It
is the close-out rule the marks follow (a long at the bid, a short at the ask) and the way
OANDA splits its gain and loss home-conversion factors; it never flatters the account.

When: realized PnL, commission and financing convert at the newest quote of the conversion
pair the ledger holds when it books them ("the rate at the fill"); the quote is recorded
with the fill. Unrealized PnL converts at the current quote, on every mark.

Pending: money booked before any quote of its conversion pair has arrived (a fresh
database, or a pair missing from market data's instruments) is kept in its own currency,
listed as unconverted in the account figures (never added to them in the wrong currency),
and converted at the first quote that arrives, which is then recorded as its rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


class Quote(Protocol):
    instrument: str
    bid: Decimal
    ask: Decimal
    time: datetime


def quote_currency(instrument: str) -> str:
    """USD for EUR_USD, JPY for BTC_JPY."""
    return instrument.rpartition("_")[2]


@dataclass(frozen=True, slots=True)
class Rate:
    """The quote money was converted at; `instrument` "" when no conversion was needed."""

    instrument: str
    bid: Decimal
    ask: Decimal
    time: datetime | None
    inverse: bool  # ACCOUNT_QUOTE is quoted: divide instead of multiply

    def convert(self, amount: Decimal) -> Decimal:
        """A gain at the side selling the currency gets, a loss at the side buying it costs."""
        if not self.instrument or amount == 0:
            return amount
        if self.inverse:
            return amount / (self.ask if amount > 0 else self.bid)
        return amount * (self.bid if amount > 0 else self.ask)

    def convert_cost(self, cost: Decimal) -> Decimal:
        """A commission: money paid (positive) converts as a loss, a rebate as a gain."""
        return -self.convert(-cost)


SAME_CURRENCY = Rate(instrument="", bid=Decimal(1), ask=Decimal(1), time=None, inverse=False)


class Converter:
    """Finds the rate for money in one currency from the quotes the ledger holds."""

    def __init__(self, account_currency: str) -> None:
        self.account_currency = account_currency

    def pairs(self, currency: str) -> tuple[tuple[str, bool], ...]:
        """The instruments that can convert `currency`, preferred first, with `inverse`."""
        if currency == self.account_currency:
            return ()
        return ((f"{currency}_{self.account_currency}", False), (f"{self.account_currency}_{currency}", True))

    def rate(self, currency: str, quotes: Mapping[str, Quote]) -> Rate | None:
        """The newest usable rate; SAME_CURRENCY for the account's own; None when no quote is known."""
        if currency == self.account_currency:
            return SAME_CURRENCY
        for instrument, inverse in self.pairs(currency):
            quote = quotes.get(instrument)
            if quote is not None:
                return Rate(instrument=instrument, bid=quote.bid, ask=quote.ask, time=quote.time, inverse=inverse)
        return None

    def converts(self, instrument: str) -> str | None:
        """The currency a quote of `instrument` converts into the account's, if any."""
        base, _, quote = instrument.partition("_")
        if quote == self.account_currency and base != quote:
            return base
        if base == self.account_currency and quote != base:
            return quote
        return None

    def missing_pair(self, currency: str) -> str:
        """The instrument to add to market data so `currency` can be converted."""
        return self.pairs(currency)[0][0] if currency != self.account_currency else ""
