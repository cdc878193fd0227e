"""The ledger's records: fills, marks, positions, account and strategy totals and figures, and
the money each fill or financing charge books (`Booking`). Plain data; the rules that move
them are in services/position/ledger.py, whose docstring explains every figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Context, Decimal, localcontext

from services.common.vocabulary import signed_quantity
from services.position.currency import Rate
from services.position.financing import FinancingCharge

ZERO = Decimal(0)
_LEDGER_CONTEXT = Context(prec=60)

PositionKey = tuple[str, str, str]  # (account, instrument, strategy)


@dataclass(frozen=True, slots=True)
class LedgerFill:
    """One execution as the ledger sees it. `quantity` is positive; `side` says the direction."""

    fill_id: str
    account: str
    instrument: str
    strategy: str
    side: str  # "buy" or "sell"
    quantity: Decimal
    price: Decimal
    commission: Decimal
    time: datetime

    def __post_init__(self) -> None:
        if self.side not in ("buy", "sell"):
            raise ValueError(f"fill {self.fill_id}: side {self.side!r} is not buy or sell")
        if not self.quantity.is_finite() or self.quantity <= 0:
            raise ValueError(f"fill {self.fill_id}: quantity {self.quantity} must be a positive number")
        if not self.price.is_finite() or self.price <= 0:
            raise ValueError(f"fill {self.fill_id}: price {self.price} must be a positive number")
        if not self.commission.is_finite():
            raise ValueError(f"fill {self.fill_id}: commission {self.commission} must be a finite number")

    @property
    def signed_quantity(self) -> Decimal:
        return signed_quantity(self.side, self.quantity)


@dataclass(frozen=True, slots=True)
class Mark:
    """The latest quote of an instrument, used for unrealized PnL and currency conversion."""

    instrument: str
    bid: Decimal
    ask: Decimal
    time: datetime


@dataclass(slots=True)
class Position:
    account: str
    instrument: str
    strategy: str
    quantity: Decimal = ZERO
    average_price: Decimal | None = None
    realized_pnl: Decimal = ZERO  # quote currency
    commission: Decimal = ZERO    # quote currency
    opened_time: datetime | None = None
    updated_time: datetime | None = None
    # The open round trip, so its net result is known when it ends (quote currency).
    trip_realized: Decimal = ZERO
    trip_commission: Decimal = ZERO
    # In the account's currency: what of the above has been converted, and financing.
    realized_pnl_account: Decimal = ZERO
    commission_account: Decimal = ZERO
    financing: Decimal = ZERO

    @property
    def key(self) -> PositionKey:
        return (self.account, self.instrument, self.strategy)

    @property
    def is_flat(self) -> bool:
        return self.quantity == 0

    @property
    def net_pnl_account(self) -> Decimal:
        return self.realized_pnl_account - self.commission_account + self.financing

    def unrealized_at(self, mark: Mark | None) -> Decimal:
        """In the quote currency."""
        with localcontext(_LEDGER_CONTEXT):
            return self._unrealized(mark)

    def _unrealized(self, mark: Mark | None) -> Decimal:
        """Caller holds the ledger context (the hot path enters it once, not per position)."""
        if mark is None or self.quantity == 0 or self.average_price is None:
            return ZERO
        if self.quantity > 0:
            return (mark.bid - self.average_price) * self.quantity
        return (self.average_price - mark.ask) * -self.quantity

    def mark_price(self, mark: Mark | None) -> Decimal | None:
        """The side of the quote this position would close at; None when flat or unmarked."""
        if mark is None or self.quantity == 0:
            return None
        return mark.bid if self.quantity > 0 else mark.ask


@dataclass(slots=True)
class StrategyRecord:
    account: str
    slug: str
    wins: int = 0
    losses: int = 0
    consecutive_losses: int = 0


@dataclass(slots=True)
class AccountRecord:
    """Running totals in the account's currency."""

    account: str
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO
    peak_equity: Decimal | None = None  # None until the first figure: then the starting cash
    max_drawdown: Decimal = ZERO
    financing: Decimal = ZERO


@dataclass(frozen=True, slots=True)
class AccountFigures:
    account: str
    balance: Decimal
    unrealized_pnl: Decimal
    equity: Decimal
    peak_equity: Decimal
    drawdown: Decimal
    drawdown_fraction: Decimal
    max_drawdown: Decimal
    realized_pnl: Decimal = ZERO
    commission: Decimal = ZERO
    financing: Decimal = ZERO
    # Money the figures leave out because no quote converts it yet: (currency, amount), by currency.
    unconverted: tuple[tuple[str, Decimal], ...] = ()


@dataclass(frozen=True, slots=True)
class StrategyFigures:
    slug: str
    realized_pnl_net: Decimal  # realized - commission + financing, account currency, over its instruments
    unrealized_pnl: Decimal    # account currency (what can be converted)
    consecutive_losses: int
    wins: int
    losses: int


@dataclass(frozen=True, slots=True)
class RoundTrip:
    """A round trip that ended with this fill; its net is in the quote currency."""

    net_pnl: Decimal
    won: bool


@dataclass(frozen=True, slots=True)
class Booking:
    """The money one fill or financing charge booked, in its own currency and the account's.

    `rate` is the quote it was converted at (SAME_CURRENCY's empty instrument when no
    conversion was needed); while `pending`, no quote was known and the account amounts
    are None.
    """

    kind: str  # "fill" (adjustments too: their key starts with "adjustment:") | "financing"
    key: str   # the fill id or the financing charge id
    account: str
    instrument: str
    strategy: str
    time: datetime
    currency: str
    pnl: Decimal          # realized PnL (fill) or the financing amount, in `currency`
    commission: Decimal   # in `currency`; 0 for financing
    pending: bool = False
    rate: Rate | None = None
    pnl_account: Decimal | None = None
    commission_account: Decimal | None = None

    @property
    def net(self) -> Decimal:
        return self.pnl - self.commission

    @property
    def net_account(self) -> Decimal:
        return (self.pnl_account or ZERO) - (self.commission_account or ZERO)


@dataclass(slots=True)
class Bookkeeping:
    """Durable changes no fill carries, waiting for the engine to store them."""

    financing: list[tuple[FinancingCharge, Booking]] = field(default_factory=list)
    conversions: list[Booking] = field(default_factory=list)  # pending money converted at last
    positions: set[PositionKey] = field(default_factory=set)
    accounts: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.financing or self.conversions)


@dataclass(frozen=True, slots=True)
class FillOutcome:
    """What one fill changed: copies, safe to store after the ledger moves on."""

    position: Position
    strategy: StrategyRecord
    account: AccountRecord
    realized_pnl: Decimal  # realized by this fill, quote currency
    round_trip: RoundTrip | None
    figures: AccountFigures
    booking: Booking
