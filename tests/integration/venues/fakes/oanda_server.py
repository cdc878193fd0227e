"""A loopback OANDA v20 that follows OANDA's documented rules, for the adapter's tests.

Rules it keeps (https://developer.oanda.com/rest-live-v20/):
- a client id is refused (CLIENT_ORDER_ID_ALREADY_EXISTS) only while the order that holds it
  is PENDING; a filled market order does not hold it, so a second POST fills again;
- a fill is reported per trade: tradesClosed / tradeReduced against open opposite trades
  (FIFO), then tradeOpened for the rest, each with its official price; the top-level
  orderFillTransaction.price is deprecated and is left out when `deprecated_price` is False;
- units and prices beyond the instrument's tradeUnitsPrecision / displayPrecision are refused
  (UNITS_PRECISION_EXCEEDED, PRICE_PRECISION_EXCEEDED); an exponent ("1E+4") is not a number;
- stopLossOnFill / trailingStopLossOnFill (StopLossDetails, TrailingStopLossDetails): when the
  order's fill opens a trade, OANDA creates a STOP_LOSS (price = the trade's price -/+ distance)
  and a TRAILING_STOP_LOSS (trailingStopValue likewise at creation) on that trade, with the
  clientExtensions given (transactions STOP_LOSS_ORDER / TRAILING_STOP_LOSS_ORDER, reason
  ON_FILL); a distance beyond displayPrecision is refused (PRICE_DISTANCE_PRECISION_EXCEEDED),
  two on-fill orders with one client id too (ORDERS_ON_FILL_DUPLICATE_CLIENT_ORDER_IDS);
- tradeClientExtensions names the trade an order opens; a TAKE_PROFIT order names an open trade
  by tradeID or clientTradeID (TRADE_DOESNT_EXIST otherwise);
- such an order closes what is left of its trade when it fills (after a partial close, fewer
  units than it was created for), and is then FILLED; when a trade closes, every order still
  pending on it is canceled (ORDER_CANCEL, reason LINKED_TRADE_CLOSED);
- `quote` moves the market: a stop-loss or take-profit whose price it reaches fills at it.
Replies are built from fixtures/oanda_market_fill.json.

Faults: `throttle` (429s), `reply_delay` (accept, then answer late), `drop_replies` (accept,
then cut the connection), `lookup_failures` (GET /orders/{spec} answers 503), `malformed`
({"json", "lookup"}), `stream_script` for the pricing stream.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from aiohttp import web

FILL_PRICE = "150.123"
TIME = "2024-05-01T10:00:00.123456789Z"
TEMPLATE = json.loads((Path(__file__).parent.parent / "fixtures" / "oanda_market_fill.json").read_text())
INSTRUMENTS = {"USD_JPY": {"name": "USD_JPY", "type": "CURRENCY", "displayName": "USD/JPY", "pipLocation": -2,
                           "displayPrecision": 3, "tradeUnitsPrecision": 0, "minimumTradeSize": "1",
                           "maximumOrderUnits": "100000000"},
               "EUR_USD": {"name": "EUR_USD", "type": "CURRENCY", "displayName": "EUR/USD", "pipLocation": -4,
                           "displayPrecision": 5, "tradeUnitsPrecision": 0, "minimumTradeSize": "1",
                           "maximumOrderUnits": "100000000"}}
_PLAIN = re.compile(r"^-?\d+(\.\d+)?$")
ON_FILL = {"stopLossOnFill": "STOP_LOSS", "trailingStopLossOnFill": "TRAILING_STOP_LOSS"}


def _places(text: str) -> int:
    return len(text.partition(".")[2])


@dataclass
class FakeOanda:
    token: str
    account_id: str
    throttle: int = 0
    reply_delay: float = 0.0
    drop_replies: int = 0
    lookup_failures: int = 0
    deprecated_price: bool = True
    malformed: set[str] = field(default_factory=set)
    orders: list[dict] = field(default_factory=list)
    transactions: dict[str, dict] = field(default_factory=dict)
    trades: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    stream_script: list[list] = field(default_factory=list)
    stream_connections: int = 0
    summary_served: asyncio.Event = field(default_factory=asyncio.Event)
    currency: str = "JPY"  # the account's home currency: financing is booked in it
    _tx: int = 100

    def app(self) -> web.Application:
        app = web.Application()
        base = "/v3/accounts/{account}"
        app.router.add_post(base + "/orders", self.create_order)
        app.router.add_get(base + "/orders/{spec}", self.get_order)
        app.router.add_put(base + "/orders/{spec}/cancel", self.cancel_order)
        app.router.add_get(base + "/transactions/sinceid", self.since_id)
        app.router.add_get(base + "/transactions/{tx}", self.get_transaction)
        app.router.add_get(base + "/summary", self.summary)
        app.router.add_get(base + "/instruments", self.instruments)
        app.router.add_get(base + "/openPositions", self.open_positions)
        app.router.add_get(base + "/pricing/stream", self.pricing_stream)
        return app

    @property
    def fills(self) -> list[dict]:
        return [t for t in self.transactions.values() if t["type"] == "ORDER_FILL"]

    def _next_id(self) -> str:
        self._tx += 1
        return str(self._tx)

    def _refuse(self, request: web.Request) -> web.Response | None:
        self.requests.append(f"{request.method} {request.path}")
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"errorMessage": "Insufficient authorization to perform request."}, status=401)
        if request.match_info["account"] != self.account_id:
            return web.json_response({"errorMessage": "Invalid value specified for 'accountID'"}, status=400)
        if self.throttle > 0:
            self.throttle -= 1
            return web.json_response({"errorMessage": "Rate limit violation"}, status=429,
                                     headers={"Retry-After": "0"})
        return None

    def _reject(self, spec: dict, reason: str) -> web.Response:
        tx = {"id": self._next_id(), "type": f"{spec.get('type', 'MARKET')}_ORDER_REJECT", "rejectReason": reason,
              "time": TIME}
        return web.json_response({"orderRejectTransaction": tx, "errorCode": reason,
                                  "errorMessage": reason.replace("_", " ").lower(), "lastTransactionID": tx["id"]},
                                 status=400)

    async def create_order(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        spec = (await request.json())["order"]
        if spec["type"] == "TAKE_PROFIT":
            return self._on_trade(spec)
        meta = INSTRUMENTS[spec["instrument"]]
        for name in ("units", "price"):
            if name in spec and not _PLAIN.match(spec[name]):
                return web.json_response({"errorMessage": f"Invalid value specified for '{name}'"}, status=400)
        if _places(spec["units"]) > meta["tradeUnitsPrecision"]:
            return self._reject(spec, "UNITS_PRECISION_EXCEEDED")
        if "price" in spec and _places(spec["price"]) > meta["displayPrecision"]:
            return self._reject(spec, "PRICE_PRECISION_EXCEEDED")
        cid = spec["clientExtensions"]["id"]
        if any(o["clientExtensions"]["id"] == cid and o["state"] == "PENDING" for o in self.orders):
            return self._reject(spec, "CLIENT_ORDER_ID_ALREADY_EXISTS")
        on_fill = {k: spec[k] for k in ON_FILL if k in spec}
        for details in on_fill.values():
            if not _PLAIN.match(details["distance"]) or _places(details["distance"]) > meta["displayPrecision"]:
                return self._reject(spec, "PRICE_DISTANCE_PRECISION_EXCEEDED")
        ids = [d["clientExtensions"]["id"] for d in on_fill.values() if d.get("clientExtensions")]
        if len(ids) != len(set(ids)):
            return self._reject(spec, "ORDERS_ON_FILL_DUPLICATE_CLIENT_ORDER_IDS")
        order_id = self._next_id()
        order = {"id": order_id, "createTime": TIME, "type": spec["type"], "instrument": spec["instrument"],
                 "units": spec["units"], "timeInForce": spec["timeInForce"], "clientExtensions": {"id": cid},
                 "positionFill": spec["positionFill"], "state": "PENDING"}
        if "price" in spec:
            order["price"] = spec["price"]
        order.update(on_fill)  # an OANDA order shows the on-fill details it carries
        if "tradeClientExtensions" in spec:
            order["tradeClientExtensions"] = spec["tradeClientExtensions"]
        reply = copy.deepcopy(TEMPLATE)
        del reply["_source"], reply["orderFillTransaction"]
        reply["orderCreateTransaction"].update(id=order_id, batchID=order_id, instrument=spec["instrument"],
                                               units=spec["units"], type=f"{spec['type']}_ORDER",
                                               timeInForce=spec["timeInForce"], clientExtensions={"id": cid})
        self.orders.append(order)  # recorded before any fault: the venue has acted
        if spec["type"] == "MARKET":
            reply["orderFillTransaction"] = self._fill(order, FILL_PRICE)
        reply["lastTransactionID"] = str(self._tx)
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if self.drop_replies > 0:
            self.drop_replies -= 1
            request.transport.close()
            return web.Response(status=201)
        if "json" in self.malformed:
            return web.Response(status=201, text="{\"orderCreateTransaction\": ", content_type="application/json")
        return web.json_response(reply, status=201)

    def _fill(self, order: dict, price: str) -> dict:
        """Fills the whole order at `price`: closes opposite trades FIFO (an order on a trade: that trade),
        opens a trade with the rest."""
        units = Decimal(order["units"])
        tx = copy.deepcopy(TEMPLATE["orderFillTransaction"])
        tx.update(id=self._next_id(), orderID=order["id"], clientOrderID=order["clientExtensions"]["id"],
                  instrument=order["instrument"], units=order["units"], requestedUnits=order["units"], time=TIME,
                  price=price, fullVWAP=price)
        del tx["tradeOpened"]
        closed, left = [], units
        if "tradeID" in order:  # an order on a trade closes that trade, not the oldest one
            candidates = [t for t in self.trades if t["id"] == order["tradeID"]]
        else:
            candidates = [t for t in self.trades if t["instrument"] == order["instrument"]]
        for trade in candidates:
            if left == 0 or (trade["units"] > 0) == (left > 0):
                continue
            take = min(abs(left), abs(trade["units"])) * (1 if left > 0 else -1)
            trade["units"] += take
            left -= take
            part = {"tradeID": trade["id"], "units": str(take), "price": price, "realizedPL": "0.0000",
                    "financing": "0.0000", "guaranteedExecutionFee": "0.0000", "halfSpreadCost": "0.5000"}
            if trade["units"] == 0:
                closed.append(part)
            else:
                tx["tradeReduced"] = part
        self.trades = [t for t in self.trades if t["units"] != 0]
        if closed:
            tx["tradesClosed"] = closed
        if left != 0:
            self.trades.append({"id": tx["id"], "instrument": order["instrument"], "units": left, "price": price,
                                "clientExtensions": order.get("tradeClientExtensions", {})})
            tx["tradeOpened"] = {"tradeID": tx["id"], "units": str(left), "price": price,
                                 "guaranteedExecutionFee": "0.0000", "halfSpreadCost": "0.5000",
                                 "initialMarginRequired": "4000.0000"}
        if not self.deprecated_price:
            del tx["price"]
        self.transactions[tx["id"]] = tx
        order.update(state="FILLED", fillingTransactionID=tx["id"], filledTime=TIME)
        for part in closed:
            self._cancel_linked(part["tradeID"])
        if "tradeOpened" in tx:
            self._create_on_fill(order, tx["tradeOpened"])
        return dict(tx)

    def _on_trade(self, spec: dict) -> web.Response:
        """A TAKE_PROFIT on an open trade, named by tradeID or clientTradeID (TakeProfitOrderRequest)."""
        trade = next((t for t in self.trades if t["id"] == spec.get("tradeID")
                      or (spec.get("clientTradeID") and t["clientExtensions"].get("id") == spec["clientTradeID"])), None)
        if trade is None:
            return self._reject(spec, "TRADE_DOESNT_EXIST")
        if not _PLAIN.match(spec["price"]) or _places(spec["price"]) > INSTRUMENTS[trade["instrument"]]["displayPrecision"]:
            return self._reject(spec, "PRICE_PRECISION_EXCEEDED")
        cid = spec["clientExtensions"]["id"]
        if any(o["clientExtensions"]["id"] == cid and o["state"] == "PENDING" for o in self.orders):
            return self._reject(spec, "CLIENT_ORDER_ID_ALREADY_EXISTS")
        order = {"id": self._next_id(), "createTime": TIME, "type": "TAKE_PROFIT", "tradeID": trade["id"],
                 "clientTradeID": trade["clientExtensions"].get("id", ""), "price": spec["price"],
                 "timeInForce": spec.get("timeInForce", "GTC"), "clientExtensions": {"id": cid}, "state": "PENDING",
                 "triggerCondition": "DEFAULT"}
        self.orders.append(order)
        tx = {"id": order["id"], "type": "TAKE_PROFIT_ORDER", "reason": "CLIENT_ORDER", "tradeID": trade["id"],
              "price": spec["price"], "timeInForce": order["timeInForce"], "clientExtensions": {"id": cid},
              "time": TIME}
        self.transactions[tx["id"]] = tx
        return web.json_response({"orderCreateTransaction": tx, "relatedTransactionIDs": [tx["id"]],
                                  "lastTransactionID": tx["id"]}, status=201)

    def _create_on_fill(self, order: dict, trade: dict) -> None:
        long = Decimal(trade["units"]) > 0
        for key, kind in ON_FILL.items():
            details = order.get(key)
            if details is None:
                continue
            level = Decimal(trade["price"]) + (-1 if long else 1) * Decimal(details["distance"])
            dependent = {"id": self._next_id(), "createTime": TIME, "type": kind, "tradeID": trade["tradeID"],
                         "distance": details["distance"], "timeInForce": details.get("timeInForce", "GTC"),
                         "clientExtensions": details.get("clientExtensions", {"id": ""}), "state": "PENDING",
                         "triggerCondition": "DEFAULT",
                         ("price" if kind == "STOP_LOSS" else "trailingStopValue"): str(level)}
            self.orders.append(dependent)
            self.transactions[dependent["id"]] = {
                "id": dependent["id"], "type": f"{kind}_ORDER", "reason": "ON_FILL", "time": TIME,
                "tradeID": trade["tradeID"], "distance": details["distance"],
                "clientExtensions": dependent["clientExtensions"]}

    def _cancel_linked(self, trade_id: str) -> None:
        for order in self.orders:
            if order.get("tradeID") == trade_id and order["state"] == "PENDING":
                order["state"] = "CANCELLED"
                tx = {"id": self._next_id(), "type": "ORDER_CANCEL", "orderID": order["id"],
                      "clientOrderID": order["clientExtensions"]["id"], "reason": "LINKED_TRADE_CLOSED", "time": TIME}
                self.transactions[tx["id"]] = tx

    def fill_pending(self, client_id: str, price: str) -> dict:
        """The market reaches a resting order: OANDA fills it (tests call this)."""
        order = next(o for o in self.orders if o["clientExtensions"]["id"] == client_id and o["state"] == "PENDING")
        if "tradeID" in order:
            self._close_what_is_left(order)
        return self._fill(order, price)

    def _close_what_is_left(self, order: dict) -> None:
        """An order on a trade closes all of what is left of it (after a partial close: less than the
        trade opened with), whatever units it was created for."""
        trade = next(t for t in self.trades if t["id"] == order["tradeID"])
        order["units"] = str(-trade["units"])
        order["instrument"] = trade["instrument"]

    def quote(self, instrument: str, bid: str, ask: str) -> list[dict]:
        """The market moves to bid/ask: every STOP_LOSS and TAKE_PROFIT on a trade whose price the
        quote reaches fills at the market (triggerCondition DEFAULT: the orders closing a long trade
        sell, so they watch the bid; a short's watch the ask). Trailing stops are not followed.
        Returns the ORDER_FILL transactions."""
        done = []
        for order in list(self.orders):
            if order["state"] != "PENDING" or order.get("type") not in ("STOP_LOSS", "TAKE_PROFIT"):
                continue
            trade = next((t for t in self.trades if t["id"] == order["tradeID"]), None)
            if trade is None or trade["instrument"] != instrument:
                continue
            long = trade["units"] > 0
            market, level = Decimal(bid if long else ask), Decimal(order["price"])
            against = market <= level if long else market >= level  # the market went against the trade to the level
            for_it = market >= level if long else market <= level
            if against if order["type"] == "STOP_LOSS" else for_it:
                self._close_what_is_left(order)
                done.append(self._fill(order, bid if long else ask))
        return done

    def daily_financing(self, per_trade: dict[str, str]) -> dict:
        """The rollover: OANDA books financing on every open trade in one DAILY_FINANCING transaction
        (per position, per trade, in the account's home currency; tests say how much per trade id)."""
        positions: dict[str, list[dict]] = {}
        for trade in self.trades:
            amount = per_trade.get(trade["id"], "0.0000")
            positions.setdefault(trade["instrument"], []).append(
                {"tradeID": trade["id"], "financing": amount, "baseFinancing": amount, "financingRate": "-0.0125"})
        tx = {"id": self._next_id(), "type": "DAILY_FINANCING", "time": TIME, "accountID": self.account_id,
              "financing": str(sum(Decimal(t["financing"]) for ts in positions.values() for t in ts)),
              "positionFinancings": [{"instrument": i, "financing": str(sum(Decimal(t["financing"]) for t in ts)),
                                      "openTradeFinancings": ts} for i, ts in positions.items()]}
        self.transactions[tx["id"]] = tx
        return tx

    def _find(self, spec: str) -> dict | None:
        if spec.startswith("@"):
            found = [o for o in self.orders if o["clientExtensions"]["id"] == spec[1:]]
            return found[-1] if found else None
        return next((o for o in self.orders if o["id"] == spec), None)

    async def get_order(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        if self.lookup_failures > 0:
            self.lookup_failures -= 1
            return web.Response(status=503, text="<html>503 Service Unavailable</html>")
        order = self._find(request.match_info["spec"])
        if order is None:
            return web.json_response({"errorCode": "ORDER_DOESNT_EXIST",
                                      "errorMessage": "The Order specified does not exist"}, status=404)
        if "lookup" in self.malformed:
            return web.json_response({"order": {"id": order["id"]}, "lastTransactionID": "1"})
        return web.json_response({"order": order, "lastTransactionID": str(self._tx)})

    async def cancel_order(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        order = self._find(request.match_info["spec"])
        if order is None or order["state"] != "PENDING":
            return web.json_response({"errorCode": "ORDER_DOESNT_EXIST",
                                      "errorMessage": "The Order specified does not exist"}, status=404)
        order["state"] = "CANCELLED"
        tx = {"id": self._next_id(), "type": "ORDER_CANCEL", "orderID": order["id"],
              "clientOrderID": order["clientExtensions"]["id"], "reason": "CLIENT_REQUEST", "time": TIME}
        self.transactions[tx["id"]] = tx
        return web.json_response({"orderCancelTransaction": tx, "lastTransactionID": tx["id"]})

    async def get_transaction(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        tx = self.transactions.get(request.match_info["tx"])
        if tx is None:
            return web.json_response({"errorMessage": "Transaction not found"}, status=404)
        return web.json_response({"transaction": tx, "lastTransactionID": str(self._tx)})

    async def since_id(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        after = int(request.query["id"])
        rows = [t for k, t in sorted(self.transactions.items(), key=lambda kv: int(kv[0])) if int(k) > after]
        return web.json_response({"transactions": rows, "lastTransactionID": str(self._tx)})

    async def summary(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        reply = web.json_response({"account": {"id": self.account_id, "currency": self.currency,
                                               "lastTransactionID": str(self._tx)},
                                   "lastTransactionID": str(self._tx)})
        self.summary_served.set()
        return reply

    async def instruments(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        names = request.query.get("instruments", "").split(",")
        return web.json_response({"instruments": [INSTRUMENTS[n] for n in names if n in INSTRUMENTS],
                                  "lastTransactionID": str(self._tx)})

    async def open_positions(self, request: web.Request) -> web.Response:
        if (refused := self._refuse(request)) is not None:
            return refused
        units: dict[str, Decimal] = {}
        for trade in self.trades:
            units[trade["instrument"]] = units.get(trade["instrument"], Decimal(0)) + trade["units"]
        positions = [{"instrument": i, "long": {"units": str(max(u, 0)), "averagePrice": FILL_PRICE},
                      "short": {"units": str(min(u, 0)), "averagePrice": FILL_PRICE}} for i, u in units.items()]
        return web.json_response({"positions": positions, "lastTransactionID": str(self._tx)})

    async def pricing_stream(self, request: web.Request) -> web.StreamResponse:
        if (refused := self._refuse(request)) is not None:
            return refused
        instruments = request.query.get("instruments", "").split(",")
        script = self.stream_script[min(self.stream_connections, len(self.stream_script) - 1)]
        self.stream_connections += 1
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        n = 0
        for step in script:
            if step == "price":
                n += 1
                line = {"type": "PRICE", "instrument": instruments[0], "time": TIME, "tradeable": True,
                        "bids": [{"price": f"150.{n:03d}", "liquidity": 1000000}],
                        "asks": [{"price": f"150.{n + 5:03d}", "liquidity": 1000000}],
                        "closeoutBid": "150.000", "closeoutAsk": "150.010"}
                await response.write((json.dumps(line) + "\n").encode())
            elif step == "heartbeat":
                await response.write(b'{"type":"HEARTBEAT","time":"' + TIME.encode() + b'"}\n')
            elif step == "garbage":
                await response.write(b"{not json\n")
            elif isinstance(step, tuple) and step[0] == "sleep":
                await asyncio.sleep(step[1])
            elif step == "close":
                return response  # ends the chunked body: the client sees the stream end
        await asyncio.sleep(3600)  # hold the connection open and silent
        return response
