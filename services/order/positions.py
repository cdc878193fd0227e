"""Positions for pre-trade risk: the position plane's ledger, and the order plane's own book.

The position plane is the ledger of record (PnL, drawdown, losses). The order plane
also keeps a net quantity per (account, strategy, instrument) from its own fills,
because it is the single writer of fills: that book is exact at the moment of the
decision (the position plane lags by one WatchFills hop) and it is there when the
position plane is not. It decides "does this order reduce" and stands in when the
position plane cannot be reached, so a strategy can always get out.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Protocol

import grpc

from quantmesh.position.v1 import position_pb2, position_pb2_grpc
from services.common.channels import open_channel


class PositionsUnavailable(Exception):
    """The position plane did not answer; entries fail closed."""


class PositionsPort(Protocol):
    async def strategy_position(self, account: str, slug: str, instrument: str) -> Decimal: ...

    async def instrument_position(self, account: str, instrument: str) -> Decimal: ...

    async def account_drawdown_fraction(self, account: str) -> Decimal: ...

    async def consecutive_losses(self, account: str, slug: str) -> int: ...


class OwnBook:
    """Net signed quantity per (account, strategy, instrument), built from the plane's own fills."""

    def __init__(self, positions: dict[tuple[str, str, str], Decimal] | None = None) -> None:
        self._net: dict[tuple[str, str, str], Decimal] = dict(positions or {})

    def reset(self, positions: dict[tuple[str, str, str], Decimal]) -> None:
        self._net = dict(positions)

    def apply(self, account: str, slug: str, instrument: str, signed_quantity: Decimal) -> None:
        key = (account, slug, instrument)
        self._net[key] = self._net.get(key, Decimal(0)) + signed_quantity

    def strategy(self, account: str, slug: str, instrument: str) -> Decimal:
        return self._net.get((account, slug, instrument), Decimal(0))

    def instrument(self, account: str, instrument: str) -> Decimal:
        return sum((q for (a, _, i), q in self._net.items() if a == account and i == instrument), Decimal(0))


class OwnBookPositions:
    """A PositionsPort over the own book: sizes only, no PnL (drawdown 0, no losses).

    For a backtest without a ledger, or QUANTMESH_POSITIONS_SOURCE=own_book.
    """

    def __init__(self, book: OwnBook) -> None:
        self._book = book

    async def strategy_position(self, account, slug, instrument):
        return self._book.strategy(account, slug, instrument)

    async def instrument_position(self, account, instrument):
        return self._book.instrument(account, instrument)

    async def account_drawdown_fraction(self, account):
        return Decimal(0)

    async def consecutive_losses(self, account, slug):
        return 0


class GrpcPositions:
    """PositionsPort over Position.Snapshot."""

    def __init__(self, address: str, *, token: str | None = None, timeout: float = 2.0) -> None:
        self._channel = open_channel(address, token=token)
        self._stub = position_pb2_grpc.PositionStub(self._channel)
        self._timeout = timeout

    async def close(self) -> None:
        await self._channel.close()

    async def _snapshot(self, **filters) -> position_pb2.SnapshotResponse:
        try:
            return await self._stub.Snapshot(position_pb2.SnapshotRequest(**filters), timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise PositionsUnavailable(f"Position.Snapshot failed with {exc.code().name}: {exc.details()}") from None

    async def strategy_position(self, account, slug, instrument):
        reply = await self._snapshot(account=account, strategy_slugs=[slug], instruments=[instrument])
        return sum((Decimal(p.quantity) for p in reply.positions), Decimal(0))

    async def instrument_position(self, account, instrument):
        reply = await self._snapshot(account=account, instruments=[instrument])
        return sum((Decimal(p.quantity) for p in reply.positions), Decimal(0))

    async def account_drawdown_fraction(self, account):
        reply = await self._snapshot(account=account, strategy_slugs=["-"])  # account figures only
        return Decimal(reply.account.drawdown_fraction or "0")

    async def consecutive_losses(self, account, slug):
        reply = await self._snapshot(account=account, strategy_slugs=[slug], include_flat=True)
        return next((s.consecutive_losses for s in reply.strategies if s.slug == slug), 0)
