"""A loopback Binance spot REST API that keeps Binance's documented rules, for the ccxt adapter.

Rules (https://developers.binance.com/docs/binance-spot-api-docs/rest-api/trading-endpoints,
.../errors, .../filters): signed endpoints check X-MBX-APIKEY and `signature` = hex
HMAC-SHA256(secret, totalParams); newClientOrderId must be unique among OPEN orders only (a
filled order's id may be used again, and that is a second order); quantities must be multiples
of LOT_SIZE stepSize and prices and stopPrices of PRICE_FILTER tickSize, within minPrice and
maxPrice (-1013 otherwise); GET /api/v3/order carries no fills, GET /api/v3/myTrades?orderId=
lists them; the reply to POST /api/v3/order is `newOrderRespType` (ACK, RESULT or FULL; MARKET
and LIMIT default to FULL, every other type to ACK).

STOP_LOSS ("quantity, stopPrice or trailingDelta"; "This will execute a MARKET order when the
conditions are met"): without stopPrice -1102; price or timeInForce with it -1106; a type the
symbol does not list in exchangeInfo orderTypes -2010 "Stop loss orders are not supported for
this symbol."; a stopPrice the last trade has already reached -2010 "Order would trigger
immediately." (a SELL stop must be below the last price, a BUY stop above). It rests as NEW
(workingTime -1, isWorking false) until the last trade goes down to (SELL) or up to (BUY) its
stopPrice (the FIX API's TriggerPriceType LAST_TRADE, TriggerPriceDirection D / U), then
executes as a market order: FILLED, its trades in myTrades. `trade_at(price)` is that market
trade: it triggers stops and fills the resting LIMIT orders it trades through (at their price).
Trailing stops (trailingDelta) are not modelled: -1102 without stopPrice.

Balances: an open SELL order locks its unfilled base quantity, an open BUY LIMIT its quote
amount; an order the free balance cannot cover is refused -2010 "Account has insufficient
balance for requested action." (a BUY STOP_LOSS locks nothing here: Binance does not document
what it holds). So a STOP_LOSS and a LIMIT take-profit for the same whole position cannot both
rest unless sent as an OCO order list (POST /api/v3/orderList/oco, not served here). Fills move
the balances, with Binance's default 0.1% commission in the asset received.

Knobs: `throttle` (-1003 as HTTP 429), `reply_delay`, `malformed` ({"order"}), `fail_after_accept`
(codes answered after the order was taken, e.g. [-1006]: "execution status unknown"),
`lookup_failures` (GET /api/v3/order answers 503), `order_types` (the symbol's orderTypes),
`balances` (total per asset), `last_price`, `lag_trades` (trades made while it is on are left out
of GET /api/v3/myTrades until `list_trades()`, while the order's executedQty and status already
count them: the trade history catching up with the order, as it may on a real exchange).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from decimal import Decimal

from aiohttp import web

FILL_PRICE = "65000.10"
LAST_PRICE = "65000.05"
STEP_SIZE, TICK_SIZE = "0.00001", "0.01"
MIN_PRICE, MAX_PRICE = "0.01", "1000000.00"
COMMISSION = Decimal("0.001")  # Binance's default spot fee (account makerCommission/takerCommission 10)
#: BTCUSDT's orderTypes in the exchangeInfo example of the REST API documents.
ORDER_TYPES = ("LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT")
_OPEN = ("NEW", "PARTIALLY_FILLED")
_SERVED = ("LIMIT", "MARKET", "STOP_LOSS")  # the types this fake executes
_NOT_SUPPORTED = {"MARKET": "Market orders", "STOP_LOSS": "Stop loss orders", "LIMIT": "Limit orders"}
_ACK_FIELDS = ("symbol", "orderId", "orderListId", "clientOrderId", "transactTime")
_QUERY_ONLY = ("fills", "transactTime")


def _error(code: int, msg: str, status: int = 400) -> web.Response:
    return web.json_response({"code": code, "msg": msg}, status=status)


def _now() -> int:
    return int(time.time() * 1000)


@dataclass
class FakeBinance:
    api_key: str
    secret: str
    throttle: int = 0
    reply_delay: float = 0.0
    malformed: set[str] = field(default_factory=set)
    orders: list[dict] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    ticker_calls: int = 0
    fail_ticker: int = 0
    fail_after_accept: list[int] = field(default_factory=list)
    lookup_failures: int = 0
    trades: list[dict] = field(default_factory=list)
    order_types: tuple[str, ...] = ORDER_TYPES
    balances: dict[str, Decimal] = field(default_factory=lambda: {"BTC": Decimal("0.5"), "USDT": Decimal("100000")})
    last_price: str = LAST_PRICE
    lag_trades: bool = False
    unlisted: set[int] = field(default_factory=set)  # trade ids myTrades leaves out for now

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self.exchange_info)
        app.router.add_get("/api/v3/ticker/24hr", self.ticker)
        app.router.add_post("/api/v3/order", self.new_order)
        app.router.add_get("/api/v3/order", self.query_order)
        app.router.add_delete("/api/v3/order", self.cancel_order)
        app.router.add_get("/api/v3/account", self.account)
        app.router.add_get("/api/v3/myTrades", self.my_trades)
        return app

    async def _params(self, request: web.Request) -> tuple[dict, web.Response | None]:
        self.requests.append(f"{request.method} {request.path}")
        body = await request.text()
        query = request.query_string
        total = "&".join(part for part in (query, body) if part)
        unsigned, _, signature = total.rpartition("&signature=")
        params = dict(request.query)
        params.update(dict(await request.post()) if body else {})
        if request.headers.get("X-MBX-APIKEY") != self.api_key:
            return params, _error(-2015, "Invalid API-key, IP, or permissions for action.", 401)
        expected = hmac.new(self.secret.encode(), unsigned.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(signature, expected):
            return params, _error(-1022, "Signature for this request is not valid.")
        if self.throttle > 0:
            self.throttle -= 1
            return params, _error(-1003, "Too many requests; please use the websocket for live updates.", 429)
        return params, None

    async def exchange_info(self, request: web.Request) -> web.Response:
        return web.json_response({"timezone": "UTC", "serverTime": _now(), "rateLimits": [],
                                  "exchangeFilters": [], "symbols": [{
                                      "symbol": "BTCUSDT", "status": "TRADING", "baseAsset": "BTC",
                                      "baseAssetPrecision": 8, "quoteAsset": "USDT", "quotePrecision": 8,
                                      "quoteAssetPrecision": 8, "orderTypes": list(self.order_types),
                                      "icebergAllowed": True, "ocoAllowed": True, "isSpotTradingAllowed": True,
                                      "isMarginTradingAllowed": False, "permissions": ["SPOT"],
                                      "permissionSets": [["SPOT"]],
                                      "filters": [{"filterType": "PRICE_FILTER", "minPrice": MIN_PRICE,
                                                   "maxPrice": MAX_PRICE, "tickSize": TICK_SIZE},
                                                  {"filterType": "LOT_SIZE", "minQty": "0.00001",
                                                   "maxQty": "9000.00", "stepSize": STEP_SIZE}]}]})

    async def ticker(self, request: web.Request) -> web.Response:
        self.ticker_calls += 1
        if self.fail_ticker > 0:
            self.fail_ticker -= 1
            return web.Response(status=502, text="<html>502 Bad Gateway</html>")
        n = self.ticker_calls
        now = _now()
        return web.json_response({"symbol": request.query["symbol"], "priceChange": "0", "priceChangePercent": "0",
                                  "weightedAvgPrice": "65000", "prevClosePrice": "65000", "lastPrice": self.last_price,
                                  "lastQty": "0.1", "bidPrice": f"{65000 + n}.00", "bidQty": "1",
                                  "askPrice": f"{65000 + n}.10", "askQty": "1", "openPrice": "64000",
                                  "highPrice": "66000", "lowPrice": "63000", "volume": "1234", "quoteVolume": "8e7",
                                  "openTime": now - 86_400_000, "closeTime": now + n, "firstId": 1, "lastId": 2,
                                  "count": 2})

    def _view(self, order: dict) -> dict:
        return {k: v for k, v in order.items() if k not in _QUERY_ONLY}

    @property
    def fills(self) -> list[dict]:
        return self.trades

    # ---- the market -----------------------------------------------------------------------

    def _open_order(self, client_id: str) -> dict:
        return next(o for o in self.orders if o["clientOrderId"] == client_id and o["status"] in _OPEN)

    def fill(self, client_id: str, qty: str, price: str = FILL_PRICE) -> dict:
        """The market trades `qty` of an order (tests call this for resting orders)."""
        return self._execute(self._open_order(client_id), Decimal(qty), price)

    def _execute(self, order: dict, qty: Decimal, price: str) -> dict:
        executed = Decimal(order["executedQty"]) + qty
        quote = qty * Decimal(price)
        buyer = order["side"] == "BUY"
        commission = (qty if buyer else quote) * COMMISSION
        asset = "BTC" if buyer else "USDT"
        self.balances["BTC"] += qty - commission if buyer else -qty
        self.balances["USDT"] += -quote if buyer else quote - commission
        order.update(executedQty=str(executed), updateTime=_now(),
                     cummulativeQuoteQty=str(Decimal(order["cummulativeQuoteQty"]) + quote),
                     status="FILLED" if executed == Decimal(order["origQty"]) else "PARTIALLY_FILLED")
        trade = {"symbol": order["symbol"], "id": 900 + len(self.trades) + 1, "orderId": order["orderId"],
                 "orderListId": -1, "price": price, "qty": str(qty), "quoteQty": str(quote),
                 "commission": f"{commission:.8f}", "commissionAsset": asset, "time": _now(),
                 "isBuyer": buyer, "isMaker": order["type"] == "LIMIT", "isBestMatch": True}
        self.trades.append(trade)
        if self.lag_trades:
            self.unlisted.add(trade["id"])
        order["fills"].append({"price": price, "qty": str(qty), "commission": trade["commission"],
                               "commissionAsset": asset, "tradeId": trade["id"]})
        return order

    def list_trades(self) -> None:
        """The trade history catches up: myTrades lists every trade made so far."""
        self.unlisted.clear()

    def cancel(self, client_id: str) -> None:
        """The order is canceled outside the adapter (another session, the web page): CANCELED keeps executedQty."""
        self._open_order(client_id).update(status="CANCELED", updateTime=_now())

    def expire(self, client_id: str) -> None:
        """Binance expires the rest of an order (e.g. an IOC): EXPIRED keeps executedQty."""
        self._open_order(client_id)["status"] = "EXPIRED"

    def trade_at(self, price: str) -> list[dict]:
        """The market trades at `price`: stops it reaches trigger and execute as market orders at that
        price; resting limits it trades through fill at their own price. Returns the orders that traded."""
        self.last_price = price
        last = Decimal(price)
        traded = []
        for order in [o for o in self.orders if o["status"] in _OPEN]:
            remaining = Decimal(order["origQty"]) - Decimal(order["executedQty"])
            sell = order["side"] == "SELL"
            if order["type"] == "STOP_LOSS":
                stop = Decimal(order["stopPrice"])
                if (last <= stop) if sell else (last >= stop):
                    order.update(workingTime=_now(), isWorking=True)
                    traded.append(self._execute(order, remaining, price))
            elif order["type"] == "LIMIT":
                limit = Decimal(order["price"])
                if (last >= limit) if sell else (last <= limit):
                    traded.append(self._execute(order, remaining, order["price"]))
        return traded

    def locked(self, asset: str) -> Decimal:
        held = Decimal(0)
        for order in self.orders:
            if order["status"] not in _OPEN:
                continue
            remaining = Decimal(order["origQty"]) - Decimal(order["executedQty"])
            if order["side"] == "SELL" and asset == "BTC":
                held += remaining
            elif order["side"] == "BUY" and order["type"] == "LIMIT" and asset == "USDT":
                held += remaining * Decimal(order["price"])
        return held

    def free(self, asset: str) -> Decimal:
        return self.balances.get(asset, Decimal(0)) - self.locked(asset)

    # ---- orders -----------------------------------------------------------------------------

    def _refusal(self, params: dict) -> web.Response | None:
        """Binance's checks of a new order, in its order: parameters, filters, then the matching engine."""
        kind = params.get("type", "")
        if kind not in _SERVED:
            return _error(-1116, "Invalid orderType.")
        if not params.get("quantity"):
            return _error(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        if kind == "LIMIT":
            for name in ("price", "timeInForce"):
                if not params.get(name):
                    return _error(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        if kind == "STOP_LOSS" and not params.get("stopPrice"):
            return _error(-1102, "Param 'stopPrice' or 'trailingDelta' must be sent, but both were empty/null!")
        unwanted = {"MARKET": ("price", "stopPrice", "timeInForce"), "LIMIT": ("stopPrice",),
                    "STOP_LOSS": ("price", "timeInForce")}[kind]
        for name in unwanted:
            if name in params:
                return _error(-1106, f"Parameter '{name}' sent when not required.")
        if Decimal(params["quantity"]) % Decimal(STEP_SIZE) != 0:
            return _error(-1013, "Filter failure: LOT_SIZE")
        for name in ("price", "stopPrice"):
            if name in params:
                value = Decimal(params[name])
                if value % Decimal(TICK_SIZE) != 0 or not Decimal(MIN_PRICE) <= value <= Decimal(MAX_PRICE):
                    return _error(-1013, "Filter failure: PRICE_FILTER")
        cid = params.get("newClientOrderId")
        if cid and any(o["clientOrderId"] == cid and o["status"] in _OPEN for o in self.orders):
            return _error(-2010, "Duplicate order sent.")
        if kind not in self.order_types:
            return _error(-2010, f"{_NOT_SUPPORTED[kind]} are not supported for this symbol.")
        sell = params["side"] == "SELL"
        if kind == "STOP_LOSS":
            stop, last = Decimal(params["stopPrice"]), Decimal(self.last_price)
            if (stop >= last) if sell else (stop <= last):
                return _error(-2010, "Order would trigger immediately.")
        quantity = Decimal(params["quantity"])
        if sell:
            short = quantity > self.free("BTC")
        elif kind == "STOP_LOSS":
            short = False
        else:
            short = quantity * Decimal(params.get("price", FILL_PRICE)) > self.free("USDT")
        if short:
            return _error(-2010, "Account has insufficient balance for requested action.")
        return None

    async def new_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        refused = self._refusal(params)
        if refused is not None:
            return refused
        kind = params["type"]
        cid = params.get("newClientOrderId")
        now = _now()
        order = {"symbol": params["symbol"], "orderId": len(self.orders) + 1, "orderListId": -1,
                 "clientOrderId": cid, "transactTime": now, "time": now, "updateTime": now,
                 "price": params.get("price", "0.00000000"), "origQty": params["quantity"], "executedQty": "0",
                 "cummulativeQuoteQty": "0", "status": "NEW", "timeInForce": params.get("timeInForce", "GTC"),
                 "type": kind, "side": params["side"], "workingTime": now, "isWorking": True,
                 "origQuoteOrderQty": "0.00000000", "selfTradePreventionMode": "NONE", "fills": []}
        if kind == "STOP_LOSS":  # resting, not yet on the book
            order.update(stopPrice=params["stopPrice"], workingTime=-1, isWorking=False)
        self.orders.append(order)  # taken before any fault below: the exchange has acted
        if kind == "MARKET":
            self._execute(order, Decimal(params["quantity"]), FILL_PRICE)
        if self.reply_delay:
            await asyncio.sleep(self.reply_delay)
        if self.fail_after_accept:
            code = self.fail_after_accept.pop(0)
            return _error(code, "An unexpected response was received from the message bus. Execution status "
                          "unknown.", 500)
        if "order" in self.malformed:
            return web.json_response({"symbol": params["symbol"], "status": "FILLED"})
        reply = params.get("newOrderRespType") or ("FULL" if kind in ("MARKET", "LIMIT") else "ACK")
        if reply == "ACK":
            return web.json_response({k: order[k] for k in _ACK_FIELDS})
        shown = {k: v for k, v in order.items() if k not in ("time", "updateTime", "isWorking")}
        return web.json_response(shown if reply == "FULL" else {k: v for k, v in shown.items() if k != "fills"})

    def _find(self, params: dict) -> dict | None:
        if "origClientOrderId" in params:  # the latest order with that client id
            found = [o for o in self.orders if o["clientOrderId"] == params["origClientOrderId"]]
            return found[-1] if found else None
        return next((o for o in self.orders if str(o["orderId"]) == params.get("orderId")), None)

    async def query_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        if self.lookup_failures > 0:
            self.lookup_failures -= 1
            return web.Response(status=503, text="<html>503 Service Unavailable</html>")
        order = self._find(params)
        if order is None:
            return _error(-2013, "Order does not exist.")
        return web.json_response(self._view(order))

    async def my_trades(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        return web.json_response([t for t in self.trades if t["symbol"] == params["symbol"]
                                  and t["id"] not in self.unlisted
                                  and ("orderId" not in params or str(t["orderId"]) == params["orderId"])])

    async def cancel_order(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        order = self._find(params)
        if order is None or order["status"] not in _OPEN:
            return _error(-2011, "Unknown order sent.")
        order.update(status="CANCELED", updateTime=_now())
        return web.json_response(self._view(order))

    async def account(self, request: web.Request) -> web.Response:
        params, refused = await self._params(request)
        if refused is not None:
            return refused
        return web.json_response({"makerCommission": 10, "takerCommission": 10, "canTrade": True,
                                  "accountType": "SPOT", "updateTime": 0, "permissions": ["SPOT"],
                                  "balances": [{"asset": asset, "free": f"{self.free(asset):.8f}",
                                                "locked": f"{self.locked(asset):.8f}"}
                                               for asset in sorted(self.balances)]})
