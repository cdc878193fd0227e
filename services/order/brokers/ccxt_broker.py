"""Any ccxt exchange as a Broker (ccxt.async_support).

Orders carry our client id (`params={'clientOrderId': id}`, which ccxt maps to the exchange's own
field, e.g. Binance's newClientOrderId), so `lookup` asks the exchange by client id
(`fetch_order(None, symbol, {'clientOrderId': id})`, Binance: origClientOrderId). Exchanges that
refuse a duplicate client id make a resend safe; after a timeout `submit` looks the order up
before the gateway may send again. ccxt's error tree maps onto the broker errors:
RateLimitExceeded/DDoSProtection -> BrokerOverloaded, a network error or timeout -> lookup then
RetryableBrokerError, InvalidOrder/InsufficientFunds/AuthenticationError -> BrokerRejected.
The exchange object is passed in (services.common.venues.make_ccxt_exchange builds one from
CcxtSettings); `close()` closes it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation

import ccxt

from services.order.brokers.base import (BrokerAck, BrokerExecution, BrokerFill, BrokerOrder, BrokerOverloaded,
                                         BrokerPositionView, BrokerRejected, RetryableBrokerError)

log = logging.getLogger(__name__)
_STATES = {"open": "new", "closed": "filled", "canceled": "canceled", "cancelled": "canceled",
           "expired": "expired", "rejected": "rejected"}


def _symbol(instrument: str) -> str:
    return instrument.replace("_", "/")


class CcxtBroker:
    def __init__(self, exchange, instruments: tuple[str, ...]) -> None:
        self.exchange = exchange
        self.name = f"ccxt:{exchange.id}"
        self.instruments = tuple(instruments)
        self._instrument_of: dict[str, str] = {}  # client id -> instrument: ccxt looks orders up per symbol

    async def close(self) -> None:
        await self.exchange.close()

    def _venue(self) -> str:
        return f"ccxt {self.exchange.id}"

    def _translate(self, exc: Exception, what: str) -> Exception:
        # ccxt messages can quote the request URL; they never carry the key or secret (sent as headers/signature).
        text = f"{self._venue()}: {what} failed: {type(exc).__name__}: {str(exc)[:300]}"
        if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
            return BrokerOverloaded(text, 1.0)
        if isinstance(exc, (ccxt.AuthenticationError, ccxt.PermissionDenied, ccxt.InvalidOrder,
                            ccxt.InsufficientFunds, ccxt.BadSymbol, ccxt.BadRequest)):
            return BrokerRejected(text)
        return RetryableBrokerError(text)

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        if order.order_type not in ("market", "limit"):
            raise BrokerRejected(f"{self._venue()}: this adapter sends market and limit orders only")
        symbol = _symbol(order.instrument)
        self._instrument_of[order.client_order_id] = order.instrument
        try:
            created = await self.exchange.create_order(
                symbol, order.order_type, order.side, float(order.quantity),
                float(order.limit_price) if order.limit_price is not None else None,
                {"clientOrderId": order.client_order_id})
        except (ccxt.NetworkError, ccxt.ExchangeNotAvailable) as exc:
            if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
                raise self._translate(exc, "create_order") from None
            # In doubt: ask by client id before the gateway may send again.
            ack = await self.lookup(order.client_order_id)
            if ack is not None:
                return ack
            raise self._translate(exc, "create_order") from None
        except ccxt.BaseError as exc:
            if "duplicate" in str(exc).lower():  # the exchange already has this client id: adopt it
                ack = await self.lookup(order.client_order_id)
                if ack is not None:
                    return ack
            raise self._translate(exc, "create_order") from None
        return self._ack(order.client_order_id, created)

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        instruments = ([self._instrument_of[client_order_id]] if client_order_id in self._instrument_of
                       else list(self.instruments))
        for instrument in instruments:
            try:
                found = await self.exchange.fetch_order(None, _symbol(instrument), {"clientOrderId": client_order_id})
            except ccxt.OrderNotFound:
                continue
            except ccxt.BaseError as exc:
                raise self._translate(exc, "fetch_order") from None
            return self._ack(client_order_id, found)
        return None

    async def cancel(self, client_order_id: str) -> BrokerAck:
        instrument = self._instrument_of.get(client_order_id)
        ack = await self.lookup(client_order_id)
        if ack is None:
            raise BrokerRejected(f"{self._venue()}: no order with client id {client_order_id!r} to cancel")
        instrument = self._instrument_of.get(client_order_id, instrument) or self.instruments[0]
        try:
            await self.exchange.cancel_order(ack.broker_order_id, _symbol(instrument))
        except ccxt.BaseError as exc:
            raise self._translate(exc, "cancel_order") from None
        return (await self.lookup(client_order_id)) or ack

    async def positions(self, account: str) -> list[BrokerPositionView]:
        try:
            if self.exchange.has.get("fetchPositions") and self.exchange.options.get("defaultType") not in (
                    None, "spot"):
                rows = await self.exchange.fetch_positions([_symbol(i) for i in self.instruments])
                return [BrokerPositionView(account=account, instrument=r["symbol"].replace("/", "_").split(":")[0],
                                           quantity=Decimal(str(r["contracts"] or 0)) * (
                                               -1 if r.get("side") == "short" else 1),
                                           average_price=Decimal(str(r["entryPrice"])) if r.get("entryPrice") else None)
                        for r in rows]
            balance = await self.exchange.fetch_balance()
        except ccxt.BaseError as exc:
            raise self._translate(exc, "positions") from None
        views = []
        for instrument in self.instruments:  # spot: the position is the base currency held
            base = instrument.split("_")[0]
            total = (balance.get("total") or {}).get(base)
            if total:
                views.append(BrokerPositionView(account=account, instrument=instrument,
                                                quantity=Decimal(str(total)), average_price=None))
        return views

    async def executions(self) -> AsyncIterator[BrokerExecution]:
        """Not wired: resting orders are seen through lookup and recovery."""
        return
        yield  # pragma: no cover

    def _ack(self, client_order_id: str, created: dict) -> BrokerAck:
        venue = self._venue()
        order_id = created.get("id")
        if not order_id:
            raise RetryableBrokerError(f"{venue}: the order reply has no field 'id'")
        state = _STATES.get(created.get("status") or "open")
        if state is None:
            raise RetryableBrokerError(f"{venue}: the order reply has an unknown 'status' {created.get('status')!r}")
        try:
            filled = Decimal(str(created.get("filled") or 0))
            fills = self._fills(client_order_id, str(order_id), created, filled, state)
        except (InvalidOperation, TypeError, KeyError):
            raise RetryableBrokerError(f"{venue}: the order reply has a non-numeric 'filled', 'price' or "
                                       "'amount'") from None
        if state == "new" and filled > 0:
            state = "partially_filled"
        return BrokerAck(client_order_id=client_order_id, broker_order_id=str(order_id), state=state,
                         filled_quantity=filled, fills=fills)

    def _fills(self, client_order_id: str, order_id: str, created: dict, filled: Decimal,
               state: str) -> tuple[BrokerFill, ...]:
        """Per-trade fills when the exchange lists them; else one fill, only once the order is wholly filled.

        A cumulative "filled so far" cannot become fills without double counting, so a partial
        fill without trade detail is left for lookup to report once the order is done.
        """
        trades = created.get("trades") or []
        if trades:
            return tuple(BrokerFill(
                broker_fill_id=f"{self.name}-{t.get('id') or order_id + '-' + str(i)}", client_order_id=client_order_id,
                quantity=Decimal(str(t["amount"])), price=Decimal(str(t["price"])),
                commission=Decimal(str((t.get("fee") or {}).get("cost") or 0)),
                time=_time(t.get("timestamp") or created.get("timestamp"))) for i, t in enumerate(trades))
        if state != "filled" or filled <= 0:
            return ()
        price = created.get("average") or created.get("price")
        if price is None:
            raise RetryableBrokerError(f"{self._venue()}: a filled order reply has no field 'average'")
        return (BrokerFill(broker_fill_id=f"{self.name}-{order_id}-all", client_order_id=client_order_id,
                           quantity=filled, price=Decimal(str(price)),
                           commission=Decimal(str((created.get("fee") or {}).get("cost") or 0)),
                           time=_time(created.get("lastTradeTimestamp") or created.get("timestamp"))),)


def _time(stamp) -> datetime:
    return datetime.fromtimestamp(stamp / 1000, timezone.utc) if stamp else datetime.now(timezone.utc)
