"""The position plane's exposure view, followed as a stream and answered locally.

Used by the order plane's pre-trade risk and by strategy workers, so neither makes a
Position.Snapshot call per decision:

- `ExposureSnapshot` is one message of `Position.WatchExposure`, parsed into exact
  values: open positions, the account's equity, drawdown, money not yet converted into
  its currency and its last trading days (daily realized PnL and peaks), and each
  strategy's consecutive losses, all as of one fill seq (`last_fill_seq`);
- `ExposureFollower` keeps the newest snapshot, reconnecting with backoff forever,
  and says how old it is. The position plane speaks at least every heartbeat, so a
  view older than `staleness_seconds` means the plane (or the way to it) is down;
  the caller decides what that refuses. `wait_for_fill_seq` lets a caller that knows
  a fill was recorded wait until the view includes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Mapping

import grpc
from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.common.channels import open_channel
from services.common.reconnect import PEER_BACKOFF, follow_forever
from services.common.tradingday import DayFigures, TradingDay

log = logging.getLogger(__name__)
ZERO = Decimal(0)


@dataclass(frozen=True, slots=True)
class HeldPosition:
    """One open position of one strategy in one instrument."""

    strategy: str
    instrument: str
    quantity: Decimal  # signed
    average_price: Decimal
    opened_time: datetime | None


@dataclass(frozen=True, slots=True)
class Unconverted:
    """Money the account's figures leave out: no quote converts it into the account's currency yet."""

    currency: str
    amount: Decimal
    conversion_instrument: str  # whose quote would convert it

    def __str__(self) -> str:
        pair = f" (no {self.conversion_instrument} quote yet)" if self.conversion_instrument else ""
        return f"{self.amount} {self.currency}{pair}"


@dataclass(frozen=True, slots=True)
class ExposureSnapshot:
    account: str
    last_fill_seq: int
    as_of: datetime
    received_at: float  # monotonic seconds when it arrived
    positions: tuple[HeldPosition, ...]
    drawdown_fraction: Decimal
    consecutive_losses: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    currency: str = ""
    equity: Decimal | None = None  # None from a position plane that does not send it
    open_position_count: int = 0   # of the whole account (open_positions(...) lists one strategy's)
    unconverted: tuple[Unconverted, ...] = ()
    days: tuple[DayFigures, ...] = ()  # oldest first, the current trading day last
    # Ledger/venue differences reconciliation holds for an operator: entries stop while any is held.
    reconciliation_blocks: tuple[str, ...] = ()

    def strategy_position(self, slug: str, instrument: str) -> Decimal:
        return sum((p.quantity for p in self.positions if p.strategy == slug and p.instrument == instrument), ZERO)

    def instrument_position(self, instrument: str) -> Decimal:
        return sum((p.quantity for p in self.positions if p.instrument == instrument), ZERO)

    def open_positions(self, slug: str, instrument: str) -> list[HeldPosition]:
        return [p for p in self.positions if p.strategy == slug and p.instrument == instrument]

    def losses(self, slug: str) -> int:
        return self.consecutive_losses.get(slug, 0)

    @classmethod
    def from_proto(cls, message: position_pb2.WatchExposureResponse, received_at: float) -> "ExposureSnapshot":
        """Raises ValueError with a sentence when a figure is not an exact decimal."""
        positions = tuple(HeldPosition(
            strategy=p.strategy_slug, instrument=p.instrument, quantity=_decimal("quantity", p.quantity),
            average_price=_decimal("average_price", p.average_price or "0"),
            opened_time=p.opened_time.ToDatetime(tzinfo=timezone.utc) if p.HasField("opened_time") else None)
            for p in message.positions)
        account = message.account
        return cls(account=account.account, last_fill_seq=message.last_fill_seq,
                   as_of=message.as_of.ToDatetime(tzinfo=timezone.utc), received_at=received_at,
                   positions=positions,
                   drawdown_fraction=_decimal("drawdown_fraction", account.drawdown_fraction or "0"),
                   consecutive_losses=MappingProxyType({s.slug: s.consecutive_losses for s in message.strategies}),
                   currency=account.currency, equity=_decimal("equity", account.equity) if account.equity else None,
                   open_position_count=account.open_positions,
                   unconverted=tuple(Unconverted(u.currency, _decimal("unconverted amount", u.amount),
                                                 u.conversion_instrument) for u in account.unconverted),
                   days=tuple(_day(d) for d in message.days),
                   reconciliation_blocks=tuple(message.reconciliation_blocks))


def _decimal(name: str, text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"the exposure stream sent {name} {text!r}, which is not a decimal") from None
    if not value.is_finite():
        raise ValueError(f"the exposure stream sent {name} {text!r}, which is not finite")
    return value


def _day(message) -> DayFigures:
    try:
        on = date.fromisoformat(message.date)
    except ValueError:
        raise ValueError(f"the exposure stream sent a trading day dated {message.date!r}, not YYYY-MM-DD") from None
    day = TradingDay(start=message.start.ToDatetime(tzinfo=timezone.utc),
                     end=message.end.ToDatetime(tzinfo=timezone.utc), date=on)
    return DayFigures(day=day, opening_equity=_decimal("opening_equity", message.opening_equity or "0"),
                      peak_equity=_decimal("peak_equity", message.peak_equity or "0"),
                      realized_pnl=_decimal("realized_pnl", message.realized_pnl or "0"))


class _StreamSilent(Exception):
    pass


class ExposureFollower:
    """Follows Position.WatchExposure and keeps the newest view."""

    def __init__(self, address: str, *, token: str | None = None, account: str = "",
                 strategies: Iterable[str] = (), instruments: Iterable[str] = (), staleness_seconds: float = 3.0,
                 monotonic: Callable[[], float] = time.monotonic, max_backoff: float = PEER_BACKOFF) -> None:
        self.address = address
        self._token = token
        self._request = position_pb2.WatchExposureRequest(account=account, strategy_slugs=list(strategies),
                                                          instruments=list(instruments))
        self.staleness_seconds = staleness_seconds
        self._monotonic = monotonic
        self._max_backoff = max_backoff
        self._latest: ExposureSnapshot | None = None
        self._arrived = asyncio.Event()
        self._task: asyncio.Task | None = None
        self.sessions = 0

    @property
    def latest(self) -> ExposureSnapshot | None:
        return self._latest

    def age(self) -> float | None:
        """Seconds since the newest view arrived; None before the first."""
        return None if self._latest is None else self._monotonic() - self._latest.received_at

    def stale_reason(self) -> str | None:
        """Why the view cannot be trusted for new risk, or None when it is fresh."""
        if self._latest is None:
            return f"no exposure view from the position plane at {self.address} yet"
        age = self.age()
        if age > self.staleness_seconds:
            return (f"the position plane at {self.address} has been silent for {age:.1f} s "
                    f"(staleness bound {self.staleness_seconds:g} s)")
        return None

    def accept(self, snapshot: ExposureSnapshot) -> None:
        """Takes a new view (the stream calls this; tests and in-process wiring may too)."""
        self._latest = snapshot
        arrived, self._arrived = self._arrived, asyncio.Event()
        arrived.set()

    async def wait_for_fill_seq(self, fill_seq: int, timeout: float) -> bool:
        """True once the view includes every fill up to `fill_seq`; False after `timeout` seconds."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._latest is None or self._latest.last_fill_seq < fill_seq:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            arrived = self._arrived
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(arrived.wait(), remaining)
        return True

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._follow(), name=f"exposure-follower {self.address}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        await follow_forever(self._session, what="position plane (exposure view)", address=self.address, log=log,
                             max_backoff=self._max_backoff)

    async def _session(self) -> bool:
        """One WatchExposure call; True when it delivered at least one view before it ended."""
        delivered = False
        channel = open_channel(self.address, token=self._token, traced=False)
        try:
            self.sessions += 1
            call = position_pb2_grpc.PositionStub(channel).WatchExposure(self._request)
            try:
                while True:
                    try:
                        message = await asyncio.wait_for(call.read(), timeout=self.staleness_seconds)
                    except asyncio.TimeoutError:
                        raise _StreamSilent(f"no exposure view for {self.staleness_seconds:g} s") from None
                    except grpc.RpcError:
                        if delivered:
                            return True
                        raise
                    if message is grpc.aio.EOF:
                        return delivered
                    self.accept(ExposureSnapshot.from_proto(message, self._monotonic()))
                    delivered = True
            finally:
                call.cancel()
        except _StreamSilent:
            if delivered:
                return True
            raise
        finally:
            await channel.close()


__all__ = ["ExposureFollower", "ExposureSnapshot", "HeldPosition", "Unconverted"]
