"""Any ccxt exchange as a Broker (ccxt.async_support), honest about what each exchange can do.

Orders carry our client id (`params={'clientOrderId': id}`; Binance: newClientOrderId) and
`lookup` asks by it (`fetch_order(None, symbol, {'clientOrderId': id})`; Binance:
origClientOrderId). Binance refuses a reused client id only among *open* orders
("newClientOrderId: A unique id among open orders",
https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints), so a
resend after a fill fills again: a create_order whose outcome is unknown is never repeated.

ccxt's error tree (ccxt/base/errors.py) says what a failure proves:
- OperationFailed and below (NetworkError, RequestTimeout, ExchangeNotAvailable, BadResponse;
  Binance -1006 "execution status unknown" is OperationFailed, -1007 RequestTimeout, HTTP 5xx
  ExchangeNotAvailable) -> OutcomeUnknown, after one lookup by client id;
- RateLimitExceeded / DDoSProtection -> BrokerOverloaded; InvalidNonce (-1021, outside
  recvWindow: refused before execution) -> RetryableBrokerError;
- NotSupported, ArgumentsRequired -> BrokerRejected (final: no retry makes them work);
- any other ExchangeError (InvalidOrder, InsufficientFunds, AuthenticationError, BadRequest,
  ...) -> BrokerRejected: the exchange answered no.

Exchanges without client-id dedupe and lookup (anything not in
services.common.venues.CCXT_CLIENT_ID_EXCHANGES, e.g. bitflyer) run only with
`client_ids=False` (QUANTMESH_CCXT_NO_RESEND=1): lookups go by the exchange's own id learnt
from replies, and whatever cannot be looked up is OutcomeUnknown, never None.

Amounts and prices (stop prices too) must be exact at the market's precision (ccxt markets):
ccxt would truncate 0.012345 to 0.01234 and the order would never complete, so such an order is
refused before sending. Resting orders are followed by polling fetch_order inside the order budget.

Stop orders are stop-markets held by the exchange, sent as ccxt's unified trigger order
(`ccxt_orders.stop_param`; Binance spot: STOP_LOSS, resting as NEW until the last trade reaches
its stopPrice, then executed as a market order). An exchange for which ccxt declares no stop
orders, or a Binance symbol that does not list STOP_LOSS, is refused before sending
(venue.order_type). On spot, one closing order per position rests at a time (`ccxt_groups`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from decimal import Decimal

import ccxt

from services.common.clock import Clock, WallClock
from services.common.vocabulary import OrderType
from services.order.brokers.base import (FINISHED_STATES, BrokerAck, BrokerExecution, BrokerOrder, BrokerOverloaded,
                                         BrokerPositionView, BrokerRejected, OutcomeUnknown, RetryableBrokerError)
from services.order.brokers.budget import VenueBudget
from services.order.brokers.ccxt_groups import OCO_RULE, ClosingGroups, rests
from services.order.brokers.ccxt_orders import (ack_of, finished_at_venue, stop_listed, stop_param, symbol_of,
                                                venue_filled)
from services.order.brokers.precision import PRECISION_RULE, plain
from services.order.brokers.resting import FillTracker, TradesLag

log = logging.getLogger(__name__)


class CcxtBroker:
    def __init__(self, exchange, instruments: tuple[str, ...], *, client_ids: bool = True,
                 clock: Clock | None = None, budget: VenueBudget | None = None, poll_seconds: float = 2.0) -> None:
        self.exchange = exchange
        self.name = f"ccxt:{exchange.id}"
        self.instruments = tuple(instruments)
        self.client_ids = client_ids
        self._clock = clock or WallClock()
        self.budget = budget or VenueBudget.split(50.0, 5.0, self._clock)
        self._poll_seconds = poll_seconds
        self._instrument_of: dict[str, str] = {}  # client id -> instrument: ccxt looks orders up per symbol
        self._order_id_of: dict[str, str] = {}    # client id -> the exchange's order id, from its replies
        self._open: set[str] = set()              # client ids of orders still working at the exchange
        self._tracker = FillTracker()
        self._lag = TradesLag(self._clock, self._venue())  # ended orders whose trades are not all listed yet
        self._groups = ClosingGroups()            # spot: the resting closing order of each position

    @property
    def spot(self) -> bool:
        """Spot endpoints: nothing is reduce-only, and an open sell holds its coins."""
        return self.exchange.options.get("defaultType") in (None, "spot")

    @property
    def one_resting_close(self) -> bool:
        """On spot one closing order rests per position (ccxt_groups): protection sends the stop-loss alone."""
        return self.spot

    async def close(self) -> None:
        await self.exchange.close()

    def _venue(self) -> str:
        return f"ccxt {self.exchange.id}"

    def _translate(self, exc: Exception, what: str) -> Exception:
        # ccxt messages can quote the request URL; they never carry the key or secret (sent as headers/signature).
        text = f"{self._venue()}: {what} failed: {type(exc).__name__}: {str(exc)[:300]}"
        if isinstance(exc, (ccxt.RateLimitExceeded, ccxt.DDoSProtection)):
            return BrokerOverloaded(text, 1.0)
        if isinstance(exc, ccxt.InvalidNonce):
            return RetryableBrokerError(text)
        if isinstance(exc, ccxt.OperationFailed):
            return OutcomeUnknown(text)
        if isinstance(exc, (ccxt.NotSupported, ccxt.ArgumentsRequired)):
            return BrokerRejected(text, rule="venue.not_supported")
        if isinstance(exc, ccxt.BaseError):
            return BrokerRejected(text)
        return OutcomeUnknown(text)

    # ---- submit -------------------------------------------------------------------------

    async def _exact(self, order: BrokerOrder) -> tuple[float, float | None]:
        """The amount and price, refused unless the market takes them (and a stop price) exactly as asked."""
        symbol = symbol_of(order.instrument)
        try:
            await self.exchange.load_markets()
            self.exchange.market(symbol)
        except ccxt.BadSymbol as exc:
            raise BrokerRejected(f"{self._venue()} does not trade {symbol}: {exc}", rule="venue.instrument") from None
        except ccxt.BaseError as exc:
            raise RetryableBrokerError(f"{self._venue()}: markets unavailable ({exc}); the order was not sent") from None
        checks = [("quantity", order.quantity, "quantity", self.exchange.amount_to_precision)]
        if order.limit_price is not None:
            checks.append(("price", order.limit_price, "price", self.exchange.price_to_precision))
        if order.order_type == OrderType.STOP:
            if order.stop_price is None:
                raise BrokerRejected(f"{self._venue()}: a stop order needs a stop price; the order was not sent",
                                     rule="venue.order_type")
            checks.append(("stop price", order.stop_price, "price", self.exchange.price_to_precision))
        for what, value, step, fit in checks:
            try:
                exact = Decimal(fit(symbol, plain(value))) == value
            except ccxt.BaseError:
                exact = False
            if not exact:
                raise BrokerRejected(f"{what} {plain(value)} is not a multiple of {self._venue()}'s {symbol} "
                                     f"{step} precision; the order was not sent", rule=PRECISION_RULE)
        minimum = ((self.exchange.market(symbol).get("limits") or {}).get("amount") or {}).get("min")
        if minimum is not None and order.quantity < Decimal(str(minimum)):
            raise BrokerRejected(f"quantity {plain(order.quantity)} is below {self._venue()}'s {symbol} minimum "
                                 f"amount {minimum}; the order was not sent", rule=PRECISION_RULE)
        return float(order.quantity), float(order.limit_price) if order.limit_price is not None else None

    async def submit(self, order: BrokerOrder) -> BrokerAck:
        if order.order_type not in (OrderType.MARKET, OrderType.LIMIT, OrderType.STOP):
            raise BrokerRejected(f"{self._venue()}: this adapter sends market, limit and stop orders only; "
                                 f"the {order.order_type} order was not sent", rule="venue.order_type")
        trigger = self._stop_param() if order.order_type == OrderType.STOP else None
        amount, price = await self._exact(order)
        symbol = symbol_of(order.instrument)
        if trigger is not None and not stop_listed(self.exchange, self.exchange.market(symbol)):
            raise BrokerRejected(f"{self._venue()} lists no stop-market order (STOP_LOSS) for {symbol}; the stop "
                                 "was not sent", rule="venue.order_type")
        cid = order.client_order_id
        grouped = bool(order.oco_group) and order.is_exit and self.spot
        if grouped:
            await self._make_room(order)
        self._instrument_of[cid] = order.instrument
        params = {"clientOrderId": cid} if self.client_ids else {}
        if order.order_type == OrderType.LIMIT:
            params["timeInForce"] = str(order.time_in_force).upper()
        if trigger is not None:
            params[trigger] = plain(order.stop_price)  # a market order held until the trigger
        if order.reduce_only and not self.spot:
            params["reduceOnly"] = True  # derivatives only: spot endpoints refuse the parameter
        kind = OrderType.MARKET if trigger is not None else order.order_type
        if grouped and rests(order):  # from now on: an order in doubt holds its place in the group too
            self._groups.rest(order.oco_group, cid)
        await self.budget.write(priority=order.is_exit)
        try:
            created = await self.exchange.create_order(symbol, str(kind), str(order.side), amount, price, params)
        except ccxt.BaseError as exc:
            error = self._translate(exc, "create_order")
            duplicate = isinstance(exc, ccxt.DuplicateOrderId) or "duplicate" in str(exc).lower()
            if isinstance(error, OutcomeUnknown) or (duplicate and self.client_ids):
                return await self._resolve(cid, error)
            self._groups.ended(cid)
            raise error from None
        try:
            return await self._reported(cid, created)
        except OutcomeUnknown as exc:  # an unreadable success reply: the exchange has the order
            return await self._resolve(cid, exc)

    def _stop_param(self) -> str:
        param = stop_param(self.exchange)
        if param is None:
            raise BrokerRejected(f"{self._venue()}: ccxt declares no stop orders for {self.exchange.id} "
                                 "(createTriggerOrder, createStopMarketOrder, createStopOrder); the stop was not sent",
                                 rule="venue.order_type")
        return param

    async def _make_room(self, order: BrokerOrder) -> None:
        """Spot: refuses a second resting closing order of a position; takes the resting one away before
        a closing order that does not rest (ccxt_groups)."""
        resting = self._groups.resting(order.oco_group)
        if not resting:
            return
        if rests(order):
            raise BrokerRejected(
                f"{self._venue()} spot: {resting[0]!r} already rests to close this position and holds its coins; "
                f"this adapter sends no one-cancels-other order lists, so this second resting closing order "
                f"({order.order_type}) was not sent: both could fill and close the position twice", rule=OCO_RULE)
        for cid in resting:
            await self._withdraw(cid)

    async def _withdraw(self, cid: str) -> None:
        """Cancels a resting closing order before an exit; the exit is not sent unless it ended unfilled
        (or the exchange proves it never had it)."""
        instrument = self._instrument_of.get(cid, self.instruments[0])
        seen = await self._state_of(cid, instrument)
        if seen is not None and not finished_at_venue(seen[0]):
            await self.budget.write(priority=True)
            try:
                await self.exchange.cancel_order(seen[1].broker_order_id, symbol_of(instrument))
            except ccxt.BaseError as exc:  # it may have filled or ended meanwhile: its state decides
                log.info("resting closing order not canceled", extra={"client_order_id": cid, "error": str(exc)})
            seen = await self._state_of(cid, instrument)
        if seen is not None:
            found, ack = seen
            # The exchange's filled amount, not only the trades listed: those can lag it.
            traded = max(venue_filled(found), ack.filled_quantity)
            if traded > 0:
                raise BrokerRejected(f"{self._venue()}: {cid!r} traded {plain(traded)} before it could be "
                                     "canceled; the exit was not sent, so the position is not closed twice",
                                     rule=OCO_RULE)
            if not finished_at_venue(found):
                raise BrokerRejected(f"{self._venue()}: {cid!r} could not be canceled and still rests with the coins "
                                     "of this position; the exit was not sent", rule=OCO_RULE)
        self._groups.ended(cid)  # still followed: the next poll reports its cancel to the engine

    async def _state_of(self, cid: str, instrument: str) -> tuple[dict, BrokerAck] | None:
        """The exchange's order structure and our view of it, without reporting it (its news stay for the poll)."""
        try:
            found = await self._fetch(cid)
            return None if found is None else (found, await ack_of(self.exchange, self.name, cid, found, instrument))
        except (OutcomeUnknown, RetryableBrokerError, BrokerOverloaded) as exc:
            raise RetryableBrokerError(f"{self._venue()}: cannot tell what {cid!r} did ({exc}); "
                                       "the exit was not sent") from None

    async def _resolve(self, cid: str, cause: Exception) -> BrokerAck:
        log.warning("order outcome in doubt; looking it up", extra={"venue": self._venue(), "client_order_id": cid,
                                                                    "error": str(cause)})
        try:
            ack = await self.lookup(cid)
        except (OutcomeUnknown, RetryableBrokerError, BrokerOverloaded, BrokerRejected) as exc:
            raise OutcomeUnknown(f"{cause}; the lookup failed too: {exc}; the order is not sent again") from None
        if ack is None:
            raise OutcomeUnknown(f"{cause}; the exchange does not list the order yet; it is not sent again")
        return ack

    async def _reported(self, cid: str, found: dict) -> BrokerAck:
        ack = await ack_of(self.exchange, self.name, cid, found, self._instrument_of.get(cid, self.instruments[0]))
        self._order_id_of[cid] = ack.broker_order_id
        self._follow(cid, found, ack)
        self._tracker.saw(ack)
        return ack

    def _follow(self, cid: str, found: dict, ack: BrokerAck) -> None:
        """Polls an order while it works at the exchange, and after it ended while its trades lag (TradesLag)."""
        if ack.state in FINISHED_STATES:
            self._finished(cid)
        elif self._lag.waited_out(ack, finished_at_venue=finished_at_venue(found), filled=venue_filled(found)):
            self._open.discard(cid)  # left to reconciliation; it keeps its place among the closing orders
        else:
            self._open.add(cid)

    def _finished(self, cid: str) -> None:
        self._open.discard(cid)
        self._groups.ended(cid)

    # ---- lookup, cancel -----------------------------------------------------------------

    async def _fetch(self, cid: str) -> dict | None:
        instruments = ([self._instrument_of[cid]] if cid in self._instrument_of else list(self.instruments))
        for instrument in instruments:
            await self.budget.read()
            try:
                if self.client_ids:
                    found = await self.exchange.fetch_order(None, symbol_of(instrument), {"clientOrderId": cid})
                elif cid in self._order_id_of:
                    found = await self.exchange.fetch_order(self._order_id_of[cid], symbol_of(instrument))
                else:
                    raise OutcomeUnknown(f"{self._venue()} cannot look orders up by client id and never answered "
                                         f"with an id for {cid!r}; an operator must check the exchange")
            except ccxt.OrderNotFound:
                continue
            except ccxt.BaseError as exc:
                error = self._translate(exc, "fetch_order")
                raise (OutcomeUnknown(str(error)) if isinstance(error, BrokerRejected) else error) from None
            self._instrument_of[cid] = instrument
            return found
        return None

    async def lookup(self, client_order_id: str) -> BrokerAck | None:
        found = await self._fetch(client_order_id)
        return None if found is None else await self._reported(client_order_id, found)

    async def cancel(self, client_order_id: str) -> BrokerAck:
        found = await self._fetch(client_order_id)
        if found is None:
            raise BrokerRejected(f"{self._venue()}: no order with client id {client_order_id!r} to cancel")
        ack = await self._reported(client_order_id, found)
        if finished_at_venue(found):  # filled, or taken away before an exit (its trades may still be on their way)
            return ack
        await self.budget.write(priority=True)
        try:
            await self.exchange.cancel_order(ack.broker_order_id,
                                             symbol_of(self._instrument_of.get(client_order_id, self.instruments[0])))
        except ccxt.BaseError as exc:
            raise self._translate(exc, "cancel_order") from None
        return (await self.lookup(client_order_id)) or ack

    async def positions(self, account: str) -> list[BrokerPositionView]:
        await self.budget.read()
        try:
            if self.exchange.has.get("fetchPositions") and not self.spot:
                rows = await self.exchange.fetch_positions([symbol_of(i) for i in self.instruments])
                return [BrokerPositionView(account=account, instrument=r["symbol"].replace("/", "_").split(":")[0],
                                           quantity=Decimal(str(r["contracts"] or 0)) * (
                                               -1 if r.get("side") == "short" else 1),
                                           average_price=Decimal(str(r["entryPrice"])) if r.get("entryPrice") else None,
                                           side=r.get("side") or "")
                        for r in rows]
            balance = await self.exchange.fetch_balance()
        except ccxt.BaseError as exc:
            raise self._translate(exc, "positions") from None
        views = []
        for instrument in self.instruments:  # spot: the position is the base currency held
            total = (balance.get("total") or {}).get(instrument.split("_")[0])
            if total:
                views.append(BrokerPositionView(account=account, instrument=instrument,
                                                quantity=Decimal(str(total)), average_price=None))
        return views

    # ---- resting orders -------------------------------------------------------------------

    async def executions(self) -> AsyncIterator[BrokerExecution]:
        """Fills and ends of the orders still working, by polling fetch_order inside the read budget."""
        while True:
            for execution in await self.poll():
                yield execution
            await self._clock.sleep(self._poll_seconds)

    async def poll(self) -> list[BrokerExecution]:
        news: list[BrokerExecution] = []
        for cid in sorted(self._open):
            try:
                found = await self._fetch(cid)
                if found is None:
                    continue
                news += self._tracker.news(await self._reported_quietly(cid, found))
            except (OutcomeUnknown, RetryableBrokerError, BrokerOverloaded, BrokerRejected) as exc:
                log.warning("could not poll an open order; trying again", extra={"client_order_id": cid,
                                                                                 "error": str(exc)})
        return news

    async def _reported_quietly(self, cid: str, found: dict) -> BrokerAck:
        ack = await ack_of(self.exchange, self.name, cid, found, self._instrument_of.get(cid, self.instruments[0]))
        self._follow(cid, found, ack)
        return ack
